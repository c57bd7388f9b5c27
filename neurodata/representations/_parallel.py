"""Frames counted side by side: the slices split into runs of consecutive frames, one run a thread.

Each run's frames are counted by one thread only, so the runs need no locks and the counts are
those of one thread. The frame kernels release the GIL; the caller maps each run's fresh pages
just before the run starts (:func:`count_runs` says why), the last run first, then counts the
first run itself while the pool's threads count the others.
"""

from __future__ import annotations

import mmap
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple, TypeVar

import numpy as np

from .._threads import in_parallel_section, mark_parallel_thread, parallel_section, shared_pool
from . import kernels

R = TypeVar("R")
# The default gives each thread this many events and bytes of frames at least: below them a
# thread's share is too small to pay for the hand-off and for a core that other work may hold.
MIN_EVENTS_PER_THREAD = 1 << 17
MIN_BYTES_PER_THREAD = 8 << 20


class FrameRun(NamedTuple):
    """Frames ``first <= i < stop`` of a slicing, counted by one thread."""

    first: int
    stop: int

    def checked_events(self, ends: np.ndarray, n_events: int) -> tuple[int, int]:
        """``(first, stop)`` for :func:`~.kernels.accumulate_frames_validating`: from the largest end
        of the slices before the run (the runs before check up to there) and, for the last run, to
        the last event; so the runs of a slicing check every event between them.

        Args:
            ends: One past the last event of each slice, of all the runs.
            n_events: The number of events.
        """
        first = int(ends[: self.first].max()) if self.first else 0
        return first, n_events if self.stop == len(ends) else 0


def frame_threads(threads: int | None, n_events: int, n_frames: int, nbytes: int) -> int:
    """How many threads count ``n_frames`` frames of ``n_events`` events (at most one per frame).

    Args:
        threads: The number asked for; None: the cores this process may use, but 1 in a worker
            process (a torch DataLoader's, a process pool's: the workers are the parallelism there)
            or on a thread already doing a share of split work (the loaders' decode threads), and
            at most one per :data:`MIN_EVENTS_PER_THREAD` events and per
            :data:`MIN_BYTES_PER_THREAD` bytes of frames.
        n_events: The events the frames hold (summed over the slices).
        n_frames: The number of frames.
        nbytes: The size of the frames.
    """
    if threads is None:
        share = min(n_events // MIN_EVENTS_PER_THREAD, nbytes // MIN_BYTES_PER_THREAD)
        # (the cheap test first: most frames are too small to share, and then nothing else is asked)
        threads = 1 if share <= 1 or _in_worker_process() or in_parallel_section() else min(_usable_cores(), share)
    elif isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 1:
        raise ValueError(f"threads must be a whole number of at least 1, or None for the default; got {threads!r}")
    return max(1, min(int(threads), n_frames))


def _in_worker_process() -> bool:
    """A process that multiprocessing started (a pool's worker), or a DataLoader worker (which has
    torch imported: it is never imported here)."""
    processes = sys.modules.get("multiprocessing")
    if processes is not None and processes.parent_process() is not None:
        return True
    data = sys.modules.get("torch.utils.data")
    return data is not None and data.get_worker_info() is not None


def _usable_cores() -> int:
    from ..workers import usable_cores

    return usable_cores()


def frame_runs(lengths: np.ndarray, parts: int) -> list[FrameRun]:
    """``parts`` runs of consecutive frames (fewer when frames run out), balanced so that each
    holds about as many events plus frames to zero as the others.

    Args:
        lengths: The events of each frame's slice.
        parts: The number of runs wanted.
    """
    n = len(lengths)
    if parts <= 1 or n <= 1:
        return [FrameRun(0, n)]
    work = np.cumsum(lengths + (lengths.mean() + 1))  # a frame's own cost weighs like an average slice
    cuts = np.searchsorted(work, work[-1] * np.arange(1, parts) / parts, side="right")
    bounds = np.unique(np.concatenate([[0], np.clip(cuts, 1, n - 1), [n]]))
    return [FrameRun(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def count_runs(count: Callable[[FrameRun], R], runs: Sequence[FrameRun], frames: np.ndarray) -> list[R]:
    """``count(run)`` for each of ``runs``, side by side (:func:`side_by_side`).

    With several runs, this thread faults in each run's fresh frames just before handing the run
    over, the last run first, then its own (the first) while the others count: threads that fault
    pages of one process at the same time stalled now and then for tens (once hundreds) of
    milliseconds on the virtual machines measured, far longer than the faults take one after
    another, so no thread counting ever faults.

    Args:
        count: Counts one run's frames.
        runs: Runs of consecutive frames.
        frames: The C-contiguous, zero-filled frames the runs count into.
    """

    def fault_in(i: int) -> None:
        run = runs[i]
        kernels.touch_pages(frames[run.first : run.stop].reshape(-1).view(np.uint8), mmap.PAGESIZE)

    return side_by_side([partial(count, run) for run in runs], before=fault_in if len(runs) > 1 else None)


def side_by_side(calls: Sequence[Callable[[], R]], before: Callable[[int], None] | None = None) -> list[R]:
    """The results of ``calls``, the first made on this thread, the others on a shared pool; waits for
    every call before raising the first error.

    Args:
        calls: Functions without arguments, independent of one another.
        before: Called as ``before(i)`` on this thread just before call ``i`` starts: the pool's
            calls are started from the last one, then this thread makes the first.
    """
    if len(calls) == 1:
        if before is not None:
            before(0)
        return [calls[0]()]
    pool = shared_pool("neurodata-frames", len(calls) - 1, initializer=mark_parallel_thread)
    futures = []  # the pool's calls, from the last one
    try:
        for i in range(len(calls) - 1, 0, -1):
            if before is not None:
                before(i)
            futures.append(pool.submit(calls[i]))
        if before is not None:
            before(0)
        with parallel_section():
            first = calls[0]()
    finally:
        errors = [future.exception() for future in futures]  # waits for each
    for error in errors:
        if error is not None:
            raise error
    return [first, *(future.result() for future in reversed(futures))]
