"""Phase 2 of a build, the bulk of it: one task per stored shard copies its events out of the staged
parts into the final event arrays, each column's shard encoded whole (:mod:`.shards`).

:func:`plan_shards` cuts a split into :class:`ShardTask` values (frozen, picklable: they run on any
executor); :func:`write_shard` runs one and returns the size and CRC32C of each file it stored, for
the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .arrays import EventFormat
from .codecs import stored_columns
from .layout import EVENT_DTYPES, EVENT_FIELDS, shard_ranges
from .narrowing import require_fit
from .parts import read_span_into
from .rows import Placement, row_pieces
from .shards import chunk_compressor, encode_shard
from .store import Location, file_entry


class Run(NamedTuple):
    """``count`` events from ``event`` on go to rows from ``row`` on (both counted from the shard's start)."""

    row: int
    event: int
    count: int


class PartSpan(NamedTuple):
    """A staged part holding events ``[start, stop)`` of its split, in frames of ``frame_events``.

    Attributes:
        url: The staged part's folder.
        start: Its first event in the split.
        stop: One past its last event.
        frame_events: Events per staged frame.
        dtypes: Its columns' staged dtypes, in ``EVENT_FIELDS`` order.
    """

    url: str
    start: int
    stop: int
    frame_events: int
    dtypes: tuple[str, ...]


@dataclass(frozen=True)
class SplitTarget:
    """Where the shards of one split go: the cache root (URL and fsspec options), the split, its inner
    chunk and the stored format of its event columns.

    Attributes:
        url: The cache root's path or URL.
        storage_options: fsspec options to open it.
        split: The split's name.
        chunk_events: The split's inner chunk size in rows.
        events: How the event columns are stored.
    """

    url: str
    storage_options: dict[str, Any]
    split: str
    chunk_events: int
    events: EventFormat


@dataclass(frozen=True)
class ShardTask:
    """Rows ``[start_row, stop_row)`` of a split's event arrays (one stored shard), holding events
    ``[start, stop)`` of the split placed by ``runs`` (the other rows hold 0) and read from ``spans``.

    Attributes:
        target: Where the shard goes.
        start_row: The shard's first row.
        stop_row: One past its last row.
        start: First event of the split in the shard.
        stop: One past the last.
        runs: Where runs of events land in the shard.
        spans: The staged parts holding those events.
    """

    target: SplitTarget
    start_row: int
    stop_row: int
    start: int
    stop: int
    runs: tuple[Run, ...]
    spans: tuple[PartSpan, ...]


def plan_shards(target: SplitTarget, placement: Placement, parts: Sequence[PartSpan]) -> list[ShardTask]:
    """One task per shard of the split placed by ``placement``, whose events lie in ``parts`` (in order).

    Args:
        target: Where the split's shards go.
        placement: Where its samples go.
        parts: Its staged parts, in event order.
    """
    tasks = []
    for start_row, stop_row in shard_ranges(placement.n_rows, target.events.shard_events):
        pieces = row_pieces(placement.offsets, placement.rows, start_row, stop_row)
        start = pieces[0][1] if pieces else 0
        stop = pieces[-1][1] + pieces[-1][2] if pieces else 0
        tasks.append(
            ShardTask(
                target=target,
                start_row=start_row,
                stop_row=stop_row,
                start=start,
                stop=stop,
                runs=tuple(Run(row - start_row, event - start, count) for row, event, count in pieces),
                spans=tuple(p for p in parts if p.start < stop and p.stop > start),
            )
        )
    return tasks


def write_shard(task: ShardTask) -> dict[str, list]:
    """Copy one shard's events out of the staged parts into the final arrays; returns ``key ->
    [size, crc32c]`` of each stored file.

    Times are already per-sample delta coded in the parts, so the copy is verbatim but for the
    polarities packed into them where the time coding says (:func:`.codecs.stored_columns`) and
    the narrowing to the stored dtypes (checked: a value that does not fit raises CacheError). The
    staged frames are decoded straight into one array per field, and each column is narrowed as
    it is placed in its rows.

    Args:
        task: The shard to write.
    """
    target = task.target
    root = Location(target.url, target.storage_options)
    read = {
        name: np.empty(task.stop - task.start, np.result_type(*(span.dtypes[k] for span in task.spans)))
        if task.spans
        else np.empty(0, EVENT_DTYPES[name])
        for k, name in enumerate(EVENT_FIELDS)
    }
    for span in task.spans:
        start, stop = max(task.start, span.start), min(task.stop, span.stop)
        views = [column[start - task.start : stop - task.start] for column in read.values()]
        part = Location(span.url, target.storage_options)
        read_span_into(part, span.frame_events, span.dtypes, start - span.start, views)
    shard = task.start_row // target.events.shard_events
    files = {}
    for name, stored in stored_columns(read, target.events.time_coding, overwrite=True).items():
        dtype = target.events.dtypes[name]
        require_fit(stored, dtype, root.url, name)
        column = place_rows(stored, task.runs, task.stop_row - task.start_row, dtype)
        compressor = chunk_compressor(column.dtype, *target.events.codings[name])
        data = encode_shard(column, target.chunk_events, target.events.shard_events, compressor)
        if data is not None:  # an all-zero shard is not stored, as zarr does
            files[f"{target.split}/{name}/c/{shard}"] = data
    root.write_files(files)
    return {key: file_entry(data) for key, data in files.items()}


def place_rows(
    events: np.ndarray, runs: Sequence[tuple[int, int, int]], n_rows: int, dtype: np.dtype
) -> np.ndarray:
    """``n_rows`` rows of ``dtype`` holding runs of ``events`` where ``runs`` say (``(row, event,
    count)``), 0 elsewhere; the events themselves (cast) when they fill the rows in order (the
    contiguous layout). The caller checked that the events fit ``dtype``."""
    if len(runs) == 1 and tuple(runs[0]) == (0, 0, n_rows) and len(events) == n_rows:
        return events.astype(dtype, copy=False)
    column = np.zeros(n_rows, dtype=dtype)
    for row, event, count in runs:
        column[row : row + count] = events[event : event + count]
    return column
