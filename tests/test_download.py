"""Downloads against a real HTTP server on 127.0.0.1 (tests/httpserver.py): resume, retries, mirrors,
checksums, atomic appearance, a SIGKILLed download, local files, and s3 through moto's server."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from neurodata.datasets.checksum import ChecksumError, sidecar_path
from neurodata.datasets.download import DownloadError, RetryPolicy, UnreachableError, download
from neurodata.datasets.resource import Resource
from tests.httpserver import FileServer

ROOT = Path(__file__).resolve().parents[1]
FAST = RetryPolicy(retries=3, backoff=0.001, max_backoff=0.01, timeout=5.0)
DATA = os.urandom(300_000) + bytes(range(256)) * 100  # incompressible, 325,600 bytes


def resource_for(urls, data: bytes = DATA, name: str = "sample.bin", **overrides) -> Resource:
    fields = dict(size=len(data), md5=hashlib.md5(data).hexdigest(), urls=tuple(urls))
    fields.update(overrides)
    return Resource(name, **fields)


def fetch(resource: Resource, folder: Path, **kwargs):
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("progress", False)
    return download(resource, folder, **kwargs)


def leftovers(folder: Path) -> list[str]:
    """Files other than the final file, its sidecar and the (hidden) lock file."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if not p.name.startswith(".") and not p.name.endswith((".bin", ".json"))
    )


@pytest.fixture
def server():
    with FileServer(lifetime=60) as srv:
        yield srv


def test_download_verifies_records_sha256_and_leaves_no_part(server, tmp_path):
    server.add("/sample.bin", DATA)
    result = fetch(resource_for([server.url("/sample.bin")]), tmp_path)
    assert result.path == tmp_path / "sample.bin"
    assert result.path.read_bytes() == DATA
    assert result.sha256 == hashlib.sha256(DATA).hexdigest()
    assert result.md5 == hashlib.md5(DATA).hexdigest()
    assert result.url == server.url("/sample.bin")
    record = json.loads(sidecar_path(result.path).read_text())
    assert record["sha256"] == result.sha256 and record["size"] == len(DATA)
    assert leftovers(tmp_path) == []


def test_verified_file_is_not_downloaded_again(server, tmp_path):
    server.add("/sample.bin", DATA)
    resource = resource_for([server.url("/sample.bin")])
    fetch(resource, tmp_path)
    events: list[dict] = []
    again = fetch(resource, tmp_path, callback=events.append)
    assert again.url is None and again.sha256 == hashlib.sha256(DATA).hexdigest()
    assert [e["event"] for e in events] == ["present"]
    assert len(server.requests) == 1
    assert fetch(resource, tmp_path, reverify=True).url is None
    assert len(server.requests) == 1


def test_present_file_that_changed_is_replaced(server, tmp_path):
    server.add("/sample.bin", DATA)
    resource = resource_for([server.url("/sample.bin")])
    fetch(resource, tmp_path)
    (tmp_path / "sample.bin").write_bytes(b"x" * len(DATA))  # new mtime: the sidecar no longer vouches
    events: list[dict] = []
    result = fetch(resource, tmp_path, callback=events.append)
    assert events[0]["event"] == "stale"
    assert result.url is not None and result.path.read_bytes() == DATA


def test_dropped_connections_resume_with_range(server, tmp_path):
    server.add("/sample.bin", DATA, drop_after=100_000, faulty_requests=2)
    events: list[dict] = []
    result = fetch(resource_for([server.url("/sample.bin")]), tmp_path, callback=events.append)
    assert result.path.read_bytes() == DATA
    assert server.ranges("/sample.bin") == [None, "bytes=100000-", "bytes=200000-"]
    assert [e["offset"] for e in events if e["event"] == "start"] == [0, 100_000, 200_000]
    assert sum(e["event"] == "retry" for e in events) == 2
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("size_known", [True, False])
def test_chunked_response_cut_short_is_resumed(server, tmp_path, size_known):
    server.add("/sample.bin", DATA, chunked=True, drop_after=150_000, faulty_requests=1)
    resource = resource_for([server.url("/sample.bin")], size=len(DATA) if size_known else None)
    assert fetch(resource, tmp_path).path.read_bytes() == DATA  # the md5 catches a short file either way
    assert server.ranges("/sample.bin") == [None, "bytes=150000-"]


def test_part_file_from_an_earlier_run_is_continued(server, tmp_path):
    server.add("/sample.bin", DATA)
    (tmp_path / "sample.bin.part").write_bytes(DATA[:123_456])
    result = fetch(resource_for([server.url("/sample.bin")]), tmp_path)
    assert result.path.read_bytes() == DATA
    assert server.ranges("/sample.bin") == ["bytes=123456-"]


def test_stale_part_file_is_discarded_after_checksum_mismatch(server, tmp_path):
    server.add("/sample.bin", DATA)
    (tmp_path / "sample.bin.part").write_bytes(b"\0" * 50_000)  # not a prefix of DATA
    result = fetch(resource_for([server.url("/sample.bin")]), tmp_path)
    assert result.path.read_bytes() == DATA
    assert server.ranges("/sample.bin") == ["bytes=50000-", None]


def test_complete_part_file_is_verified_without_new_bytes(server, tmp_path):
    server.add("/sample.bin", DATA)
    (tmp_path / "sample.bin.part").write_bytes(DATA)  # killed between the last byte and the rename
    result = fetch(resource_for([server.url("/sample.bin")]), tmp_path)
    assert result.path.read_bytes() == DATA
    assert server.ranges("/sample.bin") == [f"bytes={len(DATA)}-"]  # answered 416, nothing to add


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.add("/sample.bin", DATA, ignore_range=True)
    (tmp_path / "sample.bin.part").write_bytes(DATA[:1000])
    result = fetch(resource_for([server.url("/sample.bin")]), tmp_path)
    assert result.path.read_bytes() == DATA


def test_wrong_content_raises_naming_url_expected_and_actual(server, tmp_path):
    server.add("/sample.bin", DATA, corrupt=True)
    url = server.url("/sample.bin")
    resource = resource_for([url])
    with pytest.raises(ChecksumError) as info:
        fetch(resource, tmp_path)
    bad = bytearray(DATA)
    bad[len(DATA) // 2] ^= 0xFF
    message = str(info.value)
    assert url in message and resource.md5 in message and hashlib.md5(bad).hexdigest() in message
    assert not (tmp_path / "sample.bin").exists()
    assert leftovers(tmp_path) == []


def test_wrong_sha256_is_caught_when_published(server, tmp_path):
    server.add("/sample.bin", DATA)
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        fetch(resource_for([server.url("/sample.bin")], sha256="0" * 64), tmp_path)
    assert not (tmp_path / "sample.bin").exists()


def test_missing_mirror_falls_back_to_the_next(server, tmp_path):
    server.add("/good/sample.bin", DATA)
    dead, good = server.url("/dead/sample.bin"), server.url("/good/sample.bin")
    events: list[dict] = []
    result = fetch(resource_for([dead, good]), tmp_path, callback=events.append)
    assert result.url == good and result.path.read_bytes() == DATA
    failed = [e for e in events if e["event"] == "mirror_failed"]
    assert [e["url"] for e in failed] == [dead] and "HTTP 404" in failed[0]["error"]
    assert server.ranges("/dead/sample.bin") == [None]  # a 404 is not retried


def test_bad_mirror_then_good_mirror(server, tmp_path):
    server.add("/bad/sample.bin", DATA, corrupt=True)
    server.add("/good/sample.bin", DATA)
    urls = [server.url("/bad/sample.bin"), server.url("/good/sample.bin")]
    assert fetch(resource_for(urls), tmp_path).url == urls[1]


def test_all_mirrors_failing_names_every_url(server, tmp_path):
    server.add("/bad/sample.bin", DATA, corrupt=True)
    urls = [server.url("/dead/sample.bin"), server.url("/bad/sample.bin")]
    with pytest.raises(DownloadError) as info:
        fetch(resource_for(urls), tmp_path)
    message = str(info.value)
    assert "any of 2 mirrors" in message and all(u in message for u in urls)
    assert "HTTP 404" in message and "md5 mismatch" in message
    assert not (tmp_path / "sample.bin").exists()


def test_server_errors_are_retried_then_succeed(server, tmp_path):
    server.add("/sample.bin", DATA, status=503, faulty_requests=2)
    assert fetch(resource_for([server.url("/sample.bin")]), tmp_path).path.read_bytes() == DATA
    assert len(server.ranges("/sample.bin")) == 3


def test_retries_are_bounded(server, tmp_path):
    server.add("/sample.bin", DATA, status=503)
    events: list[dict] = []
    with pytest.raises(DownloadError, match="giving up after 3 retries: HTTP 503"):
        fetch(resource_for([server.url("/sample.bin")]), tmp_path, callback=events.append)
    assert len(server.ranges("/sample.bin")) == 4
    assert [e["delay"] for e in events if e["event"] == "retry"] == [0.001, 0.002, 0.004]


def test_backoff_doubles_and_is_capped():
    policy = RetryPolicy(retries=10, backoff=0.5, max_backoff=3.0)
    assert [policy.delay(k) for k in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_slow_server_within_timeout_completes(server, tmp_path):
    server.add("/sample.bin", DATA, chunk=32 * 1024, chunk_delay=0.01)
    assert fetch(resource_for([server.url("/sample.bin")]), tmp_path, retry=replace(FAST, timeout=2.0)).path.read_bytes() == DATA


def test_stalled_server_times_out_and_is_retried(server, tmp_path):
    server.add("/sample.bin", DATA, stall=1.5, faulty_requests=1)
    events: list[dict] = []
    result = fetch(
        resource_for([server.url("/sample.bin")]), tmp_path, retry=replace(FAST, timeout=0.3), callback=events.append
    )
    assert result.path.read_bytes() == DATA
    retries = [e for e in events if e["event"] == "retry"]
    assert len(retries) == 1 and "timed out" in retries[0]["error"]


def test_announced_size_mismatch_is_refused_before_transfer(server, tmp_path):
    server.add("/sample.bin", DATA)
    with pytest.raises(DownloadError, match=f"serves {len(DATA)} bytes, expected 1000"):
        fetch(resource_for([server.url("/sample.bin")], size=1000), tmp_path)


def test_progress_callback_reports_json_ready_events(server, tmp_path):
    server.add("/sample.bin", DATA)
    lines: list[str] = []
    fetch(resource_for([server.url("/sample.bin")]), tmp_path, callback=lambda e: lines.append(json.dumps(e)))
    events = [json.loads(line) for line in lines]
    assert events[0] == {
        "event": "start",
        "file": "sample.bin",
        "url": server.url("/sample.bin"),
        "offset": 0,
        "total": len(DATA),
    }
    progress = [e["done"] for e in events if e["event"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == len(DATA)
    assert events[-1]["event"] == "done" and events[-1]["sha256"] == hashlib.sha256(DATA).hexdigest()


def test_callback_error_reaches_the_caller_and_keeps_the_part(server, tmp_path):
    server.add("/sample.bin", DATA, chunk=16 * 1024, chunk_delay=0.001)

    def broken_pipe_after_a_while(event):
        if event["event"] == "progress" and event["done"] >= 50_000:
            raise BrokenPipeError("stdout closed")  # an OSError: must not look like a network failure

    with pytest.raises(BrokenPipeError, match="stdout closed"):
        fetch(resource_for([server.url("/sample.bin")]), tmp_path, callback=broken_pipe_after_a_while)
    assert len(server.requests) == 1  # not retried
    kept = (tmp_path / "sample.bin.part").read_bytes()
    assert len(kept) >= 50_000 and DATA.startswith(kept)


def test_part_longer_than_the_remote_file_is_discarded(tmp_path):
    source = tmp_path / "published.bin"
    source.write_bytes(DATA)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sample.bin.part").write_bytes(DATA + b"junk")
    result = fetch(Resource("sample.bin", urls=(str(source),)), tmp_path / "out")  # no size, no checksum
    assert result.path.read_bytes() == DATA


def test_progress_bar_writes_to_stderr_when_asked(server, tmp_path, capsys):
    server.add("/sample.bin", DATA)
    fetch(resource_for([server.url("/sample.bin")]), tmp_path, progress=True)
    assert "sample.bin" in capsys.readouterr().err


def test_local_path_and_file_url(tmp_path):
    source = tmp_path / "published" / "sample.bin"
    source.parent.mkdir()
    source.write_bytes(DATA)
    by_path = fetch(resource_for([str(source)]), tmp_path / "a")
    by_url = fetch(resource_for([source.as_uri()]), tmp_path / "b")
    assert by_path.path.read_bytes() == DATA == by_url.path.read_bytes()


def test_missing_local_file_is_a_clear_error(tmp_path):
    missing = str(tmp_path / "nowhere.bin")
    with pytest.raises(DownloadError, match="nowhere.bin: FileNotFoundError"):
        fetch(resource_for([missing]), tmp_path / "out")


def test_unknown_checksums_still_record_sha256(server, tmp_path):
    server.add("/sample.bin", DATA)
    result = fetch(Resource("sample.bin", urls=(server.url("/sample.bin"),)), tmp_path)
    assert result.sha256 == hashlib.sha256(DATA).hexdigest()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(filename="../x.zip", urls=("u",)), "plain file name"),
        (dict(filename="x.zip", urls=()), "at least one URL"),
        (dict(filename="x.zip", md5="abc", urls=("u",)), "32 hex digits"),
        (dict(filename="x.zip", size=-1, urls=("u",)), "non-negative"),
    ],
)
def test_resource_rejects_bad_fields(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Resource(**kwargs)


def test_resource_normalises_checksums_and_urls():
    resource = Resource("x.zip", md5="A" * 32, urls=["http://a/x.zip"])
    assert resource.md5 == "a" * 32 and resource.urls == ("http://a/x.zip",)


KILLED_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from neurodata.datasets.download import download
    from neurodata.datasets.resource import Resource

    url, folder, size, md5, kill_at = sys.argv[1:]

    def die_mid_transfer(event):
        if event["event"] == "progress" and event["done"] >= int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)

    download(Resource("sample.bin", int(size), md5, urls=(url,)), folder, callback=die_mid_transfer, progress=False)
    """
)


def test_sigkilled_download_resumes_and_verifies(server, tmp_path):
    data = os.urandom(3 << 20)
    server.add("/sample.bin", data, chunk=64 * 1024, chunk_delay=0.002)
    resource = resource_for([server.url("/sample.bin")], data=data)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_CHILD,
            resource.urls[0],
            str(tmp_path),
            str(len(data)),
            resource.md5,
            "200000",
        ],
        cwd=ROOT,
        timeout=60,
        capture_output=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    part = tmp_path / "sample.bin.part"
    kept = part.stat().st_size
    assert 200_000 <= kept < len(data)
    assert part.read_bytes() == data[:kept]
    assert not (tmp_path / "sample.bin").exists()

    result = fetch(resource, tmp_path)
    assert result.path.read_bytes() == data and result.md5 == resource.md5
    assert server.ranges("/sample.bin")[-1] == f"bytes={kept}-"
    assert not part.exists()


MOTO_SERVER = textwrap.dedent(
    """
    import os, sys, threading
    threading.Timer(float(sys.argv[2]), os._exit, (0,)).start()  # bounded lifetime, whatever happens
    from moto.server import main
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
    """
)


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 (a subprocess that exits by itself after 120 s at most)."""
    pytest.importorskip("s3fs", reason="s3fs is not installed (optional 's3' extra)")
    pytest.importorskip("moto.server", reason="moto[server] is not installed (dev extra)")
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    server = subprocess.Popen(
        [sys.executable, "-c", MOTO_SERVER, str(port), "120"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=2).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"moto_server did not start on {endpoint}")
            time.sleep(0.2)
    try:
        yield endpoint
    finally:
        server.kill()
        server.wait(timeout=10)


def s3_put(endpoint: str, bucket: str, key: str, data: bytes) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=key, Body=data)


def s3_options(endpoint: str) -> dict:
    return {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
        "config_kwargs": {"connect_timeout": 5, "read_timeout": 5, "retries": {"max_attempts": 1}},
        "skip_instance_cache": True,
    }


def test_s3_download_resumes_and_extracts(s3_endpoint, tmp_path):
    import tarfile

    from neurodata.datasets.extract import extract

    archive = tmp_path / "published.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(__file__, arcname="dataset/test_download.py")
    data = archive.read_bytes()
    s3_put(s3_endpoint, "neurodata-test", "v1/published.tar.gz", data)

    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "published.tar.gz.part").write_bytes(data[:1000])  # continued with an S3 ranged read
    resource = resource_for(["s3://neurodata-test/v1/published.tar.gz"], data=data, name="published.tar.gz")
    events: list[dict] = []
    result = fetch(resource, folder, storage_options=s3_options(s3_endpoint), callback=events.append)
    assert result.path.read_bytes() == data and result.url == resource.urls[0]
    assert [e["offset"] for e in events if e["event"] == "start"] == [1000]
    target = extract(result.path, tmp_path / "dataset", progress=False)
    assert (target / "dataset" / "test_download.py").read_bytes() == Path(__file__).read_bytes()


def test_s3_endpoint_from_environment_and_missing_key(s3_endpoint, tmp_path, monkeypatch):
    data = os.urandom(10_000)
    s3_put(s3_endpoint, "neurodata-env", "sample.bin", data)
    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    options = {"skip_instance_cache": True}
    missing, present = "s3://neurodata-env/missing.bin", "s3://neurodata-env/sample.bin"
    result = fetch(resource_for([missing, present], data=data), tmp_path, storage_options=options)
    assert result.url == present and result.path.read_bytes() == data


def refused_url(path: str = "/sample.bin") -> str:
    """A loopback URL nothing listens on (a port bound, then closed): connecting is refused."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


@pytest.mark.parametrize(
    "url, reason",
    [(None, "the connection was refused"), ("http://nonexistent.invalid/sample.bin", "does not resolve")],
    ids=["refused", "unresolvable"],
)
def test_unreachable_host_on_the_first_request_fails_at_once(tmp_path, url, reason):
    url = url or refused_url()
    events: list[dict] = []
    patient = RetryPolicy(retries=5, backoff=30.0, timeout=5.0)  # a retry would sleep 30 s
    with pytest.raises(UnreachableError, match=rf"^{url}: cannot reach the host: .*{reason}"):
        fetch(resource_for([url]), tmp_path, retry=patient, callback=events.append)
    assert [e["event"] for e in events] == ["mirror_failed"]
    assert leftovers(tmp_path) == [] and not list(tmp_path.glob(".*.lock"))


def test_unreachable_first_mirror_is_skipped_for_the_next(server, tmp_path):
    server.add("/sample.bin", DATA)
    dead, good = refused_url(), server.url("/sample.bin")
    patient = RetryPolicy(retries=5, backoff=30.0, timeout=5.0)
    assert fetch(resource_for([dead, good]), tmp_path, retry=patient).url == good


def test_refused_after_bytes_flowed_is_retried_then_reported(tmp_path):
    """Once a host has answered, a refused reconnection is a fault of the link: retried, then given up
    with the URL and the cause."""
    srv = FileServer(lifetime=60).__enter__()
    srv.add("/sample.bin", DATA, drop_after=100_000)
    url = srv.url("/sample.bin")

    def stop_server_at_first_retry(event):
        if event["event"] == "retry" and event["attempt"] == 1:
            srv.__exit__(None, None, None)

    events: list[dict] = []
    with pytest.raises(DownloadError, match=rf"^{url}: giving up after 3 retries: .*[Rr]efused"):
        fetch(resource_for([url]), tmp_path, callback=lambda e: (events.append(e), stop_server_at_first_retry(e)))
    assert [e["attempt"] for e in events if e["event"] == "retry"] == [1, 2, 3]
    assert (tmp_path / "sample.bin.part").read_bytes() == DATA[:100_000]  # kept for a later resume


def test_stalls_after_bytes_are_resumed_until_complete(server, tmp_path):
    server.add("/sample.bin", DATA, stall=2.0, stall_after=100_000)  # every request stalls after 100 kB
    events: list[dict] = []
    result = fetch(
        resource_for([server.url("/sample.bin")]), tmp_path, retry=replace(FAST, timeout=0.3), callback=events.append
    )
    assert result.path.read_bytes() == DATA
    assert server.ranges("/sample.bin") == [None, "bytes=100000-", "bytes=200000-", "bytes=300000-"]
    assert all("timed out" in e["error"] for e in events if e["event"] == "retry")


def test_a_url_failing_without_progress_is_given_up_within_its_time(server, tmp_path):
    server.add("/sample.bin", DATA, stall=5.0)  # every request stalls before its first byte
    url = server.url("/sample.bin")
    policy = RetryPolicy(retries=1000, backoff=0.05, max_backoff=0.05, give_up_after=1.0, timeout=0.2)
    with pytest.raises(DownloadError, match=rf"^{url}: giving up after \d+ attempts without a new byte for over 1 s"):
        fetch(resource_for([url]), tmp_path, retry=policy)
    assert 2 <= len(server.ranges("/sample.bin")) < 1000


def test_html_page_instead_of_the_file_is_refused_at_once(server, tmp_path):
    page = b"\xef\xbb\xbf  <!doctype HTML><html><body>Please log in</body></html>"
    server.add("/Train.zip", page)
    url = server.url("/Train.zip")
    with pytest.raises(DownloadError, match=rf"^{url}: serves an HTML page, not Train\.zip"):
        fetch(resource_for([url], data=page, name="Train.zip", md5=None), tmp_path)
    assert len(server.ranges("/Train.zip")) == 1 and not list(tmp_path.iterdir())
