"""Phase 2 of a build, its first step: how the event columns are stored (:class:`EventFormat`: dtype,
codec and Blosc filter per column, chosen once for the whole cache) and creating a split's arrays.

The event arrays are only created here (their shards are written whole by :mod:`.shard_tasks`); the
small per-sample arrays are created and written at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .codecs import stored_columns
from .layout import (
    ARRAY_CONFIG,
    DEFAULT_CODEC,
    DEFAULT_SHUFFLE,
    EVENT_CODECS,
    SAMPLE_CHUNK,
    SAMPLE_DTYPES,
    SAMPLE_FIELDS,
)
from .narrowing import narrowed
from .rows import Placement
from .shards import Coding, choose_coding
from .store import Location

if TYPE_CHECKING:  # zarr is imported where codecs are made: a build's decode phase runs without it
    from zarr import AsyncGroup
    from zarr.abc.codec import BytesBytesCodec
    from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

PROBE_CHUNKS = 4  # chunks of events compressed both ways to choose each column's Blosc filter


def event_compressor(
    dtype: np.dtype, codec: str = DEFAULT_CODEC, shuffle: str = DEFAULT_SHUFFLE
) -> BloscCodec:
    """The Blosc codec of one event column for a codec choice (:data:`EVENT_CODECS`) and filter.

    ``zstd`` (default) stores fewer bytes and compresses faster; ``lz4`` (LZ4HC compression, LZ4
    decoding) decompresses faster (figures in docs/sections/cache.md). Staged parts always use plain LZ4.

    Args:
        dtype: The column's stored dtype (Blosc's shuffle works on its item size).
        codec: A key of :data:`EVENT_CODECS`.
        shuffle: Blosc's filter, one of :data:`SHUFFLES`.
    """
    from zarr.codecs import BloscCodec

    cname, clevel = EVENT_CODECS[codec]
    return BloscCodec(cname=cname, clevel=clevel, shuffle=shuffle, typesize=np.dtype(dtype).itemsize)


def checksummed(compressor: BytesBytesCodec) -> tuple[BytesBytesCodec, Crc32cCodec]:
    """The ``compressors`` of an array whose chunks carry their CRC32C: ``compressor``, then zarr's
    ``crc32c`` codec over the compressed bytes (checked by zarr and by :mod:`.shard_reader`)."""
    from zarr.codecs import Crc32cCodec

    return compressor, Crc32cCodec()


def sample_compressor() -> ZstdCodec:
    """The codec of the per-sample arrays (offsets, rows, labels, times, sources): zstd level 3."""
    from zarr.codecs import ZstdCodec

    return ZstdCodec(level=3)


@dataclass(frozen=True)
class EventFormat:
    """How a cache stores its event columns, the same in every split.

    ``time_coding`` (:mod:`.codecs`) decides which columns there are; ``dtypes`` maps each to its
    stored dtype and ``codings`` to its ``(codec, shuffle)``; ``shard_events`` is the events per
    stored shard (one stored object, one commit task).
    """

    time_coding: str
    dtypes: dict[str, np.dtype]
    codings: dict[str, Coding]
    shard_events: int


def choose_codings(
    probe: dict[str, np.ndarray] | None,
    dtypes: dict[str, np.dtype],
    time_coding: str,
    codec: str,
    chunk_events: int,
    where: str,
) -> dict[str, Coding]:
    """Each stored event column's codec and Blosc filter (:func:`.shards.choose_coding`), measured on
    ``probe``: the first events of the first non-empty part (up to :data:`PROBE_CHUNKS` chunks of
    ``chunk_events``, its split's chunk), staged columns by field. Deterministic, so a resumed commit
    chooses alike; without a probe (no events at all) ``codec`` with the default filter.

    Args:
        probe: Staged columns by field (per-sample delta times), or None.
        dtypes: Each stored column's dtype (the narrowed one).
        time_coding: :data:`~.codecs.DELTA` or :data:`~.codecs.DELTA_POLARITY`: which columns are stored.
        codec: The Blosc codec asked for (e.g. ``zstd``).
        chunk_events: Events per inner chunk of the probe's split.
        where: Names the cache in errors about values that do not fit ``dtypes``.
    """
    if probe is None:
        return {name: (codec, DEFAULT_SHUFFLE) for name in dtypes}
    return {
        name: choose_coding(narrowed(column, dtypes[name], where, name), name, codec, chunk_events)
        for name, column in stored_columns(probe, time_coding).items()
    }


def split_totals(placement: Placement) -> dict[str, int]:
    """The attributes of a split's group: its samples, events, rows and inner chunk.

    Args:
        placement: Where the split's samples go (:func:`.rows.place_samples`).
    """
    return {
        "n_samples": len(placement.rows),
        "n_events": int(placement.offsets[-1]),
        "n_rows": placement.n_rows,
        "chunk_events": placement.chunk_events,
    }


async def create_splits(
    target: Location,
    records: dict[str, list[dict[str, Any]]],
    placements: dict[str, Placement],
    events: EventFormat,
) -> None:
    """:func:`create_split` for every split, one after the other: a split's writes are all under way
    before it fails, so that a failed commit can wait for them (:func:`.zarr_compat.settle_writes`)
    before it removes its tree.

    Parameters:
        target: the cache's root group (it exists).
        records: each split's ``done.json`` of its staged parts, in order.
        placements: where each split's samples go.
        events: how the event columns are stored.
    """
    for split, done in records.items():
        await create_split(target, split, done, placements[split], events)


async def create_split(
    target: Location, split: str, records: list[dict[str, Any]], placement: Placement, events: EventFormat
) -> None:
    """Create one split's group and arrays and write its per-sample arrays (concurrently).

    Parameters:
        target: the cache's root group (it exists).
        split: the split's name.
        records: the ``done.json`` of each of its staged parts, in order.
        placement: where its samples go (:func:`.rows.place_samples`).
        events: how its event columns are stored.
    """
    root = await target.open_async_group("r+")
    group = await root.create_group(split, attributes=split_totals(placement))
    merged = {
        name: np.array(
            [v for record in records for v in record[name]], dtype=SAMPLE_DTYPES.get(name, np.int64)
        )
        for name in SAMPLE_FIELDS
    }
    per_sample = {"offsets": placement.offsets, "rows": placement.rows, **merged}
    await asyncio.gather(
        *(
            group.create_array(
                name,
                shape=(placement.n_rows,),
                dtype=dtype,
                chunks=(placement.chunk_events,),
                shards=(events.shard_events,),
                compressors=checksummed(event_compressor(dtype, *events.codings[name])),
                fill_value=0,
                config=ARRAY_CONFIG,
            )
            for name, dtype in events.dtypes.items()
        ),
        *(
            _write_array(group, name, data, SAMPLE_CHUNK, checksummed(sample_compressor()))
            for name, data in per_sample.items()
        ),
    )


async def _write_array(group: AsyncGroup, name: str, data: np.ndarray, chunks: int, compressors) -> None:
    """Create one 1-D array and store ``data`` in it (a string array for ``source``)."""
    text = name == "source"
    array = await group.create_array(
        name,
        shape=data.shape,
        dtype=str if text else data.dtype,
        chunks=(chunks,),
        compressors=compressors,
        fill_value="" if text else 0,
        config=ARRAY_CONFIG,
    )
    if data.size:
        await array.setitem(slice(None), data)
