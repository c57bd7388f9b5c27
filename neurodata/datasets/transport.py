"""Byte streams from one URL starting at an offset: http(s) through urllib (exact control of Range,
timeouts and status codes), everything else (``file://``, local paths, ``s3://``, ...) through fsspec."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass

CHUNK = 1 << 20
USER_AGENT = "neurodata-downloader/0.1"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_RETRYABLE_HTTP = {408, 425, 429}


class MirrorError(Exception):
    """A mirror failed; ``permanent`` means retrying the same URL is pointless (404, 403, missing file).

    Args:
        message: What went wrong.
        permanent: Whether retrying the same URL is pointless.
    """

    def __init__(self, message: str, permanent: bool):
        super().__init__(message)
        self.permanent = permanent

    def __reduce__(self):  # raised in pool workers, re-raised in their parent
        return type(self), (self.args[0], self.permanent)


@dataclass
class Stream:
    """Bytes of a remote file from ``start`` on (0 when the server ignored the requested offset).

    Attributes:
        start: Offset of the first byte ``chunks`` yields.
        total: The file's full size, when the server said.
        chunks: The bytes, in pieces.
        close: Releases the connection or file.
    """

    start: int
    total: int | None
    chunks: Iterator[bytes]
    close: Callable[[], None]


def open_stream(url: str, offset: int, timeout: float, storage_options: dict | None) -> Stream:
    """Open ``url`` for reading from byte ``offset``; raises ``MirrorError`` (or OSError) on failure.

    Args:
        url: An http(s) URL, a local path or anything fsspec opens.
        offset: The first byte wanted.
        timeout: Seconds to wait for an http(s) server.
        storage_options: Passed to fsspec for other URLs.
    """
    if url.startswith(("http://", "https://")):
        return _open_http(url, offset, timeout)
    return _open_fsspec(url, offset, storage_options or {})


def _open_http(url: str, offset: int, timeout: float) -> Stream:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            # Nothing left after ``offset``: the part file may already hold every byte.
            total = _parse_content_range(exc.headers.get("Content-Range"))[2]
            return Stream(offset, total, iter(()), lambda: None)
        retryable = exc.code >= 500 or exc.code in _RETRYABLE_HTTP
        raise MirrorError(f"HTTP {exc.code} {exc.reason}", permanent=not retryable) from None
    start, total = 0, _int_or_none(response.headers.get("Content-Length"))
    if response.status == 206:
        first, _last, total = _parse_content_range(response.headers.get("Content-Range"))
        if first != offset:
            response.close()
            raise MirrorError(f"asked for bytes from {offset}, server sent from {first}", permanent=True)
        start = first
    read = getattr(response, "read1", response.read)
    return Stream(start, total, iter(lambda: read(CHUNK), b""), response.close)


def _open_fsspec(url: str, offset: int, storage_options: dict) -> Stream:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options)
        total = fs.size(path)
        fileobj = fs.open(path, "rb")
    except (FileNotFoundError, PermissionError, IsADirectoryError, ValueError, ImportError) as exc:
        raise MirrorError(f"{type(exc).__name__}: {exc}", permanent=True) from None
    try:
        fileobj.seek(offset)
    except Exception:
        fileobj.close()
        raise
    return Stream(offset, total, iter(lambda: fileobj.read(CHUNK), b""), fileobj.close)


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    match = _CONTENT_RANGE.match(value or "") if value else None
    if not match:
        if value and value.startswith("bytes */"):
            return None, None, _int_or_none(value[len("bytes */") :])
        return None, None, None
    return int(match[1]), int(match[2]), _int_or_none(match[3])


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None
