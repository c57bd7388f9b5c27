"""Streaming from an object store: a cache on a local moto_server (s3://) yields the same samples as
the local copy, in the main process and in forked workers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from neurodata.cache.fetch import FsspecFetcher
from neurodata.loaders import StreamingDataset, load, pad_events
from neurodata.loaders.precompute import precompute

sys.path.insert(0, str(Path(__file__).parent))
import loader_samples as ls  # noqa: E402
from test_cache_s3 import s3_options  # noqa: E402, F401  (the moto_server fixture; skips without s3fs/moto)

N = 20


def test_s3_stream_matches_local(s3_options, tmp_path):  # noqa: F811
    local = ls.build_indexed_cache(str(tmp_path / "indexed.zarr"), N)
    url = ls.build_indexed_cache("s3://caches/indexed.zarr", N, storage_options=s3_options)

    remote = load(url, storage_options=s3_options, seed=4, block_samples=3)
    assert isinstance(remote, StreamingDataset)  # s3:// streams by default
    local_stream = load(local, streaming=True, seed=4, block_samples=3)
    got = list(remote)
    assert [label for _, label in got] == [label for _, label in local_stream]
    for events, label in got:
        np.testing.assert_array_equal(events, ls.sample_events(label))

    # forked workers open their own S3 sessions (the parent's was used above)
    loader = DataLoader(
        remote, batch_size=4, num_workers=2, multiprocessing_context="fork", collate_fn=pad_events
    )
    labels = [int(label) for batch in loader for label in batch.labels]
    assert sorted(labels) == list(range(N))

    # the direct shard reader served these reads (one batched request round per block), and agrees with zarr's
    source = remote.pipeline.source
    assert isinstance(source._open()[2].fetcher, FsspecFetcher)
    direct, direct_offsets = source.events(2, 11)
    through_zarr, zarr_offsets = source.reader.events(2, 11)
    np.testing.assert_array_equal(direct, through_zarr)
    np.testing.assert_array_equal(direct_offsets, zarr_offsets)

    # frames precomputed into the object store (marker written last) stream back
    spec = {"type": "frame", "n_time_bins": 2}
    precompute(url, spec, storage_options=s3_options, progress=False)
    frames = load(url, storage_options=s3_options, representation=spec, seed=1, block_samples=4)
    assert frames.precomputed
    on_the_fly = load(local, representation=spec)
    for x, label in frames:
        np.testing.assert_array_equal(x, on_the_fly[label][0])

    # the map-style dataset works on the object store too, when asked for
    mapped = load(url, storage_options=s3_options, streaming=False)
    events, label = mapped[7]
    assert label == 7
    np.testing.assert_array_equal(events, ls.sample_events(7))


def test_a_local_file_cache_serves_later_epochs_without_the_object_store(s3_options, tmp_path):  # noqa: F811
    """``simplecache::s3://...`` keeps every object it fetched in a local folder: once an epoch has
    read the cache, later ones (even after the objects are gone from the store) read the copies."""
    import s3fs

    url = ls.build_indexed_cache("s3://caches/file-cached.zarr", N, storage_options=s3_options)
    options = {"s3": s3_options, "simplecache": {"cache_storage": str(tmp_path / "copies")}}
    first = load("simplecache::" + url, storage_options=options, seed=2, block_samples=3)
    assert sorted(label for _, label in first) == list(range(N))
    s3fs.S3FileSystem(**s3_options).rm(url, recursive=True)  # the store forgets the cache
    for streaming in (True, False):
        seed = {"seed": 3} if streaming else {}  # a streaming option: the map-style dataset refuses it
        again = load("simplecache::" + url, storage_options=options, streaming=streaming, **seed)
        got = list(again) if streaming else [again[i] for i in range(N)]
        assert sorted(label for _, label in got) == list(range(N))
        for events, label in got:
            np.testing.assert_array_equal(events, ls.sample_events(label))
