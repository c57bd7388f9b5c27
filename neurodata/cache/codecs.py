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

Polarities ride in the times' lowest bit where they can (time coding
:data:`DELTA_POLARITY`, layout 3): the stored ``t`` is ``delta * 2 + p`` and no ``p`` array is
stored. A fourth column costs its own decompression, where the bit costs the times about what the
``p`` column stored (figures in docs/sections/cache.md, measured by
``benchmarks/bench_cache_coding.py``).
A cache packs them when every polarity is 0 or 1 and every delta is within +-2**62 (so the
doubling cannot wrap); otherwise it stores ``p`` as its own column (:data:`DELTA`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np


def sample_starts(offsets: np.ndarray) -> np.ndarray:
    """Start indices of the non-empty samples of a local ``offsets`` array (``offsets[0]`` = 0)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    nonempty = offsets[1:] > offsets[:-1]
    return offsets[:-1][nonempty]


def encode_times(t: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Absolute times -> per-sample deltas (first time of each sample kept absolute).

    Args:
        t: Event times in microseconds (int64), samples back to back.
        offsets: Sample boundaries local to ``t`` (``offsets[0]`` = 0).
    """
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


DELTA = "per-sample-delta"  # the root attribute ``time_coding``: t holds deltas, p its own column
DELTA_POLARITY = "per-sample-delta-polarity"  # t holds delta * 2 + p, no p column
TIME_CODINGS = (DELTA, DELTA_POLARITY)
PACKABLE_DELTAS = (-(2**62), 2**62 - 1)  # deltas whose doubling fits int64


def stored_fields(time_coding: str) -> tuple[str, ...]:
    """The event columns a cache of this time coding stores.

    Args:
        time_coding: :data:`DELTA` or :data:`DELTA_POLARITY`.
    """
    return ("t", "x", "y") if time_coding == DELTA_POLARITY else ("t", "x", "y", "p")


def time_coding_of(fields: Collection[str]) -> str:
    """The time coding of a cache storing the event columns ``fields`` (:func:`stored_fields`' inverse)."""
    return DELTA if "p" in fields else DELTA_POLARITY


def polarity_packs(t_range: list[int] | None, p_range: list[int] | None) -> bool:
    """Whether coded times in ``[min, max]`` range ``t_range`` and polarities in ``p_range`` (None:
    no events) can share the times' column."""
    return (p_range is None or (0 <= p_range[0] and p_range[1] <= 1)) and (
        t_range is None or (PACKABLE_DELTAS[0] <= t_range[0] and t_range[1] <= PACKABLE_DELTAS[1])
    )


def packed_range(t_range: list[int] | None) -> list[int] | None:
    """The range of ``delta * 2 + p`` for deltas in ``t_range``."""
    return None if t_range is None else [2 * t_range[0], 2 * t_range[1] + 1]


def pack_polarity(coded: np.ndarray, p: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Coded times and 0/1 polarities -> ``coded * 2 + p`` (int64; the caller checked
    :func:`polarity_packs`), in ``out`` (an int64 array of their length, ``coded`` itself allowed)
    or one new array."""
    packed = np.left_shift(np.asarray(coded, dtype=np.int64), 1, out=out)
    return np.bitwise_or(packed, np.asarray(p), out=packed, casting="unsafe")


def stored_columns(
    columns: Mapping[str, np.ndarray], time_coding: str, overwrite: bool = False
) -> dict[str, np.ndarray]:
    """Coded columns (per-sample delta times, x, y, p) -> the columns a cache of ``time_coding``
    stores (the writer's side; :func:`decoder_columns` is the reader's). ``overwrite``: the times
    (int64) may be packed in place, sparing a new array when the caller owns them."""
    if time_coding == DELTA_POLARITY:
        in_place = overwrite and columns["t"].dtype == np.int64  # narrower times are packed wider
        t = pack_polarity(columns["t"], columns["p"], out=columns["t"] if in_place else None)
        return {"t": t, "x": columns["x"], "y": columns["y"]}
    return dict(columns)


def decoder_columns(stored: Sequence[np.ndarray], time_coding: str) -> tuple:
    """The stored columns of a cache of ``time_coding``, in :func:`stored_fields` order -> the first
    five arguments of the decode kernels (:mod:`.kernels`): t, x, y, p (the times again where they
    carry the polarities) and whether they do."""
    if time_coding == DELTA_POLARITY:
        return (*stored, stored[0], True)
    return (*stored, False)


def unpack_polarity(stored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``coded * 2 + p`` -> (coded int64, p uint8): the readable reference of what the kernels do
    inline (an arithmetic shift, so negative deltas come back too).

    Args:
        stored: The stored ``t`` column of a :data:`DELTA_POLARITY` cache.
    """
    stored = np.asarray(stored, dtype=np.int64)
    return stored >> 1, (stored & 1).astype(np.uint8)
