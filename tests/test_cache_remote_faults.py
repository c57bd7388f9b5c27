"""Remote cache reads (:class:`neurodata.cache.fetch.FsspecFetcher`) over fsspec's HTTP filesystem
against a loopback server that drops, stalls, refuses and fails on purpose."""

from __future__ import annotations

import os
import socket

import pytest

from neurodata.cache.errors import CacheError
from neurodata.cache.fetch import FsspecFetcher, Request
from neurodata.network import RetryPolicy
from tests.httpserver import FileServer

pytest.importorskip("aiohttp", reason="fsspec's HTTP filesystem needs aiohttp")

SHARD = os.urandom(200_000)
FAST = RetryPolicy(retries=3, backoff=0.01, max_backoff=0.05, give_up_after=20.0)
PATIENT = RetryPolicy(retries=5, backoff=30.0)  # a retry would sleep 30 s


def http_fs(read_timeout: float = 5.0):
    import aiohttp
    import fsspec

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=read_timeout)
    return fsspec.filesystem("http", skip_instance_cache=True, client_kwargs={"timeout": timeout})


def refused_url(path: str) -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}{path}"


@pytest.fixture
def server():
    with FileServer(lifetime=60) as srv:
        yield srv


def test_dropped_and_stalled_ranges_are_fetched_again(server):
    server.add("/c.zarr/train/t/c/0", SHARD, drop_after=30_000, faulty_requests=1)
    server.add("/c.zarr/train/t/c/1", SHARD, stall=3.0, stall_after=10_000, faulty_requests=1)
    server.add("/c.zarr/train/t/c/2", SHARD)
    paths = [server.url(f"/c.zarr/train/t/c/{k}") for k in range(3)]
    fetcher = FsspecFetcher(http_fs(read_timeout=0.5), retry=FAST)
    got = fetcher.fetch([Request(paths[0], 1000, 101_000), Request(paths[1], 0, 50_000), Request(paths[2], 5, 9)])
    assert got == [SHARD[1000:101_000], SHARD[:50_000], SHARD[5:9]]
    assert len(server.ranges("/c.zarr/train/t/c/0")) == 2 and len(server.ranges("/c.zarr/train/t/c/1")) == 2
    assert len(server.ranges("/c.zarr/train/t/c/2")) == 1  # only the failed ranges are asked again


def test_a_range_failing_every_time_is_given_up_naming_the_file(server):
    server.add("/c.zarr/train/t/c/0", SHARD, status=503)
    url = server.url("/c.zarr/train/t/c/0")
    with pytest.raises(CacheError, match=rf"^{url}: cannot read the shard file: giving up after 4 attempts"):
        FsspecFetcher(http_fs(), retry=FAST).fetch([Request(url, 0, 10)])
    assert len(server.ranges("/c.zarr/train/t/c/0")) == 4


@pytest.mark.parametrize("where", ["refused", "unresolvable"])
def test_an_unreachable_store_fails_at_once(where):
    url = refused_url("/c.zarr/train/t/c/0") if where == "refused" else "http://nonexistent.invalid/c.zarr/t/c/0"
    reason = "the connection was refused" if where == "refused" else "the host name does not resolve"
    with pytest.raises(CacheError, match=rf"^{url}: cannot reach the store: {reason}.*offline"):
        FsspecFetcher(http_fs(), retry=PATIENT).fetch([Request(url, 0, 10)])


def test_a_missing_object_is_absent_not_retried(server):
    url = server.url("/c.zarr/train/t/c/9")
    assert FsspecFetcher(http_fs(), retry=PATIENT).fetch([Request(url, 0, 10)]) == [None]
    assert len(server.ranges("/c.zarr/train/t/c/9")) == 1
