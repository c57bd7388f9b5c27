"""Numba kernels for the per-pixel event filters; `reference.py` holds vectorised numpy twins.

Kernels read the EVENT_DTYPE records directly. Callers make sure ``x < width`` and
``y < height`` (Numba does not bounds-check).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def denoise_mask(events, filter_time, width, height, ordered=None):
    """Keep an event when one of its 4 neighbours fired less than ``filter_time`` before it
    (earlier in the stream, same timestamp included).

    Args:
        events: EVENT_DTYPE records, time-sorted, inside the ``width`` x ``height`` grid.
        filter_time: Microseconds.
        width: Grid width in pixels.
        height: Grid height in pixels.
        ordered: A one-element bool array set to whether the events were time-sorted (the mask
            means nothing otherwise), found in the same pass; None: not asked.
    """
    last = np.zeros((height, width), dtype=np.int64)
    seen = np.zeros((height, width), dtype=np.bool_)
    keep = np.zeros(len(events), dtype=np.bool_)
    backwards = False
    previous = events[0].t if len(events) else 0
    for j in range(len(events)):
        e = events[j]
        xx = np.int64(e.x)
        yy = np.int64(e.y)
        tj = e.t
        backwards |= tj < previous
        previous = tj
        ok = False
        if xx > 0 and seen[yy, xx - 1] and tj - last[yy, xx - 1] < filter_time:
            ok = True
        elif xx + 1 < width and seen[yy, xx + 1] and tj - last[yy, xx + 1] < filter_time:
            ok = True
        elif yy > 0 and seen[yy - 1, xx] and tj - last[yy - 1, xx] < filter_time:
            ok = True
        elif yy + 1 < height and seen[yy + 1, xx] and tj - last[yy + 1, xx] < filter_time:
            ok = True
        keep[j] = ok
        last[yy, xx] = tj
        seen[yy, xx] = True
    if ordered is not None:
        ordered[0] = not backwards
    return keep


@numba.njit(cache=True, nogil=True)
def refractory_mask(events, delta, width, height, ordered=None):
    """Keep an event unless its pixel fired (kept or not) at most ``delta`` before it.

    Args:
        events: EVENT_DTYPE records, time-sorted, inside the ``width`` x ``height`` grid.
        delta: The refractory period in microseconds.
        width: Grid width in pixels.
        height: Grid height in pixels.
        ordered: As in :func:`denoise_mask`.
    """
    last = np.zeros((height, width), dtype=np.int64)
    seen = np.zeros((height, width), dtype=np.bool_)
    keep = np.zeros(len(events), dtype=np.bool_)
    backwards = False
    previous = events[0].t if len(events) else 0
    for j in range(len(events)):
        e = events[j]
        xx = np.int64(e.x)
        yy = np.int64(e.y)
        keep[j] = not seen[yy, xx] or e.t - last[yy, xx] > delta
        backwards |= e.t < previous
        previous = e.t
        last[yy, xx] = e.t
        seen[yy, xx] = True
    if ordered is not None:
        ordered[0] = not backwards
    return keep
