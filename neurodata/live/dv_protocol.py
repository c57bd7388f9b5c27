"""The DV network stream (iniVation's dv-processing ``NetworkWriter``/``NetworkReader``, the DV
software's network outputs), both directions, on top of the AEDAT 4 layout.

On connect the server sends one IOHeader (``u32`` size, then a FlatBuffer with file identifier
"IOHE": compression and the XML description of the ``EVTS`` stream with its ``sizeX``/``sizeY``;
no ``#!AER-DAT4.0`` line, no FileDataTable), then packets ``i32 streamId, i32 size, payload`` whose
payload is an EventPacket FlatBuffer, compressed whole as the header says. Decoding reuses
:class:`neurodata.formats.aedat4.Aedat4Decoder`; this module adds what a network stream needs: the
header read incrementally, a bound on packet sizes (a garbage size would otherwise wait forever),
and packets whose payload does not decode counted and skipped (the framing stays intact).
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError
from ..events import empty_events, join
from ..formats.aedat4 import Aedat4Decoder, parse_stream_header
from ..formats.aedat4_layout import PACKET_HEADER, compression_code, description_xml, event_packet, io_header
from ..formats.aedat4_writer import _compressor
from ..formats.output import EventArena
from .stats import LiveStats

MAX_PACKET_BYTES = 64 << 20  # a larger size field is garbage, not a DV packet
STREAM_ID = 0


def stream_header(width: int, height: int, compression: str = "lz4") -> bytes:
    """The IOHeader a DV server sends first: one ``EVTS`` stream (id 0) of ``width`` x ``height``.

    Parameters:
        width, height: the sensor size written to the description (``sizeX``, ``sizeY``).
        compression: ``none``, ``lz4``, ``lz4_high``, ``zstd`` or ``zstd_high``.
    """
    code = compression_code(compression)
    return io_header(code, -1, description_xml(width, height, compression.lower()))


class PacketEncoder:
    """Encodes event arrays as DV packets (header + compressed EventPacket) of one compression."""

    def __init__(self, compression: str = "lz4"):
        self.compress = _compressor(compression_code(compression))

    def encode(self, events: np.ndarray) -> bytes:
        """One packet holding all of ``events`` (the caller bounds its size)."""
        payload = self.compress(event_packet(events))
        return PACKET_HEADER.pack(STREAM_ID, len(payload)) + payload


class DvStreamDecoder:
    """Decodes a DV network stream fed in arbitrary pieces: the IOHeader, then whole packets.

    Decoded events are written one after another into an :class:`~neurodata.formats.output.EventArena`,
    so that a consumer's windows spanning several decodes are views, not copies.

    Parameters:
        source: the name used in errors (the URL).
        stats: where packets are counted and undecodable ones recorded as skipped.
    """

    def __init__(self, source: str, stats: LiveStats):
        self.source = source
        self.stats = stats
        self.header = None
        self.decoder: Aedat4Decoder | None = None
        self.output = EventArena()

    def decode(self, block: np.ndarray, offset: int) -> tuple[np.ndarray, int]:
        """Decode the whole packets at the start of ``block`` (stream byte ``offset``).

        Returns the events and the bytes consumed; the rest is offered again with more data.
        Raises :class:`~neurodata.errors.FormatError` naming the stream offset when the bytes are
        not a DV stream (wrong identifier, garbage sizes, an unknown stream id).
        """
        consumed = 0
        if self.decoder is None:
            parsed = parse_stream_header(block, self.source) if offset == 0 else None
            if parsed is None:
                return empty_events(0), 0
            self.header, consumed = parsed
            if self.header.fields["stream_id"] is None:
                raise FormatError(self.source, 0, "the IOHeader describes no EVTS event stream")
            self.decoder = Aedat4Decoder(self.header, self.source)
            self.decoder.output = self.output
        spans = self._packets(block, consumed, offset)
        if not spans:
            return empty_events(0), consumed
        end = spans[-1][1]
        self.stats.packets += len(spans)
        try:
            events, _ = self.decoder.decode(block[consumed:end], offset + consumed, True)
        except FormatError:
            events = self._decode_one_by_one(block, spans, offset)
        return events, end

    def _packets(self, block: np.ndarray, pos: int, offset: int) -> list[tuple[int, int]]:
        """``(start, end)`` of the whole packets from ``pos``, checking each size as it is read."""
        spans = []
        while len(block) - pos >= PACKET_HEADER.size:
            stream_id, size = PACKET_HEADER.unpack_from(block, pos)
            if stream_id not in self.header.fields["stream_ids"]:
                known = sorted(self.header.fields["stream_ids"])
                raise FormatError(
                    self.source, offset + pos, f"packet for stream {stream_id}, expected one of {known}: not a DV stream"
                )
            if not 0 <= size <= MAX_PACKET_BYTES:
                raise FormatError(
                    self.source, offset + pos, f"packet size {size} outside 0..{MAX_PACKET_BYTES}: not a DV stream"
                )
            end = pos + PACKET_HEADER.size + size
            if end > len(block):
                break
            spans.append((pos, end))
            pos = end
        return spans

    def _decode_one_by_one(self, block: np.ndarray, spans: list[tuple[int, int]], offset: int) -> np.ndarray:
        """Decode packet by packet, counting and skipping those whose payload is invalid (their
        headers were checked by :meth:`_packets`, so the stream stays in step)."""
        pieces = []
        for start, end in spans:
            try:
                events, _ = self.decoder.decode(block[start:end], offset + start, True)
            except FormatError:
                self.stats.skipped_packets += 1
                continue
            pieces.append(events)
        return join(pieces)
