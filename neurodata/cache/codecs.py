"""Per-sample delta coding of event times, applied before storing and reversed on read.

Within a sample, event times rise slowly, so the stored ``t`` array holds each sample's first time
as is and every later event's difference to its predecessor (``t[k] - t[k-1]``). The differences
are small non-negative integers whose high bytes are zero, which Blosc's bit shuffle then removes:
on real recordings times cost 0.05-0.2 bytes/event instead of 8. Because every sample restarts
from an absolute time, any contiguous range of samples decodes on its own, and a sample's stored
values do not depend on where it lands in a shard.

Zarr's own ``delta`` filter cannot do this: it codes per chunk, not per sample. Decoding is a cumulative
sum; int64 arithmetic wraps modulo 2**64 on overflow, and the subtraction that restarts each
sample undoes the wrap exactly, so the round trip is exact for every int64 input (unsorted times
included: their negative differences just compress less well).
"""

from __future__ import annotations

import numpy as np


def sample_starts(offsets: np.ndarray) -> np.ndarray:
    """Start indices of the non-empty samples of a local ``offsets`` array (``offsets[0]`` = 0)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    nonempty = offsets[1:] > offsets[:-1]
    return offsets[:-1][nonempty]


def encode_times(t: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Absolute times -> per-sample deltas (first time of each sample kept absolute)."""
    t = np.asarray(t, dtype=np.int64)
    coded = np.empty_like(t)
    if t.size == 0:
        return coded
    coded[0] = t[0]
    np.subtract(t[1:], t[:-1], out=coded[1:])
    starts = sample_starts(offsets)
    coded[starts] = t[starts]
    return coded


def decode_times(coded: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-sample deltas -> absolute times; ``offsets`` are local to ``coded`` (start at 0).

    The readable reference; the reader uses the one-pass Numba kernel in ``kernels.py``.
    """
    coded = np.asarray(coded, dtype=np.int64)
    if coded.size == 0:
        return coded.copy()
    running = np.cumsum(coded)
    starts = sample_starts(offsets)
    counts = np.diff(np.append(starts, coded.size))
    before = running[starts] - coded[starts]  # the running sum just before each sample starts
    running -= np.repeat(before, counts)
    return running
