"""Prophesee RAW EVT 2.0: 32-bit little-endian words, type in bits 28-31.

==== ========== =================================================================================
type name       payload
==== ========== =================================================================================
0/1  CD_OFF/ON  y = bits 0-10, x = bits 11-21, time bits 0-5 = bits 22-27; p = type
8    TIME_HIGH  time bits 6-33 = bits 0-27
A    EXT_TRIGGER (skipped)
E, F OTHERS, CONTINUED (skipped)
==== ========== =================================================================================

Time rule: t = high * 64 + low, where ``high`` is TIME_HIGH unwrapped past its 28 bits exactly as
EVT 3.0 unwraps its 12 (see :mod:`neurodata.formats.kernels.evt3`): a drop of half the range (2**27
steps, 2.4 h) or more is a wrap of the 34-bit time (every 4.8 h), a smaller drop is backward jitter
taken as written. CD words before the first TIME_HIGH have no time base and are skipped (as OpenEB
does).
"""

from __future__ import annotations

import numba
import numpy as np

from .status import DONE, OUTPUT_FULL, UNKNOWN_TYPE, X_BEYOND_WIDTH, Y_BEYOND_HEIGHT
from .time_base import unwrap_high, unwrap_highs

HIGH, HAS_TIME, T_OFFSET = range(3)
STATE_SIZE = 3
HIGH_MASK = (1 << 28) - 1
HALF_RANGE = 1 << 27
SKIPPED_TYPES = (0xA, 0xE, 0xF)


def new_state(t_offset: int = 0) -> np.ndarray:
    """The decoder state at the start of the data: ``[TIME_HIGH, has a TIME_HIGH been seen, t_offset]``.

    Args:
        t_offset: Microseconds added to every decoded time (the header's ``neurodata_time_offset_us``).
    """
    state = np.zeros(STATE_SIZE, dtype=np.int64)
    state[T_OFFSET] = t_offset
    return state


def decode_reference(words: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, ...]:
    """Readable vectorised decoder (no geometry checks): columns t, x, y, p; updates ``state``.

    Args:
        words: The EVT 2.0 words (uint32).
        state: From :func:`new_state`, carried between calls.
    """
    words = words.astype(np.int64)
    kind = words >> 28
    known = np.isin(kind, (0, 1, 8, *SKIPPED_TYPES))
    if not known.all():
        raise ValueError(f"unknown EVT 2.0 word type {kind[~known][0]:#x}")
    is_high = kind == 8
    full_highs = unwrap_highs(words[is_high] & HIGH_MASK, state[HIGH] if state[HAS_TIME] else None, HIGH_MASK)
    # each word's time base is the last TIME_HIGH at or before it (index 0: the one before the block)
    high_index = np.cumsum(is_high)
    is_cd = (kind <= 1) & ((high_index > 0) | bool(state[HAS_TIME]))
    bases = np.concatenate(([state[HIGH]], full_highs))
    cd = words[is_cd]
    t = state[T_OFFSET] + (bases[high_index[is_cd]] << 6) + ((cd >> 22) & 0x3F)
    if is_high.any():
        state[HIGH], state[HAS_TIME] = full_highs[-1], 1
    return t, (cd >> 11) & 0x7FF, cd & 0x7FF, kind[is_cd]


@numba.njit(cache=True, nogil=True)
def decode_numba(words, pos, state, out, width, height):
    """Decode ``words[pos:]`` (uint32) into the event array ``out``.

    Returns (stop word, events written, status) like the EVT 3.0 kernel.

    Args:
        words: The EVT 2.0 words (uint32).
        pos: Index of the first word to decode.
        state: From :func:`new_state` (updated).
        out: EVENT_DTYPE output array.
        width: Bound on x (the sensor width, or a bound never reached when unknown).
        height: Bound on y, likewise.
    """
    high = state[HIGH]
    has_time = state[HAS_TIME]
    base = state[T_OFFSET] + (high << 6)
    limit = len(out) - 1
    end = len(words)
    n = 0
    status = DONE
    while pos < end:
        if n > limit:
            status = OUTPUT_FULL
            break
        word = np.int64(words[pos])
        kind = word >> 28
        if kind <= 1:
            if has_time:
                xx = (word >> 11) & 0x7FF
                yy = word & 0x7FF
                if xx >= width:
                    status = X_BEYOND_WIDTH
                    break
                if yy >= height:
                    status = Y_BEYOND_HEIGHT
                    break
                event = out[n]
                event.t = base + ((word >> 22) & 0x3F)
                event.x = xx
                event.y = yy
                event.p = kind
                n += 1
        elif kind == 8:
            new_high = word & HIGH_MASK
            high = unwrap_high(high, new_high, HIGH_MASK) if has_time else new_high
            has_time = 1
            base = state[T_OFFSET] + (high << 6)
        elif kind != 0xA and kind != 0xE and kind != 0xF:
            status = UNKNOWN_TYPE
            break
        pos += 1
    state[HIGH] = high
    state[HAS_TIME] = has_time
    return pos, n, status


@numba.njit(cache=True, nogil=True)
def encode_numba(t, x, y, p, state, out):
    """Encode time-ordered events as EVT 2.0 words into ``out`` (uint32); returns words written.

    ``state`` = [time >> 6 of the last TIME_HIGH written, or -1]. Gaps of half the 28-bit TIME_HIGH
    range or more are bridged by intermediate TIME_HIGH words so readers can count the wraps.
    ``out`` needs 2 words per event plus the bridges.

    Args:
        t: Timestamps in microseconds, sorted, relative to the header's time offset.
        x: Columns (11 bits).
        y: Rows (11 bits).
        p: Polarities 0/1.
    """
    high = state[0]
    n_out = 0
    for i in range(len(t)):
        new_high = t[i] >> 6
        if new_high != high:
            if high >= 0:
                while new_high - high >= HALF_RANGE:
                    high += HALF_RANGE - 1
                    out[n_out] = (8 << 28) | (high & HIGH_MASK)
                    n_out += 1
            out[n_out] = (8 << 28) | (new_high & HIGH_MASK)
            n_out += 1
            high = new_high
        out[n_out] = (np.int64(p[i] != 0) << 28) | ((t[i] & 0x3F) << 22) | (np.int64(x[i]) << 11) | y[i]
        n_out += 1
    state[0] = high
    return n_out
