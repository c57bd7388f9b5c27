"""Numba kernels that undo the cache's time coding (:mod:`.codecs`) while copying stored event
columns out: one inner chunk (or whole columns) -> rows of an EVENT_DTYPE array
(:func:`scatter_chunk_numba`), or one sample's padded batch rows (:func:`fill_row_chunk_numba`).

The readable reference is :func:`.codecs.decode_times` with :func:`.codecs.unpack_polarity` plus four
field copies; tests compare the kernels with it. The direct event reader
(:mod:`neurodata.loaders.event_columns`) decompresses the event columns one inner chunk at a time
into small scratch buffers that stay in the CPU cache, and these kernels copy the needed rows into
the output while summing the per-sample time deltas. With ``packed`` true the time column carries
the polarities (each delta doubled plus the polarity; pass the time column as ``p`` too, as
:func:`.codecs.decoder_columns` does): a shift and a mask, which cost less than a fourth column's
decompression. No column-sized temporaries are written and read back, and whole records are
written (not four strided field views). Works for any integer stored dtypes; callers validate
every index first (Numba does not bounds-check).

Every loop runs over views sliced to start at 0 and indexes them with its ``range()`` counter.
Numba wraps a negative index around (``a[-1]`` is the last item), so an index it cannot prove
non-negative, such as ``dst + i``, costs a test per item that also keeps LLVM from vectorizing
the loop (docs/sections/loaders.md has the measured effect).
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def scatter_chunk_numba(coded, x, y, p, packed, src, n, dst, offsets, state, out):
    """Rows ``src:src + n`` of the chunk columns -> records ``dst:dst + n`` of ``out``.

    ``offsets`` are the output's local sample offsets; ``state`` carries ``[running time sum, index in
    offsets of the next sample start]`` from one chunk to the next (start with ``[0, 0]``). Times
    sum in int64, wrapping like numpy's, and restart at every sample start.

    Args:
        coded: The chunk's stored time column (per-sample deltas, doubled plus the polarity when ``packed``).
        x: The chunk's x column.
        y: The chunk's y column.
        p: The chunk's p column (the time column again when ``packed``).
        packed: The time column carries the polarities.
    """
    shift = 1 if packed else 0
    mask = 1 if packed else 255
    running = state[0]
    s = state[1]
    m = len(offsets)
    j = 0
    while j < n:
        if s < m and offsets[s] == dst + j:  # a sample starts here (skip any empty ones with it)
            running = 0
            while s < m and offsets[s] <= dst + j:
                s += 1
        end = min(n, offsets[s] - dst) if s < m else n  # up to the next sample start
        # views indexed by range(): no per-item negative-index wraparound (see the module docstring)
        coded_part, x_part, y_part, p_part = (
            coded[src + j : src + end],
            x[src + j : src + end],
            y[src + j : src + end],
            p[src + j : src + end],
        )
        records = out[dst + j : dst + end]
        for i in range(end - j):
            running += coded_part[i] >> shift
            record = records[i]
            record.t = running
            record.x = x_part[i]
            record.y = y_part[i]
            record.p = p_part[i] & mask
        j = end
    state[0] = running
    state[1] = s


@numba.njit(cache=True, nogil=True)
def copy_with_range_numba(source, target):
    """``target[:len(source)] = source`` (cast), returning the smallest and largest value seen."""
    lo = 0
    hi = 0
    for i in range(len(source)):
        value = source[i]
        target[i] = value
        lo = min(lo, value)
        hi = max(hi, value)
    return lo, hi


@numba.njit(cache=True, nogil=True)
def fill_row_chunk_numba(coded, x, y, p, packed, src, n, dst, t_row, x_row, y_row, p_row, state):
    """Rows ``src:src + n`` of the chunk columns -> items ``dst:dst + n`` of one sample's padded rows.

    The column twin of :func:`scatter_chunk_numba` for one sample (``pad_events`` straight from the
    cache): ``state`` carries ``[running time sum, largest coordinate seen]`` from chunk to chunk
    (start with ``[0, 0]``); coordinates are never negative in a cache.

    The chunk columns (coded, x, y, p) and packed are as in :func:`scatter_chunk_numba`.

    Args:
        t_row: The sample's padded time row.
        x_row: Its padded x row.
        y_row: Its padded y row.
        p_row: Its padded polarity row.
    """
    shift = 1 if packed else 0
    mask = 1 if packed else 255
    times, rows = coded[src : src + n], t_row[dst : dst + n]
    running = state[0]
    for i in range(n):
        running += times[i] >> shift
        rows[i] = running
    _, x_hi = copy_with_range_numba(x[src : src + n], x_row[dst : dst + n])
    _, y_hi = copy_with_range_numba(y[src : src + n], y_row[dst : dst + n])
    polarities, rows_p = p[src : src + n], p_row[dst : dst + n]
    for i in range(n):
        rows_p[i] = polarities[i] & mask
    state[0] = running
    state[1] = max(state[1], x_hi, y_hi)


@numba.njit(cache=True, nogil=True)
def carry_times_numba(out, starts, sums, offsets):
    """Finish records whose chunks summed their times from zero (chunks decoded side by side).

    Chunk ``k`` covers records ``starts[k]:starts[k + 1]`` (the last one up to ``len(out)``) and
    ended its own sums at ``sums[k]``. Records of a chunk ahead of its first sample start (per the
    local ``offsets``) continue the sample of the chunk before: they get that chunk's carried sum,
    which passes on to the next chunk, or restarts at a chunk holding a sample start.
    """
    carry = 0
    s = 0
    m = len(offsets)
    k_last = len(starts) - 1
    for k in range(len(starts)):
        lo = starts[k]
        hi = starts[k + 1] if k < k_last else len(out)
        while s < m and offsets[s] < lo:
            s += 1
        stop = min(hi, offsets[s]) if s < m else hi  # the first sample start at or after lo
        if carry != 0:
            ahead = out[lo:stop]
            for i in range(len(ahead)):
                ahead[i].t += carry
        carry = carry + sums[k] if stop == hi else sums[k]
