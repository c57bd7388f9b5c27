"""AEDAT 4.0 (iniVation DV: DVXplorer, DAVIS): header parsing, the streaming decoder and the format
spec. The byte layout lives in :mod:`.aedat4_layout`, writing in :mod:`.aedat4_writer`.

Layout: ``#!AER-DAT4.0\\r\\n``, ``u32`` size, an IOHeader FlatBuffer (compression, position of the
optional FileDataTable, XML description of the streams), then packets ``i32 streamId, i32 size,
payload`` up to the FileDataTable (or the end of the file). Payloads are one LZ4 or zstd frame
each (or raw), holding a size-prefixed FlatBuffer. Only one event stream (``EVTS``; the lowest id
unless :func:`select_stream` picks another) is decoded; frame, IMU and trigger packets are skipped
by their size.
Timestamps stay Unix time in microseconds, so ``info.time_origin`` is 0.

DV's network output sends the same body without the magic line: :func:`parse_stream_header`
reads its ``u32 size + IOHeader`` prefix, after which :class:`Aedat4Decoder` decodes the packets.
"""

from __future__ import annotations

import os
import struct
import threading
from typing import BinaryIO

import lz4.frame
import numpy as np
import zstandard

from .._threads import ordered_map, shared_pool
from ..errors import FormatError, NeurodataError
from ..events import RecordingInfo, empty_events
from .aedat4_layout import COMPRESSION_NAMES, IO_HEADER_LIMIT, MAGIC, PACKET_HEADER, Stream, parse_io_header
from .aedat4_writer import Aedat4Writer
from .base import FormatSpec, Header
from .kernels import aedat4 as kernels
from .kernels import lz4_frames
from .output import EventOutput, FreshArrays

MAX_DECOMPRESSED = 256 << 20  # refuse LZ4 and zstd frames that expand beyond this (16 M events)
WORKERS = min(4, os.cpu_count() or 1)
PARALLEL_MIN_PACKETS = 256  # below this, waking the pool costs more than it saves (measured)
BATCH_PACKETS = 16  # packets decompressed per pool task
LZ4_ROOM = 1 << 20  # the least room a batch of LZ4 packets is decompressed into
SCRATCH_KEPT = 2 * WORKERS + 2  # such buffers kept for reuse by every decoder: as many as batches in flight
SCRATCH_KEPT_BYTES = 8 << 20  # (larger ones, for unusually well compressed packets, are not kept)
_SCRATCH: list[np.ndarray] = []  # (list.pop and list.append are atomic: any thread may take or give back)


# --- header ----------------------------------------------------------------------------------


def _make_header(
    compression: int,
    table_pos: int,
    streams: list[Stream],
    data_offset: int,
    file_size: int | None,
    source: str,
) -> Header:
    if table_pos != -1 and table_pos < data_offset:
        raise FormatError(
            source, 0, f"FileDataTable position {table_pos}, expected -1 or at least {data_offset}"
        )
    if table_pos != -1 and file_size is not None and table_pos > file_size:
        raise FormatError(
            source, file_size, f"file truncated: it ends before its FileDataTable at byte {table_pos}"
        )
    events = sorted((s for s in streams if s.type == "EVTS"), key=lambda s: s.id)
    chosen = events[0] if events else None
    info = RecordingInfo(
        format="aedat4",
        width=chosen.width if chosen else None,
        height=chosen.height if chosen else None,
        time_origin=0,
        extra={
            "compression": COMPRESSION_NAMES[compression],
            "streams": {s.id: s.type for s in streams},
            "event_stream": chosen.id if chosen else None,
        },
    )
    fields = {
        "compression": compression,
        "stream_id": chosen.id if chosen else None,
        "stream_ids": frozenset(s.id for s in streams),
        "streams": streams,
        "end": table_pos if table_pos != -1 else None,
        "file_size": file_size,
    }
    return Header(info, data_offset, fields)


def parse_header(fileobj: BinaryIO, source: str) -> Header:
    """Read the magic line and the IOHeader: compression, the FileDataTable's position, the streams.

    The lowest-id event stream is read unless :func:`select_stream` picks another.

    Args:
        fileobj: The file, opened in binary mode at offset 0 and seekable (its size bounds the packets).
        source: The file's name for error messages.

    Raises:
        FormatError: No magic, a truncated or oversized IOHeader, or a malformed stream description.
    """
    magic = fileobj.read(len(MAGIC))
    if magic != MAGIC:
        raise FormatError(source, 0, f"expected the AEDAT 4.0 magic {MAGIC!r}, found {magic!r}")
    size_bytes = fileobj.read(4)
    if len(size_bytes) < 4:
        raise FormatError(source, len(MAGIC), "file ends before the IOHeader size")
    size = struct.unpack("<I", size_bytes)[0]
    if size > IO_HEADER_LIMIT:
        raise FormatError(source, len(MAGIC), f"IOHeader size {size} exceeds {IO_HEADER_LIMIT} bytes")
    body = fileobj.read(size)
    if len(body) < size:
        raise FormatError(
            source, len(MAGIC) + 4, f"file ends {size - len(body)} bytes into the {size}-byte IOHeader"
        )
    compression, table_pos, streams = parse_io_header(size_bytes + body, len(MAGIC), source)
    data_offset = len(MAGIC) + 4 + size
    try:
        file_size = fileobj.seek(0, 2)
    except (OSError, ValueError):
        file_size = None
    return _make_header(compression, table_pos, streams, data_offset, file_size, source)


def parse_stream_header(data: bytes | np.ndarray, source: str = "<stream>") -> tuple[Header, int] | None:
    """Parse the ``[u32 size][IOHeader]`` prefix of a DV network stream (no magic line, no table).

    Returns ``(header, consumed bytes)``, or None while ``data`` does not yet hold the whole
    prefix. Feed the following bytes to ``Aedat4Decoder(header, source).decode`` (offsets
    counted from the stream start).
    """
    data = bytes(data[: IO_HEADER_LIMIT + 4])
    if len(data) < 4:
        return None
    size = struct.unpack_from("<I", data)[0]
    if size > IO_HEADER_LIMIT:
        raise FormatError(source, 0, f"IOHeader size {size} exceeds {IO_HEADER_LIMIT} bytes")
    if len(data) < 4 + size:
        return None
    compression, _, streams = parse_io_header(data[: 4 + size], 0, source)
    return _make_header(compression, -1, streams, 4 + size, None, source), 4 + size


def select_stream(header: Header, stream_id: int) -> None:
    """Make decoders of ``header`` read event stream ``stream_id`` instead of the lowest-id one.

    Use on an open recording before reading: ``select_stream(rec.header, 1)``.
    """
    streams = header.fields["streams"]
    chosen = next((s for s in streams if s.id == stream_id and s.type == "EVTS"), None)
    if chosen is None:
        events = [s.id for s in streams if s.type == "EVTS"]
        raise NeurodataError(f"stream {stream_id} is not an event stream; event streams: {events}")
    header.fields["stream_id"] = stream_id
    header.info.width, header.info.height = chosen.width, chosen.height
    header.info.extra["event_stream"] = stream_id


# --- decoding --------------------------------------------------------------------------------


_ZSTD = threading.local()  # a ZstdDecompressor must not be used by two threads at once


def _zstd_decompress(payload: np.ndarray) -> bytes:
    if not hasattr(_ZSTD, "dctx"):
        _ZSTD.dctx = zstandard.ZstdDecompressor()
    return _ZSTD.dctx.decompress(payload, max_output_size=MAX_DECOMPRESSED)


def _lz4_decompress(payload: np.ndarray) -> bytes:
    """One LZ4 frame, refused (ValueError) when it expands beyond :data:`MAX_DECOMPRESSED` or is
    incomplete: a few MB of crafted frame would otherwise expand to many GB."""
    frame = lz4.frame.LZ4FrameDecompressor()
    data = frame.decompress(payload, max_length=MAX_DECOMPRESSED + 1)
    if len(data) > MAX_DECOMPRESSED:
        raise ValueError(f"it expands beyond {MAX_DECOMPRESSED >> 20} MiB")
    if not frame.eof:
        raise ValueError("the frame ends early")
    return data


def _decompressor(compression: int):
    if compression in (1, 2):
        return _lz4_decompress
    if compression in (3, 4):
        return _zstd_decompress
    return None


class Aedat4Decoder:
    """Splits blocks into whole packets, decompresses the event stream's payloads, unpacks events.

    Args:
        header: What :func:`parse_header` or :func:`parse_stream_header` returned.
        source: The file's name for error messages.
    """

    def __init__(self, header: Header, source: str):
        self.source = source
        self.width, self.height = header.info.width, header.info.height
        self.stream_id = header.fields["stream_id"]
        self.stream_ids = header.fields["stream_ids"]
        self.end = header.fields["end"]
        self.file_size = header.fields["file_size"]
        self.compression = header.fields["compression"]
        self.decompress = _decompressor(self.compression)
        # output sizing: raw payloads hold at most size/16 events; compressed ones are estimated
        # from the ratio of the first batch, with a margin against growing
        self.events_per_byte = 1 / kernels.EVENT_SIZE if self.decompress is None else 0.0
        self.estimate_margin = 1.0 if self.decompress is None else 1.1
        self.output: EventOutput = FreshArrays()  # where events go (live sources set an EventArena)
        # LZ4 batches: one kernel call each (see _locate_lz4), with room for this many times their bytes
        self.lz4_kernel = self.compression in (1, 2) and lz4_frames.AVAILABLE
        self.lz4_expansion = 4

    def decode(self, block: np.ndarray, offset: int, final: bool) -> tuple[np.ndarray, int]:
        """Decode the whole packets of ``block`` (file bytes from ``offset``; ``final`` when the file
        ends with it), as :meth:`~neurodata.formats.base.Decoder.decode` specifies; packets of other
        streams and the FileDataTable are skipped."""
        spans, consumed = self._split(block, offset, final)
        return self._events(block, offset, spans), consumed

    def _split(self, block: np.ndarray, offset: int, final: bool) -> tuple[list[tuple[int, int]], int]:
        """Block positions ``(start, end)`` of the event packets' payloads, and bytes consumed."""
        spans = []
        pos = 0
        limit = len(block)
        while True:
            if self.end is not None and offset + pos >= self.end:
                return spans, limit  # the FileDataTable: not packets, skip to the end
            if limit - pos < PACKET_HEADER.size:
                break
            stream_id, size = PACKET_HEADER.unpack_from(block, pos)
            where = offset + pos
            self._check_packet(where, stream_id, size)
            if pos + PACKET_HEADER.size + size > limit:
                break
            if stream_id == self.stream_id:
                spans.append((pos + PACKET_HEADER.size, pos + PACKET_HEADER.size + size))
            pos += PACKET_HEADER.size + size
        if final and pos < limit:
            raise FormatError(
                self.source,
                offset + pos,
                f"truncated packet: {limit - pos} bytes left, expected a whole packet",
            )
        return spans, pos

    def _check_packet(self, where: int, stream_id: int, size: int) -> None:
        if stream_id not in self.stream_ids:
            raise FormatError(
                self.source,
                where,
                f"packet for stream {stream_id}, expected one of the described streams {sorted(self.stream_ids)}",
            )
        if size < 0:
            raise FormatError(self.source, where, f"negative packet size {size}")
        stop = where + PACKET_HEADER.size + size
        bound = self.end if self.end is not None else self.file_size
        if bound is not None and stop > bound:
            what = "the FileDataTable" if self.end is not None else "the end of the file"
            raise FormatError(self.source, where, f"packet of {size} bytes runs past {what} at byte {bound}")

    def _events(self, block: np.ndarray, offset: int, spans: list[tuple[int, int]]) -> np.ndarray:
        """Decompress and locate the packets' event vectors in batches, unpacking each batch as it
        arrives, so decompressed packets are short-lived (cache-warm, bounded memory).

        With many packets the batches are decompressed on a thread pool (lz4 and zstandard release
        the GIL) while this thread unpacks. The output is sized from the compression ratio seen
        so far and grows if a later part of the file compresses better.
        """
        batches = [spans[i : i + BATCH_PACKETS] for i in range(0, len(spans), BATCH_PACKETS)]
        parallel = len(spans) >= PARALLEL_MIN_PACKETS and WORKERS >= 2
        located = ordered_map(
            lambda batch: (self._locate_lz4 if self.lz4_kernel else self._locate_each)(block, offset, batch),
            batches,
            shared_pool("neurodata-aedat4", WORKERS) if parallel else None,
            2 * WORKERS,  # results held at once: bounded memory
        )
        rows = _Rows(self.output)
        payload_left = sum(e - s for s, e in spans)
        for batch in located:
            batch_events = sum(item[2] for item in batch)
            batch_bytes = sum(item[4] for item in batch)
            self.events_per_byte = self.events_per_byte or batch_events / max(1, batch_bytes)
            rows.reserve(batch_events, int(payload_left * self.events_per_byte * self.estimate_margin))
            payload_left -= batch_bytes
            self._unpack(batch, rows)
            self._recycle(batch)
        return rows.result()

    def _unpack(self, batch: list[tuple], rows: _Rows) -> None:
        """Copy the located packets of ``batch`` into ``rows``: in one kernel call where they share
        one buffer at 8-aligned positions (the LZ4 batch kernel's), else packet by packet."""
        buf = batch[0][0]
        if len(batch) > 1 and all(item[0] is buf and item[1] & 7 == 0 for item in batch):
            positions = np.array([item[1] for item in batch], np.int64)
            counts = np.array([item[2] for item in batch], np.int64)
            k, bad = kernels.unpack_packets_numba(
                *kernels.struct_views(buf), positions, counts, rows.out, rows.n, *self._bounds()
            )
            if k >= 0:
                _, pos, count, where, _ = batch[k]
                raise self._outside(where, bad, kernels.struct_view(buf, pos, count)[bad])
            rows.n += int(counts.sum())
            return
        for buf, pos, count, where, _ in batch:
            structs = kernels.struct_view(buf, pos, count)
            bad = kernels.unpack_numba(structs, rows.out, rows.n, *self._bounds())
            if bad >= 0:
                raise self._outside(where, bad, structs[bad])
            rows.n += count

    def _recycle(self, batch: list[tuple]) -> None:
        """Keep the buffers :meth:`_locate_lz4` decompressed ``batch`` into (unpacked now) for the
        next batches: reused memory is already mapped and cached, a fresh buffer's pages are not."""
        if self.lz4_kernel:
            for buf in {id(item[0]): item[0] for item in batch}.values():
                ours = buf.base is None  # (not lz4.frame's bytes)
                if ours and len(buf) <= SCRATCH_KEPT_BYTES and len(_SCRATCH) < SCRATCH_KEPT:
                    _SCRATCH.append(buf)

    def _bounds(self) -> tuple[int, int]:
        unknown = kernels.UNKNOWN_SIZE
        return (unknown if self.width is None else self.width, unknown if self.height is None else self.height)

    def _outside(self, where: int, index: int, event: np.void) -> FormatError:
        x, y = int(event["x"]), int(event["y"])
        if x < 0 or y < 0:
            return FormatError(self.source, where, f"event {index} of the packet has a negative x or y ({x}, {y})")
        return FormatError(
            self.source, where, f"event {index} of the packet at x={x}, y={y} lies outside the {self.width}x{self.height} sensor"
        )

    def _locate_each(self, block: np.ndarray, offset: int, batch: list[tuple[int, int]]) -> list[tuple]:
        """:meth:`_locate` for each packet payload ``(start, end)`` of ``batch``."""
        return [self._locate(block, offset, s, e) for s, e in batch]

    def _locate_lz4(self, block: np.ndarray, offset: int, batch: list[tuple[int, int]]) -> list[tuple]:
        """As :meth:`_locate_each`, the LZ4 payloads decompressed into one buffer by one kernel call
        that holds the GIL once (:mod:`.kernels.lz4_frames`). A payload the kernel cannot decompress
        (not a valid frame, or larger than the room left) goes through :meth:`_locate`, which names
        the error as before or decompresses it alone; the kernel resumes after it."""
        items = []
        while batch:
            starts = np.array([s for s, _ in batch], np.int64)
            ends = np.array([e for _, e in batch], np.int64)
            room = min(MAX_DECOMPRESSED, self.lz4_expansion * int((ends - starts).sum()))  # more: one by one
            scratch = _scratch(max(LZ4_ROOM, room))
            located = np.empty((len(batch), 3), np.int64)
            how, done = lz4_frames.decompress_frames(lz4_frames.context(), block, starts, ends, scratch, located)
            for (start, end), (status, pos, count) in zip(batch, located[:done].tolist()):
                where = offset + start - PACKET_HEADER.size
                if status != kernels.OK:
                    raise self._invalid_packet(where, status)
                items.append((scratch, pos, count, where, end - start))
            if done < len(batch):
                if how == lz4_frames.NO_ROOM:
                    self.lz4_expansion *= 2  # a better-compressed stream: more room from now on
                items.append(self._locate(block, offset, *batch[done]))
                done += 1
            batch = batch[done:]
        return items

    def _locate(self, block: np.ndarray, offset: int, start: int, end: int) -> tuple:
        """(buffer, first struct position, event count, packet file offset, payload bytes) of a packet."""
        where = offset + start - PACKET_HEADER.size
        payload_bytes = end - start
        if self.decompress is None:
            buf = block
        else:
            buf = np.frombuffer(self._decompress(block, where, start, end), dtype=np.uint8)
            start, end = 0, len(buf)
        status, pos, count = kernels.locate_numba(buf, start, end)
        if status != kernels.OK:
            raise self._invalid_packet(where, status)
        return buf, pos, count, where, payload_bytes

    def _invalid_packet(self, where: int, status: int) -> FormatError:
        return FormatError(self.source, where, f"invalid EventPacket: expected {kernels.MESSAGES[status]}")

    def _decompress(self, block: np.ndarray, where: int, start: int, end: int) -> bytes:
        try:
            return self.decompress(block[start:end])
        except Exception as err:  # lz4 raises RuntimeError, zstandard ZstdError: both mean bad data
            name = COMPRESSION_NAMES[self.compression].upper()
            raise FormatError(self.source, where, f"payload is not one valid {name} frame ({err})") from None


def _scratch(size: int) -> np.ndarray:
    """A kept buffer of at least ``size`` bytes, or a new one (of the next power of two: batches
    of similar sizes then reuse each other's)."""
    try:
        buf = _SCRATCH.pop()
    except IndexError:
        buf = None
    return buf if buf is not None and len(buf) >= size else np.empty(1 << (size - 1).bit_length(), np.uint8)


class _Rows:
    """An event array taken from ``output``, filled front to back, grown by half when the size
    estimate falls short."""

    def __init__(self, output: EventOutput):
        self.output = output
        self.out = empty_events(0)
        self.n = 0

    def reserve(self, count: int, estimate: int) -> None:
        """Make room for ``count`` more rows, taking ``estimate`` more if it must reallocate."""
        if self.n + count <= len(self.out):
            return
        bigger = self.output.take(max(self.n + count, self.n + estimate, len(self.out) * 3 // 2))
        bigger[: self.n] = self.out[: self.n]  # (an arena may hand out the same rows again, larger)
        self.out = bigger

    def result(self) -> np.ndarray:
        """The filled rows, kept from the output (see :meth:`EventOutput.keep`)."""
        return self.output.keep(self.out, self.n) if len(self.out) else self.out


SPEC = FormatSpec(
    name="aedat4",
    description="AEDAT 4.0 (iniVation DV; EVTS stream, LZ4/zstd packets)",
    extensions=(".aedat4",),
    magic=MAGIC,
    sniff=None,
    parse_header=parse_header,
    make_decoder=Aedat4Decoder,
    make_writer=Aedat4Writer,
)
