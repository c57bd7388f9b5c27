"""The direct local shard reader agrees with zarr-python on every row range, and declines other layouts."""

from __future__ import annotations

import os

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec

from neurodata.cache.errors import CacheError
from neurodata.cache.fetch import LocalFetcher, merged_requests
from neurodata.cache.shard_reader import open_rows, read_rows
from neurodata.cache.store import Location


def open_local_rows(folder):
    return open_rows(Location(folder))


def read(rows, start, stop):
    return read_rows(LocalFetcher(), [(rows, start, stop)])[0]


def make_array(folder, data, chunk_rows, shard_rows, checked=False, **kwargs) -> zarr.Array:
    """A sharded array; ``checked``: each inner chunk followed by its CRC32C (cache layout 4)."""
    blosc = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle", typesize=data.dtype.itemsize)
    array = zarr.create_array(
        str(folder),
        shape=data.shape,
        chunks=(chunk_rows, *data.shape[1:]),
        shards=(shard_rows, *data.shape[1:]),
        dtype=data.dtype,
        fill_value=kwargs.pop("fill_value", 0),
        compressors=(blosc, Crc32cCodec()) if checked else blosc,
        **kwargs,
    )
    array[...] = data
    return array


@pytest.mark.parametrize("checked", [False, True])
@pytest.mark.parametrize("dtype", ["<i8", "<u2", "u1", "<f4"])
def test_row_ranges_match_zarr_1d(tmp_path, dtype, checked):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 200, 1000).astype(dtype)
    array = make_array(tmp_path / "a", data, chunk_rows=64, shard_rows=256, checked=checked)
    rows = open_local_rows(str(tmp_path / "a"))
    assert rows is not None and rows.checked == checked
    for start, stop in [
        (0, 1000),
        (0, 1),
        (63, 65),
        (250, 530),
        (999, 1000),
        (5, 5),
        *rng.integers(0, 1000, (20, 2)),
    ]:
        start, stop = sorted((int(start), int(stop)))
        np.testing.assert_array_equal(read(rows, start, stop), array[start:stop])


def test_nd_rows_with_fill_chunks_and_missing_shards(tmp_path):
    data = np.arange(12 * 3 * 4, dtype=np.int32).reshape(12, 3, 4)
    data[4:8] = 7  # chunks equal to fill_value are not written by zarr
    array = make_array(tmp_path / "b", data, chunk_rows=2, shard_rows=4, fill_value=7)
    shards = sorted(os.listdir(tmp_path / "b" / "c"))
    assert shards == ["0", "2"]  # the all-fill shard 1 has no file
    rows = open_local_rows(str(tmp_path / "b"))
    for start in range(12):
        for stop in range(start, 13):
            np.testing.assert_array_equal(read(rows, start, stop), array[start:stop])


def test_other_layouts_are_left_to_zarr(tmp_path):
    zarr.create_array(str(tmp_path / "plain"), shape=(10,), chunks=(5,), dtype="i8")
    assert open_local_rows(str(tmp_path / "plain")) is None  # not sharded
    zarr.create_array(str(tmp_path / "split"), shape=(10, 4), chunks=(5, 2), shards=(5, 4), dtype="i8")
    assert open_local_rows(str(tmp_path / "split")) is None  # chunked along a second axis
    assert open_local_rows(str(tmp_path / "absent")) is None


def test_a_corrupt_shard_index_is_an_error_naming_the_file(tmp_path):
    make_array(tmp_path / "c", np.arange(100, dtype="<i8"), chunk_rows=10, shard_rows=50)
    shard = tmp_path / "c" / "c" / "0"
    raw = bytearray(shard.read_bytes())
    raw[-10] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(CacheError, match=r"c/c/0: shard index is truncated or fails its CRC32C"):
        read(open_local_rows(str(tmp_path / "c")), 0, 10)


def test_touching_spans_of_one_file_are_fetched_as_one_request():
    spans = [("a", 100, 200), ("b", 0, 50), ("a", 0, 100), ("a", 150, 260), ("a", 300, 400), ("b", 60, 70)]
    requests, which = merged_requests(spans)
    # a: 0-100 touches 100-200, which overlaps 150-260; 300-400 has a gap before it; b's two have a gap
    assert requests == [("a", 0, 260), ("a", 300, 400), ("b", 0, 50), ("b", 60, 70)]
    for (path, lo, hi), r in zip(spans, which):
        assert requests[r][0] == path and requests[r][1] <= lo and hi <= requests[r][2]
    assert merged_requests([]) == ([], [])
