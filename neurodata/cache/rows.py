"""Where each sample's events sit in a split's event arrays: the row map of layout version 2.

Layout 1 stored the samples back to back, so a sample's first and last inner chunk also held its
neighbours' events, which every read decompressed and dropped (about a quarter of reading a
DVS128-sized sample). Layout 2 starts every sample at a multiple of the split's inner chunk size:
the rows between the end of one sample and the next chunk boundary hold the fill value 0 (they
compress to a few bytes and decompress at memset speed), and the per-sample array ``rows`` records
each sample's first row. Sample ``i`` is rows ``rows[i] : rows[i] + counts[i]`` (``counts`` from
``offsets``, which still count events). Layout 1 caches read as layout 2 with ``rows`` equal to
``offsets[:-1]``; a contiguous layout 2 (``align_samples=False``) is the same.

Pure functions over arrays; the writer, the readers and :mod:`.verify` use them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

# the smallest inner chunk the writer picks for a split of short samples (N-MNIST: ~4 k events)
MIN_ALIGNED_CHUNK = 1 << 12


def split_chunk(counts: np.ndarray, chunk_events: int) -> int:
    """The inner chunk size of a sample-aligned split: ``chunk_events`` halved while the half still
    holds the median sample and :data:`MIN_ALIGNED_CHUNK` events, so that short samples are not
    each padded to a long chunk (halving keeps it a divisor of the shard size).

    Args:
        counts: Events per sample.
        chunk_events: The inner chunk size asked for (a power of 2 times an odd number).
    """
    median = float(np.median(counts)) if len(counts) else 0.0
    chunk = int(chunk_events)
    while chunk % 2 == 0 and chunk // 2 >= max(median, MIN_ALIGNED_CHUNK):
        chunk //= 2
    return chunk


def sample_rows(counts: np.ndarray, chunk: int, aligned: bool = True) -> tuple[np.ndarray, int]:
    """``(first row of each sample, rows in all)``: each sample takes its events rounded up to whole
    chunks when ``aligned``, else exactly its events (the contiguous layout).

    Args:
        counts: Events per sample.
        chunk: The split's inner chunk size in rows.
        aligned: Start every sample at a chunk boundary.
    """
    counts = np.asarray(counts, dtype=np.int64)
    spans = -(-counts // chunk) * chunk if aligned else counts
    ends = np.cumsum(spans, dtype=np.int64)
    return ends - spans, int(ends[-1]) if len(ends) else 0


class Placement(NamedTuple):
    """Where a split's samples go: its inner chunk, event ``offsets`` (``n_samples + 1``), each
    sample's first row and the event arrays' length.

    Attributes:
        chunk_events: The split's inner chunk size in rows.
        offsets: Event offsets, ``n_samples + 1`` int64.
        rows: Each sample's first row, ``n_samples`` int64.
        n_rows: Length of the split's event arrays.
    """

    chunk_events: int
    offsets: np.ndarray
    rows: np.ndarray
    n_rows: int


def place_samples(counts: np.ndarray, chunk_events: int, aligned: bool = True) -> Placement:
    """The placement of samples of ``counts`` events: sample-aligned in chunks of
    :func:`split_chunk` (at most ``chunk_events``), or back to back in chunks of ``chunk_events``."""
    counts = np.asarray(counts, dtype=np.int64)
    chunk = split_chunk(counts, chunk_events) if aligned else int(chunk_events)
    rows, n_rows = sample_rows(counts, chunk, aligned)
    offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    return Placement(chunk, offsets, rows, n_rows)


def row_pieces(
    offsets: np.ndarray, rows: np.ndarray, start_row: int, stop_row: int
) -> list[tuple[int, int, int]]:
    """``(first row, first event, count)`` of the runs of events that fall in rows
    ``[start_row, stop_row)`` (what a shard of the event arrays holds), merged where events and rows
    both run on; the other rows hold the fill value.

    Args:
        offsets: The split's event offsets (``n_samples + 1``).
        rows: Each sample's first row.
        start_row: First row of the range.
        stop_row: One past its last row.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    ends = rows + np.diff(offsets)
    lo = int(np.searchsorted(ends, start_row, side="right"))
    hi = int(np.searchsorted(rows, stop_row, side="left"))
    pieces: list[tuple[int, int, int]] = []
    for j in range(lo, hi):
        a, b = max(int(rows[j]), start_row), min(int(ends[j]), stop_row)
        if b <= a:
            continue
        event = int(offsets[j]) + a - int(rows[j])
        if pieces and pieces[-1][0] + pieces[-1][2] == a and pieces[-1][1] + pieces[-1][2] == event:
            first, src, count = pieces[-1]
            pieces[-1] = (first, src, count + b - a)
        else:
            pieces.append((a, event, b - a))
    return pieces


def contiguous_span(offsets: np.ndarray, rows: np.ndarray, start: int, stop: int) -> tuple[int, int] | None:
    """The rows ``[first, last)`` holding samples ``start:stop`` back to back (their events and
    nothing else), or None when fill rows lie between them.

    Args:
        offsets: The split's event offsets (``n_samples + 1``).
        rows: Each sample's first row.
        start: First sample.
        stop: One past the last sample.
    """
    counts = np.diff(offsets[start : stop + 1])
    shift = rows[start:stop][counts > 0] - offsets[start:stop][counts > 0]
    if shift.size and (shift != shift[0]).any():
        return None
    base = int(shift[0]) if shift.size else 0  # no events: an empty span anywhere will do
    return int(offsets[start]) + base, int(offsets[stop]) + base


def spans_of(
    offsets: np.ndarray, rows: np.ndarray, indices: Sequence[int] | np.ndarray
) -> list[tuple[int, int]]:
    """The rows ``[first, last)`` of each sample of ``indices`` (one vectorized lookup, for a batch).

    Args:
        offsets: The split's event offsets (``n_samples + 1``).
        rows: Each sample's first row.
        indices: Sample indices, in any order.
    """
    index = np.asarray(indices, dtype=np.int64)
    firsts = rows[index]
    return list(zip(firsts.tolist(), (firsts + offsets[index + 1] - offsets[index]).tolist()))


def sample_spans(offsets: np.ndarray, rows: np.ndarray, start: int, stop: int) -> list[tuple[int, int]]:
    """The rows ``[first, last)`` of each sample ``start:stop``.

    Args:
        offsets: The split's event offsets (``n_samples + 1``).
        rows: Each sample's first row.
        start: First sample.
        stop: One past the last sample.
    """
    return spans_of(offsets, rows, np.arange(start, stop))


def sample_columns(
    read_rows: Callable[[int, int], list[np.ndarray]],
    offsets: np.ndarray,
    rows: np.ndarray,
    start: int,
    stop: int,
) -> list[np.ndarray]:
    """The stored columns of samples ``start:stop`` back to back: ``read_rows(first, last)`` over the
    rows they span, keeping their events (fill rows between sample-aligned samples dropped).

    Args:
        read_rows: Returns the stored columns of rows ``[first, last)``.
        offsets: The split's event offsets (``n_samples + 1``).
        rows: Each sample's first row.
        start: First sample.
        stop: One past the last sample.
    """
    span = contiguous_span(offsets, rows, start, stop)
    if span is not None:
        return read_rows(*span)
    spans = sample_spans(offsets, rows, start, stop)
    first, last = spans[0][0], max(b for _, b in spans)
    return gather(read_rows(first, last), first, spans)


def placement_problem(offsets: np.ndarray, rows: np.ndarray, n_rows: int) -> str | None:
    """What is wrong with a split's ``offsets`` and ``rows`` over event arrays of ``n_rows`` rows
    (None: each sample's rows lie inside the arrays and after the previous sample's)."""
    counts = np.diff(offsets)
    if len(rows) != len(counts):
        return f"rows has {len(rows)} entries for {len(counts)} samples"
    if (counts < 0).any():
        return f"offsets decrease at sample {int(np.argmax(counts < 0))}"
    ends = rows + counts
    if rows.size and rows[0] < 0:
        return f"sample 0 starts at row {int(rows[0])}"
    overlap = np.flatnonzero(rows[1:] < ends[:-1])
    if overlap.size:
        j = int(overlap[0]) + 1
        return f"sample {j} starts at row {int(rows[j])}, inside sample {j - 1} (ends at {int(ends[j - 1])})"
    if ends.size and ends[-1] > n_rows:
        return f"the last sample ends at row {int(ends[-1])}, but the event arrays hold {n_rows}"
    return None


def gather(columns: list[np.ndarray], first_row: int, spans: list[tuple[int, int]]) -> list[np.ndarray]:
    """The rows of ``spans`` back to back, out of ``columns`` that hold rows from ``first_row`` on."""
    return [
        np.concatenate([column[a - first_row : b - first_row] for a, b in spans]) if spans else column[:0]
        for column in columns
    ]
