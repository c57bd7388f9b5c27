"""The ``% key value`` text header shared by Prophesee RAW (EVT 2.0/3.0) and DAT files.

A header is a run of lines starting with ``%``. Newer files end it with ``% end``; older ones
simply stop, and the binary data starts at the first line that does not begin with ``%``. Binary
data can itself begin with the byte ``%`` (0x25), so a ``%`` line holding control bytes (anything
below 0x20 except tab and CR) is taken as the start of the data, not as header text.

Besides splitting the header, this module answers the questions every Prophesee reader asks of it:
which event format a RAW file holds and what the sensor geometry is, with a record of whether the
answer was read from the header or inferred from the sensor generation it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import BinaryIO

from ..errors import FormatError
from ..events import RecordingInfo
from .base import HEADER_LIMIT, Header

END_LINE = "end"
# Written by our RAW writers when the first event is later than one wrap of the format's time base
# (EVT 3.0: 2**24 us, EVT 2.0: 2**34 us): the whole wraps left out of the data, added back on reading.
TIME_OFFSET_KEY = "neurodata_time_offset_us"
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_SIZE = 1 << 16  # larger widths/heights cannot be meant: coordinates are 16-bit
_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")

# Sensor generations named by ``plugin_name`` (hal_plugin_gen3_fx3, hal_plugin_imx636_evk4, ...) or by a
# ``generation``/``sensor_generation`` field, with the RAW format their cameras write by default and
# their pixel array. Gen3/Gen3.1 VGA sensors stream EVT 2.0; Gen4/Gen4.1 and the Sony IMX636 (EVK4)
# stream EVT 3.0 (Prophesee's sensor and EVK documentation).
_PLUGIN_GENERATIONS = (
    (re.compile(r"gen3"), "evt2", (640, 480)),
    (re.compile(r"gen4|imx636|evk4"), "evt3", (1280, 720)),
)
_GENERATION_NUMBERS = {"3.0": ("evt2", (640, 480)), "3.1": ("evt2", (640, 480))}
_GENERATION_NUMBERS.update({g: ("evt3", (1280, 720)) for g in ("4.0", "4.1", "4.2")})


@dataclass
class PropheseeHeader:
    """The header's fields in file order (later duplicates win) and where the binary data starts.

    Attributes:
        fields: Key to value of each ``% key value`` line.
        data_offset: Byte offset of the first data byte (after ``% end`` when present).
    """

    fields: dict[str, str] = field(default_factory=dict)
    data_offset: int = 0


def split_header(data: bytes, at_eof: bool, source: str | None = None) -> PropheseeHeader | None:
    """Split the ``%`` header off the start of ``data``.

    Returns None when ``data`` ends inside the header and more bytes may follow (``at_eof`` False).
    Raises :class:`FormatError` when the file ends in the middle of a header line.

    Args:
        data: The file's first bytes.
        at_eof: ``data`` is the whole file.
        source: The file's name for error messages.
    """
    header = PropheseeHeader()
    pos = 0
    while pos < len(data):
        if data[pos] != 0x25:  # '%'
            break
        newline = data.find(b"\n", pos)
        line = data[pos:newline].rstrip(b"\r") if newline >= 0 else data[pos:]
        if _CONTROL.search(line):
            break  # binary data that happens to start with '%'
        if newline < 0:
            if at_eof:
                raise FormatError(
                    source, pos, "header line not terminated by a newline before the end of the file"
                )
            return None
        pos = newline + 1
        key, _, value = line[1:].decode("latin-1").strip().partition(" ")
        if key == END_LINE and not value:
            break
        if key:
            header.fields[key] = value.strip()
    else:
        if not at_eof:
            return None
    header.data_offset = pos
    return header


def read_header(fileobj: BinaryIO, source: str) -> PropheseeHeader:
    """Read the header from the start of ``fileobj``, refusing one longer than ``HEADER_LIMIT`` bytes.

    Args:
        fileobj: The file, opened in binary mode and seekable.
        source: The file's name for error messages.
    """
    fileobj.seek(0)
    data = b""
    want = 4096
    while True:
        more = fileobj.read(want - len(data))
        data += more
        at_eof = len(data) < want
        header = split_header(data, at_eof, source)
        if header is not None and header.data_offset <= HEADER_LIMIT:
            return header
        if len(data) > HEADER_LIMIT:
            raise FormatError(source, 0, f"no end of the '%' header within {HEADER_LIMIT} bytes")
        want *= 2


def sniff_header(head: bytes) -> PropheseeHeader | None:
    """The header found in the first bytes of a file, or None when it does not start with ``%``.

    Never raises: a header cut off by the end of ``head`` yields the lines before the cut (with
    ``data_offset`` at the cut).
    """
    if not head.startswith(b"%"):
        return None
    try:
        return split_header(head, at_eof=True)
    except FormatError:
        return split_header(head[: head.rfind(b"\n") + 1], at_eof=True)


def sniff_fields(head: bytes) -> dict[str, str]:
    """Header fields found in the first bytes of a file (empty when it has no ``%`` header).

    Args:
        head: The file's first bytes.
    """
    header = sniff_header(head)
    return header.fields if header else {}


def raw_format(fields: dict[str, str]) -> tuple[str | None, str]:
    """Which RAW encoding a header announces: ('evt2' | 'evt3' | 'evt21' | None, how it was decided).

    ``% evt 3.0`` and ``% format EVT3;...`` are authoritative; without them the sensor generation
    (``plugin_name``, ``generation``, ``sensor_generation``) decides, as the camera's default encoding.

    Args:
        fields: The header's fields.
    """
    fmt = fields.get("format", "").split(";")[0].strip().upper()
    named = {"EVT3": "evt3", "EVT2": "evt2", "EVT21": "evt21"}.get(fmt)
    if named:
        return named, f"format {fields['format']}"
    evt = fields.get("evt", "").strip()
    version = {"3.0": "evt3", "3": "evt3", "2.0": "evt2", "2": "evt2", "2.1": "evt21"}.get(evt)
    if version:
        return version, f"evt {evt}"
    generation = _sensor_generation(fields)
    if generation:
        return generation[0], generation[2]
    return None, "header names no event format or known sensor generation"


def geometry(fields: dict[str, str]) -> tuple[int | None, int | None, str]:
    """Sensor (width, height) from the header, or from the sensor generation it names; None when unknown.

    The third item says where the geometry came from, for ``RecordingInfo.extra``.

    Args:
        fields: The header's fields (``format`` properties, ``geometry``, ``Width``/``Height``, sensor generation).
    """
    props = dict(
        part.strip().split("=", 1) for part in fields.get("format", "").split(";")[1:] if "=" in part
    )
    candidates = (
        (props.get("width"), props.get("height"), "format"),
        (*_split_geometry(fields.get("geometry", "")), "geometry"),
        (_field(fields, "width"), _field(fields, "height"), "Width/Height"),
    )
    refused = []  # sizes the header states that are no sensor's (0, negative, not a number)
    for width, height, name in candidates:
        if width is not None and height is not None:
            try:
                w, h = int(width), int(height)
            except ValueError:
                w = h = 0
            if 0 < w <= MAX_SIZE and 0 < h <= MAX_SIZE:
                return w, h, f"header ({name})"
            refused.append(f"{name} {width} x {height}")
    stated = f"its {', '.join(refused)} is no sensor size" if refused else "the header gives no geometry"
    generation = _sensor_generation(fields)
    if generation:
        (w, h), how = generation[1], generation[2]
        return w, h, f"inferred from {how}" + (f" ({stated})" if refused else "")
    return None, None, f"unknown: {stated} and names no known sensor"


def _sensor_generation(fields: dict[str, str]) -> tuple[str, tuple[int, int], str] | None:
    for key in ("sensor_generation", "generation"):
        number = fields.get(key, "").strip()
        if number in _GENERATION_NUMBERS:
            fmt, size = _GENERATION_NUMBERS[number]
            return fmt, size, f"{key} {number}"
    plugin = fields.get("plugin_name", "").lower()
    for pattern, fmt, size in _PLUGIN_GENERATIONS:
        if plugin and pattern.search(plugin):
            return fmt, size, f"plugin_name {fields['plugin_name']}"
    return None


def _split_geometry(text: str) -> tuple[str | None, str | None]:
    width, sep, height = text.strip().lower().partition("x")
    return (width, height) if sep else (None, None)


def _field(fields: dict[str, str], name: str) -> str | None:
    for key, value in fields.items():
        if key.lower() == name:
            return value
    return None


def format_header(fields: list[tuple[str, str]], end_line: bool) -> bytes:
    """Encode header lines ``% key value`` (ASCII), optionally closed by ``% end``.

    Args:
        fields: ``(key, value)`` pairs in order.
        end_line: Close the header with ``% end`` (RAW does, DAT does not).
    """
    lines = [f"% {key} {value}\n" for key, value in fields]
    if end_line:
        lines.append(f"% {END_LINE}\n")
    return "".join(lines).encode("ascii")


def parse_raw_header(fileobj: BinaryIO, source: str, fmt: str) -> tuple[RecordingInfo, int, int]:
    """Read a RAW header for format ``fmt`` ('evt2' or 'evt3'): (info, data offset, time offset).

    A header naming another encoding is refused; one naming none is decoded as ``fmt`` (chosen by
    the caller or the extension) and says so in ``info.extra['format_source']``.

    Args:
        fileobj: The file, opened in binary mode and seekable.
        source: The file's name for error messages.
        fmt: ``'evt2'`` or ``'evt3'``.
    """
    header = read_header(fileobj, source)
    found, how = raw_format(header.fields)
    if found is not None and found != fmt:
        raise FormatError(source, 0, f"the header announces {found.upper()} ({how}), not {fmt.upper()}")
    width, height, geometry_source = geometry(header.fields)
    offset_text = header.fields.get(TIME_OFFSET_KEY, "0")
    if not _WHOLE_NUMBER.fullmatch(offset_text):
        raise FormatError(
            source, 0, f"header field {TIME_OFFSET_KEY} is {offset_text!r}, not a whole number of up to 18 digits"
        )
    extra = {
        "header": header.fields,
        "format_source": how if found else f"not stated in the header ({how}); decoded as {fmt.upper()}",
        "geometry_source": geometry_source,
    }
    info = RecordingInfo(format=fmt, width=width, height=height, source=source, extra=extra)
    return info, header.data_offset, int(offset_text)


def announces(head: bytes, fmt: str) -> bool:
    """True for a ``%`` header that announces ``fmt`` (or a sensor generation that streams it): the
    ``sniff`` of the RAW formats.

    Args:
        head: The file's first bytes.
        fmt: ``'evt2'`` or ``'evt3'``.
    """
    return head.startswith(b"%") and raw_format(sniff_fields(head))[0] == fmt


def raw_file_header(fileobj: BinaryIO, source: str, fmt: str) -> Header:
    """:func:`parse_raw_header` as the RAW formats' ``parse_header``: geometry, and the time offset
    our writer records (``fields["t_offset"]``).

    Args:
        fileobj: The file, opened in binary mode and seekable.
        source: The file's name for error messages.
        fmt: ``'evt2'`` or ``'evt3'``.

    Raises:
        FormatError: The header announces another encoding, or is malformed.
    """
    info, data_offset, t_offset = parse_raw_header(fileobj, source, fmt)
    return Header(info, data_offset, fields={"t_offset": t_offset})
