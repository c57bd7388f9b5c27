"""Encode one stored shard of an event column directly, byte for byte as zarr's sharding codec would.

The commit writes every event shard exactly once, whole, so the general machinery of a zarr
``setitem`` (async codec pipeline, per-chunk tasks, read-modify-write bookkeeping) costs several
times the compression itself. This module produces the same bytes (``tests`` compare them with
zarr's own output) for the arrays :func:`.arrays.create_split` creates: 1-D, inner chunks of
``chunk_events`` coded as little-endian bytes then Blosc (:func:`~.arrays.event_compressor`), then
followed by the CRC32C of those compressed bytes (zarr's ``crc32c`` codec, :func:`~.arrays.checksummed`),
shard index at the end as little-endian ``uint64`` ``(offset, nbytes)`` pairs plus its CRC32C.
Chunks that hold only the fill value (0) are left out (index entry all ones), as zarr does by
default, and a shard with no stored chunk is not written at all. The edge chunk is padded with
the fill value to a whole chunk before compression, as zarr stores edge chunks.
"""

from __future__ import annotations

import google_crc32c
import numpy as np
from numcodecs import Blosc

from .layout import DEFAULT_SHUFFLE, EVENT_CODECS, SHUFFLES

EMPTY = np.iinfo(np.uint64).max
CRC_BYTES = 4  # a CRC32C after each chunk's compressed bytes and after the shard index


_BLOSC_SHUFFLE = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}


def chunk_compressor(dtype: np.dtype, codec: str, shuffle: str = DEFAULT_SHUFFLE) -> Blosc:
    """The numcodecs Blosc that zarr's ``BloscCodec`` (:func:`~.arrays.event_compressor`) for this
    column dtype, codec and filter encodes with, built from the same table (zarr's own attributes
    changed type between releases: enums up to 3.1, plain strings in 3.4).

    Args:
        dtype: The column's stored dtype.
        codec: A key of :data:`EVENT_CODECS`.
        shuffle: Blosc's filter, one of ``SHUFFLES``.
    """
    cname, clevel = EVENT_CODECS[codec]
    return Blosc(
        cname=cname,
        clevel=clevel,
        shuffle=_BLOSC_SHUFFLE[shuffle],
        blocksize=0,
        typesize=np.dtype(dtype).itemsize,
    )


Coding = tuple[str, str]  # (codec of EVENT_CODECS, Blosc filter of SHUFFLES) of one event column

# The codings tried for a column of a cache of a given codec, beyond that codec with each filter,
# and the bytes per event a slower-to-decode coding must save to be chosen (the measurements behind
# each margin are in docs/sections/cache.md):
# - times with zstd: undoing the bit shuffle of the deltas is slower than undoing the byte shuffle
#   and saves little, so it must save one bit per event more. (Not for coordinates: there either
#   filter may decode faster, as zstd's work on the bytes decides.)
# - polarities with zstd: LZ4HC with the bit shuffle decodes their bit planes faster than zstd for
#   a few thousandths of a byte more, so zstd must save 1/64 byte per event more.
# Coordinates have no such allowance: LZ4HC decodes them faster but would take the cache past its
# bytes-per-event target; a zstd cache is the small one, ``codec="lz4"`` the fast one.
# LZ4 has no entropy stage: there the bit shuffle is what drops the empty bit planes, so an lz4
# cache chooses by size alone.
CODING_PENALTIES: dict[tuple[str, str], dict[Coding, float]] = {
    ("t", "zstd"): {("zstd", "bitshuffle"): 1 / 8},
    ("p", "zstd"): {("zstd", "shuffle"): 1 / 64, ("zstd", "bitshuffle"): 1 / 64, ("lz4", "bitshuffle"): 0.0},
}


def candidate_codings(name: str, codec: str) -> dict[Coding, float]:
    """The codings tried for event column ``name`` of a ``codec`` cache, each with the bytes per
    event it must save beyond the others' to be chosen (see :data:`CODING_PENALTIES`)."""
    penalties = CODING_PENALTIES.get((name, codec), {})
    return {(codec, shuffle): 0.0 for shuffle in SHUFFLES} | penalties


def choose_coding(probe: np.ndarray, name: str, codec: str, chunk_events: int) -> Coding:
    """The coding of event column ``name`` in a ``codec`` cache (:func:`candidate_codings`) that
    stores ``probe`` (the column's first events, in its stored dtype) in the fewest bytes, chunk by
    chunk as the cache would, counting each coding's penalty; ties keep the first.

    Args:
        probe: The column's first events, in its stored dtype.
        name: The column's field name.
        codec: The cache's codec choice.
        chunk_events: Rows per inner chunk.
    """
    sizes = {
        coding: sum(
            len(
                encode_chunk(
                    probe[i : i + chunk_events], chunk_events, chunk_compressor(probe.dtype, *coding)
                )
            )
            for i in range(0, len(probe), chunk_events)
        )
        + len(probe) * penalty
        for coding, penalty in candidate_codings(name, codec).items()
    }
    return min(sizes, key=sizes.__getitem__)


def encode_chunk(chunk: np.ndarray, chunk_events: int, compressor: Blosc) -> bytes:
    """One stored chunk: zero-padded to ``chunk_events`` values as zarr pads a partial chunk.

    Args:
        chunk: At most ``chunk_events`` values.
        chunk_events: Rows per inner chunk.
        compressor: From :func:`chunk_compressor`.
    """
    if len(chunk) < chunk_events:
        chunk = np.concatenate([chunk, np.zeros(chunk_events - len(chunk), chunk.dtype)])
    return compressor.encode(np.ascontiguousarray(chunk).view(np.uint8))


def encode_shard(column: np.ndarray, chunk_events: int, shard_events: int, compressor: Blosc) -> bytes | None:
    """The stored bytes of a shard holding ``column`` (at most ``shard_events`` values, from the
    shard's start), or None when every chunk holds only zeros (zarr stores no object then).

    Args:
        column: The shard's values.
        chunk_events: Rows per inner chunk.
        shard_events: Rows per shard (a multiple of ``chunk_events``).
        compressor: From :func:`chunk_compressor`.
    """
    if len(column) > shard_events:
        raise ValueError(f"a shard holds at most {shard_events} events, got {len(column)}")
    index = np.full((shard_events // chunk_events, 2), EMPTY, dtype="<u8")
    pieces, offset = [], 0
    for k, start in enumerate(range(0, len(column), chunk_events)):
        chunk = column[start : start + chunk_events]
        if not chunk.any():
            continue
        data = encode_chunk(chunk, chunk_events, compressor)
        index[k] = (offset, len(data) + CRC_BYTES)
        pieces += [data, crc32c_bytes(data)]
        offset += len(data) + CRC_BYTES
    if not pieces:
        return None
    index_bytes = index.tobytes()
    return b"".join([*pieces, index_bytes, crc32c_bytes(index_bytes)])


def crc_matches(stored: bytes | memoryview) -> bool:
    """Whether ``stored`` (a chunk as zarr's ``crc32c`` codec stores it, or a shard index) ends with
    the CRC32C of the bytes before it."""
    n = len(stored) - CRC_BYTES
    # np.frombuffer: a view the C CRC32C accepts (it refuses memoryviews), no copy
    crc = google_crc32c.value(np.frombuffer(stored, np.uint8, max(n, 0)))
    return n >= 0 and crc == int.from_bytes(stored[n:], "little")


def crc32c_bytes(data: bytes) -> bytes:
    """The CRC32C of ``data`` as zarr's ``crc32c`` codec and the shard index store it: 4 bytes,
    little endian."""
    return google_crc32c.value(data).to_bytes(CRC_BYTES, "little")
