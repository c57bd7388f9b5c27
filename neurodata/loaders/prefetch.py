"""Read ahead in a background thread so a slow store (object storage, a busy disk) does not stall training.

Zarr's I/O and Blosc decompression release the GIL, so reading the next block overlaps the
consumer's work on the current one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

A = TypeVar("A")
R = TypeVar("R")


def prefetched(read: Callable[[A], R], args: Iterable[A], depth: int = 2) -> Iterator[R]:
    """``read(a)`` for each ``a`` in order, keeping up to ``depth`` reads in flight ahead of the consumer.

    ``depth=0`` reads inline. An exception in a read is raised when its result is reached; closing
    the generator early cancels the reads not yet started.
    """
    if depth <= 0:
        yield from map(read, args)
        return
    pending: deque[Future[R]] = deque()
    todo = iter(args)
    with ThreadPoolExecutor(1, thread_name_prefix="neurodata-prefetch") as pool:
        try:
            for a in todo:
                pending.append(pool.submit(read, a))
                if len(pending) > depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
