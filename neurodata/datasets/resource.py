"""``Resource``: one published file (a dataset archive) with its size, checksums and mirrors;
``Callback``, the shape of the progress callbacks of download, extract and prepare; and
:func:`is_html_page`, which spots the login or error page a site serves instead of a file."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Callback = Callable[[dict], None]
"""Receives one JSON-ready dict per event of fetching, extracting or preparing resources, e.g.
``{"event": "progress", "file": ..., "done": ..., "total": ...}``."""

_HEX = re.compile(r"[0-9a-f]+")
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<?xml")
_BOM = b"\xef\xbb\xbf"


def is_html_page(head: bytes) -> bool:
    """Whether ``head``, the first bytes of a file, begin an HTML page (as a browser would sniff it:
    optional BOM and white space, then a doctype, ``<html>``, ``<head>``, ``<body>``, a comment or an
    XML declaration followed by an ``<html`` tag)."""
    text = head[:1024].removeprefix(_BOM).lstrip().lower()
    if text.startswith(b"<?xml") or text.startswith(b"<!--"):
        return b"<html" in text
    return text.startswith(_HTML_STARTS)


def _check_hex(field: str, value: str | None, length: int) -> str | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if len(lowered) != length or not _HEX.fullmatch(lowered):
        raise ValueError(f"Resource.{field} must be {length} hex digits, got {value!r}")
    return lowered


@dataclass(frozen=True)
class Resource:
    """One published file: its name on disk (``filename``), expected size and checksums, and the mirrors serving it.

    ``urls`` are tried in order; any of them may be http(s), ``file://``, a local path, ``s3://`` or
    anything else fsspec opens. ``md5`` is usually what the dataset authors publish; ``sha256`` is
    optional and, when given, is checked too. Checksums are stored lower-case.
    """

    filename: str
    size: int | None = None
    md5: str | None = None
    sha256: str | None = None
    urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        name = self.filename
        if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise ValueError(f"Resource.filename must be a plain file name, got {name!r}")
        if self.size is not None and (not isinstance(self.size, int) or self.size < 0):
            raise ValueError(f"Resource.size must be a non-negative int or None, got {self.size!r}")
        object.__setattr__(self, "md5", _check_hex("md5", self.md5, 32))
        object.__setattr__(self, "sha256", _check_hex("sha256", self.sha256, 64))
        urls = (self.urls,) if isinstance(self.urls, str) else tuple(self.urls)
        if not urls or not all(isinstance(u, str) and u for u in urls):
            raise ValueError(f"Resource {name!r} needs at least one URL, got {self.urls!r}")
        object.__setattr__(self, "urls", urls)
