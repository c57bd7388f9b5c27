"""The loaders' fused event reader (chunk-wise Blosc + one Numba pass) returns exactly what the cache's
zarr-based reader returns: on real recordings cut across chunk and shard edges, with empty samples,
chunks left out by the writer (all-zero polarity), narrower stored dtypes, a remote fsspec store and
concurrent threads; damaged chunks are errors naming the array."""

from __future__ import annotations

import functools
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from torch.utils.data import DataLoader
from zarr.codecs import BloscCodec

import neurodata
from neurodata.cache import CacheBuilder, CacheError, PartData, build_cache, open_cache
from neurodata.cache.codecs import decode_times, encode_times, pack_polarity, unpack_polarity
from neurodata.cache.kernels import carry_times_numba, fill_row_chunk_numba, scatter_chunk_numba
from neurodata.cache.shard_reader import MISSING
from neurodata.events import EVENT_DTYPE, make_events
from neurodata.loaders import EventBatch, load, pad_events
from neurodata.loaders import event_columns as event_columns_module
from neurodata.loaders.event_columns import EventColumns
from neurodata.loaders.pending import PendingEvents
from neurodata.loaders.source import event_columns
from tests.cache_samples import reseal

sys.path.insert(0, str(Path(__file__).parent))
import loader_samples as ls  # noqa: E402

CHUNK, SHARD = 1 << 12, 1 << 14  # small, so samples cross inner-chunk and shard edges


def fixture_samples(fixtures: Path) -> list[tuple[np.ndarray, int, str]]:
    """The EVT 3.0 golden decode and the AEDAT 4 recording (Unix-time microseconds), cut into samples
    of uneven sizes with empty ones between; one EVT 3.0 stretch has its polarity zeroed over several
    chunks, so the writer leaves those ``p`` chunks out and the reader must fill them."""
    evt3 = np.load(fixtures / "evt3" / "evt3_sample.npy", allow_pickle=False)
    evt3 = make_events(evt3["t"], evt3["x"], evt3["y"], evt3["p"])
    evt3["p"][20_000:40_000] = 0
    aedat4 = neurodata.read(fixtures / "aedat4" / "sample.aedat4")
    assert len(evt3) == 219596 and len(aedat4) == 111954
    samples = []
    for name, events in (("evt3", evt3), ("aedat4", aedat4)):
        cuts = [0, 1, 4095, 4097, 30_000, 30_000, 61_000, 100_003, len(events)]
        for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
            samples.append((events[a:b], k, f"{name}#{k}"))
    return samples


def build(url: str, samples: list, **kwargs) -> str:
    builder = CacheBuilder(
        url, "fixtures", {}, {"train": 1}, chunk_events=CHUNK, shard_events=SHARD, **kwargs
    )
    return build_cache(builder, functools.partial(_fixed_part, samples))


def _fixed_part(samples, split, index):
    return PartData.from_samples(samples)


@pytest.fixture(
    scope="module",
    params=[(True, True), (False, True), (True, False)],
    ids=["aligned", "back to back", "p column"],
)
def fixture_cache(request, tmp_path_factory, fixtures) -> tuple[str, list]:
    """The fixture samples in the sample-aligned layout (each starts at a chunk), back to back (as
    layout 1 stored them: neighbours share chunks), both with the polarities in the times, and
    aligned with a ``p`` column (as layout 2 stored them)."""
    samples = fixture_samples(fixtures)
    url = str(tmp_path_factory.mktemp("events") / "fixtures.zarr")
    align, pack = request.param
    return build(url, samples, align_samples=align, pack_polarities=pack), samples


def ranges(n: int) -> list[tuple[int, int]]:
    """Every single sample, every empty range, and runs that cross several samples."""
    return (
        [(i, i + 1) for i in range(n)]
        + [(i, i) for i in range(n + 1)]
        + [(0, n), (1, n - 2), (3, 9), (7, 12)]
    )


def assert_reads_like_zarr(source, reference) -> None:
    for start, stop in ranges(reference.n_samples):
        events, local = source.events(start, stop)
        expected, expected_local = reference.events(start, stop)
        assert events.dtype == EVENT_DTYPE
        np.testing.assert_array_equal(events, expected, err_msg=f"samples {start}:{stop}")
        np.testing.assert_array_equal(local, expected_local)


@pytest.fixture(params=[1, 3], ids=["inline", "3 threads"])
def decode_threads(request):
    """Reads decode inline, or their chunks on 3 threads side by side (times carried across chunks)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(previous)


def test_fused_reader_equals_the_zarr_reader_on_fixture_recordings(fixture_cache, decode_threads):
    url, samples = fixture_cache
    source = load(url).pipeline.source
    columns = source._open()[2]
    assert isinstance(columns, EventColumns)  # the fused path, not the zarr fallback
    source.events(0, len(samples))  # loads every shard index
    packed = open_cache(url).attrs["time_coding"] == "per-sample-delta-polarity"
    assert columns.packed == packed and len(columns.columns) == (3 if packed else 4)
    if not packed:
        p = columns.columns[3]
        absent = [(MISSING, 0)] * p.chunks_per_shard  # a shard with no stored chunk is not written at all
        p_offsets = [offset for index in p.indexes.values() for offset, _ in index or absent]
        assert p_offsets.count(MISSING) >= 3  # the all-OFF stretch: chunks the writer left out
    assert_reads_like_zarr(source, open_cache(url)["train"])
    for i, (events, label, _) in enumerate(samples):
        got, got_label = load(url)[i]
        np.testing.assert_array_equal(got, events)
        assert got_label == label


@pytest.mark.parametrize("max_block_chunks", [64, 1], ids=["side by side", "chunk by chunk"])
def test_consecutive_samples_read_together_equal_the_source_events(
    fixture_cache, decode_threads, max_block_chunks, monkeypatch
):
    """A block of consecutive samples (streaming's read) decodes the chunks they share once and gives
    each sample an array of its own; over every range, empty samples and chunk edges included, they
    equal the samples written (with threads: side by side through block buffers, or chunk by chunk
    when the range has more chunks than those buffers may hold)."""
    monkeypatch.setattr(event_columns_module, "MAX_BLOCK_CHUNKS", max_block_chunks)
    url, samples = fixture_cache
    source = load(url).pipeline.source
    for start, stop in ranges(len(samples)):
        got = source.samples(start, stop)
        assert len(got) == stop - start
        for i, events in zip(range(start, stop), got):
            assert events.dtype == EVENT_DTYPE
            np.testing.assert_array_equal(events, samples[i][0], err_msg=f"sample {i} of {start}:{stop}")
        if stop - start > 1:  # separate arrays: freeing one sample frees its memory
            assert all(events.base is None for events in got)


def test_narrower_stored_dtypes_are_read_from_the_array_metadata(tmp_path, fixtures):
    """The layout may store int32 time deltas and uint8 coordinates (a 34x34 N-MNIST sensor): the
    fused reader takes each column's dtype from its zarr.json and still returns EVENT_DTYPE."""
    nmnist = neurodata.read(fixtures / "nmnist" / "sample_nmnist.bin")
    assert len(nmnist) == 4325
    samples = [(nmnist[a:b], k, str(k)) for k, (a, b) in enumerate([(0, 1000), (1000, 1000), (1000, 4325)])]
    url = build(str(tmp_path / "narrow.zarr"), samples, pack_polarities=False)
    split = zarr.open_group(url, mode="r")["train"]
    for name, dtype in (("t", "<i4"), ("x", "u1"), ("y", "u1"), ("p", "u1")):
        data = split[name][...].astype(dtype)
        zarr.create_array(
            f"{url}/train/{name}",
            shape=data.shape,
            chunks=(256,),
            shards=(1024,),
            dtype=dtype,
            fill_value=0,
            compressors=BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle", typesize=data.dtype.itemsize),
            overwrite=True,
        )[...] = data
    reseal(url)
    source = load(url).pipeline.source
    assert [rows.dtype for rows in source._open()[2].columns] == [
        np.dtype(d) for d in ("<i4", "u1", "u1", "u1")
    ]
    for i, (events, _, _) in enumerate(samples):
        np.testing.assert_array_equal(source.events(i, i + 1)[0], events)
    events, _ = source.events(0, 3)
    np.testing.assert_array_equal(events, nmnist)


def test_remote_fsspec_store_and_threads(tmp_path):
    """An fsspec (``memory://``) store takes the batched-request fetcher; threads reading the same
    source at once each keep their own scratch buffers."""
    url = ls.build_indexed_cache("memory://fused/indexed.zarr", 40)
    source = load(url, streaming=False).pipeline.source
    assert type(source._open()[2].fetcher).__name__ == "FsspecFetcher"
    assert_reads_like_zarr(source, open_cache(url)["train"])

    local = load(ls.build_indexed_cache(str(tmp_path / "indexed.zarr"), 40))
    wanted = [i % 40 for i in range(400)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(local.__getitem__, wanted))
    for i, (events, label) in zip(wanted, got):
        np.testing.assert_array_equal(events, ls.sample_events(i))
        assert label == i


def test_a_remote_batch_is_fetched_in_one_round_and_pads_like_its_samples():
    """Over an fsspec store every sample of a pending batch is fetched by one request round (after
    the round for the shard indexes), not one round per sample."""
    url = ls.build_indexed_cache("memory://fused/batch-round.zarr", 40)
    ds = load(url, streaming=False)
    columns = ds.pipeline.source.columns
    calls = []
    fetch = columns.fetcher.fetch
    columns.fetcher.fetch = lambda requests: calls.append(len(requests)) or fetch(requests)
    order = [31, 2, 17, 5, 0, 39, 22, 8]
    batch = pad_events(ds.__getitems__(order))
    assert len(calls) == 2 and calls[1] >= len(order)  # indexes, then every sample's spans at once
    for mine, theirs in zip(batch, pad_events([(ls.sample_events(i), i) for i in order])):
        assert torch.equal(mine, theirs)


def test_another_time_coding_is_left_to_the_zarr_reader(fixture_cache):
    url, _ = fixture_cache
    cache = open_cache(url)
    assert event_columns(cache, "train") is not None
    cache.attrs["time_coding"] = "something-newer"
    assert event_columns(cache, "train") is None


def test_a_chunk_of_the_wrong_size_is_an_error_naming_the_array(tmp_path, fixture_cache):
    url, _ = fixture_cache
    damaged = tmp_path / "damaged.zarr"
    shutil.copytree(url, damaged)
    shard = damaged / "train" / "x" / "c" / "0"
    data = bytearray(shard.read_bytes())
    data[4:8] = (CHUNK).to_bytes(4, "little")  # the first chunk's header claims half its size
    shard.write_bytes(bytes(data))
    # its CRC32C catches it first (layout 4; a layout 3 chunk: test_cache_checksums.py)
    with pytest.raises(CacheError, match=r"split 'train', array 'x': chunk 0 \(rows 0-\d+\) fails its CRC32C"):
        load(str(damaged))[0]


@pytest.mark.parametrize("packed", [False, True])
def test_scatter_kernel_matches_the_numpy_reference(packed):
    """Random time deltas (int64 wrap included where the polarities have their own column),
    coordinates and sample bounds (empty samples too), fed to the kernel in random chunk pieces,
    against codecs.decode_times plus field copies; ``packed``: the times carry the polarities."""
    rng = np.random.default_rng(5)
    for trial in range(30):
        n = int(rng.integers(1, 3000))
        if packed:  # deltas within +-2**62, as a cache packs them
            t = rng.integers(-(2**60), 2**60, n)
        else:
            t = rng.integers(-(2**62), 2**62, n) * (1 + trial % 3)  # wraps in the running sum
        t.sort()
        bounds = np.unique(np.concatenate([[0, n], rng.integers(0, n + 1, int(rng.integers(0, 12)))]))
        offsets = np.sort(np.concatenate([bounds, rng.choice(bounds, 3)]))  # repeated bounds: empty samples
        coded = encode_times(t, offsets)
        x, y = rng.integers(0, 1280, n).astype(np.uint16), rng.integers(0, 720, n).astype(np.uint16)
        p = rng.integers(0, 2, n).astype(np.uint8)
        out = np.zeros(n, dtype=EVENT_DTYPE)
        state = np.zeros(2, dtype=np.int64)
        cuts = np.unique(np.concatenate([[0, n], rng.integers(0, n, 5)]))
        stored, polarities = (pack_polarity(coded, p), pack_polarity(coded, p)) if packed else (coded, p)
        if packed:  # the readable reference takes them apart again
            for mine, theirs in zip(unpack_polarity(stored), (coded, p)):
                np.testing.assert_array_equal(mine, theirs)
        for a, b in zip(cuts[:-1], cuts[1:]):  # the source chunk starts at a: src 0
            columns = (stored[a:b], x[a:b], y[a:b], polarities[a:b], packed)
            scatter_chunk_numba(*columns, 0, b - a, a, offsets, state, out)
        np.testing.assert_array_equal(out["t"], decode_times(coded, offsets))
        np.testing.assert_array_equal(out["t"], t)
        for name, column in (("x", x), ("y", y), ("p", p)):
            np.testing.assert_array_equal(out[name], column)


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize(
    "coded_dtype, coordinate_dtype", [(np.int32, np.uint8), (np.int64, np.uint16), (np.uint32, np.int16)]
)
def test_fill_row_kernel_matches_the_numpy_reference(coded_dtype, coordinate_dtype, packed):
    """One sample's chunks, cut at random places (chunk offsets ``src`` inside a larger scratch
    buffer too), into padded rows of the batch dtypes: times are the running sum of the deltas,
    fields copied, the padding untouched, and the state's largest coordinate the true maximum;
    ``packed``: the times carry the polarities."""
    rng = np.random.default_rng(11)
    high = min(np.iinfo(coordinate_dtype).max, 1279)
    for _ in range(20):
        n = int(rng.integers(1, 5000))
        coded = rng.integers(0, 1000, n).astype(coded_dtype)
        x = rng.integers(0, high + 1, n).astype(coordinate_dtype)
        y = rng.integers(0, high + 1, n).astype(coordinate_dtype)
        p = rng.integers(0, 2, n).astype(np.uint8)
        width = n + int(rng.integers(0, 40))
        rows = [np.full(width, 7, dtype=d) for d in (np.int64, np.int16, np.int16, np.uint8)]
        state = np.zeros(2, dtype=np.int64)
        cuts = np.unique(np.concatenate([[0, n], rng.integers(0, n, 4)]))
        stored = pack_polarity(coded, p).astype(coded_dtype) if packed else coded
        for a, b in zip(cuts[:-1], cuts[1:]):
            lead = int(rng.integers(0, 9))  # the piece starts ``lead`` rows into its chunk buffer
            chunk = [np.concatenate([np.zeros(lead, c.dtype), c[a:b]]) for c in (stored, x, y)]
            polarities = chunk[0] if packed else np.concatenate([np.zeros(lead, p.dtype), p[a:b]])
            fill_row_chunk_numba(*chunk, polarities, packed, lead, b - a, a, *rows, state)
        np.testing.assert_array_equal(rows[0][:n], np.cumsum(coded.astype(np.int64)))
        for row, column in zip(rows[1:], (x, y, p)):
            np.testing.assert_array_equal(row[:n], column)
        assert all((row[n:] == 7).all() for row in rows)
        assert state[0] == rows[0][n - 1] and state[1] == max(int(x.max()), int(y.max()))


def test_a_batch_pads_straight_from_the_cache_as_from_decoded_samples(fixture_cache, decode_threads):
    """``__getitems__`` hands pad_events the samples still in the cache; decoded straight into the
    padded columns (on 1 or 3 threads) they equal padding the decoded samples, on real recordings cut
    across chunk and shard edges, empty samples and a left-out polarity stretch included."""
    url, samples = fixture_cache
    ds = load(url, target_transform=lambda label: label * 10)
    order = [7, 0, 3, 15, 1, 9, 8, 12, 2]  # 0, 4 and 12 are empty; evt3 and aedat4 mixed
    pending = ds.__getitems__(order)
    assert isinstance(pending, PendingEvents) and len(pending) == len(order)
    batch = pad_events(pending)
    expected = pad_events([ds[i] for i in order])
    for name, mine, theirs in zip(EventBatch._fields, batch, expected):
        assert torch.equal(mine, theirs), name
    assert batch.labels.tolist() == [samples[i][1] * 10 for i in order]
    for row, i in enumerate(order):  # against the source events, not just our other path
        n = len(samples[i][0])
        np.testing.assert_array_equal(batch.t[row, :n].numpy(), samples[i][0]["t"])
        assert not batch.mask[row, n:].any()
    # any other collate function sees the decoded samples
    for (events, label), i in zip(pending, order):
        np.testing.assert_array_equal(events, samples[i][0])
        assert label == samples[i][1] * 10


def test_a_dataloader_batch_of_events_is_the_padded_samples(fixture_cache):
    url, samples = fixture_cache
    ds = load(url)
    batches = list(DataLoader(ds, batch_size=5, collate_fn=pad_events))
    assert len(batches) == 4 and [len(b.lengths) for b in batches] == [5, 5, 5, 1]
    for k, batch in enumerate(batches):
        for mine, theirs in zip(batch, pad_events([ds[i] for i in range(5 * k, min(5 * k + 5, len(ds)))])):
            assert torch.equal(mine, theirs)


def test_transformed_items_are_decoded_before_collating(fixture_cache):
    url, _ = fixture_cache
    flipped = load(url, transform=lambda events: events[::-1].copy())
    items = flipped.__getitems__([1, 2])
    assert isinstance(items, list)
    np.testing.assert_array_equal(items[0][0], flipped[1][0])


def test_carried_times_match_one_sequential_pass():
    """carry_times_numba on chunks summed from zero equals scatter_chunk_numba run chunk after chunk,
    with sample starts inside chunks, on chunk edges, empty samples and one sample over many chunks."""
    rng = np.random.default_rng(3)
    n = 1000
    coded = rng.integers(-5, 50, n).astype(np.int32)
    x, y, p = (rng.integers(0, 100, n).astype(np.uint16) for _ in range(3))
    for offsets in ([0, n], [0, 100, 100, 250, 600, 601, n], [0, 200, 400, n], [0, 0, 999, n]):
        offsets = np.array(offsets, dtype=np.int64)
        starts = np.array([0, 200, 400, 650, 900], dtype=np.int64)
        bounds = np.append(starts, n)
        sequential = np.empty(n, EVENT_DTYPE)
        state = np.zeros(2, np.int64)
        for a, b in zip(bounds[:-1], bounds[1:]):
            scatter_chunk_numba(coded, x, y, p, False, a, b - a, a, offsets, state, sequential)
        pieces = np.empty(n, EVENT_DTYPE)
        sums = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            local = np.array([0, np.searchsorted(offsets, a)], np.int64)
            scatter_chunk_numba(coded, x, y, p, False, a, b - a, a, offsets, local, pieces)
            sums.append(local[0])
        carry_times_numba(pieces, starts, np.array(sums, np.int64), offsets)
        np.testing.assert_array_equal(pieces, sequential, err_msg=str(offsets))


def test_decode_threads_follow_the_environment_then_torch(monkeypatch):
    from neurodata.loaders import decode_pool

    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert decode_pool.decode_threads(8) == 4 and decode_pool.decode_threads(3) == 3
    assert decode_pool.decode_threads(1) == 1
    monkeypatch.setenv("NEURODATA_DECODE_THREADS", "1")
    assert decode_pool.decode_threads(8) == 1
    monkeypatch.setenv("NEURODATA_DECODE_THREADS", "6")
    assert decode_pool.decode_threads(8) == 6
    monkeypatch.setenv("NEURODATA_DECODE_THREADS", "two")
    with pytest.raises(ValueError, match="NEURODATA_DECODE_THREADS"):
        decode_pool.decode_threads(8)
    assert decode_pool.decode_pool(2).submit(decode_pool.decode_threads, 8).result() == 1  # no nesting


def test_decode_map_keeps_order_shares_the_work_with_the_caller_and_raises_the_error(monkeypatch):
    import threading
    import time

    from neurodata.loaders import decode_pool

    monkeypatch.setenv("NEURODATA_DECODE_THREADS", "3")
    ran_on = []

    def task(k: int) -> int:
        ran_on.append(threading.get_ident())
        assert decode_pool.decode_threads(8) == 1  # no nesting, on the caller's thread too
        time.sleep(0.01)  # long enough for the helpers to take items
        return k * k

    assert decode_pool.decode_map(task, list(range(12))) == [k * k for k in range(12)]
    assert threading.get_ident() in ran_on and len(set(ran_on)) == 3
    assert decode_pool.decode_threads(8) == 3  # the caller's flag is restored

    started = []

    def failing(k: int) -> int:
        started.append(k)
        if k == 1:
            raise ValueError("sample 1 is damaged")
        time.sleep(0.01)
        return k

    with pytest.raises(ValueError, match="sample 1 is damaged"):
        decode_pool.decode_map(failing, list(range(40)))
    assert len(started) < 40  # no new item starts after the error


def test_load_readies_the_event_kernels_before_workers_fork(fixture_cache):
    """A forked DataLoader worker inherits kernels the parent holds; ``load`` loads them first, so
    each worker of each epoch skips Numba's ~0.3 s start-up (checked in a fresh interpreter)."""
    import json
    import subprocess
    import sys

    url, _ = fixture_cache
    script = (
        "import json, sys\n"
        "from neurodata.cache.kernels import carry_times_numba, fill_row_chunk_numba, scatter_chunk_numba\n"
        "from neurodata.loaders import load\n"
        "from neurodata.loaders.kernels import pad_records_numba\n"
        "kernels = [scatter_chunk_numba, fill_row_chunk_numba, carry_times_numba, pad_records_numba]\n"
        "before = [len(kernel.signatures) for kernel in kernels]\n"
        "load(sys.argv[1])\n"
        "print(json.dumps([before, [len(kernel.signatures) for kernel in kernels]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True, check=True)
    before, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(before) == {0} and all(count >= 1 for count in after)


def test_load_reads_what_every_worker_would_read_again_before_they_fork(fixture_cache):
    """``load`` of a local cache reads the per-sample arrays and every shard index of the event
    columns, so that workers forked for each epoch inherit them (see the next test)."""
    url, _ = fixture_cache
    source = load(url).pipeline.source
    reader = source.reader
    assert reader._per_sample is not None
    for rows in source.columns.columns:
        assert set(rows.indexes) == set(rows.shards(0, reader.n_rows)) and len(rows.indexes) >= 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_reader_keeps_what_its_parent_read(fixture_cache):
    """A forked process reopens the cache (no shared handles) but keeps the parent's per-sample
    arrays and shard indexes instead of reading them again, and reads the same samples."""
    url, samples = fixture_cache
    source = load(url).pipeline.source
    expected = source.events(3, 4)[0]  # loads the per-sample arrays and some shard indexes
    parent_arrays = source.reader._per_sample
    parent_indexes = [dict(rows.indexes) for rows in source.columns.columns]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports on the pipe and exits without running pytest's teardown
        try:
            _, cache, columns = source._open()
            ok = (
                source._opened[0] == os.getpid()
                and cache[source.split]._per_sample is parent_arrays
                and all(rows.indexes == theirs for rows, theirs in zip(columns.columns, parent_indexes))
                and np.array_equal(source.events(3, 4)[0], expected)
                and np.array_equal(source.events(5, 6)[0], samples[5][0])
            )
            os.write(write_end, b"ok" if ok else b"differs")
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    assert os.read(read_end, 16) == b"ok"
    os.close(read_end)
