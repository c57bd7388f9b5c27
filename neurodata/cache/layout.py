"""The on-disk layout of a neurodata dataset cache: names, shapes, codecs and the root attribute schema.

One cache is one Zarr v3 group (a local folder or an fsspec URL)::

    <root>/zarr.json             root group; attribute ``neurodata_cache`` (see :func:`root_attrs`)
    <root>/manifest/zarr.json    an empty zarr group whose attribute ``files`` maps every other stored
                                 file to [size, CRC32C, CRC-32] (older caches: [size, CRC32C]);
                                 written just before the root marker
    <root>/<split>/zarr.json     group per split, attributes ``n_samples``, ``n_events``, ``n_rows``
                                 and ``chunk_events`` (the split's inner chunk)
    <root>/<split>/t             int32|int64   [n_rows] times, per-sample delta coded, and with
                                               time coding per-sample-delta-polarity each delta
                                               doubled plus the polarity (see codecs.py)
    <root>/<split>/x, y          uint8|uint16  [n_rows] coordinates
    <root>/<split>/p             uint8         [n_rows] polarities (1 = ON); only with time coding
                                               per-sample-delta
    <root>/<split>/offsets       int64  n_samples + 1; sample i holds offsets[i+1] - offsets[i] events
    <root>/<split>/rows          int64  n_samples; sample i is rows rows[i] : rows[i] + its events
                                 (each sample starts at a whole inner chunk; see rows.py)
    <root>/<split>/labels        int64  n_samples; -1 where a sample has no class
    <root>/<split>/t_first       int64  n_samples; first event time (0 for an empty sample)
    <root>/<split>/t_last        int64  n_samples; last event time (0 for an empty sample)
    <root>/<split>/source        string n_samples; the source file (or file#segment) of each sample

Each event column is stored in the narrowest of its :data:`STORED_DTYPES` that holds every value of
the cache (:func:`narrowest_dtypes`): coordinates of sensors up to 256 pixels wide fit in uint8,
and coded times in int32 unless a sample starts after 2**31 us (35 min) or two events are that far
apart. Narrow columns compress better (Blosc's bit shuffle still keeps the always-zero high bits
of a wide column, at a cost) and decompress into less memory. The root attribute ``event_dtypes``
records the choice; caches written before it existed hold the widest dtypes (int64, uint16), and
readers take each array's dtype from its zarr metadata, so both read alike.

Every chunk of every array carries its own CRC32C (layout 4, this one): the codecs of an event
column's inner chunks are ``bytes`` + ``blosc`` + ``crc32c`` (zarr's checksum codec: the
compressed bytes, then their CRC32C as 4 little-endian bytes) inside the ``sharding_indexed``
codec, and the per-sample arrays end their codecs with ``crc32c`` too. Zarr checks it on every
read, and so do the direct readers (:mod:`.shard_reader`) before decompressing a chunk, so a
damaged chunk is a CacheError naming the split, array and chunk instead of wrong events. The
manifest's CRC32C per stored file is what ``verify`` checks, a whole cache at a time.

Layout version 3 added the time coding ``per-sample-delta-polarity`` (root attribute
``time_coding``): polarities in the times' lowest bit, no ``p`` array. Version 2 added ``rows``:
samples start at inner chunk boundaries, so reading one decompresses none of its neighbours'
events. Version 3 caches (no chunk checksums), version 2 caches (always a ``p`` array) and
version 1 caches (samples back to back, sample i at rows ``offsets[i]:offsets[i+1]``, no ``rows``
array) still read (:data:`READABLE_LAYOUTS`); reading one before :data:`CHECKED_LAYOUT` warns once
that its chunks are unchecked (:func:`.reader.warn_if_unchecked`).

This module holds only constants and pure functions (no zarr: the CLI reads its codec names before
anything imports zarr); the writer and reader use them. The zarr codecs they name are built in
:mod:`.arrays`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .codecs import DELTA
from .narrowing import ValueRange, merge_ranges, narrowest

LAYOUT_VERSION = 4
# 1: no ``rows`` array, samples back to back; 2: always a ``p`` array; 3: no chunk checksums
READABLE_LAYOUTS = (1, 2, 3, 4)
CHECKED_LAYOUT = 4  # the first layout whose chunks carry a CRC32C
ATTRS_KEY = "neurodata_cache"
MANIFEST_GROUP = "manifest"  # not a valid split name
MANIFEST_KEY = f"{MANIFEST_GROUP}/zarr.json"
EVENT_FIELDS = ("t", "x", "y", "p")
EVENT_DTYPES = {"t": np.dtype("<i8"), "x": np.dtype("<u2"), "y": np.dtype("<u2"), "p": np.dtype("u1")}
# what each event column may be stored as, narrowest first (the last one holds any value of EVENT_DTYPES)
STORED_DTYPES = {
    "t": (np.dtype("<i4"), np.dtype("<i8")),
    "x": (np.dtype("u1"), np.dtype("<u2")),
    "y": (np.dtype("u1"), np.dtype("<u2")),
    "p": (np.dtype("u1"),),
}
SAMPLE_FIELDS = ("labels", "t_first", "t_last", "source")
SAMPLE_DTYPES = {
    "labels": np.dtype("<i8"),
    "t_first": np.dtype("<i8"),
    "t_last": np.dtype("<i8"),
    "source": str,
}
DEFAULT_CHUNK_EVENTS = 1 << 16  # one decompression unit: 64 Ki events (512 KiB of int64 times)
DEFAULT_SHARD_EVENTS = 1 << 22  # one stored object (and one parallel write task): 64 chunks, 4 Mi events
# store every chunk, even one holding only zeros: skips zarr's all-fill-value scan on each write,
# and makes the set of stored files depend only on the array sizes (verify then flags any deletion)
ARRAY_CONFIG = {"write_empty_chunks": True}
# Blosc compressor name and level per codec choice (benchmarks/bench_cache_coding.py measures them).
# "lz4" compresses with LZ4HC: the same format and decoder as plain LZ4, slower to compress and
# smaller on DVS recordings (docs/sections/cache.md; caches written with plain LZ4 read alike).
EVENT_CODECS = {"lz4": ("lz4hc", 5), "zstd": ("zstd", 5)}
DEFAULT_CODEC = "zstd"
# Blosc's filter before compressing, chosen per column by the writer (see shards.choose_coding):
# the bit shuffle drops always-zero bit planes, which LZ4 (no entropy stage) needs; zstd's entropy
# stage often does better on whole bytes (byte shuffle; a no-op on one-byte columns), but not on
# every recording. Blosc headers carry the choice, so caches written with other choices read alike.
SHUFFLES = ("bitshuffle", "shuffle")
DEFAULT_SHUFFLE = "bitshuffle"
SAMPLE_CHUNK = 1 << 16  # per-sample arrays: 64 Ki samples per chunk


def narrowest_dtypes(ranges: list[dict[str, ValueRange]]) -> dict[str, np.dtype]:
    """The stored dtype of each event column: the narrowest of :data:`STORED_DTYPES` holding every
    ``[min, max]`` range given (one dict per part; None for an empty part).

    Args:
        ranges: One dict per staged part: field to its ``[min, max]`` stored values, or None.
    """
    return {
        field: narrowest(candidates, merge_ranges(r[field] for r in ranges))
        for field, candidates in STORED_DTYPES.items()
    }


def shard_ranges(n_events: int, shard_events: int) -> list[tuple[int, int]]:
    """The ``[start, stop)`` event ranges of the stored shards, in order (none for an empty split).

    Args:
        n_events: Rows of the split's event arrays.
        shard_events: Rows per shard.
    """
    return [(start, min(start + shard_events, n_events)) for start in range(0, n_events, shard_events)]


def manifest_bytes(files: dict[str, list]) -> bytes:
    """The manifest as a zarr group metadata document, so zarr tools see a valid node, not a stray file.

    Args:
        files: Each stored file's key (relative to the root) to ``[size in bytes, CRC32C hex]``.
    """
    meta = {"zarr_format": 3, "node_type": "group", "attributes": {"files": files}}
    return json.dumps(meta, sort_keys=True, indent=0).encode()


def root_attrs(
    name: str,
    user_attrs: dict[str, Any],
    splits: dict[str, dict[str, int]],
    *,
    fingerprint: str,
    chunk_events: int,
    shard_events: int,
    codec: str,
    event_dtypes: dict[str, str],
    manifest_crc32c: str | None,
    complete: bool,
    time_coding: str = DELTA,
) -> dict[str, Any]:
    """The ``neurodata_cache`` attribute of the root group; ``complete`` is the marker readers check.

    The caller's attributes (``rules_version``, ``sensor_size``, ``class_names``, ``source_checksums``,
    anything JSON-serialisable) sit beside the reserved keys, which they may not override.

    Args:
        name: The dataset's name.
        user_attrs: The caller's attributes.
        splits: Each split's group attributes (:func:`.arrays.split_totals`).
        fingerprint: The build's fingerprint (:func:`.plan.build_fingerprint`).
        chunk_events: Events per inner chunk requested.
        shard_events: Events per stored shard.
        codec: The event columns' codec choice (a key of :data:`EVENT_CODECS`).
        event_dtypes: Each stored event column's dtype string (e.g. ``<i4``).
        manifest_crc32c: CRC32C hex of the manifest document, None before it is written.
        complete: True once every file is written: the marker readers check.
        time_coding: :data:`~.codecs.DELTA` or :data:`~.codecs.DELTA_POLARITY`.
    """
    from .. import __version__

    reserved = {
        "layout_version": LAYOUT_VERSION,
        "name": name,
        "neurodata_version": __version__,
        "fingerprint": fingerprint,
        "time_coding": time_coding,
        "chunk_events": chunk_events,
        "shard_events": shard_events,
        "codec": codec,
        "event_dtypes": event_dtypes,
        "splits": splits,
        "manifest_crc32c": manifest_crc32c,
        "complete": complete,
    }
    return {**user_attrs, **reserved}


RESERVED_ATTRS = frozenset(
    root_attrs(
        "",
        {},
        {},
        fingerprint="",
        chunk_events=0,
        shard_events=0,
        codec="",
        event_dtypes={},
        manifest_crc32c=None,
        complete=False,
    )
)
