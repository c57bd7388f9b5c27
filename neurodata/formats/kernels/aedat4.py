"""AEDAT 4.0 EventPacket unpacking: find the validated event vector, then copy its 16-byte structs.

Each decompressed EVTS packet is a size-prefixed FlatBuffer ``EventPacket { elements: [Event] }``
whose ``Event`` struct is ``{i64 timestamp; i16 x; i16 y; bool polarity; 3 bytes padding}``.
``locate_reference``/``unpack_reference`` are the readable versions (the generic FlatBuffers reader
plus a numpy view); the Numba kernels do the same checks on many packets in one call, reading
every offset only after checking it lies inside the packet.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import flatbuffers as fb

EVENT_SIZE = 16
EVENT_STRUCT = np.dtype(
    {
        "names": ["t", "x", "y", "on"],
        "formats": ["<i8", "<i2", "<i2", "u1"],
        "offsets": [0, 8, 10, 12],
        "itemsize": 16,
    }
)
IDENTIFIER = b"EVTS"

# status codes of locate_numba, shared with the messages the format module reports
OK = 0
TOO_SHORT = 1
BAD_SIZE_PREFIX = 2
BAD_IDENTIFIER = 3
BAD_TABLE = 4
BAD_VTABLE = 5
BAD_FIELD = 6
BAD_VECTOR = 7
MESSAGES = {
    TOO_SHORT: "an EventPacket flatbuffer of at least 12 bytes",
    BAD_SIZE_PREFIX: "a size prefix no larger than the packet",
    BAD_IDENTIFIER: "the file identifier 'EVTS'",
    BAD_TABLE: "a root table inside the packet",
    BAD_VTABLE: "a vtable inside the packet",
    BAD_FIELD: "the elements field inside its table",
    BAD_VECTOR: "an event vector inside the packet",
}


def locate_reference(packet: bytes) -> tuple[int, int]:
    """``(start, count)`` of the event structs in one decompressed packet, via the generic reader."""
    table = fb.root(packet, IDENTIFIER, size_prefixed=True)
    vec = table.vector(0, EVENT_SIZE)
    return (0, 0) if vec is None else vec


def unpack_reference(packet: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Columns t, x, y, p of one packet (p = 1 when the polarity byte is non-zero)."""
    start, count = locate_reference(packet)
    structs = np.frombuffer(packet, dtype=EVENT_STRUCT, count=count, offset=start)
    return structs["t"], structs["x"], structs["y"], (structs["on"] != 0).astype(np.uint8)


@numba.njit(cache=True, nogil=True, inline="always")
def _u32(buf, i):
    return (
        np.int64(buf[i]) | np.int64(buf[i + 1]) << 8 | np.int64(buf[i + 2]) << 16 | np.int64(buf[i + 3]) << 24
    )


@numba.njit(cache=True, nogil=True, inline="always")
def _u16(buf, i):
    return np.int64(buf[i]) | np.int64(buf[i + 1]) << 8


@numba.njit(cache=True, nogil=True)
def _locate_one(buf, start, end):
    """(status, first struct position, count) for the packet in ``buf[start:end]``."""
    n = end - start
    if n < 12:
        return TOO_SHORT, 0, 0
    if _u32(buf, start) > n - 4:
        return BAD_SIZE_PREFIX, 0, 0
    if (
        buf[start + 8] != 69 or buf[start + 9] != 86 or buf[start + 10] != 84 or buf[start + 11] != 83
    ):  # "EVTS"
        return BAD_IDENTIFIER, 0, 0
    table = start + 4 + _u32(buf, start + 4)
    if table + 4 > end:
        return BAD_TABLE, 0, 0
    soffset = _u32(buf, table)
    if soffset >= 1 << 31:
        soffset -= 1 << 32
    vtable = table - soffset
    if vtable < start or vtable + 4 > end:
        return BAD_VTABLE, 0, 0
    vtable_size = _u16(buf, vtable)
    table_size = _u16(buf, vtable + 2)
    if (
        vtable_size < 4
        or vtable_size % 2
        or vtable + vtable_size > end
        or table_size < 4
        or table + table_size > end
    ):
        return BAD_VTABLE, 0, 0
    if vtable_size < 6:
        return OK, 0, 0
    rel = _u16(buf, vtable + 4)
    if rel == 0:
        return OK, 0, 0
    if rel + 4 > table_size:
        return BAD_FIELD, 0, 0
    vec = table + rel + _u32(buf, table + rel)
    if vec + 4 > end:
        return BAD_VECTOR, 0, 0
    count = _u32(buf, vec)
    if vec + 4 + count * EVENT_SIZE > end:
        return BAD_VECTOR, 0, 0
    return OK, vec + 4, count


@numba.njit(cache=True, nogil=True)
def locate_numba(buf, starts, ends, positions, counts):
    """Fill ``positions``/``counts`` for each packet ``buf[starts[i]:ends[i]]``.

    Returns (index of the first invalid packet or -1, its status code).
    """
    for i in range(len(starts)):
        status, pos, count = _locate_one(buf, starts[i], ends[i])
        if status != OK:
            return i, status
        positions[i] = pos
        counts[i] = count
    return -1, OK


@numba.njit(cache=True, nogil=True)
def unpack_numba(buf, positions, counts, t, x, y, p):
    """Copy the located event structs into the columns; returns the index of the first event with a
    negative coordinate, or -1 when all are valid (the columns are then completely filled)."""
    n = 0
    for i in range(len(positions)):
        b = positions[i]
        for _ in range(counts[i]):
            ts = np.int64(0)
            for k in range(8):
                ts |= np.int64(buf[b + k]) << (8 * k)
            xx = np.int16(np.uint16(_u16(buf, b + 8)))
            yy = np.int16(np.uint16(_u16(buf, b + 10)))
            if xx < 0 or yy < 0:
                return n
            t[n] = ts
            x[n] = xx
            y[n] = yy
            p[n] = 1 if buf[b + 12] != 0 else 0
            n += 1
            b += EVENT_SIZE
    return -1
