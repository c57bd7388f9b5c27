"""The cache on an object store: build into and read back from ``s3://`` served by a local moto_server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from neurodata.cache import CacheError, build_cache, open_cache, verify_cache
from neurodata.cache import writer as cache_writer

sys.path.insert(0, str(Path(__file__).parent))
import cache_samples as cs  # noqa: E402

s3fs = pytest.importorskip("s3fs", reason="s3fs not installed: remote (s3://) caches cannot be tested")
pytest.importorskip("moto.server", reason="moto[server] not installed: no local S3 endpoint to test against")
boto3 = pytest.importorskip("boto3", reason="boto3 (a moto dependency) not installed")

PLAN = {
    "train": 3,
    "test": 1,
    "empty": 0,
}  # smaller than the local tests' plan: every request is a round trip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_options():
    """A moto_server on 127.0.0.1 with one empty bucket; yields s3fs storage options for it."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("moto_server did not start on 127.0.0.1")
                time.sleep(0.1)
        credentials = {
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "region_name": "us-east-1",
        }
        boto3.client("s3", endpoint_url=endpoint, **credentials).create_bucket(Bucket="caches")
        yield {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_s3_build_is_invisible_until_committed_then_matches_local(s3_options, tmp_path, monkeypatch):
    """Build into s3:// with a commit that dies mid-way, check readers refuse the half-written tree
    (on object stores it is written in place, the marker last), resume, and compare with a local build."""
    local = str(tmp_path / "toy.zarr")
    build_cache(cs.builder(local, PLAN), cs.make_random_part)

    url = "s3://caches/toy.zarr"
    real = cache_writer.write_shard
    calls = []

    def dying(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process stops after one shard
        return real(*args)

    monkeypatch.setattr(cache_writer, "write_shard", dying)
    with pytest.raises(KeyboardInterrupt):
        build_cache(cs.builder(url, PLAN, storage_options=s3_options), cs.make_random_part)
    with pytest.raises(CacheError, match="incomplete"):
        open_cache(url, s3_options)
    assert not verify_cache(url, s3_options).ok

    monkeypatch.setattr(cache_writer, "write_shard", real)
    builder = cs.builder(url, PLAN, storage_options=s3_options)
    assert builder.start() == []  # every part was staged and verified: the rerun only commits
    build_cache(builder, cs.make_random_part)

    remote_arrays, local_arrays = cs.all_arrays(url, s3_options), cs.all_arrays(local)
    assert remote_arrays.keys() == local_arrays.keys()
    for key in local_arrays:
        np.testing.assert_array_equal(remote_arrays[key], local_arrays[key], err_msg=key)
    remote, reference = open_cache(url, s3_options)["train"], open_cache(local)["train"]
    np.testing.assert_array_equal(remote.sample(-1)[0], reference.sample(-1)[0])
    for (got, label), (want, want_label) in zip(remote.samples(slice(None)), reference.samples(slice(None))):
        np.testing.assert_array_equal(got, want)
        assert label == want_label
    report = verify_cache(url, s3_options)
    assert report.ok, report.problems
    fs = s3fs.S3FileSystem(**s3_options)
    fs.invalidate_cache()
    assert not fs.exists("caches/toy.zarr.build")  # staging removed after the commit
