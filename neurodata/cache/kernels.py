"""Numba kernel for the reader's hot path: per-sample delta times (polarities in them or beside
them, see ``codecs.py``) -> a filled EVENT_DTYPE array.

One pass writes all four fields of the output straight from the stored columns; the numpy
reference (:func:`neurodata.cache.codecs.decode_times` plus four field copies) makes five passes
and two temporaries. Callers validate ``offsets`` first (Numba does not bounds-check).
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def decode_events_numba(coded, x, y, p, packed, offsets, out_t, out_x, out_y, out_p):
    """Fill the output columns; sample s is ``offsets[s]:offsets[s + 1]`` (int64 sums wrap like numpy's).
    ``packed``: ``coded`` holds each delta doubled plus the polarity (pass it as ``p`` too)."""
    shift = 1 if packed else 0
    mask = 1 if packed else 255
    for s in range(len(offsets) - 1):
        running = 0
        for k in range(offsets[s], offsets[s + 1]):
            running += coded[k] >> shift
            out_t[k] = running
            out_x[k] = x[k]
            out_y[k] = y[k]
            out_p[k] = p[k] & mask
