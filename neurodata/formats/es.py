"""Event Stream 2.x (``.es``: Sepia, Tarsier, loris, command_line_tools, faery), read and write.

Header: ``Event Stream`` (12 bytes), the version (major, minor, patch bytes; 2.x is read), the stream
type byte (0 generic, 1 DVS, 2 ATIS, 3 display, 4 color) and, except for generic streams, the width
and height (u16 little-endian each). Event bytes: :mod:`neurodata.formats.kernels.es`, which also
says what each stream type becomes and how y is flipped (the file's y = 0 is the bottom row; ours,
like faery's, is the top row). Times count from 0 at the start of the stream. Written files are DVS
streams, version 2.0.0.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from ..errors import FormatError, NeurodataError
from ..events import RecordingInfo, concatenate, empty_events
from .base import FormatSpec, Header
from .kernels import es as kernels
from .kernels.status import FIRST_ERROR, OUTPUT_FULL, X_BEYOND_WIDTH, Y_BEYOND_HEIGHT
from .prophesee_writer import PropheseeWriter
from .word_stream import NO_LIMIT

NAME = "es"
MAGIC = b"Event Stream"
WRITTEN_VERSION = bytes((2, 0, 0))
MAX_OUTPUT = 1 << 22  # events per kernel call: bounds the output buffer of a large block
MAX_GAP = 1 << 32  # us (71 minutes) between events: a longer gap's overflow bytes alone take over 34 MB


def parse_header(fileobj: BinaryIO, source: str) -> Header:
    """Read the magic, version, stream type and (except for generic streams) the sensor size.

    Args:
        fileobj: The file, opened in binary mode and seekable.
        source: The file's name for error messages.

    Raises:
        FormatError: Not an Event Stream, a version other than 2.x, a stream type without camera
            events, or a file that ends inside the header.
    """
    fileobj.seek(0)
    head = fileobj.read(20)
    if not head.startswith(MAGIC):
        raise FormatError(source, 0, f"not an Event Stream file: it starts with {head[:12]!r}")
    if len(head) < 16:
        raise FormatError(source, len(head), "file ends inside the Event Stream version and type bytes")
    major, minor, patch, kind = head[12:16]
    if major != 2:
        raise FormatError(source, 12, f"Event Stream version {major}.{minor}.{patch}: only 2.x is read")
    if kind not in kernels.TAIL:
        what = kernels.TYPE_NAMES.get(kind, "unknown")
        raise FormatError(source, 15, f"Event Stream type {kind} ({what}) holds no camera events; not read")
    width = height = None
    data_offset = 16
    if kind != kernels.GENERIC:
        if len(head) < 20:
            raise FormatError(source, len(head), "file ends inside the Event Stream width and height")
        width, height = int.from_bytes(head[16:18], "little"), int.from_bytes(head[18:20], "little")
        data_offset = 20
    extra = {"version": f"{major}.{minor}.{patch}", "stream_type": kernels.TYPE_NAMES[kind]}
    info = RecordingInfo(format=NAME, width=width, height=height, source=source, extra=extra)
    return Header(info, data_offset, fields={"kind": kind})


class EsDecoder:
    """Decodes whole events; the time of the last one carries over to the next block.

    Args:
        header: What :func:`parse_header` returned (stream type, sensor size).
        source: The file's name for error messages.
    """

    def __init__(self, header: Header, source: str):
        self.source = source
        self.kind = header.fields["kind"]
        self.width = NO_LIMIT if header.info.width is None else header.info.width
        self.height = NO_LIMIT if header.info.height is None else header.info.height
        self.state = np.zeros(1, dtype=np.int64)
        self.min_bytes = 1 + kernels.TAIL[self.kind]  # the fewest bytes one event takes

    def decode(self, block: np.ndarray, offset: int, final: bool) -> tuple[np.ndarray, int]:
        """Decode the whole events of ``block`` (file bytes from ``offset``; ``final`` when the file
        ends with it), as :meth:`~neurodata.formats.base.Decoder.decode` specifies."""
        pieces, pos = [], 0
        while True:
            out = empty_events(min((len(block) - pos) // self.min_bytes, MAX_OUTPUT) + 1)
            stop, n, status = kernels.decode_numba(block[pos:], self.kind, self.state, out, self.width, self.height)
            pieces.append(out[:n])
            pos += stop
            if status >= FIRST_ERROR:
                raise FormatError(self.source, offset + pos, self.describe_error(status, block, pos))
            if status != OUTPUT_FULL:
                break
        if final and pos < len(block):
            raise FormatError(
                self.source,
                offset + pos,
                f"truncated Event Stream: the file ends inside a {kernels.TYPE_NAMES[self.kind]} event "
                f"({len(block) - pos} bytes left)",
            )
        return concatenate(pieces), pos

    def describe_error(self, status: int, block: np.ndarray, at: int) -> str:
        """The message for an error ``status`` of the kernel about the event at byte ``at`` of ``block``."""
        what = f"Event Stream {kernels.TYPE_NAMES[self.kind]} event"
        if status == kernels.SIZE_TOO_LARGE:
            return f"{what} has more than {kernels.MAX_SIZE_SHIFT // 7} size bytes"
        x = int(block[at + 1]) | int(block[at + 2]) << 8
        y = int(block[at + 3]) | int(block[at + 4]) << 8
        if status == X_BEYOND_WIDTH:
            return f"{what} has x = {x} >= the width {self.width}"
        if status == Y_BEYOND_HEIGHT:
            return f"{what} has y = {y} >= the height {self.height}"
        return f"corrupt {what} (status {status})"


class EsWriter(PropheseeWriter):
    """Writes a DVS stream (version 2.0.0); the sensor size is required (it fixes the y flip).

    Args:
        fileobj: Binary file opened for writing.
        info: The recording's info; width and height must be set.

    Raises:
        NeurodataError: ``info`` lacks the width or height.
    """

    name = "Event Stream"
    max_coordinate = 0xFFFF

    def __init__(self, fileobj: BinaryIO, info: RecordingInfo):
        super().__init__(fileobj, info)
        if self.width is None or self.height is None:
            raise NeurodataError(
                "Event Stream files store the sensor size: give info= with width and height (the recording "
                "being written does not say it; on the command line: convert --sensor-size WxH)"
            )
        self.previous = 0  # events are written as time differences, from 0 at the start of the stream

    def check_times(self, t: np.ndarray) -> None:
        """Refuse negative times in ``t`` and gaps of 2**32 microseconds or more between events."""
        super().check_times(t)
        gaps = np.diff(t, prepend=self.previous)
        at = int(np.argmax(gaps))
        if int(gaps[at]) >= MAX_GAP:  # a gap costs one overflow byte per 127 us
            raise NeurodataError(
                f"Event Stream stores time differences: the gap of {int(gaps[at])} us before t = {int(t[at])} us "
                f"would take {int(gaps[at]) // kernels.DVS_OVERFLOW} overflow bytes; write with shift_time=True "
                "(--shift-time on the command line)"
            )

    def header(self, first_t: int | None) -> bytes:
        """Magic, version 2.0.0, the DVS type byte and the sensor size (``first_t`` unused: times start at 0)."""
        size = int(self.width).to_bytes(2, "little") + int(self.height).to_bytes(2, "little")
        return MAGIC + WRITTEN_VERSION + bytes((kernels.DVS,)) + size

    def encode(self, events: np.ndarray) -> bytes:
        """DVS event bytes for ``events`` (checked, EVENT_DTYPE): time differences from the previous event."""
        t = events["t"]
        out = np.empty(kernels.dvs_encoded_size(t, self.previous), dtype=np.uint8)
        kernels.encode_dvs_numba(t, events["x"], events["y"], events["p"], self.previous, self.height, out)
        self.previous = int(t[-1])
        return out.tobytes()


SPEC = FormatSpec(
    name=NAME,
    description="Event Stream 2.x (neuromorphic-paris: generic, DVS, ATIS, color)",
    extensions=(".es",),
    magic=MAGIC,
    sniff=None,
    parse_header=parse_header,
    make_decoder=EsDecoder,
    make_writer=EsWriter,
)
