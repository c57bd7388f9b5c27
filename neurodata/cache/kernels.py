"""Numba kernel for the reader's hot path: per-sample delta times -> a filled EVENT_DTYPE array.

One pass writes all four fields of the output straight from the stored columns; the numpy
reference (:func:`neurodata.cache.codecs.decode_times` plus four field copies) makes five passes
and two temporaries. Callers validate ``offsets`` first (Numba does not bounds-check).
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def decode_events_numba(coded, x, y, p, offsets, out_t, out_x, out_y, out_p):
    """Fill the output columns; sample s is ``offsets[s]:offsets[s + 1]`` (int64 sums wrap like numpy's)."""
    for s in range(len(offsets) - 1):
        running = 0
        for k in range(offsets[s], offsets[s + 1]):
            running += coded[k]
            out_t[k] = running
            out_x[k] = x[k]
            out_y[k] = y[k]
            out_p[k] = p[k]
