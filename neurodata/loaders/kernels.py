"""Numba kernel of the loaders' batch collation: event records -> one padded row per field.

The kernels that decode stored event columns (undoing the time coding) live with the cache format,
in :mod:`neurodata.cache.kernels`.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def pad_records_numba(events, t, x, y, p):
    """Records' fields -> the first ``len(events)`` items of one padded row per field (``t``,
    ``x``, ``y``, ``p``), in one pass; returns the smallest and largest coordinate seen, for the
    caller's range check."""
    lo = 0
    hi = 0
    for i in range(len(events)):
        record = events[i]
        xi = record.x
        yi = record.y
        t[i] = record.t
        x[i] = xi
        y[i] = yi
        p[i] = record.p
        lo = min(lo, xi, yi)
        hi = max(hi, xi, yi)
    return lo, hi
