"""The commit's direct shard encoder writes exactly the bytes zarr's sharding codec writes (each chunk
followed by its CRC32C, as zarr's crc32c codec appends it)."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from neurodata.cache.arrays import checksummed, event_compressor
from neurodata.cache.layout import EVENT_DTYPES
from neurodata.cache.shards import chunk_compressor, encode_shard

CHUNK, SHARD = 1 << 10, 1 << 13  # 8 chunks per shard: small, same structure as the defaults


def zarr_shards(values: np.ndarray, codec: str, tmp_path) -> dict[int, bytes]:
    """The shard objects zarr itself stores for ``values`` in the cache's array layout."""
    array = zarr.create_array(
        str(tmp_path / f"{codec}-{values.dtype}.zarr"),
        shape=values.shape,
        dtype=values.dtype,
        chunks=(CHUNK,),
        shards=(SHARD,),
        compressors=checksummed(event_compressor(values.dtype, codec)),
        fill_value=0,
    )
    array[:] = values
    store = tmp_path / f"{codec}-{values.dtype}.zarr" / "c"
    return {int(p.name): p.read_bytes() for p in store.iterdir()} if store.exists() else {}


@pytest.mark.parametrize("codec", ["lz4", "zstd"])
@pytest.mark.parametrize("field", ["t", "x", "p"])
def test_shards_are_byte_identical_to_zarr(codec, field, tmp_path):
    rng = np.random.default_rng(1)
    n = 2 * SHARD + 3 * CHUNK + 17  # a partial last shard ending in a partial chunk
    values = rng.integers(0, 1 << 7, n).astype(EVENT_DTYPES[field])
    values[CHUNK : 2 * CHUNK] = 0  # a chunk of fill values: zarr stores none
    values[2 * SHARD : 2 * SHARD + CHUNK] = 0
    compressor = chunk_compressor(values.dtype, codec)
    ours = {
        k: encode_shard(values[start : start + SHARD], CHUNK, SHARD, compressor)
        for k, start in enumerate(range(0, n, SHARD))
    }
    assert ours == zarr_shards(values, codec, tmp_path)


def test_an_all_zero_shard_is_not_stored(tmp_path):
    values = np.zeros(SHARD + 5, dtype=np.uint8)
    values[SHARD + 2] = 1
    compressor = chunk_compressor(values.dtype, "lz4")
    assert encode_shard(values[:SHARD], CHUNK, SHARD, compressor) is None
    assert zarr_shards(values, "lz4", tmp_path).keys() == {1}
    with pytest.raises(ValueError, match="at most"):
        encode_shard(values, CHUNK, SHARD, compressor)


def test_a_staged_span_reads_the_same_across_frame_edges(tmp_path):
    """The commit reads a shard's slice of a staged part frame by frame, whole frames straight into
    its arrays: every span, starting and ending inside, on or across frame edges (and the part's
    shorter last frame), holds exactly those events."""
    from neurodata.cache.layout import EVENT_FIELDS
    from neurodata.cache.parts import encode_columns, read_span, read_span_into
    from neurodata.cache.store import Location

    rng = np.random.default_rng(2)
    n, frame = 23, 5
    columns = {f: rng.integers(0, 1 << 7, n).astype(EVENT_DTYPES[f]) for f in EVENT_FIELDS}
    columns["x"] = columns["x"].astype(np.uint8)  # staged narrower than it is read
    staged = [columns[f].dtype.str for f in EVENT_FIELDS]
    part = Location(str(tmp_path / "part"))
    part.write_files(encode_columns(columns, frame))
    for lo in range(n + 1):
        for hi in range(lo, n + 1):
            for field, got in zip(EVENT_FIELDS, read_span(part, frame, staged, lo, hi)):
                np.testing.assert_array_equal(got, columns[field][lo:hi], err_msg=f"{field} [{lo}, {hi})")
            wide = [np.zeros(hi - lo, EVENT_DTYPES[f]) for f in EVENT_FIELDS]
            read_span_into(part, frame, staged, lo, wide)  # into wider columns, as a commit task may
            for field, got in zip(EVENT_FIELDS, wide):
                np.testing.assert_array_equal(got, columns[field][lo:hi], err_msg=f"{field} [{lo}, {hi})")
