"""AEDAT 4.0 writer: one EVTS stream in packets of N events, LZ4/zstd/raw, with a FileDataTable."""

from __future__ import annotations

from typing import BinaryIO

import lz4.frame
import numpy as np
import zstandard

from ..errors import NeurodataError
from ..events import RecordingInfo, empty_events
from .aedat4_layout import (
    COMPRESSION_NAMES,
    MAGIC,
    MAX_COORD,
    PACKET_HEADER,
    compression_code,
    description_xml,
    event_packet,
    file_data_table,
    io_header,
)

DEFAULT_PACKET_EVENTS = 4096


def _compressor(compression: int):
    if compression == 1:
        return lz4.frame.compress
    if compression == 2:
        return lambda data: lz4.frame.compress(data, compression_level=lz4.frame.COMPRESSIONLEVEL_MINHC)
    if compression in (3, 4):
        cctx = zstandard.ZstdCompressor(level=3 if compression == 3 else 19)
        return cctx.compress
    return bytes


class Aedat4Writer:
    """Writes events as EVTS packets of ``info.extra["packet_events"]`` events (default 4096).

    ``info.extra["compression"]`` picks ``none``, ``lz4`` (default), ``lz4_high``, ``zstd`` or
    ``zstd_high``. Geometry comes from ``info.width``/``info.height``; when one is absent, the header is
    written at the first chunk, that side from the largest coordinate. On a seekable file a FileDataTable is
    appended on close and the IOHeader is rewritten to point at it.

    Args:
        fileobj: Binary file opened for writing (seekable for the FileDataTable).
        info: The recording's info: sensor size, ``compression`` and ``packet_events`` extras.
    """

    def __init__(self, fileobj: BinaryIO, info: RecordingInfo):
        self.file = fileobj
        self.compression = compression_code(info.extra.get("compression", "lz4"))
        self.compress = _compressor(self.compression)
        self.packet_events = int(info.extra.get("packet_events", DEFAULT_PACKET_EVENTS))
        if self.packet_events <= 0:
            raise NeurodataError(f"packet_events must be positive, got {self.packet_events}")
        self.width, self.height = info.width, info.height
        self.header_start = fileobj.tell()
        self.position: int | None = None
        self.pending = empty_events(0)
        self.table: list[tuple[int, int, int, int, int, int]] = []
        if self.width is not None and self.height is not None:
            self._write_header()

    def _description(self) -> bytes:
        return description_xml(self.width, self.height, COMPRESSION_NAMES[self.compression])

    def _write_header(self) -> None:
        if not (0 < self.width <= MAX_COORD + 1 and 0 < self.height <= MAX_COORD + 1):
            raise NeurodataError(
                f"AEDAT 4.0 holds sensors up to 32768 x 32768, got {self.width} x {self.height}"
            )
        header = MAGIC + io_header(self.compression, -1, self._description())
        self.file.write(header)
        self.position = self.header_start + len(header)

    def write(self, events: np.ndarray) -> None:
        """Append ``events`` (EVENT_DTYPE, time-sorted) as full packets; the remainder waits for more.

        Raises:
            NeurodataError: An event lies outside the sensor size.
        """
        if events.size == 0:
            return
        if self.position is None:  # a side not given comes from the events, a given one is kept
            self.width = int(events["x"].max()) + 1 if self.width is None else self.width
            self.height = int(events["y"].max()) + 1 if self.height is None else self.height
            self._write_header()
        if int(events["x"].max()) >= self.width or int(events["y"].max()) >= self.height:
            raise NeurodataError(
                f"events outside the {self.width} x {self.height} sensor; set info.width/height to cover them"
            )
        if len(self.pending):
            events = np.concatenate([self.pending, events])
        full = len(events) // self.packet_events * self.packet_events
        for start in range(0, full, self.packet_events):
            self._write_packet(events[start : start + self.packet_events])
        self.pending = events[full:].copy()

    def _write_packet(self, events: np.ndarray) -> None:
        payload = self.compress(event_packet(events))
        self.file.write(PACKET_HEADER.pack(0, len(payload)) + payload)
        payload_at = self.position + PACKET_HEADER.size  # DV's table points past the packet header
        self.table.append(
            (payload_at, 0, len(payload), len(events), int(events["t"][0]), int(events["t"][-1]))
        )
        self.position += PACKET_HEADER.size + len(payload)

    def close(self) -> None:
        """Write the last partial packet, then the FileDataTable and the updated IOHeader (seekable files)."""
        if self.position is None:
            self.width, self.height = self.width or 1, self.height or 1
            self._write_header()
        if len(self.pending):
            self._write_packet(self.pending)
            self.pending = empty_events(0)
        if not (hasattr(self.file, "seekable") and self.file.seekable()):
            return
        table_pos = self.position
        self.file.write(self.compress(file_data_table(self.table)))
        end = self.file.tell()
        self.file.seek(self.header_start + len(MAGIC))
        self.file.write(io_header(self.compression, table_pos, self._description()))
        self.file.seek(end)
