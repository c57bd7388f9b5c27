"""AEDAT 3.1 packets (libcaer layout), little-endian.

A packet is a 28-byte header ``i16 eventType, i16 eventSource, i32 eventSize, i32 eventTSOffset,
i32 eventTSOverflow, i32 eventCapacity, i32 eventNumber, i32 eventValid`` followed by
``eventCapacity * eventSize`` bytes. Only eventType 1 holds polarity events (8 bytes: ``u32 data,
i32 timestamp``; data bit0 = valid, bit1 = p, bits2-16 = y, bits17-31 = x); the first
``eventNumber`` slots are filled and events whose valid bit is 0 are dropped.
Full time = (eventTSOverflow << 31) | timestamp.

:func:`scan_packets_numba` walks and checks packet headers (it reads nothing past a header it
has not bounds-checked); :func:`decode_polarity_numba` then decodes the checked polarity packets.
"""

from __future__ import annotations

import numba
import numpy as np

PACKET_HEADER = 28
POLARITY = 1
SPECIAL = 0
POLARITY_SIZE = 8
TS_OVERFLOW_SHIFT = 31
MAX_PACKET_BYTES = (1 << 31) - 1

HEADER_DTYPE = np.dtype(
    [
        ("type", "<i2"),
        ("source", "<i2"),
        ("size", "<i4"),
        ("ts_offset", "<i4"),
        ("ts_overflow", "<i4"),
        ("capacity", "<i4"),
        ("number", "<i4"),
        ("valid", "<i4"),
    ]
)
POLARITY_DTYPE = np.dtype([("data", "<u4"), ("ts", "<i4")])

# scan_packets_numba error codes, explained by the format module
OK = 0
BAD_SIZE = 1
BAD_CAPACITY = 2
BAD_NUMBER = 3
BAD_POLARITY_SIZE = 4
BAD_OVERFLOW = 5
TOO_LARGE = 6
# decode_polarity_numba statuses (beside OK)
NEGATIVE_TIMESTAMP = 7
OUTSIDE_SENSOR = 8
UNKNOWN_SIZE = 1 << 15  # x and y are 15-bit fields: no bound


def decode_reference(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Readable numpy decoder of a run of whole, well-formed packets: columns t, x, y, p.

    Args:
        buf: The packets' bytes (uint8), starting at a packet header.
    """
    parts = []
    pos = 0
    while pos + PACKET_HEADER <= len(buf):
        head = buf[pos : pos + PACKET_HEADER].view(HEADER_DTYPE)[0]
        body = pos + PACKET_HEADER
        if head["type"] == POLARITY:
            events = buf[body : body + int(head["number"]) * POLARITY_SIZE].view(POLARITY_DTYPE)
            events = events[(events["data"] & 1) == 1]
            data = events["data"].astype(np.int64)
            t = (np.int64(head["ts_overflow"]) << TS_OVERFLOW_SHIFT) | events["ts"].astype(np.int64)
            parts.append((t, (data >> 17) & 0x7FFF, (data >> 2) & 0x7FFF, (data >> 1) & 1))
        pos = body + int(head["capacity"]) * int(head["size"])
    if not parts:
        return tuple(np.empty(0, np.int64) for _ in range(4))
    return tuple(np.concatenate(col) for col in zip(*parts))


@numba.njit(cache=True, nogil=True, inline="always")
def _le_i32(buf, i):
    v = (
        np.int64(buf[i])
        | (np.int64(buf[i + 1]) << 8)
        | (np.int64(buf[i + 2]) << 16)
        | (np.int64(buf[i + 3]) << 24)
    )
    return v - (np.int64(1) << 32) if v >= (np.int64(1) << 31) else v


@numba.njit(cache=True, nogil=True, inline="always")
def _le_i16(buf, i):
    v = np.int64(buf[i]) | (np.int64(buf[i + 1]) << 8)
    return v - 65536 if v >= 32768 else v


@numba.njit(cache=True, nogil=True)
def scan_packets_numba(buf, starts, overflows, numbers):
    """Walk the whole packets at the start of ``buf``, checking each header.

    Fills ``starts`` (body offset), ``overflows`` and ``numbers`` for each polarity packet.
    Returns (polarity packets, bytes in whole packets, polarity events announced, error code,
    offset of the faulty packet header); error code 0 means the walk stopped at a partial packet
    or at the end of ``buf``.
    """
    pos = 0
    n_packets = 0
    n_events = 0
    end = len(buf)
    while pos + PACKET_HEADER <= end:
        kind = _le_i16(buf, pos)
        size = _le_i32(buf, pos + 4)
        overflow = _le_i32(buf, pos + 12)
        capacity = _le_i32(buf, pos + 16)
        number = _le_i32(buf, pos + 20)
        if size <= 0:
            return n_packets, pos, n_events, BAD_SIZE, pos
        if capacity < 0:
            return n_packets, pos, n_events, BAD_CAPACITY, pos
        if number < 0 or number > capacity:
            return n_packets, pos, n_events, BAD_NUMBER, pos
        if overflow < 0:
            return n_packets, pos, n_events, BAD_OVERFLOW, pos
        body_bytes = size * capacity
        if body_bytes > MAX_PACKET_BYTES:
            return n_packets, pos, n_events, TOO_LARGE, pos
        if kind == POLARITY and size != POLARITY_SIZE:
            return n_packets, pos, n_events, BAD_POLARITY_SIZE, pos
        if pos + PACKET_HEADER + body_bytes > end:
            break  # partial packet: wait for more data
        if kind == POLARITY and number > 0:
            starts[n_packets] = pos + PACKET_HEADER
            overflows[n_packets] = overflow
            numbers[n_packets] = number
            n_packets += 1
            n_events += number
        pos += PACKET_HEADER + body_bytes
    return n_packets, pos, n_events, OK, pos


@numba.njit(cache=True, nogil=True, inline="always")
def _le_u32(buf, i):
    return (
        np.int64(buf[i])
        | (np.int64(buf[i + 1]) << 8)
        | (np.int64(buf[i + 2]) << 16)
        | (np.int64(buf[i + 3]) << 24)
    )


@numba.njit(cache=True, nogil=True)
def _first_negative_timestamp(buf, first, count):
    for pos in range(first, first + POLARITY_SIZE * count, POLARITY_SIZE):
        if (buf[pos] & 1) and (buf[pos + 7] & 0x80):
            return pos
    return -1


@numba.njit(cache=True, nogil=True)
def _first_outside(buf, first, count, width, height):
    for pos in range(first, first + POLARITY_SIZE * count, POLARITY_SIZE):
        data = _le_u32(buf, pos)
        if (data & 1) and ((data >> 17) >= width or ((data >> 2) & 0x7FFF) >= height):
            return pos
    return -1


@numba.njit(cache=True, nogil=True)
def decode_polarity_numba(buf, starts, overflows, numbers, n_packets, width, height, t, x, y, p):
    """Decode the valid events of checked polarity packets into preallocated columns.

    ``width`` and ``height`` bound x and y (pass 1 << 15 when the sensor is unknown). Returns (event
    count, offset of the first bad valid event or -1, its status: NEGATIVE_TIMESTAMP or
    OUTSIDE_SENSOR); the sign bits and the coordinate checks are OR-ed per packet and located only
    when set, to keep the inner loop short.

    Args:
        buf: The packets' bytes (uint8).
        starts: Body offset in ``buf`` of each polarity packet (from :func:`scan_packets_numba`).
        overflows: Each packet's eventTSOverflow (the timestamps' bits 31 and up).
        numbers: Each packet's eventNumber (filled slots).
        n_packets: How many entries of the three arrays are used.
        width: Bound on x.
        height: Bound on y.
        t: Output timestamps in microseconds (int64), one slot per announced event.
        x: Output x (uint16).
        y: Output y (uint16).
        p: Output polarities (uint8, 1 = ON).
    """
    n = 0
    for k in range(n_packets):
        base = overflows[k] << TS_OVERFLOW_SHIFT
        first = starts[k]
        negative = 0
        outside = 0
        for i in range(numbers[k]):
            pos = first + POLARITY_SIZE * i
            data = _le_u32(buf, pos)
            if data & 1:
                ts = _le_u32(buf, pos + 4)
                negative |= ts >> 31
                xx = data >> 17
                yy = (data >> 2) & 0x7FFF
                outside |= (xx >= width) | (yy >= height)
                t[n] = base | ts
                x[n] = xx
                y[n] = yy
                p[n] = (data >> 1) & 1
                n += 1
        if outside:
            return n, _first_outside(buf, first, numbers[k], width, height), OUTSIDE_SENSOR
        if negative:
            return n, _first_negative_timestamp(buf, first, numbers[k]), NEGATIVE_TIMESTAMP
    return n, -1, OK


def encode_polarity_packet(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray, valid: np.ndarray, source: int, spare: int = 0
) -> bytes:
    """One polarity packet; all ``t`` must share ``t >> 31``. ``spare`` unused slots follow the events.

    Args:
        t: Timestamps in microseconds, non-negative.
        x: Columns (15 bits).
        y: Rows (15 bits).
        p: Polarities 0/1.
        valid: Each event's valid bit; False marks an invalidated event readers must drop.
        source: The packet header's eventSource id.
        spare: Unused capacity after the events, filled with garbage.
    """
    n = len(t)
    overflow = int(t[0]) >> TS_OVERFLOW_SHIFT if n else 0
    head = np.zeros(1, HEADER_DTYPE)
    head[0] = (POLARITY, source, POLARITY_SIZE, 4, overflow, n + spare, n, int(valid.sum()))
    body = np.zeros(n + spare, POLARITY_DTYPE)
    body["data"][:n] = (
        (x.astype(np.uint32) << 17)
        | (y.astype(np.uint32) << 2)
        | (p.astype(np.uint32) << 1)
        | valid.astype(np.uint32)
    )
    body["ts"][:n] = t & ((1 << TS_OVERFLOW_SHIFT) - 1)
    body["data"][n:] = (
        0xFFFFFFFF  # spare slots hold garbage with the valid bit set: readers must stop at eventNumber
    )
    return head.tobytes() + body.tobytes()


def encode_special_packet(t: int, source: int, n_events: int = 2) -> bytes:
    """A type-0 (special event) packet, e.g. timestamp-wrap markers, that a polarity reader must skip.

    Args:
        t: Timestamp of the special events in microseconds.
        source: The packet header's eventSource id.
        n_events: Special events in the packet.
    """
    head = np.zeros(1, HEADER_DTYPE)
    head[0] = (SPECIAL, source, 8, 4, t >> TS_OVERFLOW_SHIFT, n_events, n_events, n_events)
    body = np.zeros(n_events, POLARITY_DTYPE)
    body["data"] = (np.arange(n_events, dtype=np.uint32) << 1) | 1  # special type codes, valid
    body["ts"] = t & ((1 << TS_OVERFLOW_SHIFT) - 1)
    return head.tobytes() + body.tobytes()
