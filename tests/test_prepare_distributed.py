"""``prepare`` beyond one process: on a dask cluster, into an s3:// cache (moto_server), two runs at
once on one root, and its decode progress (terminal bar, JSON lines with --json)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from neurodata.cache import PartData, open_cache, verify_cache
from neurodata.cache.layout import MANIFEST_KEY
from neurodata.cache.store import Location
from neurodata.cache.writer import CacheBuilder, build_cache
from neurodata.datasets.prepare import prepare
from neurodata.errors import NeurodataError
from neurodata.events import make_events
from tests.archives import expected_dvs128_samples, tar_gz_bytes, write_dvs128_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dvs128_folder(fixtures, tmp_path_factory):
    return write_dvs128_folder(fixtures, tmp_path_factory.mktemp("dvs"))


@pytest.fixture(scope="module")
def serial_store(dvs128_folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("serial")
    prepare("dvs128", source=str(dvs128_folder), root=root, progress=False)
    return root / "dvs128.zarr"


def assert_same_cache(store, reference, storage_options=None):
    """The cache verifies, every stored file (but the root's attributes) has the size and CRC32C of
    the reference's, and it reads back the same samples."""
    assert verify_cache(store, storage_options, deep=True).ok
    manifests = [
        Location(url, options).read_json(MANIFEST_KEY)
        for url, options in ((store, storage_options), (reference, None))
    ]
    assert manifests[0]["attributes"]["files"] == manifests[1]["attributes"]["files"]
    got, want = open_cache(store, storage_options), open_cache(reference)
    assert sorted(got.splits) == sorted(want.splits)
    for split in want.splits:
        assert len(got[split]) == len(want[split]) > 0
        np.testing.assert_array_equal(got[split].labels, want[split].labels)
        for i in range(len(want[split])):
            np.testing.assert_array_equal(got[split][i][0], want[split][i][0])


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "neurodata.cli", "prepare", "dvs128", *args]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        cli(*args), capture_output=True, text=True, timeout=120, cwd=ROOT, env=env or os.environ.copy()
    )
    assert result.returncode == 0, result.stderr
    return result


def is_decode_progress(event: dict) -> bool:
    return event.get("stage") == "decode" and event.get("event") == "progress"


def test_serial_cache_holds_the_rule_samples(fixtures, serial_store):
    """The reference the other tests compare against is itself right (rule applied to the fixture)."""
    cache = open_cache(serial_store)
    for split, samples in expected_dvs128_samples(fixtures).items():
        assert len(cache[split]) == len(samples)
        for i, (events, label) in enumerate(samples):
            got, got_label = cache[split][i]
            assert got_label == label
            np.testing.assert_array_equal(got, events)


# ---- dask -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip(
        "distributed", reason="dask[distributed] not installed (optional 'dask' extra)"
    )
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,  # workers are threads here, but reached over TCP: the CLI test connects to it
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=":0",
    ) as cluster:
        yield cluster


def test_dask_executor_gives_the_serial_cache(dask_cluster, dvs128_folder, serial_store, tmp_path):
    from distributed import Client, get_task_stream

    events = []
    with Client(dask_cluster) as client, get_task_stream(client) as stream:
        prepare(
            "dvs128",
            source=str(dvs128_folder),
            root=tmp_path,
            progress=False,
            callback=events.append,
            executor=client.get_executor(),
        )
    ran = [task["key"] for task in stream.data]
    assert sum("_build_part" in str(key) for key in ran) == 3  # every part decoded on the cluster
    assert sum("write_shard" in str(key) for key in ran) == 2  # one shard per split, committed there too
    assert_same_cache(tmp_path / "dvs128.zarr", serial_store)
    assert [e["parts_done"] for e in events if is_decode_progress(e)] == [1, 2, 3]


def test_cli_scheduler_option_gives_the_serial_cache(dask_cluster, dvs128_folder, serial_store, tmp_path):
    result = run_cli(
        "--source",
        str(dvs128_folder),
        "--root",
        str(tmp_path),
        "--scheduler",
        dask_cluster.scheduler_address,
        "--json",
    )
    assert json.loads(result.stdout)["complete"]
    assert_same_cache(tmp_path / "dvs128.zarr", serial_store)


# ---- s3 -------------------------------------------------------------------------------------------

MOTO_SERVER = textwrap.dedent(
    """
    import os, sys, threading
    threading.Timer(float(sys.argv[2]), os._exit, (0,)).start()  # bounded lifetime, whatever happens
    from moto.server import main
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
    """
)
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 with a bucket ``caches`` (exits by itself after 120 s at most)."""
    pytest.importorskip("s3fs", reason="s3fs is not installed (optional 's3' extra)")
    pytest.importorskip("moto.server", reason="moto[server] is not installed (dev extra)")
    boto3 = pytest.importorskip("boto3", reason="boto3 (a moto dependency) is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", MOTO_SERVER, str(port), "120"],
        env={**os.environ, **S3_ENV},
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
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        **{"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
    ).create_bucket(Bucket="caches")
    try:
        yield endpoint
    finally:
        server.kill()
        server.wait(timeout=10)


def s3_options(endpoint: str) -> dict:
    return {
        "endpoint_url": endpoint,
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
        "skip_instance_cache": True,
    }


def test_cli_cache_url_on_s3(s3_endpoint, dvs128_folder, serial_store, tmp_path):
    """Only the cache goes to s3 (moto_server); credentials from the environment, the endpoint as an option."""
    result = run_cli(
        *("--source", str(dvs128_folder), "--root", str(tmp_path), "--json"),
        *("--cache-url", "s3://caches/cli/", "--storage-option", f"endpoint_url={s3_endpoint}"),
        env={**os.environ, **S3_ENV},
    )
    assert json.loads(result.stdout)["url"] == "s3://caches/cli/dvs128.zarr"
    assert not (tmp_path / "dvs128.zarr").exists()
    assert_same_cache("s3://caches/cli/dvs128.zarr", serial_store, s3_options(s3_endpoint))


def test_remote_root_is_refused_with_a_pointer_to_cache_url(tmp_path):
    with pytest.raises(NeurodataError, match="local folder.*cache_url"):
        prepare("dvs128", source=str(tmp_path), root="s3://caches/raw", progress=False)


# ---- two runs at once -----------------------------------------------------------------------------


def test_two_concurrent_prepares_on_one_root(fixtures, dvs128_folder, serial_store, tmp_path):
    """Both runs start from the same archive on the same root: both succeed, one waits, the cache verifies.

    With --json each reports its progress as JSON lines on stderr: exactly one of them decodes the parts."""
    archive = tmp_path / "mini_DvsGesture.tar.gz"
    archive.write_bytes(tar_gz_bytes(dvs128_folder, "DvsGesture"))
    root = tmp_path / "root"
    args = ("--source", str(archive), "--root", str(root), "--json")
    runs = [
        subprocess.Popen(cli(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=180) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0, err
        assert json.loads(out)["complete"]
    progress = []
    for _, err in outputs:
        lines = [json.loads(line) for line in err.splitlines()]
        assert lines[-1]["stage"] == "done"
        progress.append([e for e in lines if is_decode_progress(e)])
    decoded = max(progress, key=len)
    assert min(len(p) for p in progress) == 0  # the other one found the finished cache
    assert [e["parts_done"] for e in decoded] == [1, 2, 3] and {e["parts_total"] for e in decoded} == {3}
    assert sorted((e["split"], e["part"]) for e in decoded) == [("test", 0), ("train", 0), ("train", 1)]
    assert decoded[-1]["events"] == json.loads(outputs[0][0])["n_events"]
    assert all(e["stage"] == "decode" and e["events_per_s"] >= 0 for e in decoded)
    assert_same_cache(root / "dvs128.zarr", serial_store)
    assert not (root / "dvs128.zarr.build").exists()


def test_a_waiting_prepare_says_so_and_reuses_the_cache(dvs128_folder, serial_store, tmp_path):
    """While one process holds the prepare lock, a second one reports that it waits, then finds the cache."""
    import fcntl

    first = prepare("dvs128", source=str(dvs128_folder), root=tmp_path, progress=False)
    lock = tmp_path / ".dvs128.zarr.prepare.lock"
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiter = subprocess.Popen(
            cli("--source", str(dvs128_folder), "--root", str(tmp_path), "--json"),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = waiter.stderr.readline()  # the first thing it says, while blocked
        assert json.loads(line)["stage"] == "wait"
        assert waiter.poll() is None
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    assert json.loads(out)["n_events"] == first["n_events"]
    assert not any(is_decode_progress(json.loads(e)) for e in err.splitlines())  # nothing decoded again


# ---- progress -------------------------------------------------------------------------------------


def test_terminal_progress_bar(dvs128_folder, tmp_path, capsys):
    prepare("dvs128", source=str(dvs128_folder), root=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "decode" in err and "3/3" in err and "events/s" in err


def test_build_cache_reports_every_part_once_on_an_executor(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    builder = CacheBuilder(tmp_path / "c.zarr", "toy", {}, {"a": 4, "b": 2})
    seen = []
    with ThreadPoolExecutor(2) as pool:
        build_cache(builder, toy_part, executor=pool, on_part_done=seen.append)
    assert sorted((p.split, p.index) for p in seen) == [
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("a", 3),
        ("b", 0),
        ("b", 1),
    ]
    assert [p.done for p in seen] == [1, 2, 3, 4, 5, 6] and {p.pending for p in seen} == {6}
    assert {(p.split, p.index): p.n_events for p in seen} == {
        (s, i): 10 * (i + 1) for s, n in (("a", 4), ("b", 2)) for i in range(n)
    }
    seen.clear()
    build_cache(builder, toy_part, on_part_done=seen.append)  # finished: nothing to report
    assert seen == []


def toy_part(split: str, index: int) -> PartData:
    n = 10 * (index + 1)
    events = make_events(np.arange(n), np.arange(n) % 7, np.arange(n) % 5, np.arange(n) % 2)
    return PartData.from_samples([(events, index, f"{split}{index}")])


def test_dvs128_window_slices_sorted_times_and_masks_unsorted(fixtures):
    """The binary-search cut of a sorted trial equals the rule's mask; unsorted times fall back to it."""
    from neurodata.datasets.dvs128 import windows
    from tests.archives import ground_truth

    events = ground_truth(fixtures)
    shuffled = events[np.random.default_rng(0).permutation(len(events))]
    bounds = [(100_000, 300_000), (0, 1), (589_318, 589_319), (-5, 10**9), (300_000, 300_000)]
    for trial in (events, shuffled):
        for (start, end), got in zip(bounds, windows(trial, bounds), strict=True):
            want = trial[(trial["t"] >= start) & (trial["t"] < end)]
            np.testing.assert_array_equal(got, want)
