"""Decoding a dataset's units into cache parts: in this process, in worker processes, or, for an
archive streamed front to back (a compressed tar), round by round in workers forked after each
memory budget of members is read, so that they see those members without copying them.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from ..cache import PartData
from ..errors import NeurodataError
from ..events import RecordingInfo, make_events
from ..reader import read_buffer
from ..workers import process_pool
from ..writer import output_format
from .registry import Unit, get_dataset
from .trees import FileTree


def decode_part(
    name: str, tree: FileTree, units: dict[str, list[Unit]], options: dict, split: str, index: int
) -> PartData:
    """Decode unit ``units[split][index]`` of dataset ``name``, whose files ``tree`` holds, with the
    dataset's ``options``, into cache part data (module-level so worker processes can run it).

    Args:
        name: The dataset.
        tree: Its files (a folder, or its archives' members).
        units: The planned units by split.
        options: The dataset's resolved options.
        split: The unit's split.
        index: The unit's index in its split.
    """
    spec = get_dataset(name)
    samples = spec.decode(tree, units[split][index], options)
    return PartData.from_samples((s.events, s.label, s.source) for s in samples)


class ForkedPerRound(Executor):
    """Worker processes forked anew for each round of a streamed archive (:meth:`refresh`), so that
    they see the members this process holds then (see :class:`~neurodata.datasets.tar_tree.TarTree`).

    Args:
        workers: Worker processes per round.
    """

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: Executor | None = None

    def refresh(self) -> None:
        """End the current workers; the next task forks new ones."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` on a worker (forked now if there are none)."""
        if self._pool is None:
            self._pool = process_pool(self.workers)
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """End the workers (waiting for them when ``wait``; ``cancel_futures`` drops queued tasks)."""
        if self._pool is not None:
            self._pool.shutdown(wait, cancel_futures=cancel_futures)
            self._pool = None


def streamed_executor(tree: FileTree, workers: int) -> Executor | None:
    """What decodes a tree that other processes cannot open themselves (a compressed tar): worker
    processes forked per round where processes fork (Linux), else ``workers`` threads; None for one worker.

    Args:
        tree: The dataset's files.
        workers: How many workers the user asked for.
    """
    if workers <= 1 or tree.shareable:
        return None
    return ForkedPerRound(workers) if sys.platform.startswith("linux") else ThreadPoolExecutor(workers)


def streamed_rounds(
    tree: FileTree, units: dict[str, list[Unit]], before_round: Callable[[], None] = lambda: None
) -> Callable[[list[tuple[str, int]]], Iterator[list[tuple[str, int]]]]:
    """For :func:`~neurodata.cache.build_cache`: the pending parts in groups whose files ``tree``
    can read now, while it brings the files of the rest in (a compressed tar, a memory budget at a
    time); each group's files are released once it is built.

    Args:
        tree: The dataset's files.
        units: The planned units by split.
        before_round: Called before each group: e.g. to fork workers that see the files held now.
    """

    def rounds(pending: list[tuple[str, int]]) -> Iterator[list[tuple[str, int]]]:
        files = {part: units[part[0]][part[1]].files for part in pending}
        waiting = list(pending)
        for _ in tree.rounds({f for part in waiting for f in files[part]}):
            group = [part for part in waiting if all(tree.ready(f) for f in files[part])]
            waiting = [part for part in waiting if part not in set(group)]
            if group:
                before_round()
                yield group
                tree.release([f for part in group for f in files[part]])
        if waiting:  # the plan only names members the archive lists, so this is a damaged stream
            raise NeurodataError(f"{tree.where(files[waiting[0]][0])}: member not found on reading the archive again")

    return rounds


def warm_decoders(formats: Sequence[str]) -> None:
    """Load the Numba kernels that decode ``formats`` (kept in Numba's on-disk cache) by decoding two
    events written in each; ``prepare`` runs it on a thread while the archives are hashed and listed,
    so that decoding, and worker processes forked afterwards, find them loaded.

    Args:
        formats: Event format names (see ``neurodata formats``).
    """
    events = make_events(np.array([1, 2]), np.array([0, 1]), np.array([0, 1]), np.array([0, 1]))
    for name in formats:
        buffer = io.BytesIO()
        writer = output_format("warm-up", name).make_writer(buffer, RecordingInfo(format=name, width=2, height=2))
        writer.write(events)
        writer.close()
        read_buffer(buffer.getvalue(), "warm-up", name)
