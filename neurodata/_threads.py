"""Thread helpers that format readers and loaders share: per-process thread pools and one ordered map.

:func:`ordered_map` runs a function over items on a pool and yields the results in the items'
order, a bounded number ahead of the consumer: the AEDAT 4 reader decompresses packet batches with
it, the streaming loader reads blocks ahead with it (:func:`prefetched`). Standard library only, so
that :mod:`neurodata.formats` and :mod:`neurodata.loaders` both import it without importing each other.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

A = TypeVar("A")
R = TypeVar("R")
_pools: dict[tuple[int, str, int], ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()
_inside = threading.local()


def in_parallel_section() -> bool:
    """Whether this thread already does one share of work split over threads (a thread of a pool
    made with :func:`mark_parallel_thread`, or a caller inside :func:`parallel_section`): work it
    starts then stays on it, so that the loaders' decode threads and the frame runs never nest."""
    return getattr(_inside, "flag", False)


def mark_parallel_thread() -> None:
    """A pool initializer: this thread's work is a share of split work (see :func:`in_parallel_section`)."""
    _inside.flag = True


@contextmanager
def parallel_section() -> Iterator[None]:
    """Mark the calling thread as doing its share of split work for the duration of the block."""
    outer = in_parallel_section()
    _inside.flag = True
    try:
        yield
    finally:
        _inside.flag = outer


def shared_pool(name: str, threads: int, initializer: Callable[[], None] | None = None) -> ThreadPoolExecutor:
    """This process's pool of ``threads`` threads called ``name``, made on first use.

    Parameters: ``name`` names the threads (and tells users of the same size apart);
    ``initializer`` runs on each new thread. A forked child makes its own: its parent's pool has
    no threads there.
    """
    key = (os.getpid(), name, threads)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ThreadPoolExecutor(threads, thread_name_prefix=name, initializer=initializer)
        return pool


def ordered_map(function: Callable[[A], R], items: Iterable[A], executor: Executor | None, ahead: int) -> Iterator[R]:
    """``function(item)`` for each of ``items``, yielded in order.

    Parameters: ``executor`` runs the calls, up to ``ahead`` items beyond the one the consumer
    waits for (so at most ``ahead + 1`` results are held at once); None runs them inline, one at
    a time as the consumer asks. An exception in a call is raised where its result is reached,
    after the results before it; closing the iterator early cancels the calls not yet started.
    """
    if executor is None:
        yield from map(function, items)
        return
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(executor.submit(function, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def prefetched(read: Callable[[A], R], args: Iterable[A], depth: int = 2) -> Iterator[R]:
    """``read(a)`` for each ``a`` in order, up to ``depth`` reads ahead on a background thread of its own.

    Parameters: ``depth=0`` reads inline. Read ahead so that a slow store (object storage, a busy
    disk) does not stall the consumer: zarr's I/O and Blosc release the GIL, so the next read
    overlaps the work on the current one. Errors and early closing as in :func:`ordered_map`.
    """
    if depth <= 0:
        yield from map(read, args)
        return
    with ThreadPoolExecutor(1, thread_name_prefix="neurodata-prefetch") as pool:
        yield from ordered_map(read, args, pool, depth)
