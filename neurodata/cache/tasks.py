"""Run independent tasks on any ``concurrent.futures`` executor, or inline, and cancel the rest on failure.

The cache writer's parts and shards and :mod:`neurodata.loaders.precompute`'s ranges are such tasks:
a ``ProcessPoolExecutor`` on one machine, ``dask.distributed``'s ``client.get_executor()`` across
machines, or none (this process) all run them alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, as_completed
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def run_tasks(
    executor: Executor | None,
    fn: Callable[[Item], Result],
    items: Sequence[Item],
    on_done: Callable[[int, Result], Any] | None = None,
    meanwhile: Callable[[], Any] | None = None,
) -> list[Result]:
    """``fn(item)`` for every item, on ``executor`` or inline; results in item order.

    Parameters:
        executor: runs the tasks (``fn`` and the items must then pickle); None runs them here, in order.
        fn: the task.
        items: one task each.
        on_done: called in this process as ``on_done(k, result)`` as each task finishes (in
            completion order), e.g. for progress.
        meanwhile: called in this process once the tasks are submitted, while they run (before
            them without an executor): work of this process that they do not depend on.

    When a task or ``meanwhile`` raises (or this process is interrupted), the tasks not yet started
    are cancelled.
    """
    if executor is None:
        if meanwhile:
            meanwhile()
        results = []
        for k, item in enumerate(items):
            results.append(fn(item))
            if on_done:
                on_done(k, results[-1])
        return results
    futures = [executor.submit(fn, item) for item in items]
    try:
        if meanwhile:
            meanwhile()
        if on_done:
            index = {future: k for k, future in enumerate(futures)}
            for future in as_completed(futures):
                on_done(index[future], future.result())
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        raise
