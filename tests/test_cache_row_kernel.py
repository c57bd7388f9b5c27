"""``pad_events`` straight from the cache in one Numba call per sample (:mod:`neurodata.cache.row_kernel`):
the padded rows equal the chunk-by-chunk path's on every time coding the caches use (layout 4 aligned,
back to back and with a ``p`` column; the layout 3 fixture, unchecked and packed), across chunk and
shard edges and with chunks the writer left out; a damaged chunk stops the kernel at that chunk and
column with the check that failed, and the loader raises the error the chunk-by-chunk path raises."""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path

import fsspec
import google_crc32c
import numpy as np
import pytest

from neurodata.cache import CacheError
from neurodata.cache.errors import UncheckedCacheWarning
from neurodata.cache.row_kernel import (
    AVAILABLE,
    CRC_FAILED,
    NOT_DECOMPRESSED,
    OK,
    WRONG_SIZE,
    chunk_table,
    fill_row_numba,
)
from neurodata.loaders import load, pad_events

sys.path.insert(0, str(Path(__file__).parent))
import layout3_cache as old  # noqa: E402
from test_cache_checksums import overwrite_4_bytes  # noqa: E402
from test_loaders_events import build, fixture_samples  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not AVAILABLE, reason="this Blosc or CRC32C build exports no C functions"),
    pytest.mark.filterwarnings("ignore::neurodata.cache.errors.UncheckedCacheWarning"),
]

ROW_DTYPES = [("int64", "int16", "int16", "int8"), ("int64", "int32", "uint16", "uint8")]
LAYOUT_4 = {"aligned": (True, True), "back to back": (False, True), "p column": (True, False)}


@pytest.fixture(scope="module", params=[*LAYOUT_4, "layout 3"])
def cache(request, tmp_path_factory, fixtures) -> str:
    """A cache of every time coding: three layout 4 builds of the fixture recordings (4 Ki-event
    chunks, 16 Ki-event shards) and the layout 3 fixture (no chunk checksums)."""
    if request.param == "layout 3":
        return str(old.FIXTURE)
    align, pack = LAYOUT_4[request.param]
    url = str(tmp_path_factory.mktemp("rows") / "cache.zarr")
    return build(url, fixture_samples(fixtures), align_samples=align, pack_polarities=pack)


def opened(url: str):
    """The loader dataset of ``url``, its fused event reader and each sample's row span."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncheckedCacheWarning)
        dataset = load(url)
    source = dataset.pipeline.source
    return dataset, source.columns, source.reader.sample_spans(list(range(len(dataset))))


def status(columns, chunks: list) -> int:
    """What the kernel returns for one sample's ``chunks``, written into scratch rows."""
    n = sum(chunk.count for chunk in chunks)
    rows = [np.empty(n, dtype=dtype) for dtype in ROW_DTYPES[0]]
    table = chunk_table(chunks, len(columns.columns))
    columns_in = columns.kernel_columns(columns.scratch())
    return fill_row_numba(table, columns.checked, columns.fills, *columns_in, *rows, np.zeros(2, np.int64))


@pytest.mark.parametrize("dtypes", ROW_DTYPES, ids=["narrow", "mixed"])
def test_one_call_per_sample_fills_the_rows_the_chunk_by_chunk_path_fills(cache, dtypes, monkeypatch):
    dataset, columns, spans = opened(cache)
    assert columns.row_kernel and columns.checked == (cache != str(old.FIXTURE))
    crossing = 0
    for i, (first, last) in enumerate(spans):
        chunks = columns.fetch([(first, last)])[0]
        crossing += len({chunk.chunk // columns.columns[0].chunks_per_shard for chunk in chunks}) > 1
        fast = [np.full(last - first + 3, 7, dtype=dtype) for dtype in dtypes]  # 3 padding items kept
        slow = [row.copy() for row in fast]
        state = np.zeros(2, dtype=np.int64)
        assert columns.fill_row(chunks, columns.scratch(), fast, state)
        with monkeypatch.context() as patched:
            patched.setattr(columns, "row_kernel", False)
            assert int(state[1]) == columns.read_row(first, last, slow, chunks)
        for mine, theirs in zip(fast, slow):
            np.testing.assert_array_equal(mine, theirs, err_msg=f"sample {i}")
        events = dataset[i][0]
        np.testing.assert_array_equal(fast[0][: len(events)], events["t"])
        np.testing.assert_array_equal(fast[3][: len(events)], events["p"])
    if cache != str(old.FIXTURE):
        assert crossing  # samples span shards


def shard_index(shard: bytes, per_shard: int) -> np.ndarray:
    """A shard's index: (offset, length) of each inner chunk, read from before its CRC32C."""
    return np.frombuffer(shard[-(per_shard * 16 + 4) : -4], dtype="<u8").reshape(-1, 2).copy()


def with_index(shard: bytes, index: np.ndarray) -> bytes:
    """``shard`` with ``index`` (and its CRC32C) in place of its own."""
    raw = index.astype("<u8").tobytes()
    return shard[: -(len(raw) + 4)] + raw + google_crc32c.value(raw).to_bytes(4, "little")


def damaged_copy(tmp_path: Path, url: str) -> Path:
    copy = tmp_path / "damaged.zarr"
    shutil.copytree(url, copy)
    return copy


def sample_with_chunk(columns, spans, chunk: int) -> tuple[int, int]:
    """A sample holding inner chunk ``chunk`` and that chunk's place among the sample's chunks."""
    for i, span in enumerate(spans):
        numbers = [piece.chunk for piece in columns.fetch([span])[0]]
        if chunk in numbers:
            return i, numbers.index(chunk)
    raise AssertionError(f"no sample holds chunk {chunk}")


def failure(columns, spans, sample: int) -> int:
    return status(columns, columns.fetch([spans[sample]])[0])


def test_a_flipped_chunk_stops_the_kernel_and_raises_the_crc_error(tmp_path, fixtures):
    url = build(str(tmp_path / "c.zarr"), fixture_samples(fixtures), align_samples=True, pack_polarities=True)
    damaged = damaged_copy(tmp_path, url)
    overwrite_4_bytes(fsspec.filesystem("file"), str(damaged / "train" / "y"), "c/0", 1)
    dataset, columns, spans = opened(str(damaged))
    sample, k = sample_with_chunk(columns, spans, 1)
    assert failure(columns, spans, sample) == (k * 4 + 2) * 4 + CRC_FAILED  # chunk k's y column
    with pytest.raises(CacheError, match=r"split 'train', array 'y': chunk 1 \(rows 4096-8192\) fails its CRC32C"):
        pad_events(dataset.__getitems__([0, sample]))


def test_a_truncated_chunk_fails_its_crc_and_an_unchecked_one_is_never_read_past(tmp_path, fixtures):
    url = build(str(tmp_path / "c.zarr"), fixture_samples(fixtures), align_samples=True, pack_polarities=False)
    for cache, array, chunk, check in ((url, "x", 2, CRC_FAILED), (str(old.FIXTURE), "t", 1, NOT_DECOMPRESSED)):
        dataset, columns, spans = opened(cache)
        expected = pad_events(dataset.__getitems__(list(range(len(spans)))))
        damaged = damaged_copy(tmp_path / array, cache)
        shard = damaged / "train" / array / "c" / "0"
        per_shard = columns.columns[0].chunks_per_shard
        index = shard_index(shard.read_bytes(), per_shard)
        index[chunk, 1] -= 1  # the chunk's last byte left out
        shard.write_bytes(with_index(shard.read_bytes(), index))
        dataset, columns, spans = opened(str(damaged))
        sample, k = sample_with_chunk(columns, spans, chunk)
        assert failure(columns, spans, sample) == (k * 4 + "txyp".index(array)) * 4 + check
        if check == CRC_FAILED:
            with pytest.raises(CacheError, match=rf"array '{array}': chunk {chunk} \(rows \d+-\d+\) fails its CRC32C"):
                pad_events(dataset.__getitems__([sample]))
        else:  # layout 3 reads such a chunk as before (numcodecs trusts Blosc's own size): the same rows
            got = pad_events(dataset.__getitems__(list(range(len(spans)))))
            for mine, theirs in zip(got, expected):
                assert mine.equal(theirs)


def test_a_chunk_of_the_wrong_size_stops_the_kernel_and_raises_the_size_error(tmp_path):
    damaged = damaged_copy(tmp_path, str(old.FIXTURE))
    shard = damaged / "train" / "t" / "c" / "0"
    raw = bytearray(shard.read_bytes())
    raw[4:8] = (5).to_bytes(4, "little")  # the first chunk's Blosc header claims 5 bytes
    shard.write_bytes(bytes(raw))
    dataset, columns, spans = opened(str(damaged))
    assert failure(columns, spans, 0) == WRONG_SIZE  # chunk 0, column t
    assert failure(columns, spans, 2) == OK
    with pytest.raises(CacheError, match=r"split 'train', array 't': chunk 0 does not decompress to \d+ bytes"):
        pad_events(dataset.__getitems__([2, 0]))
