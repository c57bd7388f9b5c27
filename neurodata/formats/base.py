"""The contract every format module fulfils, and small helpers they share.

A format module exposes one :class:`FormatSpec`. Reading is split in two so that the generic
streaming driver (:mod:`neurodata.reader`) can feed a file of any size through bounded memory:

* ``parse_header(fileobj, source)`` reads the header from the start of the file and returns a
  :class:`Header` (recording facts plus the byte offset where the event data starts);
* ``make_decoder(header, source)`` returns a :class:`Decoder`, a stateful object that turns byte
  blocks into event arrays. State that spans blocks (EVT 3.0's time base, a half-read AEDAT packet)
  lives in the decoder, so any block size gives the same events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

import numpy as np

from ..errors import FormatError
from ..events import RecordingInfo, empty_events

HEADER_LIMIT = 1 << 20  # a text header longer than this has no end marker: refuse rather than hang


@dataclass
class Header:
    """What a format's header tells: recording facts and where the events begin.

    Attributes:
        info: Sensor size, format name, source and format-specific extras of the recording.
        data_offset: Byte offset of the first event record in the file.
        fields: The format's own header values its decoder needs (e.g. the EVT format, the AEDAT 4
            stream table); empty when the decoder needs none.
    """

    info: RecordingInfo
    data_offset: int
    fields: dict[str, Any] = field(default_factory=dict)


class Decoder(Protocol):
    """Turns consecutive byte blocks of a file's event data into event arrays."""

    def decode(self, block: np.ndarray, offset: int, final: bool) -> tuple[np.ndarray, int]:
        """Decode as much of ``block`` (uint8, starting at file byte ``offset``) as forms whole records.

        Returns the events and the number of bytes consumed; unconsumed bytes are offered again,
        followed by more data. Returning 0 consumed with ``final`` False asks for a larger block.
        With ``final`` True the block is the end of the file: a partial record left over must raise
        :class:`~neurodata.errors.FormatError` naming its offset.
        """


class Writer(Protocol):
    """Streams event chunks into a binary file object in one format."""

    def write(self, events: np.ndarray) -> None:
        """Encode and append ``events`` (EVENT_DTYPE, time-sorted, continuing the previous chunk)."""

    def close(self) -> None:
        """Flush anything buffered; does not close the underlying file object."""


@dataclass(frozen=True)
class FormatSpec:
    """A format's name, how to recognise it, and how to read and (optionally) write it.

    Attributes:
        name: The format's name as ``--format`` and :func:`~neurodata.formats.get_format` take it.
        description: One line for ``neurodata formats``.
        extensions: Lower-case file extensions (with the dot), the fallback when sniffing fails.
        magic: The bytes every file of this format starts with; None for a format without them
            (N-MNIST ``.bin``), which only its extension chooses.
        sniff: A further check of a file's first bytes (up to ``SNIFF_BYTES``) that start with
            ``magic``: True when they are this format. None when the magic alone decides.
        parse_header: ``(fileobj, source)`` -> :class:`Header`; raises FormatError naming ``source``.
        make_decoder: ``(header, source)`` -> a fresh :class:`Decoder` for the data after the header.
        make_writer: ``(fileobj, info)`` -> a :class:`Writer`; None for read-only formats.
        decode_whole: ``(data, source)`` -> the events of a whole file held in memory (``uint8``), for
            a format without a header: :func:`~neurodata.read` then decodes a small sample in one
            call, with no header, decoder or :class:`~neurodata.reader.Recording` made. None for the others.
    """

    name: str
    description: str
    extensions: tuple[str, ...]
    magic: bytes | None
    sniff: Callable[[bytes], bool] | None
    parse_header: Callable[[BinaryIO, str], Header]
    make_decoder: Callable[[Header, str], Decoder]
    make_writer: Callable[[BinaryIO, RecordingInfo], Writer] | None = None
    decode_whole: Callable[[np.ndarray, str], np.ndarray] | None = None


def read_text_header(
    fileobj: BinaryIO, source: str, prefix: bytes, end_marker: bytes | None = None
) -> tuple[list[str], int]:
    """Read header lines that start with ``prefix`` from the start of ``fileobj``.

    The header ends at the first line that does not start with ``prefix`` (which is not consumed),
    or just after a line equal to ``end_marker`` when one is given, in which case a missing
    marker is an error. Returns the decoded lines (prefix kept, line ending stripped) and the data
    offset. Lines are decoded as latin-1 so arbitrary bytes never fail to decode.

    Args:
        fileobj: The file, opened in binary mode and seekable.
        source: The file's name for error messages.
        prefix: The bytes every header line starts with (e.g. ``b"%"`` or ``b"#"``).
        end_marker: A line (without line ending) that closes the header, or None.

    Raises:
        FormatError: The header is longer than :data:`HEADER_LIMIT` or lacks ``end_marker``.
    """
    lines: list[str] = []
    offset = 0
    while True:
        if offset > HEADER_LIMIT:
            raise FormatError(source, 0, f"header longer than {HEADER_LIMIT} bytes: no end of header found")
        fileobj.seek(offset)
        peek = fileobj.read(len(prefix))
        if peek != prefix:
            if end_marker is not None:
                raise FormatError(source, offset, f"header ended without the {end_marker.decode()!r} line")
            fileobj.seek(offset)
            return lines, offset
        fileobj.seek(offset)
        line = fileobj.readline(HEADER_LIMIT)
        if not line.endswith(b"\n") and end_marker is not None and line.rstrip(b"\r") != end_marker:
            raise FormatError(
                source, offset, f"header line not terminated (expected {end_marker.decode()!r})"
            )
        offset += len(line)
        text = line.rstrip(b"\r\n")
        lines.append(text.decode("latin-1"))
        if end_marker is not None and text == end_marker:
            return lines, offset


class WholeFileDecoder:
    """A decoder for container files (zip, HDF5) that cannot be read block by block: it asks the
    reader for the whole file (consuming nothing until ``final``), then hands the bytes to ``load``.

    Args:
        load: ``(file bytes, source)`` -> events.
        source: The file's name for error messages.
    """

    def __init__(self, load: Callable[[bytes, str], np.ndarray], source: str):
        self.load, self.source = load, source

    def decode(self, block: np.ndarray, offset: int, final: bool) -> tuple[np.ndarray, int]:
        """Consume nothing until ``final``; then ``block`` (from file ``offset`` 0) is the whole file."""
        if not final:
            return empty_events(0), 0
        return self.load(block.tobytes(), self.source), len(block)
