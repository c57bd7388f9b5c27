"""The DV network client for ``tcp://`` and ``unix://`` sources: connect, read the IOHeader,
decode packets as they arrive, and reconnect with back-off when the connection breaks.

A stream that ends at a packet boundary (the server closed it) ends the source; a reset, a stream
cut inside a packet, or a refused connection is retried with exponential back-off (counted in
``stats.reconnects``) unless ``reconnect=False``, in which case it raises.
"""

from __future__ import annotations

import socket
import time

from ..errors import FormatError, NeurodataError
from ..events import RecordingInfo
from .bytebuffer import ByteBuffer
from .dv_protocol import DvStreamDecoder
from .sources import POLL_SECONDS, LiveOptions, LiveSource
from .urls import Endpoint

FIRST_BACKOFF = 0.05
MAX_BACKOFF = 2.0
RECV_BYTES = 4 << 20
SOCKET_BUFFER = 4 << 20  # fewer, larger reads at high rates (a read takes what is there: no latency cost)
RMEM_MAX = "/proc/sys/net/core/rmem_max"


class StreamCut(NeurodataError):
    """The connection ended inside a packet or was reset: worth reconnecting."""


class DvClient(LiveSource):
    """A client of a DV network stream (a DV server, dv-processing's ``NetworkWriter``, our replay).

    Parameters:
        endpoint: where the server listens.
        options: see :class:`~neurodata.live.sources.LiveOptions` (``reconnect``, ``connect_timeout``).
    """

    def __init__(self, endpoint: Endpoint, options: LiveOptions):
        super().__init__(str(endpoint), options)
        self.endpoint = endpoint
        self.buffer = ByteBuffer()
        self.sock = self._connect()
        self.decoder = DvStreamDecoder(self.source, self.stats)
        try:
            self._read_header()
        except BaseException:
            self.sock.close()
            raise
        header = self.decoder.header
        self.info = RecordingInfo(
            format="dv-network",
            width=header.info.width,
            height=header.info.height,
            source=self.source,
            time_origin=0,
            extra=dict(header.info.extra),
        )

    def _connect(self) -> socket.socket:
        """Connect, retrying with back-off for ``connect_timeout`` seconds when reconnecting is allowed."""
        deadline = time.monotonic() + self.options.connect_timeout
        backoff = FIRST_BACKOFF
        while True:
            family = socket.AF_UNIX if self.endpoint.scheme == "unix" else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            if family == socket.AF_INET and _kernel_allows_buffer(SOCKET_BUFFER):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)  # before connect: window scaling
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                sock.connect(self.endpoint.address)
            except OSError as err:
                sock.close()
                if not self.options.reconnect or time.monotonic() + backoff > deadline or self.stopping:
                    raise NeurodataError(f"{self.source}: cannot connect ({err})") from None
                self.wait(backoff)
                backoff = min(2 * backoff, MAX_BACKOFF)
                continue
            sock.settimeout(POLL_SECONDS)
            if family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock

    def _receive(self) -> int:
        """Read what is available into the buffer: bytes read, 0 at the end, -1 on a poll timeout."""
        try:
            n = self.sock.recv_into(self.buffer.space(RECV_BYTES), RECV_BYTES)
        except TimeoutError:
            return -1
        except OSError as err:  # a reset (ECONNRESET), or the socket closed by stop()
            if self.stopping:
                return 0
            raise StreamCut(f"{self.source}: connection lost ({err})") from None
        self.buffer.commit(n)
        self.stats.bytes += n
        return n

    def _read_header(self) -> None:
        deadline = time.monotonic() + self.options.connect_timeout
        while self.decoder.header is None:
            n = self._receive()
            if n == 0 or time.monotonic() > deadline:
                what = "closed the connection" if n == 0 else f"sent no IOHeader within {self.options.connect_timeout} s"
                raise FormatError(self.source, self.buffer.offset + self.buffer.filled, f"the server {what}")
            self._decode(time.perf_counter_ns())

    def _decode(self, received_ns: int) -> None:
        events, consumed = self.decoder.decode(self.buffer.view(), self.buffer.offset)
        self.buffer.consume(consumed)
        self.emit(events, received_ns)

    def produce(self) -> None:
        """Receive and decode until stopped, connecting again (with backoff) after a reset or refusal."""
        backoff = FIRST_BACKOFF
        while not self.stopping:
            try:
                self._pump()
                return
            except StreamCut:
                self.sock.close()
                if not self.options.reconnect or self.stopping:
                    raise
            if self.wait(backoff):
                return  # stopped while waiting to reconnect
            backoff = min(2 * backoff, MAX_BACKOFF)
            self.buffer.reset()
            try:
                self.sock = self._connect()
            except NeurodataError:
                if self.stopping:
                    return  # stopped (a duration, stop()) while reconnecting: the end, not a failure
                raise
            self.decoder = DvStreamDecoder(self.source, self.stats)
            self.stats.reconnects += 1

    def _pump(self) -> None:
        """Receive and decode until a clean end (or stop); raise :class:`StreamCut` on a broken one."""
        while not self.stopping:
            n = self._receive()
            if n < 0:
                continue
            if n == 0:
                break
            self._decode(time.perf_counter_ns())
        if self.buffer.filled and not self.stopping:
            at = self.buffer.offset
            raise StreamCut(
                f"{self.source}: at byte {at}: stream ended {self.buffer.filled} bytes into a packet"
            )
        self.sock.close()

    def interrupt(self) -> None:
        """Shut the socket down so that a blocking receive returns."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # not connected (yet, or any more): no receive is blocked on it
            pass


def _kernel_allows_buffer(size: int) -> bool:
    """Whether Linux lets a socket's receive buffer be ``size`` bytes. A set size also turns the
    kernel's own buffer growth off, so a size the kernel would cap (``net.core.rmem_max``) is not set."""
    try:
        with open(RMEM_MAX) as f:
            return int(f.read()) >= size
    except (OSError, ValueError):
        return False
