"""Which chunks of a read fail their CRC32C: named in the error after zarr refused the read.

Zarr checks each chunk's CRC32C (cache layout 4, see :mod:`.layout`) but its error says neither
which array nor which chunk. When a read through zarr fails, :func:`damaged_chunks` looks at the
chunks behind the rows read again, each against its own CRC32C: a sharded event column through the
direct reader (:mod:`.shard_reader`), a per-sample array (one stored object per chunk) object by
object. Only run after a failure, so it favours plainness over speed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import CacheError
from .fetch import fetcher_for
from .shard_reader import fetch_spans, open_rows
from .shards import crc_matches
from .store import Location


def damaged_chunks(location: Location, split: str, name: str, start: int, stop: int) -> list[int]:
    """The chunks of array ``name`` of ``split`` holding rows ``[start, stop)`` whose CRC32C does not
    match (none for an array whose chunks carry none, or one this cannot read).

    Args:
        location: The cache.
        split: The split's name.
        name: The array's name (an event column or a per-sample array).
        start: First row read.
        stop: One past the last row read.
    """
    meta = location.read_json(split, name, "zarr.json")
    if not isinstance(meta, dict):
        return []
    rows = open_rows(location, split, name)
    if rows is not None:
        if not rows.checked:
            return []
        try:
            (blobs,) = fetch_spans(fetcher_for(location), [(rows, start, stop)])
        except CacheError:
            return []  # a damaged shard index or file: not a chunk of its own to name
        return [
            piece.chunk
            for piece in rows.pieces(start, stop, blobs)
            if piece.data is not None and not crc_matches(piece.data)
        ]
    return plain_damaged_chunks(location, (split, name), meta, start, stop)


def plain_damaged_chunks(
    location: Location, names: tuple[str, ...], meta: dict[str, Any], start: int, stop: int
) -> list[int]:
    """:func:`damaged_chunks` of a 1-D array stored one chunk per object (``c/<k>``).

    Args:
        location: The cache.
        names: The array's path in the cache (e.g. ``(split, name)``).
        meta: The array's ``zarr.json``.
        start: First row read.
        stop: One past the last row read.
    """
    try:
        codecs = [codec["name"] for codec in meta["codecs"]]
        (chunk,) = meta["chunk_grid"]["configuration"]["chunk_shape"]
    except (KeyError, TypeError, ValueError):
        return []
    if codecs[-1:] != ["crc32c"]:
        return []
    bad = []
    for k in range(start // chunk, int(np.ceil(stop / chunk))):
        try:
            stored = location.fs.cat_file(location.key(*names, "c", str(k)))
        except FileNotFoundError:
            continue  # a chunk of fill values only is not stored
        if not crc_matches(stored):
            bad.append(k)
    return bad
