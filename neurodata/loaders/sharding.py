"""Pure planning for streaming: contiguous sample blocks, a per-epoch order, and who reads which block.

A split is cut into blocks of ``block_samples`` consecutive samples (one read each, which is what
makes object stores fast). Each epoch permutes the blocks with a generator seeded by
``(seed, epoch)``; ranks take every ``world_size``-th block of that order, and a rank's DataLoader
workers take every ``num_workers``-th of the rank's blocks. Every block, hence every sample, goes
to exactly one worker of one rank per epoch, and a rank's share does not depend on its worker count.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def plan_blocks(n_samples: int, block_samples: int) -> list[tuple[int, int]]:
    """``[start, stop)`` sample ranges of at most ``block_samples`` each, covering ``0..n_samples``
    (``n_samples`` excluded)."""
    if block_samples < 1:
        raise ValueError(f"block_samples must be at least 1, got {block_samples}")
    return [(start, min(start + block_samples, n_samples)) for start in range(0, n_samples, block_samples)]


def epoch_order(n_blocks: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """Indices of ``n_blocks`` blocks in ``epoch``'s reading order (a permutation seeded by
    ``seed`` and ``epoch`` when ``shuffle``)."""
    if not shuffle:
        return np.arange(n_blocks)
    return np.random.default_rng([seed, epoch]).permutation(n_blocks)


def rank_blocks(order: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """``rank``'s share of the blocks in ``order``: every ``world_size``-th, from ``rank``."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside world_size {world_size}")
    return order[rank::world_size]


def worker_blocks(blocks: np.ndarray, worker: int, num_workers: int) -> np.ndarray:
    """DataLoader ``worker``'s share of ``blocks``: every ``num_workers``-th, from ``worker``."""
    return blocks[worker::num_workers]


def shuffle_buffer(items: Iterable[T], size: int, rng: np.random.Generator) -> Iterator[T]:
    """Yield ``items`` in random order (drawn from ``rng``) using a buffer of ``size`` (the usual
    streaming shuffle)."""
    buffer: list[T] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = int(rng.integers(size))
        buffer[j], item = item, buffer[j]
        yield item
    rng.shuffle(buffer)
    yield from buffer
