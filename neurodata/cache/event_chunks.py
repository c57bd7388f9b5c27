"""A split's event columns read straight from their shards, one inner chunk at a time.

:class:`EventChunks` holds the split's stored columns (t, x, y, and p unless the times carry the
polarities, see :mod:`.codecs`) as :class:`~.shard_reader.ShardedRows` that share one chunking
(:func:`fusable`). :meth:`EventChunks.fetch` gets the compressed chunks behind row ranges of all
columns in two batched rounds (:func:`~.shard_reader.fetch_spans`), as one :class:`EventChunk` per
inner chunk; :meth:`EventChunks.decompress` Blosc-decompresses one chunk's columns into buffers of
one chunk each and returns them as the decode kernels (:mod:`.kernels`) take them. The stored
dtypes are whatever each array's ``zarr.json`` records (narrower coordinates or time deltas
included). What to read when, on which threads and into which output is the loaders' business
(:mod:`neurodata.loaders.event_columns`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..events import EVENT_DTYPE
from .codecs import DELTA_POLARITY, decoder_columns, time_coding_of
from .fetch import Fetcher
from .kernels import carry_times_numba, fill_row_chunk_numba, scatter_chunk_numba
from .layout import EVENT_FIELDS
from .row_kernel import AVAILABLE, OK, chunk_table, fill_row_numba
from .shard_reader import Piece, ShardedRows, fetch_spans, read_indexes


class EventChunk(NamedTuple):
    """One inner chunk of a row range: its rows ``src:src + count`` are the range's rows
    ``dst:dst + count`` (counted from the range's first row); ``chunk``: its index in the arrays;
    ``raws``: each column's compressed bytes (None: only the fill value)."""

    src: int
    count: int
    dst: int
    chunk: int
    raws: list[memoryview | None]


def event_chunk(pieces: tuple[Piece, ...], first: int) -> EventChunk:
    """The :class:`EventChunk` of one chunk's pieces (one per column) of a range starting at row ``first``."""
    head = pieces[0]  # every column's piece of a chunk covers the same rows
    src, count, dst = head.start - head.row0, head.stop - head.start, head.start - first
    return EventChunk(src, count, dst, head.chunk, [piece.data for piece in pieces])


def fusable(columns: dict[str, ShardedRows]) -> bool:
    """Whether the fused pass applies: 1-D integer columns (t, x, y and, unless the times carry the
    polarities, p) with the same chunking, and time deltas that sum exactly in int64 (signed, or
    unsigned of at most 32 bits)."""
    rows = list(columns.values())
    t = columns["t"].dtype
    return (
        all(len(r.shape) == 1 and r.dtype.kind in "iu" for r in rows)
        and len({(r.shape[0], r.shard_rows, r.chunk_rows) for r in rows}) == 1
        and (t.kind == "i" or t.itemsize <= 4)
    )


class EventChunks:
    """The event columns of one split, fetched and decompressed chunk by chunk (see the module docstring).

    Args:
        fetcher: Serves the byte ranges of the shard files.
        columns: The split's stored event columns by field name (``t, x, y`` and, unless the times
            carry the polarities, ``p``).

    Raises:
        ValueError: The columns' chunking differs or a dtype is not integer (not fusable).
    """

    def __init__(self, fetcher: Fetcher, columns: dict[str, ShardedRows]):
        if not fusable(columns):
            raise ValueError("event columns need equal 1-D chunking and integer dtypes for the fused reader")
        self.fetcher = fetcher
        self.fields = tuple(name for name in EVENT_FIELDS if name in columns)
        self.columns = [columns[name] for name in self.fields]
        self.time_coding = time_coding_of(self.fields)
        self.packed = self.time_coding == DELTA_POLARITY  # the times carry the polarities
        # the one-call row kernel (:mod:`.row_kernel`) takes one checksum setting and integer fill values
        self.checked = self.columns[0].checked
        self.row_kernel = AVAILABLE and all(
            rows.checked == self.checked and type(rows.fill) is int for rows in self.columns
        )
        self.fills = np.array([rows.fill for rows in self.columns] if self.row_kernel else [], dtype=np.int64)

    def warm(self, row_dtypes: list[np.dtype]) -> None:
        """Compile (or load from Numba's cache) the decode kernels for these stored dtypes, on no
        data: forked DataLoader workers then inherit them instead of each loading them again.
        ``row_dtypes``: a padded batch's column dtypes (t, x, y, p), for the batch kernel."""
        buffers = [np.empty(0, dtype=rows.dtype) for rows in self.columns]
        empty = self.kernel_columns(buffers)
        offsets = np.zeros(1, dtype=np.int64)
        records = np.empty(0, dtype=EVENT_DTYPE)
        scatter_chunk_numba(*empty, 0, 0, 0, offsets, np.zeros(2, dtype=np.int64), records)
        carry_times_numba(records, offsets, offsets, offsets)
        rows = [np.empty(0, dtype=dtype) for dtype in row_dtypes]
        fill_row_chunk_numba(*empty, 0, 0, 0, *rows, np.zeros(2, dtype=np.int64))
        if self.row_kernel:
            self.fill_row([], buffers, rows, np.zeros(2, dtype=np.int64))

    def read_indexes(self, n_rows: int) -> None:
        """Read every shard index of the columns' first ``n_rows`` rows now (one fetch round), so
        that forked DataLoader workers inherit them rather than each reading its own."""
        read_indexes(self.fetcher, [(rows, 0, n_rows) for rows in self.columns])

    def inherit(self, parent: EventChunks) -> None:
        """Take the shard indexes ``parent`` (the same columns, opened in the process this one was
        forked from) has read, instead of reading them again."""
        for rows, theirs in zip(self.columns, parent.columns):
            if rows.folder == theirs.folder:
                rows.indexes.update(theirs.indexes)

    def kernel_columns(self, buffers: list[np.ndarray]) -> tuple:
        """One chunk's decompressed columns (in :attr:`fields` order) as the kernels take them.

        Args:
            buffers: One decompressed chunk of each column.
        """
        return decoder_columns(buffers, self.time_coding)

    def chunk_buffers(self) -> list[np.ndarray]:
        """New buffers for one decompressed chunk of each column."""
        return [np.empty(rows.chunk_rows, dtype=rows.dtype) for rows in self.columns]

    def fetch(self, ranges: list[tuple[int, int]]) -> list[list[EventChunk]]:
        """The compressed chunks of every row range ``[first, last)``, all ranges in one fetch
        round (see :func:`~.shard_reader.fetch_spans`): per range, its chunks in row order."""
        wanted = [(rows, first, last) for first, last in ranges if last > first for rows in self.columns]
        blobs = iter(fetch_spans(self.fetcher, wanted))
        out = []
        for first, last in ranges:
            if last <= first:
                out.append([])
                continue
            pieces = zip(*(rows.pieces(first, last, next(blobs)) for rows in self.columns))
            out.append([event_chunk(chunk, first) for chunk in pieces])
        return out

    def decompress(self, chunk: EventChunk, buffers: list[np.ndarray]) -> tuple:
        """``chunk``'s columns decompressed into ``buffers`` (:meth:`chunk_buffers`), as the kernels
        take them (:meth:`kernel_columns`)."""
        for rows, buffer, raw in zip(self.columns, buffers, chunk.raws):
            rows.decompress(raw, buffer, chunk.chunk)
        return self.kernel_columns(buffers)

    def fill_row(
        self, chunks: list[EventChunk], buffers: list[np.ndarray], rows: list[np.ndarray], state: np.ndarray
    ) -> bool:
        """One sample's ``chunks`` decompressed through ``buffers`` (:meth:`chunk_buffers`) into its
        padded ``rows`` (t, x, y, p) in one kernel call (:mod:`.row_kernel`), ``state`` carrying
        ``[time sum, largest coordinate]`` as :func:`~.kernels.fill_row_chunk_numba`'s does.

        Returns:
            False where the kernel is not available for these columns or a chunk failed a check:
            the caller then takes the chunk-by-chunk path (:meth:`decompress`), which raises the error.
        """
        if not self.row_kernel:
            return False
        table = chunk_table(chunks, len(self.columns))
        return fill_row_numba(table, self.checked, self.fills, *self.kernel_columns(buffers), *rows, state) == OK
