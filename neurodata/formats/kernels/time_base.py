"""Unwrapping a time counter that wraps (the TIME_HIGH of Prophesee RAW formats).

Each new raw value moves the unwrapped counter by the nearest step modulo the counter's range, ties
(exactly half the range) forward. A forward step of up to half the range is progress, possibly across
a wrap; a backward step of less than half is jitter and time steps back by that much.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def unwrap_high(high, new_high, mask):
    """The unwrapped counter after ``high`` when the raw ``new_high`` (``mask`` = range - 1) arrives."""
    half = (mask + 1) >> 1
    return high + ((new_high - (high & mask) + half - 1) & mask) - (half - 1)


def unwrap_highs(raw: np.ndarray, previous: int | None, mask: int) -> np.ndarray:
    """Vectorised :func:`unwrap_high` over a sequence; ``previous`` is the unwrapped value before it
    (None at the start of a file, where the first raw value is taken as is).

    Args:
        raw: The raw counter values in order.
        mask: The counter's range minus 1 (e.g. ``2**28 - 1``).
    """
    raw = raw.astype(np.int64)
    if previous is None:
        if len(raw) == 0:
            return raw
        previous = int(raw[0])
    half = (mask + 1) >> 1
    before = np.concatenate(([previous & mask], raw[:-1]))
    steps = ((raw - before + half - 1) & mask) - (half - 1)
    return previous + np.cumsum(steps)
