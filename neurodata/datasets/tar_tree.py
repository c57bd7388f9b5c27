"""The members of a tar archive read without extracting it.

A plain tar is indexed once (member offsets) and read by offset, from any process. A compressed tar
(gzip, bzip2, xz) can only be read front to back: one pass lists the members and keeps their bytes
in memory while they fit in ``hold_bytes``; members past that budget are read by further passes
(:meth:`TarTree.rounds`), each holding a budget's worth at a time, so memory stays bounded and no
member is ever written to disk. gzip is inflated with ISA-L (``isal``) on its own thread when
installed, else with zlib.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .members import CORRUPT, ExtractError, check_kind, checked_name, tar_kind
from .memory import memory_budget
from .tar_stream import StreamMember, walk

try:  # ISA-L's inflate, several times zlib's; the stream decompresses on its own thread
    from isal import igzip_threaded
    from isal.isal_zlib import IsalError
except ImportError:  # a platform without isal wheels: zlib
    igzip_threaded = None
    IsalError = OSError

HOLD_BYTES = 1 << 30
"""Most member bytes a compressed tar keeps in memory at once: the default budget is a quarter of the
memory available (:func:`.memory.available_memory`), at least :data:`LEAST_HOLD_BYTES`, at most this."""
LEAST_HOLD_BYTES = 64 << 20
HOLD_SHARE = 0.25
TAR_CORRUPT = (*CORRUPT, IsalError)
_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}
_LIVE: weakref.WeakValueDictionary[int, TarTree] = weakref.WeakValueDictionary()
"""Compressed trees of this process by id: a worker forked from it finds the one a task names here."""


def compression_of(path: str | os.PathLike) -> str | None:
    """``gzip``, ``bz2`` or ``xz`` for a compressed file at ``path`` (by content), None for a plain one."""
    with open(path, "rb") as f:
        head = f.read(6)
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


Report = Callable[[int, int], None]
"""Called as the archive is read: ``(bytes of the archive read so far in this pass, its size)``."""


class CountingReader(io.RawIOBase):
    """A binary file that tells ``report`` how far it has been read.

    Args:
        raw: The open file.
        size: Its size in bytes.
        report: Called after every read with the bytes read so far and ``size``.
    """

    def __init__(self, raw: BinaryIO, size: int, report: Report):
        self._raw = raw
        self._size = size
        self._report = report
        self._done = 0

    def readable(self) -> bool:
        """Always: the file is read."""
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Read into ``buffer`` and report the running total."""
        n = self._raw.readinto(buffer)
        if n:
            self._done += n
            self._report(self._done, self._size)
        return n


@contextlib.contextmanager
def open_stream(path: Path, compression: str | None, report: Report | None = None) -> Iterator[BinaryIO]:
    """The decompressed bytes of the file at ``path`` as a sequential binary stream (a context
    manager: the stream and the file close on leaving it).

    Args:
        path: The file.
        compression: ``gzip``, ``bz2``, ``xz`` or None (plain).
        report: Told how many of the file's bytes were read so far (progress), or None.
    """
    with open(path, "rb", buffering=0) as file:
        raw = file if report is None else CountingReader(file, os.fstat(file.fileno()).st_size, report)
        source = io.BufferedReader(raw, 1 << 20)
        if compression == "gzip":
            stream = igzip_threaded.open(source, "rb", threads=1) if igzip_threaded else gzip.open(source, "rb")
        elif compression == "bz2":
            stream = bz2.open(source, "rb")
        elif compression == "xz":
            stream = lzma.open(source, "rb")
        else:
            stream = source
        with stream:
            yield stream


class TarTree:
    """The file members of the tar archive at ``path`` (any compression), read in place.

    Args:
        path: The archive.
        hold_bytes: For a compressed tar, how many bytes of members to keep in memory at once
            (None: a quarter of the available memory, within ``[LEAST_HOLD_BYTES, HOLD_BYTES]``).
        report: Told, as each pass reads the archive, how far it got (progress), or None.

    Raises:
        UnsafeArchiveError: A member with an absolute or escaping name, a link or a special file
            (the archives extraction refuses).
        ExtractError: The archive is damaged or truncated (naming it).
    """

    def __init__(self, path: str | os.PathLike, hold_bytes: int | None = None, report: Report | None = None):
        self.path = Path(path)
        self.report = report
        self.compression = compression_of(self.path)
        if hold_bytes is None:
            hold_bytes = memory_budget(HOLD_SHARE, min(LEAST_HOLD_BYTES, HOLD_BYTES), HOLD_BYTES)
        self.hold_bytes = hold_bytes
        self._offsets: dict[str, tuple[int, int]] = {}  # name -> (offset of its data, size)
        self._held: dict[str, bytes] = {}
        self._scan()
        _LIVE[id(self)] = self

    @property
    def shareable(self) -> bool:
        """Whether other processes can read members (a plain tar: by offset); a compressed tar's
        members live in this process's memory."""
        return self.compression is None

    def _members(self) -> Iterator[tuple[str, StreamMember]]:
        """Each file member as it streams past, with its checked name."""
        try:
            with open_stream(self.path, self.compression, self.report) as stream:
                for member in walk(stream):
                    name = checked_name(self.path, member.info.name).as_posix()
                    check_kind(self.path, member.info.name, tar_kind(member.info))
                    if member.info.isfile():
                        yield name, member
        except TAR_CORRUPT as exc:
            raise ExtractError(f"{self.path}: cannot read tar archive: {exc}") from None

    def _scan(self) -> None:
        held = 0
        for name, member in self._members():
            self._offsets[name] = (member.offset, member.info.size)  # a repeated name: the last wins, as extracting
            held -= len(self._held.pop(name, b""))
            if self.compression is not None and held + member.info.size <= self.hold_bytes:
                self._held[name] = member.read()
                held += member.info.size

    def names(self) -> list[str]:
        """Every file member's checked name, sorted."""
        return sorted(self._offsets)

    def ready(self, name: str) -> bool:
        """Whether the member ``name`` can be read now (a compressed tar: whether it is held)."""
        return self.compression is None or name in self._held

    def read_bytes(self, name: str) -> bytes:
        """The member ``name``: by offset from a plain tar, from memory for a compressed one
        (after :meth:`rounds` brought it in)."""
        if self.compression is not None:
            return self._held[name]
        offset, size = self._offsets[name]
        with open(self.path, "rb") as f:
            f.seek(offset)
            data = f.read(size)
        if len(data) != size:
            raise ExtractError(f"{self.where(name)}: archive ends inside the member ({len(data)} of {size} bytes)")
        return data

    def where(self, name: str) -> str:
        """``archive:member`` for the member ``name``."""
        return f"{self.path}:{name}"

    def rounds(self, wanted: set[str]) -> Iterator[None]:
        """Bring the members ``wanted`` into memory a budget at a time, streaming the archive again:
        yields once with what is held already, then each time the held bytes pass the budget, and
        once at the end. Between yields the caller reads what is :meth:`ready` and :meth:`release` s it.

        Args:
            wanted: The member names still to read.
        """
        missing = {n for n in wanted if not self.ready(n)}  # before the caller builds and releases the held ones
        yield
        if not missing:
            return
        held = sum(map(len, self._held.values()))
        for name, member in self._members():
            if name in missing and member.offset == self._offsets[name][0]:  # its last copy
                self._held[name] = member.read()
                held += member.info.size
                missing.discard(name)
                if held > self.hold_bytes:
                    yield
                    held = sum(map(len, self._held.values()))  # the caller released what it built
                if not missing:
                    break
        yield

    def release(self, names: list[str]) -> None:
        """Forget the bytes of the members ``names`` (decoded; a compressed tar frees their memory).

        Args:
            names: Member names.
        """
        if self.compression is not None:
            for name in names:
                self._held.pop(name, None)

    def __getstate__(self) -> dict:
        """A plain tar's state for another process, without the progress report (this process's)."""
        return {**self.__dict__, "report": None}

    def __reduce__(self) -> tuple:
        """A plain tar pickles whole; a compressed one by reference, valid in this process and in
        worker processes forked from it after its members were brought in (their memory is a copy)."""
        if self.compression is None:
            return super().__reduce__()
        return _live_tree, (id(self), str(self.path))


def _live_tree(key: int, path: str) -> TarTree:
    try:
        return _LIVE[key]
    except KeyError:
        raise TypeError(
            f"{path}: a compressed tar's members live in the process that streams it and in workers forked from it"
        ) from None


