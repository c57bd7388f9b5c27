"""Local-filesystem helpers every layer may use: atomic writes, cross-process locks, default paths.

A leaf module: it imports nothing from neurodata but its errors, so formats, the cache, datasets,
loaders, the simulator, ``snn.train`` and the CLI all import it without running up the layers.

- :func:`atomic_output` / :func:`write_atomic`: a file appears whole under its name or not at all
  (written to a temporary file beside it, then renamed over it), with the permissions ``open`` would
  give it (0666 narrowed by the umask), so shared datasets stay readable by the users the umask allows.
- :func:`replace_tree`: the same for a folder assembled beside its final place.
- :func:`locked_temporary`: the name of such a folder, locked by its writer for as long as it works
  on it, so that a later run removes the temporaries of runs that died (SIGKILL, power cut) and
  never those of runs still writing (:func:`remove_stale_temporaries`).
- A full disk (``ENOSPC``) while writing raises :class:`~neurodata.diskspace.DiskFullError` naming
  the path and the space needed; the temporary file or folder is removed.
- :func:`file_lock`: an exclusive ``flock`` on a lock file; the kernel drops it when its holder dies,
  so a killed process never leaves a stale lock. A process forked while a lock is held closes its
  copy of the descriptor at once, so a child that outlives its parent (a pool worker) cannot keep
  the lock held.
- :func:`default_root` and :func:`cache_name`: where datasets and their caches live by default.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .diskspace import disk_full_as_error, require_space
from .errors import CannotWriteError, NeurodataError, PathNotFoundError

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

SHARED = 0o666  # permission bits of a new file as open() creates it, before the umask narrows them
LOCK_POLL_S = 0.01  # how often a lock with a timeout tries again
TEMPORARY = ".tmp-"  # <name>.tmp-<pid>-<random>: a folder being assembled for <name>


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike,
    mode: str = "wb",
    *,
    permissions: int = SHARED,
    durable: bool = True,
    parents: bool = False,
    size: int | None = None,
) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path``, on error it is removed.

    Parameters:
        path: the file to write.
        mode: ``open`` mode of the temporary file (``"wb"`` or ``"w"``).
        permissions: its permission bits before the umask (default :data:`SHARED`, as ``open`` gives).
        durable: flush and ``fsync`` it before the rename, so the new content survives a power cut.
        parents: create missing parent folders first; without it a missing folder raises
            :class:`~neurodata.errors.PathNotFoundError` naming ``path``.
        size: the bytes to be written, when known in advance: fewer free bytes on the filesystem
            fail at once. A full disk, foreseen or not, raises
            :class:`~neurodata.diskspace.DiskFullError` naming ``path`` (never the temporary file).
    """
    path = os.fspath(path)
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        raise CannotWriteError(f"{path}: cannot write: a file is needed here, not a folder")
    folder, name = os.path.split(os.path.abspath(path))
    if parents:
        os.makedirs(folder, exist_ok=True)
    if size is not None:
        require_space(path, size)
    try:
        tmp, fd = _create_temporary(folder, name, permissions)
    except FileNotFoundError:
        if os.path.isdir(folder):  # a folder that takes no new files (/proc)
            raise CannotWriteError(f"{path}: cannot write: the folder {folder} takes no new files") from None
        raise PathNotFoundError(
            f"{path}: cannot write: the folder {os.path.dirname(path) or '.'} does not exist"
        ) from None
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.EROFS):
            raise
        raise CannotWriteError(f"{path}: cannot write: {err.strerror} ({folder})") from None
    try:
        with disk_full_as_error(path, size), os.fdopen(fd, mode) as fileobj:
            yield fileobj
            if durable:
                fileobj.flush()
                os.fsync(fileobj.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_atomic(
    path: str | os.PathLike,
    data: bytes | str,
    *,
    permissions: int = SHARED,
    durable: bool = True,
    parents: bool = False,
) -> None:
    """Write ``data`` (bytes, or text in the locale's encoding) to ``path`` with :func:`atomic_output`
    and the same options.

    Args:
        path: The file to write (replaced whole, never seen half-written).
        data: Its content.
        permissions: Permission bits before the umask.
        durable: ``fsync`` before the rename.
        parents: Create missing parent folders first.
    """
    mode = "w" if isinstance(data, str) else "wb"
    with atomic_output(path, mode, permissions=permissions, durable=durable, parents=parents) as fileobj:
        fileobj.write(data)


def _create_temporary(folder: str, name: str, permissions: int) -> tuple[str, int]:
    """A new, exclusively created ``.<name>.tmp-<pid>-<random>`` in ``folder`` and its descriptor."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            return tmp, os.open(tmp, flags, permissions)
        except FileExistsError:
            continue


def replace_tree(new: str | os.PathLike, target: str | os.PathLike, aside: str | os.PathLike) -> None:
    """Move the complete folder ``new`` to ``target``. An existing ``target`` is first renamed to
    ``aside`` (a free name on the same filesystem) and deleted only afterwards, so ``target`` is at
    every moment either the old tree or the new one, never a half-deleted one."""
    if not os.path.exists(target):
        os.rename(new, target)
        return
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(target, aside)
    os.rename(new, target)
    shutil.rmtree(aside, ignore_errors=True)


class LockTimeout(NeurodataError, TimeoutError):
    """Another process held a lock for longer than the caller would wait."""


_HELD: set[int] = set()  # the descriptors of the locks this process holds (see _close_inherited_locks)


def _close_inherited_locks() -> None:
    """In a forked child: close the descriptors of the parent's held locks without unlocking them.

    An flock belongs to the open file, which a fork shares; the kernel releases it only when every
    descriptor of that file is closed, so a child keeping its copy would hold the parent's lock for
    as long as the child lives (a pool worker orphaned by a SIGKILLed parent: forever).
    """
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


@contextlib.contextmanager
def file_lock(
    path: str | os.PathLike,
    *,
    on_wait: Callable[[], None] | None = None,
    timeout: float | None = None,
    remove: bool = False,
    permissions: int = SHARED,
) -> Iterator[None]:
    """Hold an exclusive advisory lock (``flock``) on the file ``path``, created when absent.

    POSIX only: without ``fcntl`` (Windows) this holds no lock, and concurrent writers are unsupported.

    Parameters:
        path: the lock file; its folder must exist.
        on_wait: called once, before waiting, when another process holds the lock.
        timeout: seconds to wait before raising :class:`LockTimeout`; None waits as long as it takes.
        remove: delete the lock file on release (while still holding it), so it does not outlive its
            use; a waiter that then locks the deleted file notices and locks the new one instead.
        permissions: permission bits of a new lock file before the umask.
    """
    if fcntl is None:
        yield
        return
    path = os.fspath(path)
    fd = _acquire(path, on_wait, timeout, remove, permissions)
    owner = os.getpid()
    _HELD.add(fd)
    try:
        yield
    finally:
        if os.getpid() == owner:  # a forked child unwinding this frame holds nothing (see above)
            _HELD.discard(fd)
            if remove:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            # unlock before closing: a child forked outside Python (no fork hook ran) may share it
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _acquire(
    path: str, on_wait: Callable[[], None] | None, timeout: float | None, remove: bool, permissions: int
) -> int:
    """Open and lock ``path`` (see :func:`file_lock`); returns the locked descriptor."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, permissions)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                    on_wait = None
                held = deadline is None
                if held:
                    fcntl.flock(fd, fcntl.LOCK_EX)
            if held and (not remove or _is_current(fd, path)):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        if not held:
            if time.monotonic() > deadline:
                raise LockTimeout(f"another process holds {path} for over {timeout:.0f} s")
            time.sleep(LOCK_POLL_S)


def _is_current(fd: int, path: str) -> bool:
    """Whether the open ``fd`` is still the file at ``path`` (a previous holder may have removed it
    between our open and our lock)."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def locked_temporary(path: str | os.PathLike) -> Iterator[str]:
    """A fresh name ``<path>.tmp-<pid>-<random>`` beside ``path`` to assemble a folder under, held
    locked (``file_lock`` on ``<that name>.lock``) for the block; removed with what it holds on exit
    unless the block moved it into place (with :func:`replace_tree`, aside to ``<that name>.old``).

    Temporaries of earlier runs that died (no process holds their lock) are removed first, so an
    interrupted run leaves nothing behind once the same output is written again.

    Parameters:
        path: the folder being written; its parent folder must exist.
    """
    path = os.fspath(path)
    remove_stale_temporaries(path)
    tmp = f"{path}{TEMPORARY}{os.getpid()}-{secrets.token_hex(4)}"
    with file_lock(f"{tmp}.lock", remove=True):
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(f"{tmp}.old", ignore_errors=True)


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Remove the temporaries of ``path`` (see :func:`locked_temporary`) whose writer is gone: those
    whose lock no process holds. Those of live writers, here or on other machines sharing the
    filesystem (where ``flock`` works across them), stay. Returns the names removed.

    Parameters:
        path: the folder whose temporaries to look for, beside it.
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    pattern = re.compile(re.escape(name + TEMPORARY) + r"[0-9]+-[0-9a-f]+")
    try:
        entries = os.listdir(folder)
    except FileNotFoundError:
        return []
    removed = []
    for stem in sorted({m.group(0) for m in map(pattern.match, entries) if m}):
        tmp = os.path.join(folder, stem)
        try:
            with file_lock(f"{tmp}.lock", timeout=0, remove=True):
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.rmtree(f"{tmp}.old", ignore_errors=True)
        except LockTimeout:  # its writer is alive
            continue
        removed.append(stem)
    return removed


def default_root() -> Path:
    """Where datasets live by default: ``$NEURODATA_HOME`` when set, else ``$XDG_CACHE_HOME/neurodata``
    (``~/.cache/neurodata``)."""
    home = os.environ.get("NEURODATA_HOME")
    if home:
        return Path(home).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "neurodata"


def cache_name(dataset: str, options: dict[str, str], defaults: dict[str, str]) -> str:
    """The cache folder name of a dataset: its name, plus ``-key=value`` for each option that differs
    from ``defaults``, plus ``.zarr``.

    Args:
        dataset: The dataset's registry name, e.g. ``nmnist``.
        options: The preparation options chosen (name to value), in any order (sorted in the name).
        defaults: Each option's default value; options equal to it stay out of the name.
    """
    suffix = "".join(f"-{k}={v}" for k, v in sorted(options.items()) if defaults.get(k) != v)
    return f"{dataset}{suffix}.zarr"
