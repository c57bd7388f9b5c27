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

from .collate import (
    EventBatch,
    LengthBucketBatchSampler,
    StackedBatch,
    TimeMajorBatch,
    pad_events,
    stack_dense,
    stack_time_major,
)
from .dataset import CacheDataset
from .pipeline import SamplePipeline
from .source import SplitSource, is_remote, resolve_store
from .stream import StreamingDataset, StreamingOptions


def load(
    name_or_store: str | os.PathLike,
    split: str = "train",
    representation: Any = None,
    transform: Callable | None = None,
    target_transform: Callable | None = None,
    *,
    streaming: bool | StreamingOptions | None = None,
    storage_options: dict[str, Any] | None = None,
    root: str | os.PathLike | None = None,
    precomputed: bool | str = "auto",
    **streaming_keywords: Any,
) -> CacheDataset | StreamingDataset:
    """A PyTorch dataset of ``(input, target)`` pairs from one split of a neurodata cache.

    Args:
        name_or_store: A dataset name (``"dvs128"`` -> ``<NEURODATA_HOME>/dvs128.zarr``, or under
            ``root``), a path, or an fsspec URL (``s3://bucket/dvs128.zarr``).
        split: The split to read (``"train"``, ``"test"``, ...).
        representation: With None an input is the sample's events (structured
            :data:`~neurodata.events.EVENT_DTYPE` array); else a :mod:`neurodata.transforms`
            object, a spec dict or any callable (a missing sensor size comes from the cache).
        transform: Acts on events before the representation.
        target_transform: Acts on each target (the integer label) before it is returned.
        streaming: Default (None) True for remote URLs: return a :class:`StreamingDataset`. A
            :class:`StreamingOptions` passed here configures it (and implies streaming).
        storage_options: fsspec options for a URL (credentials, endpoints).
        root: Directory that dataset names resolve under instead of ``NEURODATA_HOME``.
        precomputed: A representation precomputed in the cache is read instead of computed:
            ``"auto"`` uses it when it matches, True requires it, False ignores it.
        **streaming_keywords: :class:`StreamingOptions` fields as keywords: ``shuffle``,
            ``seed``, ``block_samples``, ``shuffle_buffer``, ``prefetch``, ``rank``,
            ``world_size``.

    Returns:
        A map-style :class:`CacheDataset` (its sampler decides the order), or a
        :class:`StreamingDataset` when streaming. Each item is ``(input, target)``: the events or
        the representation's output, and the label (after ``target_transform``).

    Raises:
        ValueError: Streaming keywords were passed where ``load`` returns a :class:`CacheDataset`
            (the message names them).
    """
    options = streaming if isinstance(streaming, StreamingOptions) else None
    options = StreamingOptions.resolve(options, streaming_keywords, "load()")  # before any I/O
    url = resolve_store(name_or_store, root)
    why = "streaming=False" if streaming is not None else "a local store, streaming not asked for"
    if streaming is None:
        streaming = is_remote(url)
    if not streaming and streaming_keywords:
        raise ValueError(
            f"load(): {', '.join(sorted(streaming_keywords))} apply only to a streaming dataset, and "
            f"{url} loads as a map-style CacheDataset ({why}; its sampler decides the order): pass "
            "streaming=True to stream it, or leave them out"
        )
    source = SplitSource(url, split, storage_options)
    pipeline = SamplePipeline(source, representation, transform, target_transform, precomputed)
    source.warm(events=pipeline.stored is None)  # a stored representation decodes no events
    return StreamingDataset(pipeline, options) if streaming else CacheDataset(pipeline)


__all__ = [
    "CacheDataset",
    "EventBatch",
    "LengthBucketBatchSampler",
    "SamplePipeline",
    "SplitSource",
    "StackedBatch",
    "StreamingDataset",
    "StreamingOptions",
    "TimeMajorBatch",
    "load",
    "pad_events",
    "stack_dense",
    "stack_time_major",
]
