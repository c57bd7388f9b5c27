"""Cross-process locks for cache files, and the shape of progress callbacks shared by download and extract."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

Callback = Callable[[dict], None]
"""Receives one JSON-ready dict per event, e.g. ``{"event": "progress", "file": ..., "done": ..., "total": ...}``."""


@contextlib.contextmanager
def locked(lock_path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive advisory lock so two processes never write the same ``.part`` file or staging
    folder (POSIX only; the kernel releases it when a process dies, so a kill never leaves it stale).

    ``on_wait()`` is called once, before blocking, when another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no cross-process lock; concurrent runs on one cache are unsupported
        yield
        return
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
