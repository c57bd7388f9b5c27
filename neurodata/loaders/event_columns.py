"""Events of a range of samples straight from the cache's sharded event columns, in one fused pass.

The cache side (:class:`neurodata.cache.event_chunks.EventChunks`) fetches the columns' compressed
chunks in two batched rounds and decompresses one chunk at a time; :class:`EventColumns` decides
what to read when and on which threads: each chunk's columns are decompressed into a per-thread
scratch buffer of one chunk (64 Ki events: 832 KiB for the default dtypes, small enough to stay in
cache) and :func:`neurodata.cache.kernels.scatter_chunk_numba` copies the needed rows into the
EVENT_DTYPE output, making times absolute as it goes. The output is always EVENT_DTYPE, equal to
:meth:`neurodata.cache.SplitReader.events`.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np

from ..cache.event_chunks import EventChunk, EventChunks
from ..cache.fetch import Fetcher
from ..cache.kernels import carry_times_numba, fill_row_chunk_numba, scatter_chunk_numba
from ..cache.reader import check_local_offsets
from ..cache.shard_reader import ShardedRows
from ..events import EVENT_DTYPE
from .decode_pool import decode_map, decode_threads
from .kernels import pad_records_numba

SAMPLE_START = np.zeros(1, dtype=np.int64)  # read_samples' outputs restart their time sums at row 0
# read_samples decodes side by side through per-thread buffers of at most this many chunks (~28 MiB
# at the default dtypes); a longer range (a block holding a very long recording) goes chunk by chunk
MAX_BLOCK_CHUNKS = 64


class SamplePiece(NamedTuple):
    """Where a range's chunk meets one of its samples: rows ``src:src + count`` of chunk ``k`` are
    rows ``dst:dst + count`` of ``sample``."""

    k: int
    sample: int
    src: int
    count: int
    dst: int


def sample_pieces(chunks: list[EventChunk], offsets: np.ndarray) -> list[SamplePiece]:
    """Where a range's chunks (from :meth:`EventColumns.fetch`) meet its samples (local ``offsets``),
    in row order. Empty samples get no piece."""
    pieces = []
    sample = 0
    for k, (src, count, dst, _, _) in enumerate(chunks):
        row, end = dst, dst + count
        while row < end:
            while offsets[sample + 1] <= row:  # the sample holding this row (skipping empty ones)
                sample += 1
            stop = min(end, int(offsets[sample + 1]))
            pieces.append(SamplePiece(k, sample, src + row - dst, stop - row, row - int(offsets[sample])))
            row = stop
    return pieces


class EventColumns(EventChunks):
    """The event columns of one split, read directly from their shards (see the module docstring):
    ``fetcher`` reads the shards' bytes, ``columns`` maps each field to its sharded rows."""

    def __init__(self, fetcher: Fetcher, columns: dict[str, ShardedRows]):
        super().__init__(fetcher, columns)
        self._scratch = threading.local()  # prefetch threads decode beside the caller
        self._blocks = threading.local()  # read_samples' decompressed chunks, per calling thread

    def warm(self, row_dtypes: list[np.dtype]) -> None:
        """Compile (or load from Numba's cache) this reader's kernels, the decode kernels for its
        stored dtypes ``row_dtypes`` (see :meth:`EventChunks.warm`) and the one streaming samples into
        ``pad_events``, on no data: forked DataLoader workers then inherit them instead of each
        loading them again, every epoch without persistent workers (docs/sections/loaders.md)."""
        super().warm(row_dtypes)
        pad_records_numba(np.empty(0, dtype=EVENT_DTYPE), *(np.empty(0, dtype=dtype) for dtype in row_dtypes))

    def scratch(self) -> list[np.ndarray]:
        """This thread's one-chunk buffers, one per column."""
        buffers = getattr(self._scratch, "buffers", None)
        if buffers is None:
            buffers = self._scratch.buffers = self.chunk_buffers()
        return buffers

    def _chunk_pieces(self, first: int, last: int) -> list[EventChunk]:
        return self.fetch([(first, last)])[0]

    def _decompressed(self, chunk: EventChunk) -> tuple:
        """One chunk's columns, decompressed into this thread's scratch buffers, as the kernels take them."""
        return self.decompress(chunk, self.scratch())

    def read(
        self, first: int, last: int, local_offsets: np.ndarray, chunks: list[EventChunk] | None = None
    ) -> np.ndarray:
        """Rows ``[first, last)`` of the split as EVENT_DTYPE; ``local_offsets`` (from 0 to
        ``last - first``) say where each sample starts, so its times restart from its first one.
        ``chunks``: the range's chunks from :meth:`fetch` (default: fetched here).

        Chunks decode side by side when threads are free (:mod:`.decode_pool`): each one starts its
        time sums from zero, and :func:`~neurodata.cache.kernels.carry_times_numba` then adds what the
        chunks before it summed to its events ahead of its first sample start."""
        offsets = check_local_offsets(local_offsets, last - first)
        out = np.empty(last - first, dtype=EVENT_DTYPE)
        chunks = self._chunk_pieces(first, last) if chunks is None else chunks
        threads = decode_threads(len(chunks))
        if threads == 1:
            state = np.zeros(2, dtype=np.int64)
            for chunk in chunks:
                columns = self._decompressed(chunk)
                scatter_chunk_numba(*columns, chunk.src, chunk.count, chunk.dst, offsets, state, out)
            return out

        def scatter(chunk: EventChunk) -> int:
            state = np.array([0, np.searchsorted(offsets, chunk.dst)], dtype=np.int64)
            columns = self._decompressed(chunk)
            scatter_chunk_numba(*columns, chunk.src, chunk.count, chunk.dst, offsets, state, out)
            return int(state[0])

        order = sorted(range(len(chunks)), key=lambda k: -chunks[k].count)  # the fullest chunks first
        sums = np.empty(len(chunks), dtype=np.int64)
        sums[order] = decode_map(scatter, [chunks[k] for k in order])
        starts = np.array([chunk.dst for chunk in chunks], dtype=np.int64)
        carry_times_numba(out, starts, sums, offsets)
        return out

    def read_spans(self, spans: list[tuple[int, int]]) -> list[np.ndarray]:
        """One EVENT_DTYPE array per sample stored at rows ``[first, last)`` of ``spans``, all fetched in one
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
            buffers.append(self.chunk_buffers())
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

    def _scatter_in_order(self, chunks: list[EventChunk], offsets: np.ndarray, out: list[np.ndarray]) -> None:
        """Chunk after chunk, each decompressed once into scratch and split among its samples."""
        states = [np.zeros(2, dtype=np.int64) for _ in out]  # per sample: [time sum, next start]
        columns, decompressed = None, -1
        for k, sample, src, count, dst in sample_pieces(chunks, offsets):
            if k != decompressed:
                columns, decompressed = self._decompressed(chunks[k]), k
            scatter_chunk_numba(*columns, src, count, dst, SAMPLE_START, states[sample], out[sample])

    def _scatter_side_by_side(
        self, chunks: list[EventChunk], offsets: np.ndarray, out: list[np.ndarray]
    ) -> None:
        """All chunks decompressed side by side into block buffers, then the samples written side by side."""
        buffers = self.block_buffers(len(chunks))

        decode_map(lambda k: self.decompress(chunks[k], buffers[k]), range(len(chunks)))
        per_sample: list[list[SamplePiece]] = [[] for _ in out]
        for piece in sample_pieces(chunks, offsets):
            per_sample[piece.sample].append(piece)

        def fill(sample: int) -> None:
            state = np.zeros(2, dtype=np.int64)
            for k, _, src, count, dst in per_sample[sample]:
                columns = self.kernel_columns(buffers[k])
                scatter_chunk_numba(*columns, src, count, dst, SAMPLE_START, state, out[sample])

        decode_map(fill, sorted(range(len(out)), key=lambda j: -len(out[j])))

    def read_row(
        self, first: int, last: int, rows: list[np.ndarray], chunks: list[EventChunk] | None = None
    ) -> int:
        """Events ``[first, last)``, one whole sample, into the first ``last - first`` items of its
        padded ``rows`` (t, x, y, p of any integer dtypes), times made absolute; returns the largest
        coordinate, for the caller's range check. ``chunks``: the range's chunks from :meth:`fetch`
        (default: fetched here). Safe to call from several threads at once.

        One kernel call checks, decompresses and writes all the sample's chunks where it can
        (:meth:`~neurodata.cache.event_chunks.EventChunks.fill_row`); else chunk by chunk."""
        if any(len(row) < last - first for row in rows):
            raise ValueError(f"padded rows of {min(map(len, rows))} items cannot hold {last - first} events")
        chunks = self._chunk_pieces(first, last) if chunks is None else chunks
        state = np.zeros(2, dtype=np.int64)
        if self.fill_row(chunks, self.scratch(), rows, state):
            return int(state[1])
        state[:] = 0  # the chunk-by-chunk path: where the kernel is missing, or to raise a chunk's error
        for chunk in chunks:
            fill_row_chunk_numba(*self._decompressed(chunk), chunk.src, chunk.count, chunk.dst, *rows, state)
        return int(state[1])
