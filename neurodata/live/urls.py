"""The URLs that name live sources and replay targets: ``tcp://HOST:PORT``, ``unix:///PATH`` and
``udp://HOST:PORT?format=t64_x16_y16_on8|t32_x16_y15_on1``."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from ..errors import NeurodataError

SCHEMES = ("tcp", "unix", "udp")
UDP_FORMATS = ("t64_x16_y16_on8", "t32_x16_y15_on1")


@dataclass(frozen=True)
class Endpoint:
    """A parsed source or target URL: ``scheme`` with ``host``/``port`` (tcp, udp) or ``path`` (unix);
    ``udp_format`` is the UDP event layout (default ``t64_x16_y16_on8``)."""

    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""
    udp_format: str = UDP_FORMATS[0]

    @property
    def address(self) -> tuple[str, int] | str:
        """The ``socket`` address: ``(host, port)`` or the socket file's path."""
        return self.path if self.scheme == "unix" else (self.host, self.port)

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        suffix = f"?format={self.udp_format}" if self.scheme == "udp" else ""
        return f"{self.scheme}://{self.host}:{self.port}{suffix}"


def is_url(text: str) -> bool:
    """Whether ``text`` names a network source (one of :data:`SCHEMES`) rather than a path."""
    return text.split("://", 1)[0] in SCHEMES and "://" in text


def parse_endpoint(text: str) -> Endpoint:
    """Parse a ``tcp://``, ``unix://`` or ``udp://`` URL; a malformed one raises one clear line.

    Parameters:
        text: the URL as typed on the command line.
    """
    try:
        parsed = urllib.parse.urlsplit(text)
    except ValueError as err:  # e.g. an unclosed [ of an IPv6 address
        raise NeurodataError(f"{text}: not a valid URL ({err})") from None
    if parsed.scheme not in SCHEMES:
        raise NeurodataError(f"{text}: expected a tcp://HOST:PORT, unix:///PATH or udp://HOST:PORT URL")
    query = urllib.parse.parse_qs(parsed.query)
    if parsed.scheme == "unix":
        path = parsed.netloc + parsed.path
        if not path:
            raise NeurodataError(f"{text}: a unix:// URL needs a socket path (unix:///tmp/camera.sock)")
        return Endpoint("unix", path=path)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if not parsed.hostname or port is None:
        raise NeurodataError(f"{text}: expected {parsed.scheme}://HOST:PORT with a port number")
    allowed = {"format"} if parsed.scheme == "udp" else set()
    ignored = [f"path {parsed.path!r}"] if parsed.path not in ("", "/") else []
    ignored += [f"query key {key!r}" for key in sorted(set(query) - allowed)]
    ignored += ["fragment"] if parsed.fragment else []
    if ignored:  # silently ignored before: say so rather than serve something else than asked
        only = " (only ?format=)" if allowed else ""
        raise NeurodataError(f"{text}: a {parsed.scheme}:// URL takes no {', '.join(ignored)}{only}")
    udp_format = query.get("format", [UDP_FORMATS[0]])[0]
    if parsed.scheme == "udp" and udp_format not in UDP_FORMATS:
        raise NeurodataError(f"{text}: unknown UDP format {udp_format!r}; choose {' or '.join(UDP_FORMATS)}")
    return Endpoint(parsed.scheme, parsed.hostname, port, udp_format=udp_format)
