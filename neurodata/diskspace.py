"""A full disk reported as one line that names the path and the space needed, checked early where it can be.

A leaf module (it imports nothing from neurodata but its errors), used by :mod:`neurodata.localfs`
and every command that writes much: ``prepare``, ``convert``, ``frames`` and the trainer's checkpoints.

- :func:`require_space`: before a write whose size is known or estimated, fail at once when the
  filesystem has less free space than that (nothing is written).
- :func:`disk_full_as_error`: around a write, turn the operating system's ``ENOSPC`` (no space left)
  or ``EDQUOT`` (quota exceeded) into :class:`DiskFullError` naming the path, the space needed and the
  space free, however deep in a library it struck. The caller removes what it had half-written.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

from .errors import NeurodataError

# errors that mean "no room for these bytes": a full filesystem, or the user's quota on it
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class DiskFullError(NeurodataError):
    """The filesystem of ``path`` has too little free space (or quota) for a write of about
    ``needed`` bytes (None: unknown); ``free`` bytes were free (None: unknown)."""

    def __init__(self, path: str, needed: int | None, free: int | None):
        self.path, self.needed, self.free = path, needed, free
        need = f"writing needs about {size_text(needed)}" if needed else "writing needs more space"
        have = f"{size_text(free)} free" if free is not None else "free space unknown"
        super().__init__(f"{path}: no space left on the device: {need}, {have}; free space and rerun")

    def __reduce__(self):  # raised in pool workers, re-raised in their parent
        return type(self), (self.path, self.needed, self.free)


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes an unprivileged user may still write on the filesystem of ``path`` (or of its nearest
    existing parent folder), or None where that cannot be asked (no ``statvfs``)."""
    if not hasattr(os, "statvfs"):
        return None
    probe = os.path.abspath(os.fspath(path))
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    try:
        stat = os.statvfs(probe)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def size_text(n: float) -> str:
    """``n`` bytes for a person: ``"3.2 GiB"``, ``"512 B"``.

    Args:
        n: A number of bytes.
    """
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def disk_full(path: str | os.PathLike, needed: int | None) -> DiskFullError:
    """The error for a write of about ``needed`` bytes (None: unknown) to ``path``."""
    return DiskFullError(os.fspath(path), needed, free_bytes(path))


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err``, or an error it was raised from or while handling, is the operating system
    saying there is no room (``ENOSPC``, ``EDQUOT``): libraries wrap it (``torch.save`` raises a
    RuntimeError while handling it, for one)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def require_space(path: str | os.PathLike, needed: int) -> None:
    """Raise :class:`DiskFullError` for ``path`` when its filesystem has fewer than ``needed`` bytes free.

    Parameters:
        path: the file or folder about to be written (it need not exist yet).
        needed: the bytes the write will take (an estimate).
    """
    free = free_bytes(path)
    if free is not None and free < needed:
        raise DiskFullError(os.fspath(path), needed, free)


@contextlib.contextmanager
def disk_full_as_error(path: str | os.PathLike, needed: int | None = None) -> Iterator[None]:
    """Re-raise ``ENOSPC``/``EDQUOT`` from the block as :class:`DiskFullError` naming ``path``; a
    DiskFullError of an inner write (a temporary file, one part) is named ``path`` too.

    Parameters:
        path: what the block writes, as the user knows it (a cache, an output file).
        needed: the bytes the block writes (an estimate), or None to keep an inner error's.
    """
    try:
        yield
    except DiskFullError as err:
        raise disk_full(path, needed or err.needed) from err
    except Exception as err:
        if not is_disk_full(err):
            raise
        raise disk_full(path, needed) from err
