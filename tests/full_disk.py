"""A fault-injecting file layer for the full-disk tests: a disk of ``budget`` bytes under one folder.

:func:`full_disk` patches ``open`` (``builtins.open``, ``io.open``: what pathlib, zarr's local store,
numpy and the project use) and ``os.fdopen`` (the project's atomic writes) so that files opened for
writing under ``root`` count the bytes written to them; the write that would pass ``budget`` writes
what still fits and raises ``OSError(ENOSPC)``, as a full filesystem does. It also makes
:func:`neurodata.diskspace.free_bytes` report what is left of the budget under ``root``, so the
checks made before a write see the same small disk. Setting ``disk.budget = None`` frees the space.
Files opened by a descriptor are matched to their path through ``/proc/self/fd`` (Linux).
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path

import neurodata.diskspace


class Disk:
    """What has been written under ``root`` (``used`` bytes) and how much may be (``budget``; None:
    unbounded); ``full`` counts the writes refused."""

    def __init__(self, root: Path, budget: int | None):
        self.root = os.path.realpath(root)
        self.budget = budget
        self.used = 0
        self.full = 0

    def holds(self, path: str | os.PathLike | int) -> bool:
        if isinstance(path, int):
            try:
                path = os.readlink(f"/proc/self/fd/{path}")
            except OSError:
                return False
        return os.path.realpath(os.fspath(path)).startswith(self.root + os.sep)

    def free(self) -> int | None:
        return None if self.budget is None else max(self.budget - self.used, 0)

    def take(self, n: int) -> int:
        """Bytes of ``n`` that fit (all of them while the budget lasts)."""
        free = self.free()
        fit = n if free is None else min(n, free)
        self.used += fit
        return fit


class MeteredFile:
    """A file object whose writes count against a :class:`Disk`."""

    def __init__(self, file, disk: Disk):
        self._file = file
        self._disk = disk

    def write(self, data):
        view = data.encode() if isinstance(data, str) else memoryview(data).cast("B")
        fit = self._disk.take(len(view))
        if fit < len(view):
            if not isinstance(data, str):  # a full disk takes what fits, then refuses the rest
                self._file.write(view[:fit])
            self._disk.full += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), getattr(self._file, "name", None))
        return self._file.write(data)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __iter__(self):
        return iter(self._file)

    def __enter__(self):
        self._file.__enter__()
        return self

    def __exit__(self, *exc):
        return self._file.__exit__(*exc)


def _writes(mode: str) -> bool:
    return any(c in mode for c in "wax+")


def full_disk(monkeypatch, root: Path, budget: int | None) -> Disk:
    """Install the layer for the test (``monkeypatch`` undoes it); returns the :class:`Disk`."""
    disk = Disk(root, budget)
    real_open, real_fdopen, real_free = io.open, os.fdopen, neurodata.diskspace.free_bytes

    def metered_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return MeteredFile(f, disk) if _writes(mode) and disk.holds(file) else f

    def metered_fdopen(fd, mode="r", *args, **kwargs):
        f = real_fdopen(fd, mode, *args, **kwargs)
        return MeteredFile(f, disk) if _writes(mode) and disk.holds(fd) else f

    def free_bytes(path):
        free = disk.free()
        return free if free is not None and disk.holds(path) else real_free(path)

    monkeypatch.setattr(builtins, "open", metered_open)
    monkeypatch.setattr(io, "open", metered_open)
    monkeypatch.setattr(os, "fdopen", metered_fdopen)
    monkeypatch.setattr(neurodata.diskspace, "free_bytes", free_bytes)
    return disk
