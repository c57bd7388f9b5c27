"""Prophesee RAW EVT 2.0 / 3.0 bytes from a pipe, standard input (``-``) or a file still being
written (``follow``), decoded as they arrive by the format's own decoder, whose state (time base,
row, vector base) carries across reads, so the bytes may be split anywhere.

A ``%`` text header at the start is read first (it names the format and the geometry); without
one, ``format`` (``evt2``/``evt3``) must be given and ``width``/``height`` bound the coordinates.
"""

from __future__ import annotations

import fcntl
import io
import os
import select
import stat
import sys
import time

from ..errors import NeurodataError
from ..events import RecordingInfo
from ..formats import get_format
from ..formats.base import Header
from ..formats.output import EventArena
from ..formats.prophesee_header import parse_raw_header, raw_format, split_header
from .bytebuffer import ByteBuffer
from .sources import POLL_SECONDS, LiveOptions, LiveSource

READ_BYTES = 1 << 20
PIPE_BYTES = 1 << 20  # a pipe this large (Linux's default limit for users) is read in fewer, larger pieces
RAW_FORMATS = ("evt2", "evt3")


class RawStreamSource(LiveSource):
    """RAW EVT bytes from a file descriptor, decoded incrementally.

    Parameters:
        path: a path (pipe, regular file) or ``-`` for standard input.
        options: ``format``, ``follow``, ``idle_timeout``, ``width``, ``height``.
    """

    def __init__(self, path: str, options: LiveOptions):
        super().__init__("<stdin>" if path == "-" else path, options)
        try:
            self.fd = sys.stdin.fileno() if path == "-" else os.open(path, os.O_RDONLY)
        except OSError as err:
            raise NeurodataError(f"{path}: cannot open ({err.strerror})") from None
        self.owns_fd = path != "-"
        _widen_pipe(self.fd)
        self.buffer = ByteBuffer()
        self.at_end = False
        header = self._read_header()
        self.info = header.info
        self.decoder = get_format(self.info.format).make_decoder(header, self.source)
        self.decoder.output = EventArena()  # consecutive decodes side by side: windows need no copy

    def _read(self) -> int:
        """Read what is available: bytes read, 0 at the end, -1 when nothing came within a poll."""
        if not self.options.follow:
            ready, _, _ = select.select([self.fd], [], [], POLL_SECONDS)
            if not ready:
                return -1
        n = os.readv(self.fd, [self.buffer.space(READ_BYTES)])
        if n:
            self.buffer.commit(n)
            self.stats.bytes += n
        return n

    def _read_header(self) -> Header:
        while True:
            data = bytes(self.buffer.view())
            parsed = split_header(data, self.at_end, self.source)
            if parsed is not None or self.at_end:
                break
            n = self._read()
            if n == 0 and not self.options.follow:
                self.at_end = True
            elif n == 0:
                self.wait(POLL_SECONDS)  # a growing file: wait for more
            if self.stopping:
                raise NeurodataError(f"{self.source}: stopped before the header arrived")
        fields = parsed.fields if parsed is not None else {}
        found, _ = raw_format(fields)
        fmt = found or self.options.format
        if fmt not in RAW_FORMATS:
            raise NeurodataError(
                f"{self.source}: the bytes do not say their RAW format; pass format evt2 or evt3 (--format)"
            )
        if parsed is not None and parsed.data_offset:
            head = bytes(self.buffer.view()[: parsed.data_offset])
            info, offset, t_offset = parse_raw_header(io.BytesIO(head), self.source, fmt)
            self.buffer.consume(offset)
        else:
            info, t_offset = RecordingInfo(format=fmt, source=self.source), 0
        info.width = info.width or self.options.width
        info.height = info.height or self.options.height
        return Header(info, self.buffer.offset, {"t_offset": t_offset})

    def produce(self) -> None:
        """Read and decode the stream until it ends (or, with ``follow``, until idle too long or stopped)."""
        try:
            idle_since = time.monotonic()
            while not self.stopping and not self.at_end:
                self._decode(final=False)
                n = self._read()
                if n > 0:
                    idle_since = time.monotonic()
                elif n == 0 and not self.options.follow:
                    self.at_end = True
                elif n == 0:
                    idle = self.options.idle_timeout
                    if idle is not None and time.monotonic() - idle_since > idle:
                        self.at_end = True
                    else:
                        self.wait(POLL_SECONDS)
            self._decode(final=self.at_end)
        finally:
            if self.owns_fd:
                os.close(self.fd)

    def _decode(self, final: bool) -> None:
        if not self.buffer.filled and not final:
            return
        received = time.perf_counter_ns()
        events, consumed = self.decoder.decode(self.buffer.view(), self.buffer.offset, final)
        self.buffer.consume(consumed)
        self.stats.packets += 1
        self.emit(events, received)



def _widen_pipe(fd: int) -> None:
    """Grow a pipe's kernel buffer to :data:`PIPE_BYTES` (Linux), so that each read takes more at
    once; anything else, or a refusal (a lower ``/proc/sys/fs/pipe-max-size``), is left as it is."""
    setter = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setter is None:
        return
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, setter, PIPE_BYTES)
    except OSError:  # above /proc/sys/fs/pipe-max-size for this user: the pipe keeps its size, only slower
        pass
