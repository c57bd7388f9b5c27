"""Cache layout 2: samples start at inner chunk boundaries (the row map in ``neurodata.cache.rows``),
checked against a brute-force row map; layout 1 caches (samples back to back, no ``rows`` array)
still read and verify; verify catches overlapping rows."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

import neurodata
from neurodata.cache import CacheBuilder, CacheError, PartData, build_cache, open_cache, verify_cache
from neurodata.cache.layout import LAYOUT_VERSION
from neurodata.cache.plan import build_fingerprint
from neurodata.cache.rows import (
    MIN_ALIGNED_CHUNK,
    contiguous_span,
    gather,
    row_pieces,
    sample_rows,
    sample_spans,
    split_chunk,
)
from neurodata.cache.store import crc32c_hex
from neurodata.loaders import load, pad_events
from tests.cache_samples import reseal

CHUNK, SHARD = 1 << 12, 1 << 14


def brute_row_map(counts: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Per row, the event stored there (-1: a fill row), one sample at a time."""
    out = np.full(n_rows, -1, dtype=np.int64)
    event = 0
    for start, count in zip(rows, counts):
        out[start : start + count] = np.arange(event, event + count)
        event += count
    return out


def test_sample_rows_start_every_sample_at_a_chunk():
    counts = np.array([0, 5, 8, 0, 9, 1, 0])
    rows, n_rows = sample_rows(counts, 4)
    assert rows.tolist() == [0, 0, 8, 16, 16, 28, 32] and n_rows == 32
    rows, n_rows = sample_rows(counts, 4, aligned=False)
    assert rows.tolist() == np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist() and n_rows == 23
    assert sample_rows(np.zeros(0, np.int64), 4) == (pytest.approx(np.zeros(0)), 0)


def test_split_chunk_halves_for_short_samples_only():
    assert split_chunk(np.full(10, 4200), 1 << 16) == 8192  # N-MNIST-sized: one 8 Ki chunk each
    assert split_chunk(np.full(10, 200_000), 1 << 16) == 1 << 16  # DVS128-sized: as asked
    assert split_chunk(np.full(10, 10), 1 << 16) == MIN_ALIGNED_CHUNK
    assert split_chunk(np.full(10, 10), 256) == 256  # never above what the builder asked
    assert split_chunk(np.full(10, 10), 3 * (1 << 13)) == 3 * (1 << 11)  # halving keeps a divisor
    assert split_chunk(np.zeros(0, np.int64), 1 << 16) == MIN_ALIGNED_CHUNK


@pytest.mark.parametrize("aligned", [True, False])
def test_row_pieces_equal_the_brute_force_row_map(aligned):
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 40, 60) * rng.integers(0, 2, 60)  # some empty samples
    offsets = np.concatenate([[0], np.cumsum(counts)])
    rows, n_rows = sample_rows(counts, 16, aligned)
    truth = brute_row_map(counts, rows, n_rows)
    for start, stop in [(0, n_rows), (0, 64), (64, 128), (5, 7), (n_rows - 3, n_rows)]:
        got = np.full(stop - start, -1, dtype=np.int64)
        for row, event, count in row_pieces(offsets, rows, start, stop):
            assert start <= row and row + count <= stop
            got[row - start : row - start + count] = np.arange(event, event + count)
        np.testing.assert_array_equal(got, truth[start:stop])
    if not aligned:  # back to back: one run per range
        assert len(row_pieces(offsets, rows, 0, n_rows)) == 1


def test_spans_and_gather():
    counts = np.array([3, 0, 5, 2])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    rows, n_rows = sample_rows(counts, 4)
    spans = sample_spans(offsets, rows, 0, 4)
    assert spans == [(0, 3), (4, 4), (4, 9), (12, 14)]
    assert contiguous_span(offsets, rows, 0, 4) is None
    assert contiguous_span(offsets, rows, 2, 3) == (4, 9)
    assert contiguous_span(offsets, rows, 0, 2) == (0, 3)  # an empty sample does not break a run
    column = np.arange(n_rows) * 10
    (got,) = gather([column], 0, spans)
    np.testing.assert_array_equal(got, column[[0, 1, 2, 4, 5, 6, 7, 8, 12, 13]])
    back = sample_rows(counts, 4, aligned=False)[0]
    assert contiguous_span(offsets, back, 0, 4) == (0, 10)


def _fixed_part(samples, split, index):
    return PartData.from_samples(samples)


@pytest.fixture(scope="module")
def recordings(fixtures) -> list[tuple[np.ndarray, int, str]]:
    evt3 = neurodata.read(fixtures / "evt3" / "evt3_sample.raw")[:50_000]
    nmnist = neurodata.read(fixtures / "nmnist" / "sample_nmnist.bin")
    cuts = [0, 1, 4095, 4097, 9_000, 9_000, 30_001, 50_000]
    samples = [(evt3[a:b], k, f"evt3#{k}") for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:]))]
    return samples + [(nmnist, 9, "nmnist")]


def _build(url: str, samples: list, align: bool, pack: bool = True) -> str:
    builder = CacheBuilder(
        url,
        "rows",
        {},
        {"train": 1},
        chunk_events=CHUNK,
        shard_events=SHARD,
        align_samples=align,
        pack_polarities=pack,
    )
    return build_cache(builder, functools.partial(_fixed_part, samples))


def test_aligned_cache_starts_samples_at_chunks_and_reads_back(tmp_path, recordings):
    url = _build(str(tmp_path / "aligned.zarr"), recordings, align=True)
    reader = open_cache(url)["train"]
    counts = np.diff(reader.offsets)
    assert (reader.rows[counts > 0] % CHUNK == 0).all()
    assert reader.n_rows > reader.n_events == counts.sum()
    for i, (events, label, _) in enumerate(recordings):
        assert reader.sample(i)[1] == label
        np.testing.assert_array_equal(reader.sample(i)[0], events)
        np.testing.assert_array_equal(load(url)[i][0], events)
    events, local = reader.events(0, len(recordings))
    np.testing.assert_array_equal(events, np.concatenate([s[0] for s in recordings]))
    assert verify_cache(url, deep=True).ok


def _as_layout_2(url: str, align: bool) -> None:
    """Rewrite a cache built with a ``p`` column as layout 2 wrote it: its version, and the
    fingerprint layout 2 gave the same build."""
    root = Path(url)
    meta = json.loads((root / "zarr.json").read_text())
    attrs = meta["attributes"]["neurodata_cache"]
    assert attrs["time_coding"] == "per-sample-delta" and "p" in attrs["event_dtypes"]
    attrs["layout_version"] = 2
    storage = {"chunk_events": CHUNK, "shard_events": SHARD, "codec": "zstd", "align_samples": align}
    attrs["fingerprint"] = build_fingerprint("rows", {}, {"train": 1}, storage, layout_version=2)
    (root / "zarr.json").write_text(json.dumps(meta))


def _as_layout_1(url: str) -> None:
    """Rewrite a back-to-back layout 2 cache as layout 1 wrote it: no ``rows`` array, no ``n_rows``,
    the fingerprint layout 1 gave the same build."""
    _as_layout_2(url, align=False)
    root = Path(url)
    shutil.rmtree(root / "train" / "rows")
    manifest_path = root / "manifest" / "zarr.json"
    manifest = json.loads(manifest_path.read_text())
    files = manifest["attributes"]["files"]
    manifest["attributes"]["files"] = {k: v for k, v in files.items() if not k.startswith("train/rows/")}
    raw = json.dumps(manifest, sort_keys=True, indent=0).encode()
    manifest_path.write_bytes(raw)
    meta = json.loads((root / "zarr.json").read_text())
    attrs = meta["attributes"]["neurodata_cache"]
    attrs["layout_version"] = 1
    attrs["manifest_crc32c"] = crc32c_hex(raw)
    storage = {"chunk_events": CHUNK, "shard_events": SHARD, "codec": "zstd"}
    attrs["fingerprint"] = build_fingerprint("rows", {}, {"train": 1}, storage, layout_version=1)
    for counts in attrs["splits"].values():
        counts.pop("n_rows"), counts.pop("chunk_events")
    (root / "zarr.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("version", [1, 2])
def test_layout_1_and_2_caches_still_read_and_verify(tmp_path, recordings, version):
    url = _build(str(tmp_path / f"v{version}.zarr"), recordings, align=version == 2, pack=False)
    if version == 1:
        _as_layout_1(url)
        assert "rows" not in zarr.open_group(url, mode="r")["train"]
    else:
        _as_layout_2(url, align=True)
        assert "p" in zarr.open_group(url, mode="r")["train"]
    assert open_cache(url).attrs["layout_version"] == version
    report = verify_cache(url, deep=True)
    assert report.ok, report.problems
    dataset = load(url)
    for i, (events, _, _) in enumerate(recordings):
        np.testing.assert_array_equal(dataset[i][0], events)
    batch = pad_events(dataset.__getitems__(list(range(len(recordings)))))
    for row, (events, _, _) in enumerate(recordings):
        n = int(batch.lengths[row])
        assert n == len(events)
        np.testing.assert_array_equal(batch.t[row, :n].numpy(), events["t"])
        np.testing.assert_array_equal(batch.x[row, :n].numpy(), events["x"])
    streamed = sorted((len(e), int(e["t"][0]) if len(e) else 0) for e, _ in load(url, streaming=True, seed=1))
    assert streamed == sorted((len(e), int(e["t"][0]) if len(e) else 0) for e, _, _ in recordings)


def test_verify_flags_overlapping_rows(tmp_path, recordings):
    url = _build(str(tmp_path / "bad.zarr"), recordings, align=True)
    rows = zarr.open_array(str(Path(url) / "train" / "rows"), mode="r+")
    values = rows[:]
    values[-1] = values[-2]  # the last sample now starts inside the one before it
    rows[:] = values
    reseal(url)  # the rows array as another writer wrote it, not a file damaged after the build
    problems = verify_cache(url).problems
    assert any("train/rows: sample" in p and "inside sample" in p for p in problems), problems
    with pytest.raises(CacheError, match=r"split 'train': sample \d+ starts at row \d+, inside sample"):
        open_cache(url)["train"].sample(0)  # the reader refuses them too, before reading any events
    with pytest.raises(CacheError, match="inside sample"):
        load(url)[0]


@pytest.mark.parametrize("version", [1, 2])
def test_a_finished_older_layout_cache_of_the_same_build_is_not_rebuilt(tmp_path, recordings, version):
    url = _build(str(tmp_path / "old.zarr"), recordings, align=version == 2, pack=False)
    if version == 1:
        _as_layout_1(url)
    else:
        _as_layout_2(url, align=True)
    part = functools.partial(_fixed_part, recordings)
    builder = CacheBuilder(url, "rows", {}, {"train": 1}, chunk_events=CHUNK, shard_events=SHARD)
    assert builder.is_complete() and builder.start() == []
    build_cache(builder, part)
    assert open_cache(url).attrs["layout_version"] == version  # kept as it is, and reads
    other = CacheBuilder(
        url, "rows", {"rules_version": 2}, {"train": 1}, chunk_events=CHUNK, shard_events=SHARD
    )
    assert not other.is_complete()  # another build is not taken for it
    rebuild = CacheBuilder(
        url, "rows", {}, {"train": 1}, chunk_events=CHUNK, shard_events=SHARD, overwrite=True
    )
    build_cache(rebuild, part)
    reader = open_cache(url)["train"]
    assert open_cache(url).attrs["layout_version"] == LAYOUT_VERSION and (reader.rows % CHUNK == 0).all()
    assert open_cache(url).attrs["time_coding"] == "per-sample-delta-polarity"
    np.testing.assert_array_equal(reader.sample(7)[0], recordings[7][0])
