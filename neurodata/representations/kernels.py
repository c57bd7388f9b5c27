"""Numba kernels behind the representations; `reference.py` holds readable numpy twins for tests.

Kernels take the EVENT_DTYPE record array itself: reading ``events[j].x`` from the packed record
is faster than three strided column views. Callers validate every coordinate first (Numba does
not bounds-check), except for :func:`accumulate_frames_validating`, which checks each event itself
before using it. Events arrive sorted by time and polarities are 0/1; ``merge`` sends every
event to channel 0.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._prefetch import prefetch_write

DECAY_EXP = 0
DECAY_LIN = 1


@numba.njit(cache=True, nogil=True)
def is_sorted(t):
    """True when ``t`` never decreases."""
    for i in range(1, len(t)):
        if t[i] < t[i - 1]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def search_sorted(t, values, right):
    """``np.searchsorted`` for a strided ``t`` without numpy's contiguous copy of the whole column.

    Args:
        t: Sorted timestamps (may be a strided column view).
        values: The values to place, int64.
        right: ``side='right'`` (after equal values) when True, else ``'left'``.
    """
    out = np.empty(len(values), dtype=np.int64)
    for k in range(len(values)):
        lo = 0
        hi = len(t)
        v = values[k]
        while lo < hi:
            mid = (lo + hi) >> 1
            if t[mid] < v or (right and t[mid] == v):
                lo = mid + 1
            else:
                hi = mid
        out[k] = lo
    return out


@numba.njit(cache=True, nogil=True)
def first_at_or_after(t, value):
    """The index of the first item of ``t`` at or after ``value`` (``len(t)`` if none): what
    ``np.argmax(t >= value)`` finds, scanning only up to it and making no boolean copy (``t`` need
    not be sorted; a strided column view is read in place).

    Args:
        t: Timestamps (may be a strided column view).
        value: The time to reach.
    """
    for i in range(len(t)):
        if t[i] >= value:
            return i
    return len(t)


@numba.njit(cache=True, nogil=True)
def value_range(values):
    """``(min, max)`` of a non-empty numeric array in one pass.

    Args:
        values: A 1-D numeric array with at least one element.
    """
    lo = values[0]
    hi = values[0]
    for v in values:
        if v < lo:
            lo = v
        elif v > hi:
            hi = v
    return lo, hi


@numba.njit(cache=True, nogil=True)
def scan_events(events):
    """One pass: ``(max x, max y, max p, t sorted)`` (``(0, 0, 0, True)`` when empty).

    Args:
        events: EVENT_DTYPE records.
    """
    max_x = 0
    max_y = 0
    max_p = 0
    backwards = False
    previous = events[0].t if len(events) else 0
    for i in range(len(events)):  # branch-free body: the compiler keeps the running values in registers
        e = events[i]
        max_x = max(max_x, e.x)
        max_y = max(max_y, e.y)
        max_p = max(max_p, e.p)
        backwards |= e.t < previous
        previous = e.t
    return max_x, max_y, max_p, not backwards


@numba.njit(cache=True, nogil=True)
def touch_pages(memory, page):
    """Write 0 to the first byte of every ``page`` bytes of ``memory``: the kernel maps (and zeroes) a
    fresh array's pages now, on this thread, rather than at first use.

    Args:
        memory: A contiguous uint8 view of zero-filled memory.
        page: The page size in bytes (the smallest one the system maps).
    """
    for i in range(0, len(memory), page):
        memory[i] = 0


@numba.njit(cache=True, nogil=True, inline="always")
def _cell(e, merge, height, width):
    """Event ``e``'s offset in a ``[P, H, W]`` frame (unchecked: only for prefetches, which never fault)."""
    c = np.int64(0) if merge else np.int64(e.p)
    return (c * height + np.int64(e.y)) * width + np.int64(e.x)


@numba.njit(cache=True, nogil=True, inline="always")
def _out_of_place(e, previous_t, width, height, n_pol, merge):
    """Whether event ``e`` lies outside the sensor (its polarity only unless ``merge``) or before ``previous_t``."""
    return e.x >= width or e.y >= height or (not merge and e.p >= n_pol) or e.t < previous_t


@numba.njit(cache=True, nogil=True)
def accumulate_frames(events, starts, ends, merge, frames, limit, checked, ahead):
    """Count events ``starts[i] <= j < ends[i]`` into ``frames[i, p, y, x]`` (frames zeroed by caller).

    Counts in the frames' own dtype. With ``checked`` (a loop invariant the compiler hoists, so the
    unchecked loop pays nothing), returns False, leaving the frames partly counted, as soon as a cell
    holding ``limit`` would be incremented (the dtype's largest value: no wrap); else returns True.

    Args:
        merge: Send every event to channel 0.
        frames: C-contiguous ``[T, P, H, W]`` zeros.
        ahead: Prefetch the cell of the event this many ahead (0: none; for frames bigger than the caches).
    """
    n_pol, height, width = frames.shape[1], frames.shape[2], frames.shape[3]
    flat = frames.reshape(-1)
    for i in range(len(starts)):
        frame = frames[i]
        base = i * n_pol * height * width
        for j in range(starts[i], ends[i]):
            if ahead and j + ahead < ends[i]:
                prefetch_write(flat, base + _cell(events[j + ahead], merge, height, width))
            e = events[j]
            c = 0 if merge else e.p
            count = frame[c, e.y, e.x]
            if checked and count >= limit:
                return False
            frame[c, e.y, e.x] = count + 1
    return True


@numba.njit(cache=True, nogil=True)
def _count_slice_validating(events, start, end, previous_t, merge, frame, flat, base, limit, checked, ahead):
    """Check and count events ``start <= j < end`` into ``frame`` (``flat[base:]`` is the same frame,
    for the prefetches; ``ahead`` as in :func:`accumulate_frames`).

    Returns -1 when all went well, the index of the first event out of place (outside the sensor,
    or earlier than the one before it, from ``previous_t``), or -2 when a cell would pass ``limit``
    (the frame then partly counted).
    """
    n_pol, height, width = frame.shape
    for j in range(start, end):
        if ahead and j + ahead < end:
            prefetch_write(flat, base + _cell(events[j + ahead], merge, height, width))
        e = events[j]
        if _out_of_place(e, previous_t, width, height, n_pol, merge):
            return j
        previous_t = e.t
        c = 0 if merge else e.p
        count = frame[c, e.y, e.x]
        if checked and count >= limit:
            return -2
        frame[c, e.y, e.x] = count + 1
    return -1


@numba.njit(cache=True, nogil=True)
def accumulate_frames_validating(events, starts, ends, merge, frames, limit, checked, first, stop, ahead):
    """:func:`accumulate_frames` over events nobody has checked yet, checking them in the same pass.

    Every event from ``first`` on is checked once at least, in or out of a slice, each before it is
    counted, up to ``stop`` or the slices' last event if later: the index of the first one found
    outside the frames' sensor (``x < W``, ``y < H`` and, unless ``merge``, ``p < P``) or earlier
    than the event before it is returned, the frames then partly counted; -2 when a cell would pass
    ``limit``; -1 when all went well. ``(0, len(events))`` checks every event; runs of consecutive
    slices counted apart cover them all when each run's ``first`` is the largest end of the slices
    before it and the last run's ``stop`` is ``len(events)``.

    Args:
        events: Records of :data:`~neurodata.events.EVENT_DTYPE`, in the order given.
        starts: First event index of each slice.
        ends: One past the last event index of each slice.
        merge: Count every polarity into channel 0.
        frames: ``[T, P, H, W]`` zeros to count into (updated).
        limit: The largest count a cell may hold.
        checked: Whether cells must be checked against ``limit`` (a slice holds more events than it).
        first: The first event to check (those before it are checked elsewhere).
        stop: Check the events after the last slice up to this index (``len(events)``: all of them).
        ahead: As in :func:`accumulate_frames` (``frames`` C-contiguous).
    """
    n_pol, height, width = frames.shape[1], frames.shape[2], frames.shape[3]
    flat = frames.reshape(-1)
    if len(events) == 0:
        return -1
    done = first  # events [first, done) are checked
    for i in range(len(starts) + 1):
        # the events no slice so far holds, up to this slice's start (after the last slice: to stop)
        gap_end = starts[i] if i < len(starts) else stop
        previous_t = events[done - 1].t if done > 0 else events[0].t
        for j in range(done, gap_end):
            if _out_of_place(events[j], previous_t, width, height, n_pol, merge):
                return j
            previous_t = events[j].t
        if i == len(starts):
            break
        previous_t = events[starts[i] - 1].t if starts[i] > 0 else events[0].t
        status = _count_slice_validating(
            events, starts[i], ends[i], previous_t, merge, frames[i], flat, i * n_pol * height * width,
            limit, checked, ahead,
        )
        if status != -1:
            return status
        done = max(done, ends[i])
    return -1


@numba.njit(cache=True, nogil=True)
def accumulate_frames_bucketed(events, starts, ends, merge, frames, limit, checked, shift):
    """:func:`accumulate_frames` for frames too big for the CPU cache (e.g. 1280x720).

    Per frame, a counting sort first groups the events' cell offsets into buckets of ``2**shift``
    cells (few sequential write streams), then each bucket's increments land in a cache-sized
    region instead of anywhere in the frame. Same result, fewer cache misses.

    Args:
        starts: First event index of each frame (int64).
        ends: One past the last event index of each frame.
        merge: Send every event to channel 0.
        limit: The largest count a cell may hold.
        checked: Check cells against ``limit``.
        shift: Buckets hold ``2**shift`` cells.
    """
    n_pol, height, width = frames.shape[1], frames.shape[2], frames.shape[3]
    plane = n_pol * height * width
    flat = frames.reshape(-1)
    n_buckets = (plane >> shift) + 1
    fill = np.zeros(n_buckets + 1, dtype=np.int64)
    longest = 0
    for i in range(len(starts)):
        longest = max(longest, ends[i] - starts[i])
    cells = np.empty(longest, dtype=np.int64)
    for i in range(len(starts)):
        fill[:] = 0
        for j in range(starts[i], ends[i]):
            e = events[j]
            c = 0 if merge else e.p
            fill[(((np.int64(c) * height + e.y) * width + e.x) >> shift) + 1] += 1
        for b in range(1, n_buckets + 1):
            fill[b] += fill[b - 1]
        for j in range(starts[i], ends[i]):
            e = events[j]
            c = 0 if merge else e.p
            cell = (np.int64(c) * height + e.y) * width + e.x
            cells[fill[cell >> shift]] = cell
            fill[cell >> shift] += 1
        base = i * plane
        for q in range(ends[i] - starts[i]):
            count = flat[base + cells[q]]
            if checked and count >= limit:
                return False
            flat[base + cells[q]] = count + 1
    return True


@numba.njit(cache=True, nogil=True)
def accumulate_voxels(events, n_bins, grid):
    """Bilinear-in-time voxel grid (Zhu et al. 2019 / rpg_e2vid): signed polarity, float ``grid[B, H, W]``.

    An event's position is ``(B - 1) * (t - t_first) / (t_last - t_first)``; it gives ``1 - frac`` to
    the bin below and ``frac`` to the bin above, so the last event lands wholly in the last bin.

    Args:
        events: EVENT_DTYPE records, time-sorted, coordinates inside the output.
        n_bins: Number of time bins ``B`` (the grid's first axis).
        grid: Zeroed float ``[B, H, W]`` to add into.
    """
    n = len(events)
    if n == 0:
        return
    t0 = events[0].t
    span = events[n - 1].t - t0
    scale = (n_bins - 1) / span if span > 0 else 0.0
    for j in range(n):
        e = events[j]
        position = (e.t - t0) * scale
        left = int(math.floor(position))
        if left > n_bins - 1:
            left = n_bins - 1
        frac = position - left
        value = 1.0 if e.p > 0 else -1.0
        grid[left, e.y, e.x] += value * (1.0 - frac)
        if left + 1 < n_bins:
            grid[left + 1, e.y, e.x] += value * frac


@numba.njit(cache=True, nogil=True, inline="always")
def _decay(age, tau, decay):
    if decay == DECAY_EXP:
        return math.exp(-age / tau)
    v = 1.0 - age / (3.0 * tau)
    return v if v > 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def global_time_surfaces(events, starts, ends, origin, ref_offsets, tau, decay, merge, out):
    """Per window ``i``: decay of each pixel's latest timestamp up to ``ends[i]``, seen at
    ``origin + ref_offsets[i]`` (ages taken from the offsets, exact for Unix-time microseconds).

    ``out[T, P, H, W]`` is float; pixels that never fired stay 0.

    Args:
        events: EVENT_DTYPE records, time-sorted, coordinates inside the output.
        starts: First event index of each window (int64).
        ends: One past each window's last event.
        origin: The time the offsets count from (int64 microseconds: the first event's).
        ref_offsets: Microseconds after ``origin`` at which each window's surface is read.
        tau: Decay time constant in microseconds.
        decay: :data:`DECAY_EXP` (``exp(-age / tau)``) or :data:`DECAY_LIN` (``1 - age / (3 tau)``, floored at 0).
        merge: Send every event to channel 0.
    """
    n_slices, n_pol, height, width = out.shape
    last = np.zeros((n_pol, height, width), dtype=np.int64)
    seen = np.zeros((n_pol, height, width), dtype=np.bool_)
    done = starts[0] if n_slices > 0 else 0
    for i in range(n_slices):
        for j in range(max(done, starts[i]), ends[i]):
            e = events[j]
            c = 0 if merge else e.p
            last[c, e.y, e.x] = e.t
            seen[c, e.y, e.x] = True
        done = max(done, ends[i])
        ref = ref_offsets[i]
        for c in range(n_pol):
            for yy in range(height):
                for xx in range(width):
                    if seen[c, yy, xx]:
                        out[i, c, yy, xx] = _decay(ref - np.float64(last[c, yy, xx] - origin), tau, decay)


@numba.njit(cache=True, nogil=True)
def local_time_surfaces(events, radius, tau, decay, merge, n_pol, height, width, out):
    """HOTS-style surface around each event: ``out[j, dy + r, dx + r]`` decays the latest timestamp of
    the event's polarity at ``(x + dx, y + dy)``, the event itself included (centre = 1).

    Args:
        events: EVENT_DTYPE records, time-sorted, coordinates inside the output.
        radius: ``r``: the surfaces are ``(2r + 1) x (2r + 1)`` pixels.
        tau: Decay time constant in microseconds.
        decay: :data:`DECAY_EXP` (``exp(-age / tau)``) or :data:`DECAY_LIN` (``1 - age / (3 tau)``, floored at 0).
        merge: Send every event to channel 0.
        n_pol: Polarity channels of the sensor.
        height: Sensor height in pixels.
        width: Sensor width in pixels.
        out: Zeroed float ``[N, 2r + 1, 2r + 1]``, one surface per event.
    """
    last = np.zeros((n_pol, height, width), dtype=np.int64)
    seen = np.zeros((n_pol, height, width), dtype=np.bool_)
    for j in range(len(events)):
        e = events[j]
        c = 0 if merge else e.p
        last[c, e.y, e.x] = e.t
        seen[c, e.y, e.x] = True
        for dy in range(-radius, radius + 1):
            yy = np.int64(e.y) + dy
            if yy < 0 or yy >= height:
                continue
            for dx in range(-radius, radius + 1):
                xx = np.int64(e.x) + dx
                if xx < 0 or xx >= width or not seen[c, yy, xx]:
                    continue
                out[j, dy + radius, dx + radius] = _decay(e.t - last[c, yy, xx], tau, decay)


@numba.njit(cache=True, nogil=True)
def averaged_time_surfaces(events, order, bounds, radius, time_window, tau, decay, hist):
    """HATS (Sironi et al. 2018): per (cell, polarity) group, the mean over its events of the local
    surface built from the *same group's* earlier events within ``radius`` and ``time_window``.

    ``order`` lists event indices grouped by ``group`` (time order kept inside a group) and
    ``bounds[g]:bounds[g + 1]`` is group ``g``'s range; ``hist`` is ``[n_groups, S, S]`` float.

    Args:
        events: EVENT_DTYPE records, time-sorted, coordinates inside the output.
        radius: Half the surface side: ``S = 2 radius + 1``.
        time_window: Only earlier events at most this many microseconds older count.
        tau: Decay time constant in microseconds.
        decay: :data:`DECAY_EXP` (``exp(-age / tau)``) or :data:`DECAY_LIN` (``1 - age / (3 tau)``, floored at 0).
    """
    for g in range(len(bounds) - 1):
        lo = bounds[g]
        hi = bounds[g + 1]
        if hi == lo:
            continue
        acc = hist[g]
        for a in range(lo, hi):
            ei = events[order[a]]
            acc[radius, radius] += 1.0
            b = a - 1
            while b >= lo:
                ek = events[order[b]]
                age = ei.t - ek.t
                if age > time_window:
                    break
                dx = np.int64(ek.x) - np.int64(ei.x)
                dy = np.int64(ek.y) - np.int64(ei.y)
                if -radius <= dx <= radius and -radius <= dy <= radius:
                    acc[dy + radius, dx + radius] += _decay(age, tau, decay)
                b -= 1
        acc /= hi - lo
