"""The threads that decode a sample's chunks, or a batch's samples, side by side in the main process.

Blosc's decompression and the Numba passes release the GIL, so in a process that decodes alone
(``DataLoader(num_workers=0)``, or a training script reading samples itself) several cores can
share one read. The count is ``$NEURODATA_DECODE_THREADS`` when set (1: decode inline), else
``torch.get_num_threads()`` (the user's setting for intra-op parallelism); inside a DataLoader
worker, or a decode thread, reads stay on the calling thread: the workers are the parallelism there.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch
from torch.utils.data import get_worker_info

from .._threads import in_parallel_section, mark_parallel_thread, parallel_section, shared_pool

T = TypeVar("T")
R = TypeVar("R")
THREADS_VARIABLE = "NEURODATA_DECODE_THREADS"


def decode_threads(tasks: int) -> int:
    """How many threads ``tasks`` independent decodes may use from here (1: decode inline)."""
    if tasks < 2 or get_worker_info() is not None or in_parallel_section():
        return 1
    limit = os.environ.get(THREADS_VARIABLE, "").strip()
    if limit and not limit.isdigit():
        raise ValueError(f"${THREADS_VARIABLE} must be a whole number of threads, got {limit!r}")
    return max(1, min(int(limit) if limit else torch.get_num_threads(), tasks))


def decode_pool(threads: int) -> ThreadPoolExecutor:
    """This process's pool of ``threads`` decode threads (a forked child makes its own)."""
    return shared_pool("neurodata-decode", threads, initializer=mark_parallel_thread)


def decode_map(task: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[task(item) for item in items]``, side by side on :func:`decode_threads` threads: the
    calling thread and the pool's take the next item whenever they finish one, so uneven items
    balance (pass the biggest first), and the caller works instead of waiting on a hand-off. The
    first error is raised once every thread has stopped; no new item starts after it."""
    threads = decode_threads(len(items))
    if threads == 1:
        return [task(item) for item in items]
    results: list = [None] * len(items)
    counter = itertools.count()  # next() on it is atomic under the GIL
    failed = threading.Event()

    def drain() -> None:
        for k in counter:
            if k >= len(items) or failed.is_set():
                return
            try:
                results[k] = task(items[k])
            except BaseException:
                failed.set()
                raise

    helpers = [decode_pool(threads - 1).submit(drain) for _ in range(threads - 1)]
    try:
        with parallel_section():  # a task that asks for threads decodes inline, as on the pool's threads
            drain()
    finally:
        errors = [helper.exception() for helper in helpers]  # waits for every helper
    for error in errors:
        if error is not None:
            raise error
    return results
