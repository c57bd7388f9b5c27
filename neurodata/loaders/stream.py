"""The streaming (iterable) dataset: contiguous block reads, sharded over ranks and workers, read ahead.

See :mod:`.sharding` for who reads what. Within a worker, blocks are read in a background thread
(:func:`neurodata._threads.prefetched`) and samples pass through a shuffle buffer seeded by
``(seed, epoch, rank, worker)``, so an epoch's order is reproducible for a fixed world size and worker
count. The epoch lives in a shared-memory tensor: :meth:`StreamingDataset.set_epoch` in the main
process reaches persistent workers too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .._threads import prefetched
from ..arguments import whole_number
from . import shm_pool
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
    """Samples per block of ``pipeline``'s split so that one block is about
    :data:`TARGET_BLOCK_BYTES` of decoded data."""
    n = len(pipeline)
    if n == 0:
        return 1
    if pipeline.stored is not None:
        per_sample = int(np.prod(pipeline.stored.shape)) * pipeline.stored.dtype.itemsize
    else:
        per_sample = max(1, pipeline.source.attrs["splits"][pipeline.source.split]["n_events"] // n) * 13
    return int(np.clip(TARGET_BLOCK_BYTES // max(per_sample, 1), 1, 1024))


@dataclass(frozen=True)
class StreamingOptions:
    """How a :class:`StreamingDataset` reads one split; every field applies to streaming alone.

    ``shuffle``: permute the blocks each epoch and pass samples through a shuffle buffer;
    ``seed``: the seed of both (with the epoch, rank and worker); ``block_samples``: samples per
    contiguous read (None: about :data:`TARGET_BLOCK_BYTES` decoded); ``shuffle_buffer``: samples
    in the buffer (None: 4 blocks); ``prefetch``: blocks read ahead on a background thread
    (None: 2 for remote stores, 0 for local ones); ``rank``/``world_size``: this process's share
    (None: the initialised torch.distributed group's, else 0 of 1).
    """

    shuffle: bool = True
    seed: int = 0
    block_samples: int | None = None
    shuffle_buffer: int | None = None
    prefetch: int | None = None
    rank: int | None = None
    world_size: int | None = None

    def __post_init__(self) -> None:
        """Check every number (ValueError naming the field): 0 blocks, a negative buffer or a
        fractional seed were taken as the defaults or truncated."""
        whole_number("seed", self.seed)
        for name, minimum in (("block_samples", 1), ("shuffle_buffer", 0), ("prefetch", 0)):
            if getattr(self, name) is not None:
                whole_number(name, getattr(self, name), minimum=minimum)

    @classmethod
    def resolve(cls, options: StreamingOptions | None, keywords: dict[str, Any], caller: str) -> StreamingOptions:
        """``options``, or the options the flat ``keywords`` (field names) give.

        Parameters: ``caller`` names the function in the errors: a keyword that is no field is a
        TypeError, as Python's own; a keyword beside an options object is a ValueError (which
        would win is not obvious).
        """
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(keywords.keys() - fields)
        if unknown:
            raise TypeError(f"{caller} got unexpected keyword arguments: {', '.join(unknown)}")
        if options is None:
            return cls(**keywords)
        if keywords:
            raise ValueError(
                f"{caller}: pass {', '.join(sorted(keywords))} in the StreamingOptions or as keywords, not both"
            )
        return options


class StreamingDataset(SplitInfo, IterableDataset):
    """Iterate one split's ``(input, target)`` pairs, each sample exactly once per epoch across all
    ranks and DataLoader workers.

    Parameters: ``pipeline`` reads and transforms the samples; ``options`` (a
    :class:`StreamingOptions`), or its fields as keywords, say how. Ranks may receive a block's
    worth of samples more or fewer than each other (``len()`` gives this rank's count for the
    current epoch); see docs/sections/loaders.md for DDP.
    """

    def __init__(self, pipeline: SamplePipeline, options: StreamingOptions | None = None, **keywords: Any):
        options = StreamingOptions.resolve(options, keywords, "StreamingDataset()")
        self.pipeline = pipeline
        self.shuffle = options.shuffle
        self.seed = int(options.seed)
        self.block_samples = options.block_samples or auto_block_samples(pipeline)
        self.shuffle_buffer = (
            options.shuffle_buffer if options.shuffle_buffer is not None else 4 * self.block_samples
        )
        remote = is_remote(pipeline.source.url)
        self.prefetch = options.prefetch if options.prefetch is not None else (2 if remote else 0)
        default_rank, default_world = default_rank_world()
        self.rank = default_rank if options.rank is None else options.rank
        self.world_size = default_world if options.world_size is None else options.world_size
        self.blocks = plan_blocks(len(pipeline), self.block_samples)
        rank_blocks(np.arange(0), self.rank, self.world_size)  # validate rank and world size now
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        shm_pool.register_user(self)  # the batch memory it is collated into goes when it does

    @property
    def epoch(self) -> int:
        """The epoch whose order the next iteration follows (see :meth:`set_epoch`)."""
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
