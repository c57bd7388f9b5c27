"""PyTorch datasets over neurodata caches, local or remote: :func:`load` and its building blocks.

>>> train = neurodata.load("dvs128", split="train", representation=ToFrame(None, n_time_bins=16))
>>> loader = DataLoader(train, batch_size=32, shuffle=True, num_workers=4, collate_fn=stack_time_major)

Local stores give a map-style :class:`CacheDataset` (use any sampler, ``DistributedSampler`` for DDP);
remote stores (``s3://``, ``http://``, ...) give a :class:`StreamingDataset` that reads contiguous
blocks ahead in a background thread and shards itself over ranks and workers. See
docs/sections/loaders.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .collate import EventBatch, LengthBucketBatchSampler, pad_events, stack_dense, stack_time_major
from .dataset import CacheDataset
from .pipeline import SamplePipeline
from .source import SplitSource, is_remote, resolve_store
from .stream import StreamingDataset


def load(
    name_or_store: str | os.PathLike,
    split: str = "train",
    representation: Any = None,
    transform: Callable | None = None,
    target_transform: Callable | None = None,
    *,
    streaming: bool | None = None,
    storage_options: dict[str, Any] | None = None,
    root: str | os.PathLike | None = None,
    precomputed: bool | str = "auto",
    shuffle: bool = True,
    seed: int = 0,
    block_samples: int | None = None,
    shuffle_buffer: int | None = None,
    prefetch: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
) -> CacheDataset | StreamingDataset:
    """A PyTorch dataset of ``(input, target)`` pairs from one split of a neurodata cache.

    ``name_or_store``: a dataset name (``"dvs128"`` -> ``<NEURODATA_HOME>/dvs128.zarr``, or under
    ``root``), a path, or an fsspec URL (``s3://bucket/dvs128.zarr``; credentials and endpoints in
    ``storage_options``). With no ``representation`` an input is the sample's events (structured
    :data:`~neurodata.events.EVENT_DTYPE` array); ``representation`` is a :mod:`neurodata.transforms`
    object, a spec dict or any callable (a missing sensor size comes from the cache). ``transform``
    acts on events before the representation. A representation precomputed in the cache is read
    instead of computed (``precomputed="auto"``; True requires it, False ignores it).

    ``streaming`` (default: True for remote URLs) returns a :class:`StreamingDataset` configured by
    ``shuffle``, ``seed``, ``block_samples``, ``shuffle_buffer``, ``prefetch``, ``rank``, ``world_size``
    (those arguments do not apply to the map-style dataset, whose sampler decides the order);
    ``prefetch`` (blocks read ahead in a background thread) defaults to 2 remotely, 0 locally.
    """
    url = resolve_store(name_or_store, root)
    source = SplitSource(url, split, storage_options)
    pipeline = SamplePipeline(source, representation, transform, target_transform, precomputed)
    source.warm(events=pipeline.stored is None)  # a stored representation decodes no events
    if streaming is None:
        streaming = is_remote(url)
    if not streaming:
        return CacheDataset(pipeline)
    return StreamingDataset(
        pipeline,
        shuffle=shuffle,
        seed=seed,
        block_samples=block_samples,
        shuffle_buffer=shuffle_buffer,
        prefetch=prefetch,
        rank=rank,
        world_size=world_size,
    )


__all__ = [
    "CacheDataset",
    "EventBatch",
    "LengthBucketBatchSampler",
    "SamplePipeline",
    "SplitSource",
    "StreamingDataset",
    "load",
    "pad_events",
    "stack_dense",
    "stack_time_major",
]
