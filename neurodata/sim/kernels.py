"""The per-pixel DVS model as a Numba kernel, beside a readable pure-Python reference.

Both take log-intensity frames and mutable per-pixel state and append events. The model: each
pixel remembers the log intensity at its last event (``ref``). Between two frames the log
intensity moves linearly from ``a`` to ``b``; every time it crosses ``ref + k * C_on`` (or
``ref - k * C_off``) the pixel fires ON (OFF) at the interpolated crossing time and ``ref`` moves by
one threshold. An event within ``refractory`` of the pixel's previous event is suppressed (its
reference still moves, as in a real pixel whose reset is held).
"""

from __future__ import annotations

import numba
import numpy as np


def step_reference(a, b, t0, t1, ref, c_on, c_off, last_t, refractory):
    """Readable reference: events (t, x, y, p) lists for one frame interval; updates state in place.

    Args:
        a: Log intensity ``[H, W]`` at the interval's start.
        b: Log intensity ``[H, W]`` at its end.
        t0: Start of the interval in microseconds.
        t1: End of the interval in microseconds.
        ref: Each pixel's log intensity at its last event ``[H, W]`` (updated).
        c_on: Per-pixel ON thresholds ``[H, W]``.
        c_off: Per-pixel OFF thresholds ``[H, W]``.
        last_t: Each pixel's last emitted event time in microseconds ``[H, W]`` int64 (updated).
        refractory: Refractory period in microseconds.

    Returns:
        ``(t, x, y, p)`` tuples sorted by time.
    """
    out = []
    h, w = a.shape
    for y in range(h):
        for x in range(w):
            for t, p in _pixel_crossings(a[y, x], b[y, x], t0, t1, y, x, ref, c_on, c_off):
                if t - last_t[y, x] >= refractory:
                    out.append((t, x, y, p))
                    last_t[y, x] = t
    out.sort(key=lambda e: e[0])
    return out


def _pixel_crossings(a, b, t0, t1, y, x, ref, c_on, c_off):
    crossings = []
    span = b - a
    while True:
        if b - ref[y, x] >= c_on[y, x]:
            level, p = ref[y, x] + c_on[y, x], 1
        elif ref[y, x] - b >= c_off[y, x]:
            level, p = ref[y, x] - c_off[y, x], 0
        else:
            return crossings
        frac = (level - a) / span if span != 0 else 1.0
        frac = min(max(frac, 0.0), 1.0)
        crossings.append((int(t0 + frac * (t1 - t0)), p))
        ref[y, x] = level


@numba.njit(cache=True, nogil=True)
def step_numba(a, b, t0, t1, ref, c_on, c_off, last_t, refractory, out_t, out_x, out_y, out_p, n):
    """Numba twin of :func:`step_reference`, appending at ``n`` into the output columns.

    Returns the new count, or -1 when the outputs are too small (the caller grows them and retries
    with the state copies it kept).

    The pixel state and frame arguments (a, b, t0, t1, ref, c_on, c_off, last_t, refractory) are
    those of :func:`step_reference`.

    Args:
        out_t: Output times (int64), filled from index ``n``.
        out_x: Output columns (uint16), filled from index ``n``.
        out_y: Output rows (uint16), filled from index ``n``.
        out_p: Output polarities (uint8, 1 = ON), filled from index ``n``.
        n: Number of events already in the outputs.
    """
    h, w = a.shape
    cap = len(out_t)
    for y in range(h):
        for x in range(w):
            aa = a[y, x]
            bb = b[y, x]
            span = bb - aa
            while True:
                r = ref[y, x]
                if bb - r >= c_on[y, x]:
                    level = r + c_on[y, x]
                    p = 1
                elif r - bb >= c_off[y, x]:
                    level = r - c_off[y, x]
                    p = 0
                else:
                    break
                frac = (level - aa) / span if span != 0 else 1.0
                frac = min(max(frac, 0.0), 1.0)
                t = np.int64(t0 + frac * (t1 - t0))
                ref[y, x] = level
                if t - last_t[y, x] >= refractory:
                    if n >= cap:
                        return -1
                    out_t[n] = t
                    out_x[n] = x
                    out_y[n] = y
                    out_p[n] = p
                    last_t[y, x] = t
                    n += 1
    return n
