"""Events of a range of samples straight from the cache's sharded event columns, in one fused pass.

:class:`EventColumns` fetches the four columns' compressed chunks in two batched rounds (see
:mod:`.shards`), then walks the inner chunks in order: each column's chunk is Blosc-decompressed into
a per-thread scratch buffer of one chunk (64 Ki events: 832 KiB for the default dtypes, small enough
to stay in cache) and :func:`.kernels.scatter_chunk_numba` copies the needed rows into the
EVENT_DTYPE output, making times absolute as it goes. The stored dtypes are whatever each array's
``zarr.json`` records (narrower coordinates or time deltas included); the output is always
EVENT_DTYPE, equal to :meth:`neurodata.cache.SplitReader.events`.
"""

from __future__ import annotations

import threading

import numpy as np

from ..cache.layout import EVENT_FIELDS
from ..cache.reader import check_local_offsets
from ..events import EVENT_DTYPE
from .decode_pool import decode_map, decode_threads
from .kernels import carry_times_numba, fill_row_chunk_numba, pad_records_numba, scatter_chunk_numba
from .shards import FsspecFetcher, LocalFetcher, ShardedRows, fetch_spans, read_indexes

Fetcher = LocalFetcher | FsspecFetcher
SAMPLE_START = np.zeros(1, dtype=np.int64)  # read_samples' outputs restart their time sums at row 0
# read_samples decodes side by side through per-thread buffers of at most this many chunks (~28 MiB
# at the default dtypes); a longer range (a block holding a very long recording) goes chunk by chunk
MAX_BLOCK_CHUNKS = 64


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


def sample_pieces(chunks: list[tuple], offsets: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """Where a range's chunks (from :meth:`EventColumns.fetch`) meet its samples (local ``offsets``):
    ``(chunk index, sample, first row in the chunk, rows, first row in the sample)`` for every piece,
    in row order. Empty samples get no piece."""
    pieces = []
    sample = 0
    for k, (src, count, dst, _) in enumerate(chunks):
        row, end = dst, dst + count
        while row < end:
            while offsets[sample + 1] <= row:  # the sample holding this row (skipping empty ones)
                sample += 1
            stop = min(end, int(offsets[sample + 1]))
            pieces.append((k, sample, src + row - dst, stop - row, row - int(offsets[sample])))
            row = stop
    return pieces


class EventColumns:
    """The event columns of one split, read directly from their shards (see the module docstring)."""

    def __init__(self, fetcher: Fetcher, columns: dict[str, ShardedRows]):
        if not fusable(columns):
            raise ValueError("event columns need equal 1-D chunking and integer dtypes for the fused reader")
        self.fetcher = fetcher
        self.packed = "p" not in columns  # the times carry the polarities (see neurodata.cache.codecs)
        self.columns = [columns[name] for name in EVENT_FIELDS if name in columns]
        self._scratch = threading.local()  # prefetch threads decode beside the caller
        self._blocks = threading.local()  # read_samples' decompressed chunks, per calling thread

    def warm(self, row_dtypes: list[np.dtype]) -> None:
        """Compile (or load from Numba's cache) this reader's kernels for its stored dtypes, on no
        data: forked DataLoader workers then inherit them instead of each loading them again
        (~0.3 s per worker, every epoch without persistent workers). ``row_dtypes``: the padded
        batch's column dtypes (t, x, y, p), for the batch kernels."""
        empty = self.kernel_columns([np.empty(0, dtype=rows.dtype) for rows in self.columns])
        offsets = np.zeros(1, dtype=np.int64)
        records = np.empty(0, dtype=EVENT_DTYPE)
        scatter_chunk_numba(*empty, 0, 0, 0, offsets, np.zeros(2, dtype=np.int64), records)
        carry_times_numba(records, offsets, offsets, offsets)
        rows = [np.empty(0, dtype=dtype) for dtype in row_dtypes]
        fill_row_chunk_numba(*empty, 0, 0, 0, *rows, np.zeros(2, dtype=np.int64))
        pad_records_numba(records, *rows)  # streaming samples into pad_events

    def read_indexes(self, n_rows: int) -> None:
        """Read every shard index of the columns' first ``n_rows`` rows now (one fetch round), so
        that forked DataLoader workers inherit them rather than each reading its own."""
        read_indexes(self.fetcher, [(rows, 0, n_rows) for rows in self.columns])

    def inherit(self, parent: EventColumns) -> None:
        """Take the shard indexes ``parent`` (the same columns, opened in the process this one was
        forked from) has read, instead of reading them again."""
        for rows, theirs in zip(self.columns, parent.columns):
            if rows.folder == theirs.folder:
                rows.indexes.update(theirs.indexes)

    def kernel_columns(self, buffers: list[np.ndarray]) -> tuple:
        """One chunk's decompressed columns as the kernels take them: t, x, y, p (the times again
        where they carry the polarities) and that flag."""
        return (*buffers, buffers[0], True) if self.packed else (*buffers, False)

    def scratch(self) -> list[np.ndarray]:
        """This thread's one-chunk buffers, one per column."""
        buffers = getattr(self._scratch, "buffers", None)
        if buffers is None:
            buffers = [np.empty(rows.chunk_rows, dtype=rows.dtype) for rows in self.columns]
            self._scratch.buffers = buffers
        return buffers

    def fetch(self, ranges: list[tuple[int, int]]) -> list[list[tuple]]:
        """The compressed inner chunks holding the rows of each range ``[first, last)``, all fetched
        in one round: per range, ``(first row wanted in the chunk, rows wanted, where they go from
        first, raw per column)`` for each chunk."""
        wanted = [(rows, first, last) for first, last in ranges if last > first for rows in self.columns]
        blobs = iter(fetch_spans(self.fetcher, wanted))
        out = []
        for first, last in ranges:
            if last <= first:
                out.append([])
                continue
            pieces = zip(*(rows.pieces(first, last, next(blobs)) for rows in self.columns))
            out.append(
                [
                    (c[0][1] - c[0][0], c[0][2] - c[0][1], c[0][1] - first, [piece[3] for piece in c])
                    for c in pieces
                ]
            )
        return out

    def _chunk_pieces(self, first: int, last: int) -> list[tuple]:
        return self.fetch([(first, last)])[0]

    def _decompressed(self, raws: list) -> tuple:
        """One inner chunk's columns, decompressed into this thread's scratch buffers, as the
        kernels take them (:meth:`kernel_columns`)."""
        scratch = self.scratch()
        for rows, buffer, raw in zip(self.columns, scratch, raws):
            rows.decompress(raw, buffer)
        return self.kernel_columns(scratch)

    def read(
        self, first: int, last: int, local_offsets: np.ndarray, chunks: list[tuple] | None = None
    ) -> np.ndarray:
        """Rows ``[first, last)`` of the split as EVENT_DTYPE; ``local_offsets`` (from 0 to
        ``last - first``) say where each sample starts, so its times restart from its first one.
        ``chunks``: the range's chunks from :meth:`fetch` (default: fetched here).

        Chunks decode side by side when threads are free (:mod:`.decode_pool`): each one starts its
        time sums from zero, and :func:`.kernels.carry_times_numba` then adds what the chunks before
        it summed to its events ahead of its first sample start."""
        offsets = check_local_offsets(local_offsets, last - first)
        out = np.empty(last - first, dtype=EVENT_DTYPE)
        chunks = self._chunk_pieces(first, last) if chunks is None else chunks
        threads = decode_threads(len(chunks))
        if threads == 1:
            state = np.zeros(2, dtype=np.int64)
            for src, count, dst, raws in chunks:
                scatter_chunk_numba(*self._decompressed(raws), src, count, dst, offsets, state, out)
            return out

        def scatter(chunk: tuple) -> int:
            src, count, dst, raws = chunk
            state = np.array([0, np.searchsorted(offsets, dst)], dtype=np.int64)
            scatter_chunk_numba(*self._decompressed(raws), src, count, dst, offsets, state, out)
            return int(state[0])

        order = sorted(range(len(chunks)), key=lambda k: -chunks[k][1])  # the fullest chunks first
        sums = np.empty(len(chunks), dtype=np.int64)
        sums[order] = decode_map(scatter, [chunks[k] for k in order])
        starts = np.array([dst for _, _, dst, _ in chunks], dtype=np.int64)
        carry_times_numba(out, starts, sums, offsets)
        return out

    def read_spans(self, spans: list[tuple[int, int]]) -> list[np.ndarray]:
        """One EVENT_DTYPE array per sample stored at rows ``[first, last)``, all fetched in one
        round. Sample-aligned samples share no chunk, so each decodes on its own: several side by
        side where decode threads are free (the longest first), each one inline (a single sample's
        chunks decode side by side instead, see :meth:`read`)."""
        fetched = self.fetch(spans)

        def decode(k: int) -> np.ndarray:
            first, last = spans[k]
            return self.read(first, last, np.array([0, last - first], dtype=np.int64), fetched[k])

        order = sorted(range(len(spans)), key=lambda k: spans[k][0] - spans[k][1])
        out: list[np.ndarray] = [None] * len(spans)  # type: ignore[list-item]
        for k, events in zip(order, decode_map(decode, order)):
            out[k] = events
        return out

    def block_buffers(self, count: int) -> list[list[np.ndarray]]:
        """This thread's buffers for ``count`` decompressed chunks of all four columns (grown as
        needed and kept: a block's chunks fit the CPU's last-level cache, and reused buffers fault
        no pages in)."""
        buffers = getattr(self._blocks, "buffers", None)
        if buffers is None:
            buffers = self._blocks.buffers = []
        while len(buffers) < count:
            buffers.append([np.empty(rows.chunk_rows, dtype=rows.dtype) for rows in self.columns])
        return buffers[:count]

    def read_samples(self, first: int, last: int, local_offsets: np.ndarray) -> list[np.ndarray]:
        """Events ``[first, last)``, consecutive samples split at ``local_offsets`` (as in
        :meth:`read`), as one EVENT_DTYPE array per sample.

        Every inner chunk of the range is decompressed once, also where two samples share it
        (reading the samples one by one decompresses each shared chunk twice). On one thread (a
        DataLoader worker) each chunk is decompressed into the cache-resident scratch buffers and
        its rows go straight to the one or two samples they belong to; where decode threads are
        free, all chunks (up to :data:`MAX_BLOCK_CHUNKS`) are first decompressed side by side into
        per-thread block buffers, then the samples are written from them side by side. Separate
        arrays, not views of one block-sized array, because a block of several MiB is fresh memory
        each time (page-faulted in), where sample-sized arrays come back from the allocator's
        reused heap as earlier samples are freed."""
        offsets = check_local_offsets(local_offsets, last - first)
        chunks = self._chunk_pieces(first, last)
        out = [np.empty(int(n), dtype=EVENT_DTYPE) for n in np.diff(offsets)]
        if decode_threads(len(chunks)) == 1 or len(chunks) > MAX_BLOCK_CHUNKS:
            self._scatter_in_order(chunks, offsets, out)
        else:
            self._scatter_side_by_side(chunks, offsets, out)
        return out

    def _scatter_in_order(self, chunks: list[tuple], offsets: np.ndarray, out: list[np.ndarray]) -> None:
        """Chunk after chunk, each decompressed once into scratch and split among its samples."""
        states = [np.zeros(2, dtype=np.int64) for _ in out]  # per sample: [time sum, next start]
        columns, decompressed = None, -1
        for k, sample, src, count, dst in sample_pieces(chunks, offsets):
            if k != decompressed:
                columns, decompressed = self._decompressed(chunks[k][3]), k
            scatter_chunk_numba(*columns, src, count, dst, SAMPLE_START, states[sample], out[sample])

    def _scatter_side_by_side(self, chunks: list[tuple], offsets: np.ndarray, out: list[np.ndarray]) -> None:
        """All chunks decompressed side by side into block buffers, then the samples written side by side."""
        buffers = self.block_buffers(len(chunks))

        def decompress(k: int) -> None:
            for rows, buffer, raw in zip(self.columns, buffers[k], chunks[k][3]):
                rows.decompress(raw, buffer)

        decode_map(decompress, range(len(chunks)))
        per_sample: list[list[tuple]] = [[] for _ in out]
        for piece in sample_pieces(chunks, offsets):
            per_sample[piece[1]].append(piece)

        def fill(sample: int) -> None:
            state = np.zeros(2, dtype=np.int64)
            for k, _, src, count, dst in per_sample[sample]:
                columns = self.kernel_columns(buffers[k])
                scatter_chunk_numba(*columns, src, count, dst, SAMPLE_START, state, out[sample])

        decode_map(fill, sorted(range(len(out)), key=lambda j: -len(out[j])))

    def read_row(
        self, first: int, last: int, rows: list[np.ndarray], chunks: list[tuple] | None = None
    ) -> int:
        """Events ``[first, last)``, one whole sample, into the first ``last - first`` items of its
        padded ``rows`` (t, x, y, p of any integer dtypes), times made absolute; returns the largest
        coordinate, for the caller's range check. ``chunks``: the range's chunks from :meth:`fetch`
        (default: fetched here). Safe to call from several threads at once."""
        if any(len(row) < last - first for row in rows):
            raise ValueError(f"padded rows of {min(map(len, rows))} items cannot hold {last - first} events")
        state = np.zeros(2, dtype=np.int64)
        for src, count, dst, raws in self._chunk_pieces(first, last) if chunks is None else chunks:
            fill_row_chunk_numba(*self._decompressed(raws), src, count, dst, *rows, state)
        return int(state[1])
