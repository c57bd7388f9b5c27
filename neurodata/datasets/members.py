"""Safety checks for archive members: a member may only create a regular file or a folder inside the
extraction folder. Absolute paths, ``..`` components, links of any kind and device files are refused.
Also the checked tar extraction shared by tar archives and bsdtar's re-streamed RAR/7z."""

from __future__ import annotations

import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from ..errors import NeurodataError

Report = Callable[[str, int, int | None], None]
"""Called per member with (name, size in bytes, total bytes of the archive if known)."""
CORRUPT = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError)
"""What reading a damaged archive (or writing to a full disk) raises."""
_TAR_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # 3.10.12+, 3.11.4+
_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[\\/]+")


class ExtractError(NeurodataError, ValueError):
    """An archive cannot be extracted: unknown type, corrupt, or no tool for it; names the archive."""


class UnsafeArchiveError(ExtractError):
    """An archive member would land outside the target folder or is not a plain file or folder.

    Args:
        archive: The archive, named in the message.
        member: The member's name as stored.
        reason: Why it is refused.
    """

    def __init__(self, archive: str | os.PathLike, member: str, reason: str):
        self.archive = str(archive)
        self.member = member
        self.reason = reason
        super().__init__(f"{archive}: refusing member {member!r}: {reason}")

    def __reduce__(self):  # raised in pool workers, re-raised in their parent
        return type(self), (self.archive, self.member, self.reason)


def checked_name(archive: str | os.PathLike, name: str) -> PurePosixPath:
    """The relative path of the member ``name`` of ``archive`` (``.`` for the archive's root entry),
    or ``UnsafeArchiveError``.

    Backslashes count as separators too, so an archive made on Windows cannot smuggle ``..\\``.
    """
    if "\0" in name:
        raise UnsafeArchiveError(archive, name, "NUL byte in the name")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise UnsafeArchiveError(archive, name, "absolute path")
    parts = [part for part in _SEPARATORS.split(name) if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(archive, name, "'..' component would escape the target folder")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def kind_of_mode(mode: int) -> str:
    """``file``, ``dir``, ``link`` or ``special`` for a Unix ``st_mode`` ``mode`` (0, as many zips store, is a file)."""
    kind = stat.S_IFMT(mode)
    if kind in (0, stat.S_IFREG):
        return "file"
    if kind == stat.S_IFDIR:
        return "dir"
    return "link" if kind == stat.S_IFLNK else "special"


def check_kind(archive: str | os.PathLike, name: str, kind: str) -> None:
    """Refuse links (symbolic or hard) and device, FIFO or socket members.

    Args:
        archive: The archive, named in the error.
        name: The member's name.
        kind: Its kind from :func:`kind_of_mode` ("file", "dir", "link" or "special").

    Raises:
        UnsafeArchiveError: For a link or a special member.
    """
    if kind == "link":
        raise UnsafeArchiveError(
            archive, name, "links are not extracted (a link can point outside the target)"
        )
    if kind == "special":
        raise UnsafeArchiveError(archive, name, "device, FIFO or socket members are not extracted")


def check_tree(archive: str | os.PathLike, root: Path) -> None:
    """After an external tool ran: everything under ``root`` must be a regular file or a folder
    (else ``UnsafeArchiveError`` naming ``archive``)."""
    for folder, dirs, files in os.walk(root):
        for entry in dirs + files:
            path = Path(folder, entry)
            check_kind(archive, path.relative_to(root).as_posix(), kind_of_mode(path.lstat().st_mode))


def extract_tar_members(archive: Path, tf: tarfile.TarFile, staging: Path, report: Report) -> None:
    """Check each member as it streams past (a compressed tar is read once), then extract it.

    Args:
        archive: The archive, named in errors.
        tf: The open tar stream of ``archive``.
        staging: The folder to extract into.
        report: Called once per member with its name, size and ``None``.
    """

    def checked() -> Iterator[tarfile.TarInfo]:
        for member in tf:
            checked_name(archive, member.name)
            check_kind(archive, member.name, tar_kind(member))
            report(member.name, member.size, None)
            yield member

    try:
        tf.extractall(staging, members=checked(), **_TAR_FILTER)
    except getattr(tarfile, "FilterError", ()) as exc:  # tarfile's own "data" filter, a second guard
        raise UnsafeArchiveError(archive, exc.tarinfo.name, str(exc)) from None


def tar_kind(member: tarfile.TarInfo) -> str:
    """``file``, ``dir``, ``link`` (symbolic or hard) or ``special`` for the tar member ``member``."""
    if member.issym() or member.islnk():
        return "link"
    if member.isfile():
        return "file"
    return "dir" if member.isdir() else "special"
