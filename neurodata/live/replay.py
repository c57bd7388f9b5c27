"""``neurodata replay``'s servers: a recording served as a camera would serve it.

Over ``tcp://`` and ``unix://`` it is a DV network server (byte-compatible with dv-processing's
``NetworkWriter``): every client that connects gets the IOHeader and then the recording's packets
from its start, on its own thread, and the connection is closed cleanly at the end. Over ``udp://``
it sends the events as datagrams to the target. Packets are released at the recording's pace
times ``speed``, or as fast as possible with ``speed=None``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import NeurodataError
from ..reader import open_recording
from .dv_protocol import PacketEncoder, stream_header
from .pacing import paced, recording_packets
from .sources import POLL_SECONDS
from .udp import EVENTS_PER_DATAGRAM, UdpSender
from .urls import Endpoint, parse_endpoint

CUT_PACKET = struct.pack("<ii", 0, 1 << 20)  # a packet header whose payload never comes


@dataclass(frozen=True)
class ReplayOptions:
    """How a recording is served.

    Attributes:
        speed: pace multiplier (1 = real time); None sends as fast as possible.
        loop: start the recording again after its end, forever, times shifted to keep increasing.
        format: the recording's format when its bytes and extension do not say.
        compression: the DV stream's compression (``none``, ``lz4``, ``lz4_high``, ``zstd``, ``zstd_high``).
        events_per_datagram: UDP events per datagram.
        linger: seconds a DV connection stays open after the last packet unless the client hangs
            up first: dv-processing's ``NetworkReader`` drops the packets it still holds when the
            server closes, so closing at once would lose the recording's end.
    """

    speed: float | None = 1.0
    loop: bool = False
    format: str | None = None
    compression: str = "lz4"
    events_per_datagram: int = EVENTS_PER_DATAGRAM
    linger: float = 1.0


class Replay:
    """A running replay of ``path`` to ``target``; :meth:`serve` blocks until the end or :meth:`stop`.

    Parameters:
        path: the recording.
        target: ``tcp://HOST:PORT`` (port 0 picks a free one), ``unix:///PATH`` or ``udp://HOST:PORT?format=``.
        options: see :class:`ReplayOptions`.
    """

    def __init__(self, path: str, target: str, options: ReplayOptions = ReplayOptions()):
        self.path = path
        self.options = options
        self.endpoint = parse_endpoint(target)
        self._stop = threading.Event()
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        self._failure: NeurodataError | None = None
        with open_recording(path, options.format) as rec:
            self.width, self.height = rec.info.width, rec.info.height
        self.listener: socket.socket | None = None
        if self.endpoint.scheme != "udp":
            if self.width is None or self.height is None:
                raise NeurodataError(f"{path}: the recording does not give its sensor size, which DV streams need")
            self.header = stream_header(self.width, self.height, options.compression)
            self.listener = self._listen()

    def _listen(self) -> socket.socket:
        if self.endpoint.scheme == "unix":
            if _is_socket(self.endpoint.path) is False:
                raise NeurodataError(f"{self.endpoint}: {self.endpoint.path} exists and is not a socket; not replacing it")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.endpoint.path)  # a socket a previous server left behind
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(self.endpoint.address)
        except OSError as err:
            sock.close()
            raise NeurodataError(f"{self.endpoint}: cannot listen ({err})") from None
        sock.listen()
        sock.settimeout(POLL_SECONDS)
        if self.endpoint.scheme == "tcp":
            host, port = sock.getsockname()[:2]
            self.endpoint = Endpoint("tcp", host, port)
        return sock

    def serve(self, on_client: Callable[[str], None] | None = None) -> None:
        """Serve until :meth:`stop` (TCP/unix) or until the recording is sent (UDP, without ``loop``);
        ``on_client`` is called with each connecting client's address.

        Raises:
            NeurodataError: The recording turned out damaged while a client was served (its stream
                then ends inside a packet, so that no client takes it for the recording's end).
        """
        if self.listener is None:
            self._send_udp()
            return
        try:
            while not self._stop.is_set():
                try:
                    conn, peer = self.listener.accept()
                except TimeoutError:
                    continue
                if on_client is not None:
                    on_client(str(peer) or "unix client")
                with self._clients_lock:
                    self._clients.add(conn)
                threading.Thread(target=self._send_dv, args=(conn,), daemon=True).start()
        finally:
            self.listener.close()
            if self.endpoint.scheme == "unix" and _is_socket(self.endpoint.path):
                os.unlink(self.endpoint.path)
            self._disconnect_clients()
        if self._failure is not None:
            raise self._failure

    def _send_dv(self, conn: socket.socket) -> None:
        encoder = PacketEncoder(self.options.compression)
        try:
            conn.sendall(self.header)
            for packet in self._packets():
                conn.sendall(encoder.encode(packet.events))
            conn.settimeout(self.options.linger)
            conn.recv(1)  # returns when the client hangs up
        except OSError:  # the client went away, or the linger time is over
            pass
        except NeurodataError as error:  # the recording is damaged past this point
            self._failure = self._failure or error
            self._stop.set()
            # the DV protocol has no error message: end inside a packet, which a client reports as
            # a cut stream rather than taking it for the end (a reset would also discard what the
            # client has not read yet)
            with contextlib.suppress(OSError):
                conn.sendall(CUT_PACKET)
        finally:
            with self._clients_lock:
                self._clients.discard(conn)
            conn.close()

    def _disconnect_clients(self) -> None:
        """Shut the clients' connections: a sending thread blocked on a client that stopped reading returns."""
        with self._clients_lock:
            for conn in self._clients:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def _send_udp(self) -> None:
        sender = UdpSender(self.endpoint, self.options.events_per_datagram)
        try:
            for packet in self._packets():
                sender.send(packet.events)
        finally:
            sender.close()

    def _packets(self):
        packets = recording_packets(self.path, self.options.format, self.options.loop)
        return paced(packets, self.options.speed, self._stop.wait)

    def stop(self) -> None:
        """End serving: no new clients, and the clients being served are disconnected (:meth:`serve`
        returns within a poll interval)."""
        self._stop.set()


def _is_socket(path: str) -> bool | None:
    """Whether ``path`` is a Unix socket; None when nothing is there."""
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return None
