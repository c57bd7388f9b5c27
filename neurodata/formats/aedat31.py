"""AEDAT 3.1 (libcaer; DVS128 Gesture), read polarity events; write the DVS128 Gesture layout.

Reading honours what the format says and both public readers (Tonic's, SpikingJelly's) skip:
only packets of eventType 1 hold polarity events, only the first ``eventNumber`` of the
``eventCapacity`` slots are filled, and an event whose valid bit (bit 0) is 0 was invalidated by
the producer (e.g. a filter) and is dropped. Every packet header is checked before any event is
decoded; a bad one raises :class:`~neurodata.errors.FormatError` with the packet's byte offset.

Writing emits ``#!AER-DAT3.1`` with a ``#Source 1: DVS128`` header and packets of at most
``packet_events`` polarity events (a packet never spans two ``t >> 31`` epochs, since the epoch is
the packet's ``eventTSOverflow``). :class:`Traps` makes the writer interleave what readers trip
over (special-event packets, invalidated events, unused capacity), for testing readers.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ..errors import FormatError, NeurodataError
from ..events import RecordingInfo, as_events, concatenate, empty_events
from ..localfs import atomic_output
from .base import FormatSpec, Header, read_text_header
from .kernels import aedat31 as kernels

MAGIC = b"#!AER-DAT3.1"
END_HEADER = b"#!END-HEADER"
DEFAULT_PACKET_EVENTS = 4096
DVS128_SIZE = 128
SOURCE_ID = 1
SENSOR_SIZES = {"DVS128": (128, 128), "DAVIS240": (240, 180), "DAVIS346": (346, 260), "DVXPLORER": (640, 480)}


def sensor_size(source_name: str) -> tuple[int | None, int | None]:
    """Geometry for a ``#Source`` device name such as ``DVS128`` or ``DAVIS240C``; None when unknown.

    Args:
        source_name: The device name after ``#Source <id>:`` (case and spaces ignored).

    Returns:
        ``(width, height)`` in pixels, or ``(None, None)``.
    """
    name = source_name.upper().replace(" ", "")
    for prefix, size in SENSOR_SIZES.items():
        if name.startswith(prefix):
            return size
    return None, None


def parse_header(fileobj: BinaryIO, source: str) -> Header:
    """Read the text header up to ``#!END-HEADER``: the source device (sensor size) and start time.

    Args:
        fileobj: The file, opened in binary mode and seekable.
        source: The file's name for error messages.

    Raises:
        FormatError: No magic line, no end of header, or a ``#Format`` other than RAW.
    """
    fileobj.seek(0)
    if fileobj.read(len(MAGIC)) != MAGIC:
        raise FormatError(source, 0, f"expected the AEDAT 3.1 magic line {MAGIC.decode()!r}")
    lines, data_offset = read_text_header(fileobj, source, b"#", END_HEADER)
    extra: dict = {}
    width = height = None
    for line in lines:
        text = line.lstrip("#").strip()
        key, _, value = text.partition(":")
        if key.startswith("Source") and value:
            extra["source_id"] = key.split()[-1]
            extra["source_name"] = value.strip()
            width, height = sensor_size(value.strip())
        elif key == "Start-Time":
            extra["start_time"] = value.strip()
        elif key == "Format":
            extra["format"] = value.strip()
    if extra.get("format", "RAW") != "RAW":
        raise FormatError(source, 0, f"unsupported AEDAT 3.1 '#Format: {extra['format']}' (only RAW is read)")
    info = RecordingInfo(format="aedat31", width=width, height=height, extra=extra)
    return Header(info, data_offset=data_offset)


def _describe_header(block: np.ndarray, pos: int) -> str:
    head = block[pos : pos + kernels.PACKET_HEADER].view(kernels.HEADER_DTYPE)[0]
    return (
        f"eventType {head['type']}, eventSize {head['size']}, eventTSOverflow {head['ts_overflow']}, "
        f"eventCapacity {head['capacity']}, eventNumber {head['number']}"
    )


SCAN_ERRORS = {
    kernels.BAD_SIZE: "packet header has a non-positive eventSize",
    kernels.BAD_CAPACITY: "packet header has a negative eventCapacity",
    kernels.BAD_NUMBER: "packet header's eventNumber is negative or exceeds eventCapacity",
    kernels.BAD_OVERFLOW: "packet header has a negative eventTSOverflow",
    kernels.TOO_LARGE: "packet header announces more than 2 GiB of events (eventSize x eventCapacity)",
    kernels.BAD_POLARITY_SIZE: f"polarity packet (eventType 1) must have eventSize {kernels.POLARITY_SIZE}",
}


class Aedat31Decoder:
    """Decodes whole packets; a packet cut by the block end is left for the next, larger block.

    Args:
        header: What :func:`parse_header` returned; events outside its sensor size (when known) raise.
        source: The file's name for error messages.
    """

    def __init__(self, header: Header, source: str):
        self.source = source
        self.width = header.info.width
        self.height = header.info.height

    def decode(self, block: np.ndarray, offset: int, final: bool) -> tuple[np.ndarray, int]:
        """Decode the whole packets of ``block`` (file bytes from ``offset``; ``final`` when the file
        ends with it), as :meth:`~neurodata.formats.base.Decoder.decode` specifies: valid polarity
        events only; a bad packet header, negative time or off-sensor event raises FormatError."""
        most = len(block) // (kernels.PACKET_HEADER + kernels.POLARITY_SIZE) + 1
        starts = np.empty(most, np.int64)
        overflows = np.empty(most, np.int64)
        numbers = np.empty(most, np.int64)
        n_packets, consumed, n_events, code, where = kernels.scan_packets_numba(
            block, starts, overflows, numbers
        )
        if code != kernels.OK:
            raise FormatError(
                self.source, offset + where, f"{SCAN_ERRORS[code]} ({_describe_header(block, where)})"
            )
        if final and consumed != len(block):
            raise self._truncated(block, offset, consumed)
        out = empty_events(n_events)
        width = kernels.UNKNOWN_SIZE if self.width is None else self.width
        height = kernels.UNKNOWN_SIZE if self.height is None else self.height
        n, bad, status = kernels.decode_polarity_numba(
            block, starts, overflows, numbers, n_packets, width, height, out["t"], out["x"], out["y"], out["p"]
        )
        if status == kernels.NEGATIVE_TIMESTAMP:
            raise FormatError(self.source, offset + bad, "valid polarity event has a negative timestamp")
        if status == kernels.OUTSIDE_SENSOR:
            data = int(block[bad : bad + 4].view("<u4")[0])
            raise FormatError(
                self.source,
                offset + bad,
                f"valid polarity event at x={data >> 17}, y={(data >> 2) & 0x7FFF} lies outside the "
                f"{self.width}x{self.height} sensor",
            )
        return out[:n], consumed

    def _truncated(self, block: np.ndarray, offset: int, pos: int) -> FormatError:
        left = len(block) - pos
        if left < kernels.PACKET_HEADER:
            return FormatError(
                self.source, offset + pos, f"truncated packet header: {left} bytes left, a header is 28 bytes"
            )
        head = block[pos : pos + kernels.PACKET_HEADER].view(kernels.HEADER_DTYPE)[0]
        need = kernels.PACKET_HEADER + int(head["size"]) * int(head["capacity"])
        return FormatError(
            self.source,
            offset + pos,
            f"packet runs past the end of the file: it needs {need} bytes, {left} are left "
            f"({_describe_header(block, pos)})",
        )


@dataclass(frozen=True)
class Traps:
    """What :class:`Aedat31Writer` interleaves to test readers (all off by default).

    ``special_every``: a type-0 special-event packet after every that many polarity packets;
    ``invalid_every``: an invalidated event (valid bit 0, bogus address) after every that many events;
    ``spare_slots``: unused capacity after each polarity packet's events, filled with valid-looking garbage.
    """

    special_every: int = 0
    invalid_every: int = 0
    spare_slots: int = 0


def header_bytes(info: RecordingInfo) -> bytes:
    """The DVS128 Gesture style text header (CRLF lines).

    Args:
        info: Gives ``extra["start_time"]``, else the ``#Start-Time`` is ``time_origin`` (now when unset).
    """
    start = info.extra.get("start_time")
    if start is None:
        origin = info.time_origin
        moment = (
            datetime.datetime.fromtimestamp(origin / 1e6, datetime.timezone.utc)
            if origin is not None
            else datetime.datetime.now(datetime.timezone.utc)
        )
        start = moment.strftime("%Y-%m-%d %H:%M:%S (TZ+0000)")
    lines = [
        "#!AER-DAT3.1",
        "#Format: RAW",
        f"#Source {SOURCE_ID}: DVS128",
        f"#Start-Time: {start}",
        "#!END-HEADER",
    ]
    return "".join(f"{line}\r\n" for line in lines).encode("ascii")


def packet_bounds(t: np.ndarray, packet_events: int) -> list[tuple[int, int]]:
    """Split time-ordered events into packets of at most ``packet_events`` within one ``t >> 31`` epoch."""
    epoch = t >> kernels.TS_OVERFLOW_SHIFT
    run_edges = [0, *(np.flatnonzero(np.diff(epoch)) + 1).tolist(), len(t)]
    return [
        (start, min(start + packet_events, run_end))
        for run_start, run_end in zip(run_edges[:-1], run_edges[1:])
        for start in range(run_start, run_end, packet_events)
    ]


def with_invalid_events(events: np.ndarray, every: int) -> tuple[np.ndarray, np.ndarray]:
    """Insert an invalidated copy (mirrored address) after every ``every`` events: (events, valid mask)."""
    n = len(events)
    slots = np.arange(n) + np.arange(n) // every  # where each real event lands
    total = n + n // every
    out = empty_events(total)
    valid = np.zeros(total, bool)
    out[slots] = events
    valid[slots] = True
    fillers = np.flatnonzero(~valid)
    source = events[fillers - np.arange(1, len(fillers) + 1)]  # the event just before each filler
    out[fillers] = source
    out["x"][fillers] = DVS128_SIZE - 1 - source["x"]
    out["y"][fillers] = DVS128_SIZE - 1 - source["y"]
    return out, valid


class Aedat31Writer:
    """Streams events into DVS128 Gesture style AEDAT 3.1; partial packets wait for the next write.

    Args:
        fileobj: Binary file opened for writing; the header is written at once.
        info: The recording's info (start time; ``extra["packet_events"]`` when ``packet_events`` is None).
        packet_events: Most polarity events per packet (default 4096).
        traps: What to interleave for testing readers; None writes a clean file.
    """

    def __init__(
        self,
        fileobj: BinaryIO,
        info: RecordingInfo,
        packet_events: int | None = None,
        traps: Traps | None = None,
    ):
        self.packet_events = int(packet_events or info.extra.get("packet_events", DEFAULT_PACKET_EVENTS))
        if self.packet_events <= 0:
            raise NeurodataError(f"packet_events must be positive, got {self.packet_events}")
        self.traps = traps or Traps()
        self.file = fileobj
        self.pending = empty_events(0)
        self.packets = 0
        self.file.write(header_bytes(info))

    def write(self, events: np.ndarray) -> None:
        """Append ``events`` (time-sorted, continuing earlier writes) as full packets; the rest waits.

        Raises:
            NeurodataError: Negative times, or coordinates outside 128x128 (the order is checked by
                :class:`~neurodata.writer.CheckedWriter`).
        """
        events = as_events(events)
        if events.size == 0:
            return
        t = events["t"]
        if int(t[0]) < 0:
            raise NeurodataError(f"AEDAT 3.1 timestamps are non-negative, got t = {int(t[0])}")
        if int(events["x"].max()) >= DVS128_SIZE or int(events["y"].max()) >= DVS128_SIZE:
            raise NeurodataError("the DVS128 Gesture layout holds 0 <= x, y < 128")
        self._emit(concatenate([self.pending, events]), final=False)

    def close(self) -> None:
        """Write the events still waiting as the last packets."""
        self._emit(self.pending, final=True)
        self.pending = empty_events(0)

    def _emit(self, events: np.ndarray, final: bool) -> None:
        bounds = packet_bounds(events["t"], self.packet_events)
        if (
            not final
            and bounds
            and bounds[-1][1] == len(events)
            and bounds[-1][1] - bounds[-1][0] < self.packet_events
        ):
            self.pending = events[bounds.pop()[0] :].copy()
        else:
            self.pending = empty_events(0)
        self.file.write(b"".join(self._packet(events[start:end]) for start, end in bounds))

    def _packet(self, events: np.ndarray) -> bytes:
        traps = self.traps
        valid = np.ones(len(events), bool)
        if traps.invalid_every:
            events, valid = with_invalid_events(events, traps.invalid_every)
        packet = kernels.encode_polarity_packet(
            events["t"], events["x"], events["y"], events["p"], valid, SOURCE_ID, traps.spare_slots
        )
        self.packets += 1
        if traps.special_every and self.packets % traps.special_every == 0:
            packet += kernels.encode_special_packet(int(events["t"][-1]), SOURCE_ID)
        return packet


def write_aedat31(
    path: str | os.PathLike,
    events: np.ndarray,
    info: RecordingInfo | None = None,
    packet_events: int = DEFAULT_PACKET_EVENTS,
    traps: Traps | None = None,
) -> None:
    """Write ``events`` to ``path`` atomically, with a chosen packet size and optional reader traps.

    Args:
        path: The file to write.
        events: Time-sorted events inside 128x128.
        info: The recording's info (None: defaults, start time now).
        packet_events: Most polarity events per packet.
        traps: What to interleave for testing readers; None writes a clean file.
    """
    with atomic_output(path) as fileobj:
        writer = Aedat31Writer(fileobj, info or RecordingInfo(format="aedat31"), packet_events, traps)
        writer.write(events)
        writer.close()


SPEC = FormatSpec(
    name="aedat31",
    description="AEDAT 3.1 (libcaer; DVS128 Gesture), polarity events",
    extensions=(".aedat",),
    magic=MAGIC,
    sniff=None,
    parse_header=parse_header,
    make_decoder=Aedat31Decoder,
    make_writer=Aedat31Writer,
)
