"""N-MNIST / N-Caltech101 ``.bin`` (ATIS TD records, no header), read and write."""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from ..errors import FormatError, NeurodataError
from ..events import RecordingInfo, empty_events
from .base import FormatSpec, Header
from .kernels import nmnist as kernels

RECORD = 5
MAX_COORD = 255
# Times past 23 bits cost one 5-byte overflow record per 8192 us from 0: a Unix-time recording
# (t ~ 1.6e15 us) would need ~1 TB of them. 2**32 us (71.6 min) caps them at 2.6 MB.
MAX_TIME_US = 1 << 32


def parse_header(fileobj: BinaryIO, source: str) -> Header:
    """The empty header of a ``.bin``: records start at byte 0, no sensor size is stored.

    Args:
        fileobj: The file (not read).
        source: The file's name (unused: nothing can be wrong with an absent header).
    """
    return Header(RecordingInfo(format="nmnist"), data_offset=0)


def decode_records(
    block: np.ndarray, t_offset: int, source: str, offset: int, final: bool
) -> tuple[np.ndarray, int, int]:
    """The events of the whole records in ``block``: (events, bytes used, time offset after them).

    Args:
        block: File bytes (``uint8``) from byte ``offset``.
        t_offset: Microseconds added by the overflow markers before ``block``.
        source: The file's name for error messages.
        offset: Where ``block`` starts in the file.
        final: True when the file ends with ``block`` (a partial record is then an error).

    Raises:
        FormatError: ``final`` and the file ends inside a record (names the file and byte).
    """
    usable = len(block) // RECORD * RECORD
    if final and usable != len(block):
        raise FormatError(
            source, offset + usable, f"truncated record: {len(block) - usable} trailing bytes, records are {RECORD} bytes"
        )
    out = empty_events(usable // RECORD)
    records = block if usable == len(block) else block[:usable]
    n, t_offset = kernels.decode_numba(records, t_offset, out)
    return (out if n == len(out) else out[:n]), usable, t_offset


def decode_whole(data: np.ndarray, source: str) -> np.ndarray:
    """The events of a whole ``.bin`` file held in memory, in one call (a dataset sample per call).

    Args:
        data: The file's bytes (``uint8``).
        source: The file's name for error messages.
    """
    return decode_records(data, 0, source, 0, True)[0]


class NmnistDecoder:
    """Decodes 5-byte records; the overflow markers' time offset carries over between blocks.

    Args:
        header: What :func:`parse_header` returned (unused).
        source: The file's name for error messages.
    """

    def __init__(self, header: Header, source: str):
        self.source = source
        self.t_offset = 0

    def decode(self, block: np.ndarray, offset: int, final: bool) -> tuple[np.ndarray, int]:
        """Decode the whole records of ``block`` (file bytes from ``offset``; ``final`` when the file
        ends with it), as :meth:`~neurodata.formats.base.Decoder.decode` specifies."""
        events, usable, self.t_offset = decode_records(block, self.t_offset, self.source, offset, final)
        return events, usable


class NmnistWriter:
    """Writes 5-byte records, with overflow markers every 2**13 microseconds past 23 bits.

    Args:
        fileobj: Binary file opened for writing.
        info: The recording's info (unused: the format stores no header).
    """

    def __init__(self, fileobj: BinaryIO, info: RecordingInfo):
        self.file = fileobj
        self.t_offset = 0
        self.written = 0

    def write(self, events: np.ndarray) -> None:
        """Append ``events`` (EVENT_DTYPE, time-sorted, continuing earlier writes) as records.

        Raises:
            NeurodataError: Times outside ``[0, 2**32)`` microseconds, x > 255 or y >= 240 (the order is
                checked by :class:`~neurodata.writer.CheckedWriter`).
        """
        if events.size == 0:
            return
        t = events["t"]
        first, last = int(t[0]), int(t[-1])
        if not (0 <= first < MAX_TIME_US and last < MAX_TIME_US):
            bad = first if not 0 <= first < MAX_TIME_US else last
            raise NeurodataError(
                f"N-MNIST .bin stores times 0 <= t < 2**32 us ({MAX_TIME_US / 60e6:.1f} min), got t = {bad} us; "
                "shift the times to start at 0 (nd.write(..., shift_time=True), neurodata convert --shift-time)"
            )
        if int(events["x"].max()) > MAX_COORD or int(events["y"].max()) >= kernels.OVERFLOW_Y:
            raise NeurodataError("N-MNIST .bin holds x <= 255 and y < 240")
        markers = max(0, (last - self.t_offset) >> 13) + 1
        out = np.empty(RECORD * (len(events) + markers), dtype=np.uint8)
        n, self.t_offset = kernels.encode_numba(t, events["x"], events["y"], events["p"], self.t_offset, out)
        self.file.write(out[:n].tobytes())
        self.written += len(events)

    def close(self) -> None:
        """Nothing to flush (every :meth:`write` writes its records at once), but a recording with no
        events cannot be written: with no header, its file would be 0 bytes, which reads back as no
        recording at all (NeurodataError)."""
        if not self.written:
            raise NeurodataError(
                "N-MNIST .bin cannot hold a recording with no events (the format has no header: the "
                "0-byte file would not read back); choose a format with a header"
            )


SPEC = FormatSpec(
    name="nmnist",
    description="N-MNIST / N-Caltech101 ATIS .bin (5-byte records)",
    extensions=(".bin",),
    magic=None,  # no magic number: chosen by extension
    sniff=None,
    parse_header=parse_header,
    make_decoder=NmnistDecoder,
    make_writer=NmnistWriter,
    decode_whole=decode_whole,
)
