"""Event Stream 2.x event bytes (the neuromorphic-paris format: Sepia, Tarsier, loris, faery).

Every event starts with a time byte holding the microseconds elapsed since the previous event;
larger gaps are carried by *overflow* bytes before it, and *reset* bytes (skipped) may stand where an
event could start. The stream type (header byte 15) fixes the rest:

======= ================================================== ========== =================================
type    time byte                                          overflow   then
======= ================================================== ========== =================================
generic ``dt`` (8 bits)                                    0xFF: 254  size bytes (7 bits each, bit 0 =
                                                                      more follow), that many data bytes
DVS     ``dt << 1 | is_increase``                          0xFF: 127  x, y (u16 LE each)
ATIS    ``dt << 2 | polarity << 1 | is_tc``                0xFD-0xFF: x, y (u16 LE each)
                                                           (b & 3)*63
color   ``dt`` (8 bits)                                    0xFF: 254  x, y (u16 LE), r, g, b bytes
======= ================================================== ========== =================================

Reset bytes: 0xFE (0xFC for ATIS). What an event becomes in :data:`~neurodata.events.EVENT_DTYPE`:
DVS events as written (p = is_increase); ATIS change-detection events (is_tc = 0) likewise, while
threshold crossings (exposure measurements, is_tc = 1) are skipped as faery does; color events with
p = 1 (the colour is not kept); generic events with x = y = p = 0 (their payload is not kept).

The file's y axis points up (y = 0 is the bottom row, as in the original tools); events are
returned with y = 0 at the top like every other format here and faery: ``y = height - 1 - y_file``.
"""

from __future__ import annotations

import numba
import numpy as np

from .status import DONE, OUTPUT_FULL, X_BEYOND_WIDTH, Y_BEYOND_HEIGHT

GENERIC, DVS, ATIS, DISPLAY, COLOR = range(5)
TYPE_NAMES = {GENERIC: "generic", DVS: "DVS", ATIS: "ATIS", DISPLAY: "display", COLOR: "color"}
# bytes of an event after its time byte (generic: at least one size byte)
TAIL = {GENERIC: 1, DVS: 4, ATIS: 4, COLOR: 7}
SIZE_TOO_LARGE = 5  # a generic event's size bytes announce more than 2**56 data bytes
MAX_SIZE_SHIFT = 56
DVS_OVERFLOW = 127


def decode_reference(data: bytes, kind: int, t: int, height: int) -> tuple[list, list, list, list, int, int]:
    """Readable byte-by-byte decoder of whole events (no geometry checks, ``height`` for the y flip).

    Returns lists t, x, y, p, the time after the last whole event and the bytes consumed (an event
    cut by the end of ``data`` is left unconsumed).

    Args:
        data: The event bytes.
        kind: The stream type (:data:`GENERIC`, :data:`DVS`, :data:`ATIS` or :data:`COLOR`).
        t: Time in microseconds of the event before ``data``.
        height: Sensor height in pixels (y is flipped within it).
    """
    ts, xs, ys, ps = [], [], [], []
    pos = 0
    while pos < len(data):
        b = data[pos]
        if kind == ATIS and b >= 0xFC:
            t += (b & 3) * 63
            pos += 1
            continue
        if kind != ATIS and b >= 0xFE:
            t += (DVS_OVERFLOW if kind == DVS else 254) if b == 0xFF else 0
            pos += 1
            continue
        dt = b >> {DVS: 1, ATIS: 2}.get(kind, 0)
        if kind == GENERIC:
            n, shift, at = 0, 0, pos + 1
            while at < len(data) and data[at] & 1:
                n, shift, at = n | (data[at] >> 1) << shift, shift + 7, at + 1
            if at >= len(data) or at + 1 + (n | (data[at] >> 1) << shift) > len(data):
                break
            end, x, y, p = at + 1 + (n | (data[at] >> 1) << shift), 0, 0, 0
        else:
            end = pos + 1 + TAIL[kind]
            if end > len(data):
                break
            x = data[pos + 1] | data[pos + 2] << 8
            y = height - 1 - (data[pos + 3] | data[pos + 4] << 8)
            p = {DVS: b & 1, ATIS: (b >> 1) & 1}.get(kind, 1)
        t += dt
        pos = end
        if kind == ATIS and b & 1:
            continue  # a threshold crossing, not a change event
        ts.append(t), xs.append(x), ys.append(y), ps.append(p)
    return ts, xs, ys, ps, t, pos


@numba.njit(cache=True, nogil=True)
def decode_numba(data, kind, state, out, width, height):
    """Decode the whole events of ``data`` (uint8) into ``out``; see the module doc.

    ``state[0]`` is the time of the previous event (updated). Returns (stop byte, events written,
    status): ``stop`` is the start of the first event not decoded, because the data ends inside it
    (DONE), ``out`` is full (OUTPUT_FULL) or it is corrupt (an error status).

    Args:
        data: The event bytes.
        kind: The stream type.
        state: ``[time of the previous event]`` (int64, updated).
        out: EVENT_DTYPE output array.
        width: Bound on x.
        height: Sensor height (bounds y and flips it).
    """
    t = state[0]
    end = len(data)
    limit = len(out)
    tail = 7 if kind == COLOR else 4
    shift = 2 if kind == ATIS else (1 if kind == DVS else 0)
    n = 0
    pos = 0
    status = DONE
    while pos < end:
        b = np.int64(data[pos])
        if kind == ATIS:
            if b >= 0xFC:
                t += (b & 3) * 63
                pos += 1
                continue
        elif b >= 0xFE:
            if b == 0xFF:
                t += DVS_OVERFLOW if kind == DVS else 254
            pos += 1
            continue
        if kind == GENERIC:
            size = np.int64(0)
            bits = 0
            at = pos + 1
            while at < end and data[at] & 1:
                size |= np.int64(data[at] >> 1) << bits
                bits += 7
                at += 1
                if bits > MAX_SIZE_SHIFT:
                    break
            if bits > MAX_SIZE_SHIFT:
                status = SIZE_TOO_LARGE
                break
            if at >= end:
                break
            size |= np.int64(data[at] >> 1) << bits
            if size > end - at - 1:
                break
            if n >= limit:
                status = OUTPUT_FULL
                break
            t += b
            event = out[n]
            event.t = t
            event.x = 0
            event.y = 0
            event.p = 0
            n += 1
            pos = at + 1 + size
            continue
        if pos + tail >= end:
            break
        xx = np.int64(data[pos + 1]) | (np.int64(data[pos + 2]) << 8)
        yy = np.int64(data[pos + 3]) | (np.int64(data[pos + 4]) << 8)
        if xx >= width:
            status = X_BEYOND_WIDTH
            break
        if yy >= height:
            status = Y_BEYOND_HEIGHT
            break
        if n >= limit:
            status = OUTPUT_FULL
            break
        t += b >> shift
        pos += tail + 1
        if kind == ATIS and b & 1:
            continue
        event = out[n]
        event.t = t
        event.x = xx
        event.y = height - 1 - yy
        event.p = (b & 1) if kind == DVS else (((b >> 1) & 1) if kind == ATIS else 1)
        n += 1
    state[0] = t
    return pos, n, status


def dvs_encoded_size(t: np.ndarray, previous: int) -> int:
    """Bytes :func:`encode_dvs_numba` writes for the time column ``t`` after time ``previous``."""
    gaps = np.diff(t, prepend=previous)
    return 5 * len(t) + int((gaps // DVS_OVERFLOW).sum())


@numba.njit(cache=True, nogil=True)
def encode_dvs_numba(t, x, y, p, previous, height, out):
    """Encode time-ordered events (y = 0 at the top) as DVS events into ``out`` (uint8, sized by
    :func:`dvs_encoded_size`), after an event at time ``previous``; returns the bytes written.

    Args:
        t: Timestamps in microseconds, sorted, at least ``previous``.
        x: Columns.
        y: Rows, 0 at the top.
        p: Polarities 0/1.
        previous: Time of the last event already written (0 at the stream start).
        height: Sensor height in pixels (y is flipped within it).
        out: Output bytes.
    """
    k = 0
    for i in range(len(t)):
        dt = t[i] - previous
        previous = t[i]
        while dt >= DVS_OVERFLOW:
            out[k] = 0xFF
            k += 1
            dt -= DVS_OVERFLOW
        yy = height - 1 - np.int64(y[i])
        out[k] = (dt << 1) | (p[i] != 0)
        out[k + 1] = x[i] & 0xFF
        out[k + 2] = x[i] >> 8
        out[k + 3] = yy & 0xFF
        out[k + 4] = yy >> 8
        k += 5
    return k
