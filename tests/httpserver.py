"""A real HTTP server on 127.0.0.1 for download tests: serves in-memory files with Range support and
injects faults on demand (dropped connections, wrong bytes, error statuses, slow or stalled bodies).

It runs in a daemon thread, records every request, and shuts itself down after ``lifetime`` seconds
even if a test forgets to, so no test can hang on it.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


@dataclass
class Route:
    """How one path is served. Faults apply to the first ``faulty_requests`` requests only."""

    data: bytes
    status: int | None = None  # answer every request with this error status instead
    drop_after: int | None = None  # close the connection after this many body bytes
    corrupt: bool = False  # flip one byte in the middle (same length)
    stall: float = 0.0  # sleep this long before the body (or, with ``stall_after``, in the middle of it)
    stall_after: int | None = None  # stall after this many body bytes instead of before the first
    faulty_requests: int = 1_000_000
    chunk_delay: float = 0.0  # sleep between body chunks of ``chunk`` bytes (every request)
    ignore_range: bool = False  # answer Range requests with 200 and the whole file
    chunked: bool = False  # Transfer-Encoding: chunked, no Content-Length (as dynamic servers do)
    chunk: int = 64 * 1024
    served: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def next_request(self) -> bool:
        """Count a request; True when this one gets the configured faults."""
        with self.lock:
            self.served += 1
            return self.served <= self.faulty_requests


class _Handler(BaseHTTPRequestHandler):
    server: FileServer
    timeout = 10  # seconds; bounds every socket operation of the server side
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path)
        self.server.log(self.path, self.headers.get("Range"))
        if route is None:
            self.send_error(404)
            return
        faulty = route.next_request()
        if route.status is not None and faulty:
            self.send_error(route.status)
            return
        body = route.data
        if route.corrupt and faulty and body:
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
        start, size = 0, len(body)
        match = _RANGE.match(self.headers.get("Range") or "")
        if match and not route.ignore_range:
            start = int(match[1])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            last = min(int(match[2]), len(body) - 1) if match[2] else len(body) - 1
            body = body[: last + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{last}/{size}")
        else:
            self.send_response(200)
        if route.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        payload = memoryview(body)[start:]
        limit = route.drop_after if faulty and route.drop_after is not None else len(payload)
        stall_at = (route.stall_after or 0) if faulty and route.stall else None
        try:
            for begin, end in _pieces(min(limit, len(payload)), route.chunk, stall_at):
                if begin == stall_at:
                    self.wfile.flush()
                    time.sleep(route.stall)
                piece = payload[begin:end]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if route.chunked else piece)
                if route.chunk_delay:
                    time.sleep(route.chunk_delay)
            if route.chunked and limit >= len(payload):
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (ConnectionError, TimeoutError):
            pass
        if limit < len(payload):
            self.close_connection = True  # the client sees fewer bytes than Content-Length


def _pieces(length: int, chunk: int, cut: int | None) -> list[tuple[int, int]]:
    """``[begin, end)`` pieces of at most ``chunk`` bytes covering ``length``, one starting at ``cut``."""
    bounds = sorted({*range(0, length, chunk), *([cut] if cut is not None and cut < length else []), length})
    return list(zip(bounds[:-1], bounds[1:]))


class FileServer(ThreadingHTTPServer):
    """``with FileServer() as server: server.add("/a.zip", data); url = server.url("/a.zip")``."""

    daemon_threads = True

    def __init__(self, lifetime: float = 60.0):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str | None]] = []
        self._log_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._deadline = threading.Timer(lifetime, self.shutdown)
        self._deadline.daemon = True

    def add(self, path: str, data: bytes, **faults) -> Route:
        route = Route(data, **faults)
        self.routes[path] = route
        return route

    def url(self, path: str) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{path}"

    def log(self, path: str, range_header: str | None) -> None:
        with self._log_lock:
            self.requests.append((path, range_header))

    def ranges(self, path: str) -> list[str | None]:
        """The Range header of every request for ``path``, in order."""
        with self._log_lock:
            return [r for p, r in self.requests if p == path]

    def __enter__(self) -> FileServer:
        self._thread.start()
        self._deadline.start()
        return self

    def __exit__(self, *exc) -> None:
        self._deadline.cancel()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
