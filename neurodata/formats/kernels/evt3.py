"""Prophesee RAW EVT 3.0: 16-bit little-endian words, type in bits 12-15.

==== =========== ============================================================================
type name        payload
==== =========== ============================================================================
0    ADDR_Y      y = bits 0-10 (bit 11: system type); following X words are CD events
1    EM ADDR_Y   exposure-measurement row (ATIS): following X words are not CD events
2    ADDR_X      x = bits 0-10, p = bit 11: one event at (x, y)
3    VECT_BASE_X base x = bits 0-10, p = bit 11
4    VECT_12     12-bit validity mask: event i at base_x + i; then base_x += 12
5    VECT_8      8-bit validity mask: event i at base_x + i; then base_x += 8
6    TIME_LOW    time bits 0-11
8    TIME_HIGH   time bits 12-23
7/F  CONTINUED   payload of a preceding OTHERS word (skipped)
A, E EXT_TRIGGER, OTHERS (skipped)
==== =========== ============================================================================

Time rule: t = high * 2**12 + low, where ``high`` is TIME_HIGH unwrapped past its 12 bits: each new
TIME_HIGH moves ``high`` by the step of at most half the 4096-step range (8.4 s) that reaches it, so
a drop of 2048 or more steps is a wrap of the 24-bit time base (counted, as in Prophesee's OpenEB)
and a smaller drop is backward jitter taken as written: time steps back a little rather than jumping
16.8 s ahead (OpenEB would count a wrap for a jitter across the 0xFFF -> 0 boundary). A file
therefore must not skip 2048 or more TIME_HIGH steps at once (cameras and our writer never do).
TIME_LOW is taken as written: it counts no wraps (the following TIME_HIGH carries them), and a
TIME_HIGH that changes the high bits resets it to 0 until the next TIME_LOW. Events before the first
TIME_HIGH have no time base and are skipped, as OpenEB does.
"""

from __future__ import annotations

import numba
import numpy as np

from .status import DONE, OUTPUT_FULL, UNKNOWN_TYPE, X_BEYOND_WIDTH, Y_BEYOND_HEIGHT
from .time_base import unwrap_high

# indices into the decoder state array
Y, BASE_X, POL, HIGH, LOW, HAS_TIME, IS_CD, T_OFFSET = range(8)
STATE_SIZE = 8
MAX_EVENTS_PER_WORD = 12
HIGH_MASK = 0xFFF
HALF_RANGE = 1 << 11
# the index of a single set bit b < 36 from (1 << b) % 37, which differs for every such b
BIT_INDEX = np.zeros(37, dtype=np.int64)
BIT_INDEX[[(1 << b) % 37 for b in range(36)]] = np.arange(36)


def new_state(t_offset: int = 0) -> np.ndarray:
    """The decoder state at the start of the data: row, vector base, polarity, time base and CD flag.

    Args:
        t_offset: Microseconds added to every decoded time (the header's ``neurodata_time_offset_us``).
    """
    state = np.zeros(STATE_SIZE, dtype=np.int64)
    state[IS_CD] = 1
    state[T_OFFSET] = t_offset
    return state


def decode_reference(words: np.ndarray, state: np.ndarray) -> tuple[list, list, list, list]:
    """Readable word-by-word decoder (pure Python, no geometry checks): lists t, x, y, p; updates ``state``.

    Args:
        words: The EVT 3.0 words (uint16).
        state: From :func:`new_state`, carried between calls.
    """
    t, x, y, p = [], [], [], []

    def emit(xx: int, pp: int) -> None:
        if state[IS_CD] and state[HAS_TIME]:
            t.append(int(state[T_OFFSET] + (state[HIGH] << 12) + state[LOW]))
            x.append(xx)
            y.append(int(state[Y]))
            p.append(pp)

    for word in words.tolist():
        kind, payload = word >> 12, word & 0xFFF
        if kind == 0:
            state[Y], state[IS_CD] = payload & 0x7FF, 1
        elif kind == 1:
            state[IS_CD] = 0
        elif kind == 2:
            emit(payload & 0x7FF, payload >> 11)
        elif kind == 3:
            state[BASE_X], state[POL] = payload & 0x7FF, payload >> 11
        elif kind in (4, 5):
            size = 12 if kind == 4 else 8
            for i in range(size):
                if payload >> i & 1:
                    emit(int(state[BASE_X]) + i, int(state[POL]))
            state[BASE_X] += size
        elif kind == 6:
            state[LOW] = payload
        elif kind == 8:
            if payload != state[HIGH] & HIGH_MASK:
                state[LOW] = 0
            state[HIGH], state[HAS_TIME] = (
                unwrap_high(state[HIGH], payload, HIGH_MASK) if state[HAS_TIME] else payload,
                1,
            )
        elif kind not in (7, 0xA, 0xE, 0xF):
            raise ValueError(f"unknown EVT 3.0 word type {kind:#x}")
    return t, x, y, p


@numba.njit(cache=True, nogil=True)
def decode_numba(words, pos, state, out, width, height):
    """Decode ``words[pos:]`` (uint16) into the event array ``out``; see the module doc.

    Returns (stop word, events written, status): stops before a word that could overflow the output
    (OUTPUT_FULL) or that is corrupt (an error status), with ``state`` updated up to ``stop``.
    Sensor data is mostly ADDR_Y and ADDR_X words in an irregular order, so these two share one
    branch-free path (a branch between them would be mispredicted often), and vectors loop over
    their set bits only (real vectors hold about one event).

    Args:
        width: Bound on x (the sensor width, or a bound never reached when unknown).
        height: Bound on y, likewise.
    """
    yy = state[Y]
    base_x = state[BASE_X]
    pol = state[POL]
    high = state[HIGH]
    low = state[LOW]
    has_time = state[HAS_TIME]
    is_cd = state[IS_CD]
    t_offset = state[T_OFFSET]
    now = t_offset + (high << 12) + low
    emit = is_cd and has_time  # whether ADDR_X / vector words produce events
    limit = len(out) - MAX_EVENTS_PER_WORD
    end = len(words)
    n = 0
    status = DONE
    while pos < end:
        word = np.int64(words[pos])
        kind = word >> 12
        if (kind & 0xD) == 0:  # ADDR_Y (0) or ADDR_X (2), most words: handled without a branch between them
            if n > limit:
                status = OUTPUT_FULL
                break
            addr = word & 0x7FF
            is_x = kind >> 1
            fire = is_x & emit  # an ADDR_X word that makes an event
            x_bad = addr >= width
            y_bad = yy >= height
            if fire & (x_bad | y_bad):
                status = X_BEYOND_WIDTH if x_bad else Y_BEYOND_HEIGHT
                break
            event = out[n]  # written for every word, kept (n advances) only when it fires
            event.t = now
            event.x = addr
            event.y = yy
            event.p = (word >> 11) & 1
            n += fire
            is_y = 1 - is_x  # an ADDR_Y word sets the row and ends an exposure-measurement row
            yy += (addr - yy) * is_y
            is_cd |= is_y
            emit = (emit & is_x) | (has_time & is_y)
        elif kind == 4 or kind == 5:
            if n > limit:
                status = OUTPUT_FULL
                break
            size = 12 if kind == 4 else 8
            mask = word & (0xFFF if kind == 4 else 0xFF)
            if emit and mask:
                if yy >= height:
                    status = Y_BEYOND_HEIGHT
                    break
                if base_x + size > width:  # rare: only vectors at the right edge need the exact check
                    top = size - 1
                    while not (mask >> top) & 1:
                        top -= 1
                    if base_x + top >= width:
                        status = X_BEYOND_WIDTH
                        break
                while mask:  # one pass per set bit: sensors set few of the 8 or 12
                    low_bit = mask & -mask
                    event = out[n]
                    event.t = now
                    event.x = base_x + BIT_INDEX[low_bit % 37]
                    event.y = yy
                    event.p = pol
                    n += 1
                    mask ^= low_bit
            base_x += size
        elif kind == 3:
            base_x = word & 0x7FF
            pol = (word >> 11) & 1
        elif kind == 6:
            low = word & 0xFFF
            now = t_offset + (high << 12) + low
        elif kind == 8:
            new_high = word & HIGH_MASK
            if new_high != high & HIGH_MASK:
                low = 0
            high = unwrap_high(high, new_high, HIGH_MASK) if has_time else new_high
            has_time = 1
            emit = is_cd
            now = t_offset + (high << 12) + low
        elif kind == 1:
            is_cd = 0
            emit = 0
        elif kind != 7 and kind != 0xA and kind != 0xE and kind != 0xF:
            status = UNKNOWN_TYPE
            break
        pos += 1
    state[Y] = yy
    state[BASE_X] = base_x
    state[POL] = pol
    state[HIGH] = high
    state[LOW] = low
    state[HAS_TIME] = has_time
    state[IS_CD] = is_cd
    return pos, n, status


@numba.njit(cache=True, nogil=True)
def encode_numba(t, x, y, p, state, out):
    """Encode time-ordered events as EVT 3.0 words into ``out`` (uint16); returns words written.

    ``state`` = [time >> 12 of the last TIME_HIGH written (-1: none), last TIME_LOW (-1: none),
    last y (-1: none)] persists across calls. Runs of at least 3 consecutive events with the same
    t, y and p and increasing x within 12 columns become VECT_BASE_X + VECT_12; others ADDR_X.
    A gap of 2048 or more TIME_HIGH steps is bridged by intermediate TIME_HIGH words, and every wrap
    of the 24-bit time base is written out as TIME_HIGH 0xFFF then 0, so that readers count the
    wraps whether they take any drop of half the range as one (ours, OpenEB) or only 0xFFF -> 0
    (faery). ``out`` needs 4 words per event plus the bridges
    (:meth:`~neurodata.formats.prophesee_writer.RawWriter.encode` sizes it).
    """
    high = state[0]
    low = state[1]
    row = state[2]
    n_out = 0
    i = 0
    n = len(t)
    while i < n:
        ti = t[i]
        new_high = ti >> 12
        if new_high != high:
            if high < 0:
                high = new_high
                out[n_out] = 0x8000 | (high & 0xFFF)
                n_out += 1
            while high != new_high:
                if (high & 0xFFF) == 0xFFF:
                    high += 1  # the wrap itself, 0xFFF -> 0
                else:
                    high = min(new_high, high + HALF_RANGE - 1, high | 0xFFF)
                out[n_out] = 0x8000 | (high & 0xFFF)
                n_out += 1
            low = -1
        if (ti & 0xFFF) != low:
            low = ti & 0xFFF
            out[n_out] = 0x6000 | low
            n_out += 1
        if y[i] != row:
            row = y[i]
            out[n_out] = row
            n_out += 1
        j = i + 1
        while (
            j < n
            and t[j] == ti
            and y[j] == row
            and (p[j] != 0) == (p[i] != 0)
            and x[j] > x[j - 1]
            and x[j] - x[i] < 12
        ):
            j += 1
        if j - i >= 3:
            out[n_out] = 0x3000 | (np.int64(p[i] != 0) << 11) | x[i]
            mask = 0
            for k in range(i, j):
                mask |= 1 << (x[k] - x[i])
            out[n_out + 1] = 0x4000 | mask
            n_out += 2
            i = j
        else:
            out[n_out] = 0x2000 | (np.int64(p[i] != 0) << 11) | x[i]
            n_out += 1
            i += 1
    state[0] = high
    state[1] = low
    state[2] = row
    return n_out
