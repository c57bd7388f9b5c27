"""The streaming (iterable) dataset: contiguous block reads, sharded over ranks and workers, read ahead.

See :mod:`.sharding` for who reads what. Within a worker, blocks are read in a background thread
(:func:`neurodata._threads.prefetched`) and samples pass through a shuffle buffer seeded by
``(seed, epoch, rank, worker)``, so an epoch's order is reproducible for a fixed world size and worker
count. The epoch lives in a shared-memory tensor: :meth:`StreamingDataset.set_epoch` in the main
process reaches persistent workers too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .._threads import prefetched
from .dataset import SplitInfo
from .pipeline import SamplePipeline
from .sharding import epoch_order, plan_blocks, rank_blocks, shuffle_buffer, worker_blocks
from .source import is_remote

# decoded bytes per block read (~6 DVS128-sized samples): a remote read amortises request latency
# over it (one fetch round per block); in caches of layout 1 (samples back to back) a block also
# decompresses the inner chunks its consecutive samples share once (see read_samples)
TARGET_BLOCK_BYTES = 16 << 20


def default_rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised torch.distributed group, else ``(0, 1)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def auto_block_samples(pipeline: SamplePipeline) -> int:
    """Samples per block so that one block is about :data:`TARGET_BLOCK_BYTES` of decoded data."""
    n = len(pipeline)
    if n == 0:
        return 1
    if pipeline.stored is not None:
        per_sample = int(np.prod(pipeline.stored.shape)) * pipeline.stored.dtype.itemsize
    else:
        per_sample = max(1, pipeline.source.attrs["splits"][pipeline.source.split]["n_events"] // n) * 13
    return int(np.clip(TARGET_BLOCK_BYTES // max(per_sample, 1), 1, 1024))


class StreamingDataset(SplitInfo, IterableDataset):
    """Iterate one split's ``(input, target)`` pairs, each sample exactly once per epoch across all
    ranks and DataLoader workers.

    ``rank``/``world_size`` default to the initialised torch.distributed group. Ranks may receive a
    block's worth of samples more or fewer than each other (``len()`` gives this rank's count for
    the current epoch); see docs/sections/loaders.md for DDP.
    """

    def __init__(
        self,
        pipeline: SamplePipeline,
        *,
        shuffle: bool = True,
        seed: int = 0,
        block_samples: int | None = None,
        shuffle_buffer: int | None = None,
        prefetch: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        self.pipeline = pipeline
        self.shuffle = shuffle
        self.seed = int(seed)
        self.block_samples = block_samples or auto_block_samples(pipeline)
        self.shuffle_buffer = shuffle_buffer if shuffle_buffer is not None else 4 * self.block_samples
        self.prefetch = prefetch if prefetch is not None else (2 if is_remote(pipeline.source.url) else 0)
        default_rank, default_world = default_rank_world()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        self.blocks = plan_blocks(len(pipeline), self.block_samples)
        rank_blocks(np.arange(0), self.rank, self.world_size)  # validate rank and world size now
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration follows (visible to persistent workers)."""
        self._epoch[0] = int(epoch)

    def _rank_blocks(self) -> np.ndarray:
        order = epoch_order(len(self.blocks), self.seed, self.epoch, self.shuffle)
        return rank_blocks(order, self.rank, self.world_size)

    def __len__(self) -> int:
        """Samples this rank yields in the current epoch."""
        return sum(self.blocks[b][1] - self.blocks[b][0] for b in self._rank_blocks())

    def _read_block(self, block: int) -> list[tuple[np.ndarray, int]]:
        return self.pipeline.read(*self.blocks[block])

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch = self.epoch
        mine = worker_blocks(self._rank_blocks(), worker, num_workers)
        samples = (
            sample for block in prefetched(self._read_block, mine.tolist(), self.prefetch) for sample in block
        )
        if self.shuffle and self.shuffle_buffer > 1:
            rng = np.random.default_rng([self.seed, epoch, self.rank, worker])
            samples = shuffle_buffer(samples, self.shuffle_buffer, rng)
        finish = self.pipeline.finish
        for raw, label in samples:
            yield finish(raw, label)
