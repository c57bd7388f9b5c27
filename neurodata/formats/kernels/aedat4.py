"""AEDAT 4.0 EventPacket unpacking: find the validated event vector, then copy its 16-byte structs.

Each decompressed EVTS packet is a size-prefixed FlatBuffer ``EventPacket { elements: [Event] }``
whose ``Event`` struct is ``{i64 timestamp; i16 x; i16 y; bool polarity; 3 bytes padding}``.
``locate_reference``/``unpack_reference`` are the readable versions (the generic FlatBuffers reader
plus numpy field copies); the Numba kernels do the same per packet without the GIL:
``locate_numba`` reads every offset only after checking it lies inside the packet, and
``unpack_numba`` copies from a structured view whose range numpy has checked.
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
    structs = struct_view(packet, *locate_reference(packet))
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
def locate_numba(buf, start, end):
    """Validate the EventPacket in ``buf[start:end]``: (status, first struct position, count)."""
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


def struct_views(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``buf`` seen as Event structs from byte 0 and from byte 8: every 8-aligned struct position
    of ``buf`` is an item of one of them (see :func:`unpack_packets_numba`).

    Args:
        buf: Decompressed EventPackets.
    """
    return (
        np.frombuffer(buf, dtype=EVENT_STRUCT, count=len(buf) // 16),
        np.frombuffer(buf, dtype=EVENT_STRUCT, count=max(0, len(buf) - 8) // 16, offset=min(8, len(buf))),
    )


def struct_view(buf: np.ndarray, pos: int, count: int) -> np.ndarray:
    """The located Event structs as a structured view (numpy checks the range against ``buf``).

    Args:
        buf: The decompressed EventPacket bytes.
        pos: Byte position of the first struct.
        count: Number of structs.
    """
    return np.frombuffer(buf, dtype=EVENT_STRUCT, count=count, offset=pos)


UNKNOWN_SIZE = 1 << 16  # x and y are int16: no bound


@numba.njit(cache=True, nogil=True)
def unpack_numba(structs, out, n, width, height):
    """Copy Event structs (a :func:`struct_view`) into the event records ``out`` from row ``n``.

    ``width`` and ``height`` bound x and y (:data:`UNKNOWN_SIZE` when the stream does not say).
    Returns the index of the first event with a negative x or y or one outside the sensor, or -1
    when all were copied.

    Args:
        structs: The Event structs.
        out: Output events (EVENT_DTYPE records: t in microseconds, x, y, p = 1 for ON).
        n: First output row to fill.
        width: Bound on x (the sensor width, or a bound never reached when unknown).
        height: Bound on y, likewise.
    """
    for i in range(len(structs)):
        event = structs[i]
        xx = event.x
        yy = event.y
        if xx < 0 or yy < 0 or xx >= width or yy >= height:
            return i
        row = out[n + i]  # whole records: one write stream instead of four strided columns
        row.t = event.t
        row.x = xx
        row.y = yy
        row.p = 1 if event.on != 0 else 0
    return -1


@numba.njit(cache=True, nogil=True)
def unpack_packets_numba(from_0, from_8, positions, counts, out, n, width, height):
    """:func:`unpack_numba` for several packets of one buffer in one call: packet ``k``'s
    ``counts[k]`` structs start at byte ``positions[k]`` (a multiple of 8), an item of ``from_0``
    or of ``from_8`` (:func:`struct_views`). Returns ``(packet, event)`` of the first event with a
    negative x or y or one outside the sensor, or ``(-1, -1)`` when all were copied.

    Args:
        from_0: The buffer as structs from byte 0.
        from_8: The buffer as structs from byte 8.
        positions: Each packet's first struct position in the buffer.
        counts: Each packet's number of structs.
        out: Output events, filled from row ``n``.
        n: First output row to fill.
        width: Bound on x (:func:`unpack_numba`).
        height: Bound on y.
    """
    for k in range(len(positions)):
        first = positions[k] >> 4
        count = counts[k]
        structs = from_0[first : first + count] if positions[k] & 15 == 0 else from_8[first : first + count]
        bad = unpack_numba(structs, out, n, width, height)
        if bad >= 0:
            return k, bad
        n += count
    return -1, -1
