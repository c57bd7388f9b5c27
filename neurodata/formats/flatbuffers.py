"""A minimal, validating FlatBuffers reader and a forward builder (enough for AEDAT 4.0).

FlatBuffers lay out a root table as: ``u32`` offset to the table, an optional 4-byte file
identifier, then tables, vtables, strings and vectors linked by offsets. The reader checks every
offset against the buffer before following it, so a corrupt file raises :class:`FlatBufferError`
(with the position inside the buffer) instead of reading out of bounds. The builder writes
objects front to back (vtable, table, then the objects its offset fields point to), which keeps
every ``uoffset`` pointing forward as the format requires, and aligns each scalar to its size
relative to the start of the buffer (the size prefix included, as DV does).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

U32 = struct.Struct("<I")
I32 = struct.Struct("<i")
U16 = struct.Struct("<H")


class FlatBufferError(Exception):
    """The buffer is not a valid FlatBuffer: ``pos`` is the byte position inside the buffer.

    Args:
        pos: Byte position of the fault inside the buffer.
        message: What is wrong there.
    """

    def __init__(self, pos: int, message: str):
        self.pos = pos
        self.message = message
        super().__init__(f"at byte {pos} of the flatbuffer: {message}")

    def __reduce__(self):  # raised in pool workers, re-raised in their parent
        return type(self), (self.pos, self.message)


@dataclass(frozen=True)
class Table:
    """A validated table inside ``buf``: its position, vtable position and sizes.

    Attributes:
        buf: The whole flatbuffer.
        pos: Position of the table (its ``soffset`` to the vtable).
        vtable: Position of its vtable.
        vtable_size: The vtable's size in bytes (4 + 2 per field slot).
        size: The table's inline size in bytes.
    """

    buf: bytes
    pos: int
    vtable: int
    vtable_size: int
    size: int

    def field_pos(self, field_id: int, width: int) -> int | None:
        """Absolute position of field ``field_id`` (``width`` bytes inline), or None when absent."""
        entry = 4 + 2 * field_id
        if entry + 2 > self.vtable_size:
            return None
        rel = U16.unpack_from(self.buf, self.vtable + entry)[0]
        if rel == 0:
            return None
        if rel + width > self.size:
            raise FlatBufferError(
                self.vtable + entry, f"field {field_id} at {rel} runs past the table's {self.size} bytes"
            )
        return self.pos + rel

    def scalar(self, field_id: int, fmt: str, default: int) -> int:
        """A scalar field decoded with ``struct`` format ``fmt`` (little-endian), or ``default``.

        Args:
            field_id: The field's index in the schema (its vtable slot).
            fmt: One ``struct`` format character, e.g. ``i`` or ``q``.
            default: The schema's default, returned when the field is absent.
        """
        pos = self.field_pos(field_id, struct.calcsize(fmt))
        return default if pos is None else struct.unpack_from("<" + fmt, self.buf, pos)[0]

    def _target(self, field_id: int) -> int | None:
        pos = self.field_pos(field_id, 4)
        if pos is None:
            return None
        target = pos + U32.unpack_from(self.buf, pos)[0]
        if target + 4 > len(self.buf):
            raise FlatBufferError(pos, f"offset of field {field_id} points to {target}, past the buffer end")
        return target

    def string(self, field_id: int) -> bytes | None:
        """A string field's bytes (without the terminating NUL), or None when absent.

        Args:
            field_id: The field's index in the schema (its vtable slot).
        """
        vec = self.vector(field_id, 1)
        return None if vec is None else self.buf[vec[0] : vec[0] + vec[1]]

    def vector(self, field_id: int, elem_size: int) -> tuple[int, int] | None:
        """``(start of the first element, element count)`` of a vector field, or None when absent.

        Args:
            field_id: The field's index in the schema (its vtable slot).
            elem_size: Bytes per element (the vector's extent is checked against the buffer).
        """
        target = self._target(field_id)
        if target is None:
            return None
        count = U32.unpack_from(self.buf, target)[0]
        if target + 4 + count * elem_size > len(self.buf):
            raise FlatBufferError(target, f"vector of {count} x {elem_size} bytes runs past the buffer end")
        return target + 4, count

    def tables(self, field_id: int) -> list[Table]:
        """The tables of a vector-of-tables field (empty when absent).

        Args:
            field_id: The field's index in the schema (its vtable slot).
        """
        vec = self.vector(field_id, 4)
        if vec is None:
            return []
        start, count = vec
        slots = range(start, start + 4 * count, 4)
        return [table_at(self.buf, slot + U32.unpack_from(self.buf, slot)[0], slot) for slot in slots]


def table_at(buf: bytes, pos: int, ref: int) -> Table:
    """Validate the table at ``pos``, reached from the offset at ``ref`` (its vtable and inline size
    lie inside ``buf``)."""
    if pos < 0 or pos + 4 > len(buf):
        raise FlatBufferError(ref, f"table position {pos} outside the {len(buf)}-byte buffer")
    vtable = pos - I32.unpack_from(buf, pos)[0]
    if vtable < 0 or vtable + 4 > len(buf):
        raise FlatBufferError(pos, f"vtable position {vtable} outside the {len(buf)}-byte buffer")
    vtable_size, size = U16.unpack_from(buf, vtable)[0], U16.unpack_from(buf, vtable + 2)[0]
    if vtable_size < 4 or vtable_size % 2 or vtable + vtable_size > len(buf):
        raise FlatBufferError(vtable, f"vtable size {vtable_size} is odd, below 4 or past the buffer end")
    if size < 4 or pos + size > len(buf):
        raise FlatBufferError(vtable + 2, f"table size {size} is below 4 or runs past the buffer end")
    return Table(buf, pos, vtable, vtable_size, size)


def root(buf: bytes, identifier: bytes | None = None, size_prefixed: bool = False) -> Table:
    """The root table of ``buf``, checking the size prefix and file identifier when asked.

    Args:
        buf: The flatbuffer.
        identifier: The expected 4-byte file identifier, or None not to check it.
        size_prefixed: ``buf`` starts with a ``u32`` size (as DV writes its packets).
    """
    start = 4 if size_prefixed else 0
    if len(buf) < start + 8:
        raise FlatBufferError(0, f"{len(buf)} bytes is too short for a flatbuffer")
    if size_prefixed:
        declared = U32.unpack_from(buf, 0)[0]
        if declared > len(buf) - 4:
            raise FlatBufferError(0, f"size prefix {declared} exceeds the {len(buf) - 4} bytes that follow")
    if identifier is not None and buf[start + 4 : start + 8] != identifier:
        found = bytes(buf[start + 4 : start + 8])
        raise FlatBufferError(start + 4, f"file identifier {found!r}, expected {identifier!r}")
    return table_at(buf, start + U32.unpack_from(buf, start)[0], start)


# --- builder --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scalar:
    """An inline scalar field: ``struct`` format and value.

    Attributes:
        fmt: One ``struct`` format character (little-endian is applied).
        value: The number.
    """

    fmt: str
    value: int


@dataclass(frozen=True)
class Inline:
    """An inline struct field: its packed bytes and alignment.

    Attributes:
        data: The struct's packed little-endian bytes.
        align: Its alignment in bytes.
    """

    data: bytes
    align: int


@dataclass(frozen=True)
class StructVector:
    """A vector of structs given as packed bytes, with the element alignment.

    Attributes:
        data: The elements' packed bytes, back to back.
        count: Number of elements.
        align: An element's alignment in bytes.
    """

    data: bytes
    count: int
    align: int


Field = Scalar | Inline | StructVector | bytes | list  # bytes: a string; list: a vector of tables


def _align(buf: bytearray, align: int, reserve: int = 0) -> None:
    """Pad ``buf`` so that ``len(buf) + reserve`` is a multiple of ``align``."""
    buf.extend(bytes(-(len(buf) + reserve) % align))


def _inline_width(value: Field) -> tuple[int, int]:
    if isinstance(value, Scalar):
        size = struct.calcsize(value.fmt)
        return size, size
    if isinstance(value, Inline):
        return len(value.data), value.align
    return 4, 4  # an offset to a string or vector


def _write_table(buf: bytearray, fields: dict[int, Field]) -> int:
    """Append a vtable, the table and its out-of-line objects; return the table position."""
    order = sorted(fields, key=lambda f: -_inline_width(fields[f])[1])
    rel, cursor = {}, 4
    for fid in order:
        size, align = _inline_width(fields[fid])
        cursor += -cursor % align
        rel[fid] = cursor
        cursor += size
    n_slots = max(fields, default=-1) + 1
    vtable_size = 4 + 2 * n_slots
    _align(buf, 8, vtable_size)  # table start (right after the vtable) 8-aligned
    vtable = len(buf)
    table_size = cursor + -cursor % 4
    buf += U16.pack(vtable_size) + U16.pack(table_size)
    buf += b"".join(U16.pack(rel.get(f, 0)) for f in range(n_slots))
    table = len(buf)
    buf += I32.pack(table - vtable) + bytes(table_size - 4)
    for fid, value in fields.items():
        pos = table + rel[fid]
        if isinstance(value, Scalar):
            struct.pack_into("<" + value.fmt, buf, pos, value.value)
        elif isinstance(value, Inline):
            buf[pos : pos + len(value.data)] = value.data
        else:
            U32.pack_into(buf, pos, _write_object(buf, value) - pos)
    return table


def _write_object(buf: bytearray, value: Field) -> int:
    """Append a string, struct vector or table vector; return its position (the length word)."""
    if isinstance(value, bytes):
        _align(buf, 4)
        pos = len(buf)
        buf += U32.pack(len(value)) + value + b"\0"
        return pos
    if isinstance(value, StructVector):
        _align(buf, max(4, value.align), 4)
        pos = len(buf)
        buf += U32.pack(value.count) + value.data
        return pos
    _align(buf, 4)
    pos = len(buf)
    buf += U32.pack(len(value)) + bytes(4 * len(value))
    for i, fields in enumerate(value):
        slot = pos + 4 + 4 * i
        U32.pack_into(buf, slot, _write_table(buf, fields) - slot)
    return pos


def build(fields: dict[int, Field], identifier: bytes, size_prefixed: bool = True) -> bytes:
    """Serialise one root table with ``fields`` (field id -> value) and a 4-byte file identifier.

    Args:
        fields: Field id to a :class:`Scalar`, :class:`Inline`, :class:`StructVector`, ``bytes`` (a string) or a list of field dicts (a vector of tables).
        identifier: The 4-byte file identifier.
        size_prefixed: Start with a ``u32`` size of the rest.
    """
    if len(identifier) != 4:
        raise ValueError("a file identifier has exactly 4 bytes")
    start = 4 if size_prefixed else 0
    buf = bytearray(start + 8)
    buf[start + 4 : start + 8] = identifier
    table = _write_table(buf, fields)
    U32.pack_into(buf, start, table - start)
    _align(buf, 8)
    if size_prefixed:
        U32.pack_into(buf, 0, len(buf) - 4)
    return bytes(buf)
