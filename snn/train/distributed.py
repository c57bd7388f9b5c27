"""Data parallelism: what :func:`snn.train.fit` changes when a process group is initialised.

The model is wrapped in ``DistributedDataParallel`` (gradients averaged across ranks), a map-style
training loader is rebuilt around a ``DistributedSampler`` (each rank sees its own shard; the
loader's ``batch_size`` is per process, so the global batch is ``world_size * batch_size``) and
validation splits the samples without padding, so summed metrics are exact. Iterable datasets
(e.g. neurodata's streaming dataset) shard themselves and are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, IterableDataset, RandomSampler, Sampler


def is_distributed() -> bool:
    """Whether ``torch.distributed`` is available and initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` on ``device`` when distributed, else the model itself."""
    if not is_distributed():
        return model
    ids = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else None
    )
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` of a dataset of ``length`` items: disjoint shards
    covering it exactly once."""

    def __init__(self, length: int, rank: int, world: int) -> None:
        self.length, self.rank, self.world = length, rank, world

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world))


def _rebuild(loader: DataLoader, sampler: Sampler) -> DataLoader:
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        persistent_workers=loader.persistent_workers,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor,
    )


def shard_train_loader(loader: DataLoader, seed: int) -> DataLoader:
    """The training ``loader`` with a ``DistributedSampler`` (shuffled with ``seed`` if the
    original shuffled)."""
    if not is_distributed() or isinstance(loader.dataset, IterableDataset):
        return loader
    if loader.batch_size is None:
        raise ValueError(
            "fit: distributed training needs a DataLoader built with batch_size (not batch_sampler)"
        )
    shuffle = isinstance(loader.sampler, RandomSampler)
    sampler = DistributedSampler(loader.dataset, shuffle=shuffle, seed=seed, drop_last=loader.drop_last)
    return _rebuild(loader, sampler)


def shard_eval_loader(loader: DataLoader) -> DataLoader:
    """The validation loader over this rank's :class:`ShardSampler` shard (no padding, no duplicates)."""
    if not is_distributed() or isinstance(loader.dataset, IterableDataset):
        return loader
    if loader.batch_size is None:
        raise ValueError("fit: distributed validation needs a DataLoader built with batch_size")
    return _rebuild(loader, ShardSampler(len(loader.dataset), rank(), world_size()))


def all_reduce_sum(values: list[float]) -> list[float]:
    """Elementwise sum of ``values`` over ranks (identity when not distributed). float64 keeps
    counts exact."""
    if not is_distributed():
        return values
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gather_objects(obj):
    """Every rank's ``obj`` as a list indexed by rank (``[obj]`` when not distributed)."""
    if not is_distributed():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    """Wait for every rank (nothing when not distributed)."""
    if is_distributed():
        dist.barrier()
