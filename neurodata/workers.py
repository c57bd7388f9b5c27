"""Worker processes that end with the process that started them.

:func:`process_pool` is the ``ProcessPoolExecutor`` of every local pool the package starts (the cache
builder's, ``precompute``'s, the gesture simulator's). Its workers:

- hold none of the parent's locks: a fork closes the child's copies of held :func:`~neurodata.localfs.file_lock`
  descriptors at once (a hook in :mod:`neurodata.localfs`), so a worker never keeps a lock its
  parent took;
- end when the parent dies, even by SIGKILL, which runs no clean-up: on Linux the kernel sends them
  SIGKILL (``prctl(PR_SET_PDEATHSIG)``, set in the pool's initializer, then the parent's pid checked
  once to close the race with a parent that died before it was set); elsewhere a daemon thread
  watches the parent's pid and ends the worker when it changes.

Linux forks its workers (cheap: the parent's imported modules and compiled Numba kernels come
along); other systems spawn them. The parent-death signal fires when the *thread* that forked the
worker exits, so a pool must be used from a thread that outlives it (every pool here is created,
used and shut down within one call).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL_S = 0.5  # how often a worker without the parent-death signal checks its parent


def usable_cores(limit: int = 8) -> int:
    """The CPU cores this process may run on (its affinity where the platform tells), at most ``limit``.

    Parameters:
        limit: the most to return (more processes than that rarely pay for their memory).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(cores, limit))


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes that end when this process dies and hold none of its locks.

    Parameters:
        workers: the number of worker processes.
    """
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context(method),
        initializer=end_with_parent,
        initargs=(os.getpid(),),
    )


def end_with_parent(parent: int) -> None:
    """Make this process end when process ``parent`` (its parent) dies; a pool initializer.

    Parameters:
        parent: the pid of the process that started this one, taken in that process.
    """
    if _set_parent_death_signal():
        if os.getppid() != parent:  # the parent died before the signal was set
            os.kill(os.getpid(), signal.SIGKILL)
        return
    threading.Thread(target=_watch_parent, args=(parent,), name="neurodata-parent-watch", daemon=True).start()


def _set_parent_death_signal() -> bool:
    """Ask the kernel (Linux) to SIGKILL this process when its parent dies; whether it could."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    """End this process once ``parent`` is no longer its parent (it died: the process was re-parented)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)
