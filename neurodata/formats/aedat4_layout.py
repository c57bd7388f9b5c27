"""AEDAT 4.0 layout, no I/O: constants, IOHeader and XML description parsing, and the encoders of
the IOHeader, EventPacket and FileDataTable FlatBuffers (shared by the reader and the writer)."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from ..errors import FormatError, NeurodataError
from . import flatbuffers as fb
from .kernels import aedat4 as kernels

MAGIC = b"#!AER-DAT4.0\r\n"
PACKET_HEADER = struct.Struct("<ii")  # stream id, payload size
IO_HEADER_LIMIT = 64 << 20  # a description larger than this is not a DV header
COMPRESSIONS = {"none": 0, "lz4": 1, "lz4_high": 2, "zstd": 3, "zstd_high": 4}
COMPRESSION_NAMES = {code: name for name, code in COMPRESSIONS.items()}
MAX_COORD = (1 << 15) - 1  # x and y are int16 in the Event struct


@dataclass(frozen=True)
class Stream:
    """One stream of the description: its id, type identifier (EVTS, FRME, IMUS, TRIG) and size.

    Attributes:
        id: The stream id packets carry.
        type: The type identifier.
        width: The stream's ``sizeX`` in pixels (None when the description has none).
        height: Its ``sizeY`` in pixels.
    """

    id: int
    type: str
    width: int | None = None
    height: int | None = None


def parse_io_header(buf: bytes, base: int, source: str) -> tuple[int, int, list[Stream]]:
    """Decode an IOHeader flatbuffer (``buf`` starts at its u32 size; ``base`` is its file offset).

    Returns (compression code, FileDataTable position or -1, streams in the description).

    Args:
        buf: The size-prefixed IOHeader bytes.
        base: File offset of ``buf[0]``, for error messages.
        source: The file's name for error messages.
    """
    try:
        table = fb.root(buf, b"IOHE", size_prefixed=True)
        compression = table.scalar(0, "i", 0)
        table_pos = table.scalar(1, "q", -1)
        description = table.string(2)
    except fb.FlatBufferError as err:
        raise FormatError(source, base + err.pos, f"invalid IOHeader: {err.message}") from None
    if compression not in COMPRESSION_NAMES:
        raise FormatError(
            source,
            base,
            f"unknown compression {compression}; expected 0-4 (none, LZ4, LZ4_HIGH, ZSTD, ZSTD_HIGH)",
        )
    if description is None:
        raise FormatError(source, base, "IOHeader has no description of the streams")
    return compression, table_pos, parse_description(description, base, source)


def parse_description(xml: bytes, base: int, source: str) -> list[Stream]:
    """The streams listed under ``<node name="outInfo">`` of DV's XML description.

    Args:
        xml: The description's UTF-8 bytes.
        base: File offset of the IOHeader, for error messages.
        source: The file's name for error messages.
    """
    try:
        root_node = ET.fromstring(xml.decode("utf-8"))
    except (ET.ParseError, UnicodeDecodeError) as err:
        raise FormatError(source, base, f"IOHeader description is not valid XML ({err})") from None
    out = next((n for n in root_node.iter("node") if n.get("name") == "outInfo"), None)
    if out is None:
        raise FormatError(source, base, 'IOHeader description has no <node name="outInfo">')
    streams = []
    for node in out.findall("node"):
        attrs = {a.get("key"): (a.text or "").strip() for a in node.findall("attr")}
        info = {a.get("key"): (a.text or "").strip() for a in node.findall("node[@name='info']/attr")}
        try:
            stream_id = int(node.get("name", ""))
            width = int(info["sizeX"]) if "sizeX" in info else None
            height = int(info["sizeY"]) if "sizeY" in info else None
        except ValueError:
            raise FormatError(
                source, base, f"stream node {node.get('name')!r} has a non-integer id or size"
            ) from None
        if any(size is not None and not 0 < size <= MAX_COORD + 1 for size in (width, height)):
            raise FormatError(
                source, base, f"stream {stream_id} size {width} x {height}, expected 1 to {MAX_COORD + 1}"
            )
        streams.append(Stream(stream_id, attrs.get("typeIdentifier", ""), width, height))
    return streams


def description_xml(width: int, height: int, compression: str) -> bytes:
    """DV's XML description of one EVTS stream (id 0) of ``width`` x ``height`` pixels.

    Args:
        width: Sensor width in pixels.
        height: Sensor height in pixels.
        compression: Compression name recorded on the stream (e.g. ``lz4``).
    """
    return (
        '<dv version="2.0">\n'
        '    <node name="outInfo" path="/mainloop/Recorder/outInfo/">\n'
        '        <node name="0" path="/mainloop/Recorder/outInfo/0/">\n'
        f'            <attr key="compression" type="string">{compression.upper()}</attr>\n'
        '            <attr key="originalModuleName" type="string">neurodata</attr>\n'
        '            <attr key="originalOutputName" type="string">events</attr>\n'
        '            <attr key="typeDescription" type="string">Array of events (polarity ON/OFF).</attr>\n'
        '            <attr key="typeIdentifier" type="string">EVTS</attr>\n'
        '            <node name="info" path="/mainloop/Recorder/outInfo/0/info/">\n'
        f'                <attr key="sizeX" type="int">{width}</attr>\n'
        f'                <attr key="sizeY" type="int">{height}</attr>\n'
        '                <attr key="source" type="string">neurodata</attr>\n'
        "            </node>\n"
        "        </node>\n"
        "    </node>\n"
        "</dv>\n"
    ).encode()


def io_header(compression: int, table_pos: int, description: bytes) -> bytes:
    """The size-prefixed IOHeader flatbuffer; every field is written, so its length never depends on
    ``table_pos`` and the header can be rewritten in place once the table is written.

    Args:
        compression: Compression code (a value of :data:`COMPRESSIONS`).
        table_pos: File offset of the FileDataTable, or -1.
        description: The XML description (:func:`description_xml`).
    """
    return fb.build({0: fb.Scalar("i", compression), 1: fb.Scalar("q", table_pos), 2: description}, b"IOHE")


def event_packet(events: np.ndarray) -> bytes:
    """The size-prefixed EventPacket flatbuffer holding ``events`` as 16-byte Event structs."""
    structs = np.zeros(len(events), dtype=kernels.EVENT_STRUCT)
    structs["t"] = events["t"]
    structs["x"] = events["x"]
    structs["y"] = events["y"]
    structs["on"] = events["p"] != 0
    return fb.build({0: fb.StructVector(structs.tobytes(), len(events), 8)}, kernels.IDENTIFIER)


def file_data_table(entries: list[tuple[int, int, int, int, int, int]]) -> bytes:
    """The size-prefixed FileDataTable: per packet (payload offset, stream, size, count, first t, last t).

    Args:
        entries: One tuple per packet: payload file offset, stream id, payload size in bytes, event count, first and last timestamp in microseconds.
    """
    rows = [
        {
            0: fb.Scalar("q", offset),
            1: fb.Inline(struct.pack("<ii", stream, size), 4),
            2: fb.Scalar("q", count),
            3: fb.Scalar("q", t_start),
            4: fb.Scalar("q", t_end),
        }
        for offset, stream, size, count, t_start, t_end in entries
    ]
    return fb.build({0: rows}, b"FTAB")


def compression_code(value: str | int) -> int:
    """Map a compression name (``none``, ``lz4``, ``lz4_high``, ``zstd``, ``zstd_high``) or code to its code.

    Args:
        value: A name (any case) or a code 0-4.
    """
    code = COMPRESSIONS.get(value.lower()) if isinstance(value, str) else value
    if code not in COMPRESSION_NAMES:
        raise NeurodataError(
            f"unknown AEDAT 4.0 compression {value!r}; choose one of {', '.join(COMPRESSIONS)}"
        )
    return code
