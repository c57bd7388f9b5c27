"""faery's UDP event formats, both directions: ``t64_x16_y16_on8`` (13 bytes per event: ``u64 t,
u16 x, u16 y, u8 on``) and ``t32_x16_y15_on1`` (8 bytes: the low 32 bits of t, ``u16 x``, ``u16
(y << 1) | on``), little-endian, whole events per datagram and no datagram header.

The formats carry no sequence numbers, so the receiver counts what it can see: datagrams that go
back in time (dropped, keeping the output in time order), datagrams that end inside an event, and
datagrams the kernel dropped on a full socket buffer (Linux ``SO_RXQ_OVFL``). The 32-bit format's
times are unwrapped: a drop of more than 2**31 us is a wrap, a smaller one is out of order.
"""

from __future__ import annotations

import socket
import struct
import time

import numpy as np

from ..errors import NeurodataError
from ..events import RecordingInfo, empty_events
from .sources import POLL_SECONDS, LiveOptions, LiveSource
from .urls import Endpoint

WIRE = {
    "t64_x16_y16_on8": np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "u1")]),
    "t32_x16_y15_on1": np.dtype([("t", "<u4"), ("x", "<u2"), ("y_on", "<u2")]),
}
EVENTS_PER_DATAGRAM = 100  # faery's default: 1300 bytes, under a typical 1500-byte MTU
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # Linux: the drop count comes with each datagram
SO_MEMINFO = 55  # Linux: the socket's memory counters, the last (index 8, SK_MEMINFO_DROPS) its drops
MAX_DATAGRAM = 65536
WRAP = 1 << 32


def encode_datagram(events: np.ndarray, udp_format: str) -> bytes:
    """The datagram carrying ``events`` in ``udp_format`` (times and y beyond the format's bits wrap)."""
    wire = np.empty(len(events), dtype=WIRE[udp_format])
    wire["x"] = events["x"]
    if udp_format == "t64_x16_y16_on8":
        wire["t"] = events["t"]
        wire["y"] = events["y"]
        wire["on"] = events["p"] != 0
    else:
        wire["t"] = events["t"] & 0xFFFFFFFF
        wire["y_on"] = ((events["y"].astype(np.uint32) << 1) | (events["p"] != 0)) & 0xFFFF
    return wire.tobytes()


class DatagramDecoder:
    """Decodes datagrams one by one, keeping the last time seen (and the 32-bit format's wraps).

    Parameters:
        udp_format: one of :data:`WIRE`.
        stats: where out-of-order and truncated datagrams are counted.
    """

    def __init__(self, udp_format: str, stats):
        self.wire = WIRE[udp_format]
        self.wide = udp_format == "t64_x16_y16_on8"
        self.stats = stats
        self.last_t = -1
        self.high = 0  # the 32-bit format's wrapped part of time

    def decode(self, data: memoryview) -> np.ndarray:
        """The events of one datagram's bytes ``data``, or none when it went back in time."""
        size = self.wire.itemsize
        if len(data) % size:
            self.stats.truncated_datagrams += 1
        wire = np.frombuffer(data, dtype=self.wire, count=len(data) // size)
        if not len(wire):
            return empty_events(0)
        if self.wide:
            t = wire["t"].astype(np.int64)
        else:
            t = self._unwrap(wire["t"].astype(np.int64))
        if t[0] < self.last_t:
            self.stats.out_of_order += 1
            return empty_events(0)
        events = empty_events(len(wire))
        events["t"] = t
        events["x"] = wire["x"]
        if self.wide:
            events["y"] = wire["y"]
            events["p"] = wire["on"] != 0
        else:
            events["y"] = wire["y_on"] >> 1
            events["p"] = wire["y_on"] & 1
        self.last_t = int(t[-1])
        return events

    def _unwrap(self, low: np.ndarray) -> np.ndarray:
        previous = self.last_t % WRAP if self.last_t >= 0 else int(low[0])
        steps = np.diff(low, prepend=previous)
        wraps = np.cumsum(steps < -(WRAP >> 1))
        t = low + (self.high + wraps) * WRAP
        if t[0] < self.last_t:  # out of order: leave the wrap count as it was
            return t
        self.high += int(wraps[-1])
        return t


class UdpSource(LiveSource):
    """Binds ``HOST:PORT`` and decodes the datagrams a sender (faery, our replay) sends there.

    Parameters:
        endpoint: the address to bind and the format.
        options: ``width``/``height`` give the sensor size (the format does not carry it).
    """

    def __init__(self, endpoint: Endpoint, options: LiveOptions):
        super().__init__(str(endpoint), options)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
            self.ancillary = socket.CMSG_SPACE(4)
        except OSError:  # not Linux: no drop count
            self.ancillary = 0
        try:
            self.sock.bind(endpoint.address)
        except OSError as err:  # in use, a host that does not resolve, an address not of this machine
            self.sock.close()
            raise NeurodataError(f"{endpoint}: cannot listen ({err})") from None
        self.sock.settimeout(POLL_SECONDS)
        self.address = self.sock.getsockname()
        if endpoint.port == 0:  # the port the system picked, in messages and the CLI's first line
            self.source = str(Endpoint("udp", endpoint.host, self.address[1], udp_format=endpoint.udp_format))
        self.decoder = DatagramDecoder(endpoint.udp_format, self.stats)
        self.info = RecordingInfo(
            format=f"udp-{endpoint.udp_format}",
            width=options.width,
            height=options.height,
            source=self.source,
            time_origin=0,
        )

    def produce(self) -> None:
        """Receive and decode datagrams until stopped, taking the kernel's drop count along."""
        buf = bytearray(MAX_DATAGRAM)
        view = memoryview(buf)
        while not self.stopping:
            try:
                n, ancdata, _, _ = self.sock.recvmsg_into([buf], self.ancillary)
            except TimeoutError:  # idle: drops at the end of a burst come with no later datagram
                self._count_drops()
                continue
            except OSError:
                if self.stopping:
                    return
                raise
            received = time.perf_counter_ns()
            for level, kind, value in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(value) >= 4:
                    self.stats.lost_datagrams = struct.unpack("<I", value[:4])[0]
            self.stats.packets += 1
            self.stats.bytes += n
            self.emit(self.decoder.decode(view[:n]), received)

    def interrupt(self) -> None:
        """Close the socket so that a blocking receive returns (its drop count taken first)."""
        self._count_drops()
        self.sock.close()

    def _count_drops(self) -> None:
        """Take the kernel's drop count from the socket's counters (Linux), which, unlike the count
        that comes with each datagram, also holds the drops after the last datagram received."""
        if not self.ancillary:
            return
        try:
            counters = self.sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 36)
        except OSError:
            return
        if len(counters) >= 36:
            self.stats.lost_datagrams = max(self.stats.lost_datagrams, struct.unpack("<9I", counters[:36])[8])


class UdpSender:
    """Sends event arrays as datagrams of ``events_per_datagram`` events to ``endpoint``."""

    def __init__(self, endpoint: Endpoint, events_per_datagram: int = EVENTS_PER_DATAGRAM):
        self.endpoint = endpoint
        self.per_datagram = events_per_datagram
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, events: np.ndarray) -> None:
        """Send ``events`` in order, one datagram per ``events_per_datagram`` events."""
        for start in range(0, len(events), self.per_datagram):
            piece = encode_datagram(events[start : start + self.per_datagram], self.endpoint.udp_format)
            try:
                self.sock.sendto(piece, self.endpoint.address)
            except OSError as err:  # a host that does not resolve, port 0, an IPv6 address on IPv4
                raise NeurodataError(f"{self.endpoint}: cannot send ({err})") from None

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
