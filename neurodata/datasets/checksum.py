"""Checksums of downloaded files: md5 (as datasets publish it) and sha256 in one pass, plus a sidecar
that records a verified file's digests so a huge file need not be hashed again on every run."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import NeurodataError
from ..localfs import SHARED, write_atomic

READ_BLOCK = 1 << 20
SIDECAR_SUFFIX = ".verified.json"


class ChecksumError(NeurodataError, ValueError):
    """A file's size or digest differs from the published one; names the source, expected and actual,
    then ``hint`` (what the caller may do about it) when given."""

    def __init__(self, source: str, what: str, expected: str | int, actual: str | int, hint: str = ""):
        self.source = source
        self.what = what
        self.expected = expected
        self.actual = actual
        self.hint = hint
        tail = f"; {hint}" if hint else ""
        super().__init__(f"{source}: {what} mismatch: expected {expected}, got {actual}{tail}")

    def __reduce__(self):  # raised in pool workers, re-raised in their parent
        return type(self), (self.source, self.what, self.expected, self.actual, self.hint)


@dataclass(frozen=True)
class Digests:
    """Size and digests of one file's bytes.

    Attributes:
        size: Length in bytes.
        md5: Hex md5 digest.
        sha256: Hex sha256 digest.
    """

    size: int
    md5: str
    sha256: str


class Hasher:
    """md5 and sha256 updated together, so a download is hashed while it streams to disk."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start over, as if nothing had been fed (a retried download restarts its hash)."""
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()

    def update(self, data: bytes | memoryview) -> None:
        """Feed the bytes ``data`` to both digests and count them."""
        self.size += len(data)
        self._md5.update(data)
        self._sha256.update(data)

    def update_from_file(self, path: str | os.PathLike, limit: int | None = None) -> None:
        """Feed the first ``limit`` bytes of the file ``path`` (all of it when ``None``)."""
        remaining = limit
        with open(path, "rb") as f:
            while remaining is None or remaining > 0:
                block = f.read(READ_BLOCK if remaining is None else min(READ_BLOCK, remaining))
                if not block:
                    break
                self.update(block)
                if remaining is not None:
                    remaining -= len(block)

    def digests(self) -> Digests:
        """Size and digests of everything fed since the last :meth:`reset`."""
        return Digests(self.size, self._md5.hexdigest(), self._sha256.hexdigest())


def file_digests(path: str | os.PathLike) -> Digests:
    """Size, md5 and sha256 of the whole file at ``path``, read once."""
    hasher = Hasher()
    hasher.update_from_file(path)
    return hasher.digests()


def check_digests(
    source: str, actual: Digests, size: int | None, md5: str | None, sha256: str | None
) -> None:
    """Raise ``ChecksumError`` naming ``source`` when ``actual`` differs from any expected value given.

    Args:
        source: The file or URL named in the error.
        actual: What was measured.
        size: Expected length in bytes, or ``None`` to skip that check.
        md5: Expected hex md5, or ``None``.
        sha256: Expected hex sha256, or ``None``.

    Raises:
        ChecksumError: At the first of size, md5, sha256 that differs.
    """
    if size is not None and actual.size != size:
        raise ChecksumError(source, "size", f"{size} bytes", f"{actual.size} bytes")
    if md5 is not None and actual.md5 != md5:
        raise ChecksumError(source, "md5", md5, actual.md5)
    if sha256 is not None and actual.sha256 != sha256:
        raise ChecksumError(source, "sha256", sha256, actual.sha256)


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the digests of the verified file ``path`` are recorded: ``<file>.verified.json`` beside it."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def write_sidecar(path: str | os.PathLike, digests: Digests) -> None:
    """Record ``digests`` of the file ``path`` together with its size and mtime (atomically: temp file + rename)."""
    stat = os.stat(path)
    record = {
        "size": digests.size,
        "mtime_ns": stat.st_mtime_ns,
        "md5": digests.md5,
        "sha256": digests.sha256,
    }
    write_atomic(sidecar_path(path), json.dumps(record, indent=1) + "\n", permissions=SHARED, durable=False)


def read_sidecar(path: str | os.PathLike) -> Digests | None:
    """The recorded digests of ``path`` if the sidecar exists and still matches its size and mtime."""
    try:
        record = json.loads(sidecar_path(path).read_text())
        stat = os.stat(path)
        if record["size"] != stat.st_size or record["mtime_ns"] != stat.st_mtime_ns:
            return None
        return Digests(int(record["size"]), str(record["md5"]), str(record["sha256"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_sidecar(path: str | os.PathLike) -> None:
    """Forget the recorded digests of ``path`` (no error when there are none)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(sidecar_path(path))
