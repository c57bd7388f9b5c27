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
    """The filesystem of a path being written has too little free space (or quota) for the write."""


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


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def disk_full(path: str | os.PathLike, needed: int | None, free: int | None = None) -> DiskFullError:
    """The error for ``path``: ``needed`` bytes (an estimate; None when unknown) and the free bytes
    of its filesystem (asked when not given)."""
    free = free_bytes(path) if free is None else free
    need = f"needs about {_size(needed)}" if needed else "needs more space"
    have = f"{_size(free)} free" if free is not None else "free space unknown"
    return DiskFullError(f"{os.fspath(path)}: no space left on the device: {need}, {have}; free space and rerun")


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` is the operating system saying there is no room (``ENOSPC``, ``EDQUOT``)."""
    return isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS


def require_space(path: str | os.PathLike, needed: int) -> None:
    """Raise :class:`DiskFullError` for ``path`` when its filesystem has fewer than ``needed`` bytes free.

    Parameters:
        path: the file or folder about to be written (it need not exist yet).
        needed: the bytes the write will take (an estimate).
    """
    free = free_bytes(path)
    if free is not None and free < needed:
        raise disk_full(path, needed, free)


@contextlib.contextmanager
def disk_full_as_error(path: str | os.PathLike, needed: int | None = None) -> Iterator[None]:
    """Re-raise ``ENOSPC``/``EDQUOT`` from the block as :class:`DiskFullError` naming ``path``.

    Parameters:
        path: what the block writes, as the user knows it (a cache, an output file).
        needed: the bytes the block writes (an estimate), or None when unknown.
    """
    try:
        yield
    except OSError as err:
        if not is_disk_full(err):
            raise
        raise disk_full(path, needed) from err
