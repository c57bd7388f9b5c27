"""Prophesee DAT v2 (N-CARS, ATIS / Metavision recordings), read and write.

After the ``%`` header come a type byte (0x00 Event2D or 0x0C EventCD) and a record-size byte (8),
then 8-byte CD records (see :mod:`neurodata.formats.kernels.dat`). Width and height come from
``% Width``/``% Height`` lines when present; many files (N-CARS) have none, and then stay None.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from ..errors import FormatError, NeurodataError
from ..events import RecordingInfo
from .base import FormatSpec, Header
from .kernels import dat as kernels
from .prophesee_header import format_header, geometry, raw_format, read_header, sniff_header
from .prophesee_writer import PropheseeWriter
from .word_stream import WordStreamDecoder

NAME = "dat"
EVENT_TYPES = {0x00: "Event2D", 0x0C: "EventCD"}
WRITTEN_TYPE = 0x0C


def sniff(head: bytes) -> bool:
    """True for a ``%`` header naming a DAT version or data type (not a RAW ``evt``), followed by a CD type byte.

    Args:
        head: The file's first bytes.
    """
    header = sniff_header(head)
    if header is None or raw_format(header.fields)[0] is not None:
        return False
    if "Version" not in header.fields and not header.fields.get("Data", "").startswith("file"):
        return False
    # when the sniffed bytes reach past the header, the next byte must be a CD event type
    return header.data_offset >= len(head) or head[header.data_offset] in EVENT_TYPES


def parse_header(fileobj: BinaryIO, source: str) -> Header:
    """Read the ``%`` header and the event type and record size bytes after it.

    Args:
        fileobj: The file, opened in binary mode and seekable.
        source: The file's name for error messages.

    Raises:
        FormatError: A malformed header, an event type other than CD, or a record size other than 8.
    """
    header = read_header(fileobj, source)
    fileobj.seek(header.data_offset)
    type_and_size = fileobj.read(2)
    if len(type_and_size) < 2:
        raise FormatError(source, header.data_offset, "file ends before the DAT event type and size bytes")
    event_type, size = type_and_size
    if event_type not in EVENT_TYPES:
        raise FormatError(
            source,
            header.data_offset,
            f"DAT event type 0x{event_type:02x} is not CD (0x00 Event2D, 0x0C EventCD)",
        )
    if size != kernels.RECORD:
        raise FormatError(
            source, header.data_offset + 1, f"DAT record size {size}, expected {kernels.RECORD}"
        )
    width, height, geometry_source = geometry(header.fields)
    extra = {
        "header": header.fields,
        "event_type": EVENT_TYPES[event_type],
        "geometry_source": geometry_source,
    }
    info = RecordingInfo(format=NAME, width=width, height=height, source=source, extra=extra)
    return Header(info, header.data_offset + 2)


class DatDecoder(WordStreamDecoder):
    """Decodes 8-byte CD records (stateless: no time base spans records).

    Args:
        header: What :func:`parse_header` returned (sensor size, when the header has one).
        source: The file's name for error messages.
    """

    name = "DAT"
    word_dtype = np.dtype("<u8")
    max_events_per_word = 1
    kernel = kernels.decode_numba
    errors = {
        kernels.X_BEYOND_WIDTH: "{name} record {hex} has x >= the width {width}",
        kernels.Y_BEYOND_HEIGHT: "{name} record {hex} has y >= the height {height}",
    }

    def __init__(self, header: Header, source: str):
        super().__init__(header.info.width, header.info.height, np.zeros(1, dtype=np.int64), source)


class DatWriter(PropheseeWriter):
    """Writes ``% Version 2`` (and ``% Width``/``% Height`` when known), type 0x0C, size 8, records."""

    name = "DAT"
    max_coordinate = kernels.COORD_MASK

    def header(self, first_t: int | None) -> bytes:
        """The ``%`` header, type byte and record size byte (``first_t`` is not needed: times are absolute)."""
        fields = [("Data", "file containing EventCD events."), ("Version", "2")]
        if self.width is not None and self.height is not None:
            fields += [("Width", str(self.width)), ("Height", str(self.height))]
        fields.append(("generated_by", "neurodata"))
        return format_header(fields, end_line=False) + bytes((WRITTEN_TYPE, kernels.RECORD))

    def check_times(self, t: np.ndarray) -> None:
        """Refuse negative times and times of 2**32 microseconds or more in ``t`` (32-bit fields)."""
        super().check_times(t)
        if int(t.max()) >= kernels.T_LIMIT:
            raise NeurodataError(f"DAT stores 32-bit times: t = {int(t.max())} us is >= 2**32 (71.6 minutes)")

    def encode(self, events: np.ndarray) -> bytes:
        """8-byte CD records for ``events`` (checked, EVENT_DTYPE)."""
        out = np.empty(2 * len(events), dtype="<u4")
        kernels.encode_numba(events["t"], events["x"], events["y"], events["p"], out)
        return out.tobytes()


SPEC = FormatSpec(
    name=NAME,
    description="Prophesee DAT v2 (8-byte CD records; N-CARS)",
    extensions=(".dat",),
    magic=b"%",
    sniff=sniff,
    parse_header=parse_header,
    make_decoder=DatDecoder,
    make_writer=DatWriter,
)
