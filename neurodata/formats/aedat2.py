"""AEDAT 2.0 (jAER: CIFAR10-DVS, older DVS128 and DAVIS recordings), read; DVS128 write.

The address layout depends on the chip, which the header names in a ``# AEChip: <java class>``
line: a class containing ``DVS128`` or ``Tmpdiff128`` is decoded as DVS128, ``DAVIS240``/``DVS240``
as DAVIS240 (240x180), ``Davis346`` (any variant but ``mini``) as DAVIS346 (346x260). Without an
AEChip line the file is read as DVS128 (CIFAR10-DVS and most DVS128 recordings); any other chip is
refused rather than decoded with a guessed layout. Coordinates are jAER's: origin bottom-left.
Timestamps are the stored unsigned 32-bit microsecond values (no wrap unwrapping).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ..errors import FormatError, NeurodataError
from ..events import RecordingInfo, empty_events
from .base import HEADER_LIMIT, FormatSpec, Header
from .kernels import aedat2 as kernels

MAGIC = b"#!AER-DAT2"
T_LIMIT = 1 << 32
DVS128_CLASS = "ch.unizh.ini.jaer.chip.retina.DVS128"


@dataclass(frozen=True)
class Chip:
    """A jAER sensor's address layout.

    Attributes:
        name: Our name of the layout (``dvs128``, ``davis240``, ``davis346``), stored in the info's extras.
        width: Sensor width in pixels.
        height: Sensor height in pixels.
    """

    name: str
    width: int
    height: int


DVS128 = Chip("dvs128", 128, 128)
DAVIS240 = Chip("davis240", 240, 180)
DAVIS346 = Chip("davis346", 346, 260)


def chip_from_class(java_class: str | None) -> Chip | None:
    """The address layout for a jAER ``AEChip`` class name; DVS128 when the header names none.

    Args:
        java_class: The ``# AEChip:`` line's class name, or None when the header has none.

    Returns:
        The chip, or None for a class whose layout is unknown.
    """
    if java_class is None:
        return DVS128
    name = java_class.lower()
    if "dvs128" in name or "tmpdiff128" in name:
        return DVS128
    if "davis240" in name or "dvs240" in name:
        return DAVIS240
    if "davis346" in name and "mini" not in name:
        return DAVIS346
    return None


_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _is_text_line(line: bytes) -> bool:
    """A ``#`` line of text; binary data that happens to start with ``#`` holds control bytes."""
    return line.startswith(b"#") and not _CONTROL.search(line)


def read_header_lines(fileobj: BinaryIO, source: str) -> tuple[list[tuple[int, str]], int]:
    """The ``#`` header lines with their byte offsets, and the offset where the records start.

    Args:
        fileobj: The file, opened in binary mode and seekable.
        source: The file's name for error messages.

    Raises:
        FormatError: No magic line, an unterminated header line, or a header over :data:`HEADER_LIMIT`.
    """
    fileobj.seek(0)
    first = fileobj.readline(len(MAGIC) + 64)
    if not first.startswith(MAGIC):
        raise FormatError(
            source, 0, f"expected the AEDAT 2.0 magic line {MAGIC.decode()!r}, found {first[:16]!r}"
        )
    lines: list[tuple[int, str]] = []
    offset = 0
    fileobj.seek(0)
    while True:
        line = fileobj.readline(HEADER_LIMIT)
        if not _is_text_line(line):
            if not lines:
                raise FormatError(source, 0, "the AEDAT 2.0 magic line is not a line of text")
            return lines, offset
        if not line.endswith(b"\n"):
            raise FormatError(source, offset, "header line not terminated: the file ends inside its header")
        lines.append((offset, line.rstrip(b"\r\n").decode("latin-1")))
        offset += len(line)
        if offset > HEADER_LIMIT:
            raise FormatError(source, 0, f"header longer than {HEADER_LIMIT} bytes")


def parse_header(fileobj: BinaryIO, source: str) -> Header:
    """Read the header: the chip from ``# AEChip``, the creation time when jAER recorded it.

    Args:
        fileobj: The file, opened in binary mode and seekable.
        source: The file's name for error messages.

    Raises:
        FormatError: A malformed header or an AEChip without a known address layout.
    """
    lines, data_offset = read_header_lines(fileobj, source)
    aechip, aechip_offset, creation_ms = None, 0, None
    for offset, line in lines:
        text = line.lstrip("#").strip()
        if text.lower().startswith("aechip:"):
            aechip, aechip_offset = text.split(":", 1)[1].strip(), offset
        match = re.search(r"System\.currentTimeMillis\(\)\s+(\d+)", text)
        if match:
            creation_ms = int(match.group(1))
    chip = chip_from_class(aechip)
    if chip is None:
        raise FormatError(
            source,
            aechip_offset,
            f"unsupported AEChip {aechip!r}: known address layouts are DVS128, DAVIS240 and DAVIS346",
        )
    extra = {"version": lines[0][1][len("#!AER-DAT") :].strip(), "chip": chip.name, "aechip": aechip}
    if creation_ms is not None:
        extra["creation_time_ms"] = creation_ms
    info = RecordingInfo(format="aedat2", width=chip.width, height=chip.height, extra=extra)
    return Header(info, data_offset=data_offset, fields={"chip": chip})


class Aedat2Decoder:
    """Decodes 8-byte big-endian (address, timestamp) records in the header's chip layout.

    Args:
        header: What :func:`parse_header` returned (its ``fields["chip"]``).
        source: The file's name for error messages.
    """

    def __init__(self, header: Header, source: str):
        self.source = source
        self.chip: Chip = header.fields["chip"]

    def decode(self, block: np.ndarray, offset: int, final: bool) -> tuple[np.ndarray, int]:
        """Decode the whole records of ``block`` (file bytes from ``offset``; ``final`` when the file
        ends with it), as :meth:`~neurodata.formats.base.Decoder.decode` specifies. DAVIS records
        that are not DVS events (APS readouts, IMU samples, external inputs) are skipped; an address outside the sensor raises FormatError."""
        usable = len(block) // kernels.RECORD * kernels.RECORD
        if final and usable != len(block):
            raise FormatError(
                self.source,
                offset + usable,
                f"truncated record: {len(block) - usable} trailing bytes, records are {kernels.RECORD} bytes",
            )
        data = block[:usable]
        out = empty_events(usable // kernels.RECORD)
        columns = (out["t"], out["x"], out["y"], out["p"])
        if self.chip is DVS128:
            n = kernels.decode_dvs128_numba(data, *columns)
        else:
            n, bad = kernels.decode_davis_numba(data, self.chip.width, self.chip.height, *columns)
            if bad >= 0:
                raise FormatError(
                    self.source,
                    offset + kernels.RECORD * bad,
                    f"DVS address lies outside the {self.chip.width}x{self.chip.height} {self.chip.name} sensor",
                )
        return out[:n], usable


def header_bytes(info: RecordingInfo) -> bytes:
    """The jAER-style header a DVS128 file starts with (CRLF lines, as jAER writes them).

    Args:
        info: The recording's info; unused, as the header names only the DVS128 chip.
    """
    lines = [
        "#!AER-DAT2.0",
        "# This is a raw AE data file - do not edit",
        "# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event",
        "# Timestamps tick is 1 us",
        "# created by neurodata",
        f"# AEChip: {DVS128_CLASS}",
    ]
    return "".join(f"{line}\r\n" for line in lines).encode("ascii")


class Aedat2Writer:
    """Writes DVS128 AEDAT 2.0: header, then big-endian (address, timestamp) pairs.

    Args:
        fileobj: Binary file opened for writing; the header is written at once.
        info: The recording's info; a sensor larger than 128x128 is refused.
    """

    def __init__(self, fileobj: BinaryIO, info: RecordingInfo):
        if (info.width or 0) > DVS128.width or (info.height or 0) > DVS128.height:
            raise NeurodataError(
                f"the AEDAT 2.0 writer writes the DVS128 layout (128x128); the recording is {info.width}x{info.height}"
            )
        self.file = fileobj
        self.file.write(header_bytes(info))

    def write(self, events: np.ndarray) -> None:
        """Append ``events`` (EVENT_DTYPE) as records; NeurodataError when t is outside ``[0, 2**32)``
        microseconds or a coordinate outside 128x128."""
        if events.size == 0:
            return
        t = events["t"]
        if int(t.min()) < 0 or int(t.max()) >= T_LIMIT:
            raise NeurodataError(
                f"AEDAT 2.0 stores unsigned 32-bit timestamps: t must lie in [0, 2**32) us, got "
                f"[{int(t.min())}, {int(t.max())}]; shift or split the recording"
            )
        if int(events["x"].max()) >= DVS128.width or int(events["y"].max()) >= DVS128.height:
            raise NeurodataError("the DVS128 address layout holds 0 <= x, y < 128")
        self.file.write(kernels.encode_dvs128(t, events["x"], events["y"], events["p"]).tobytes())

    def close(self) -> None:
        """Nothing to flush: every :meth:`write` writes its records at once."""


SPEC = FormatSpec(
    name="aedat2",
    description="AEDAT 2.0 (jAER; CIFAR10-DVS, DVS128, DAVIS240/346)",
    extensions=(".aedat",),
    magic=MAGIC,
    sniff=None,
    parse_header=parse_header,
    make_decoder=Aedat2Decoder,
    make_writer=Aedat2Writer,
)
