"""The map-style dataset over one cache split: random access for samplers (``DistributedSampler``,
length bucketing), batched reads through ``__getitems__``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from . import shm_pool
from .pending import PendingEvents, PendingFrames
from .pipeline import SamplePipeline, read_items


class SplitInfo:
    """Facts about the split that both dataset kinds expose (``self.pipeline`` is their SamplePipeline)."""

    pipeline: SamplePipeline

    @property
    def labels(self) -> np.ndarray:
        """The label of every sample of the split."""
        return self.pipeline.source.reader.labels

    @property
    def lengths(self) -> np.ndarray:
        """Events per sample, for length bucketing."""
        return self.pipeline.source.lengths

    @property
    def sensor_size(self) -> tuple[int, int, int] | None:
        """Tonic-style ``(width, height, polarities)`` from the cache, or None when unknown."""
        return self.pipeline.source.sensor_size

    @property
    def class_names(self) -> list[str] | None:
        """The class names recorded in the cache (label ``i`` is ``class_names[i]``), or None."""
        return self.pipeline.source.attrs.get("class_names")

    @property
    def precomputed(self) -> bool:
        """Whether samples are read from a stored representation rather than computed from events."""
        return self.pipeline.stored is not None


class CacheDataset(SplitInfo, Dataset):
    """``dataset[i]`` -> ``(input, target)`` of sample ``i`` of one split, as ``pipeline`` (a
    :class:`.pipeline.SamplePipeline`) makes it; what :func:`neurodata.loaders.load` returns for a
    local cache."""

    def __init__(self, pipeline: SamplePipeline):
        self.pipeline = pipeline
        shm_pool.register_user(self)  # the batch memory it is collated into goes when it does

    def __len__(self) -> int:
        return len(self.pipeline)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.pipeline.item(int(index))

    def __getitems__(self, indices: list[int]) -> Sequence[tuple[Any, Any]]:
        """A batch's samples (the DataLoader calls this): raw events from the fused reader and stored
        representations read from their shards come pending (:mod:`.pending`), for
        :func:`.collate.pad_events` / :func:`.collate.stack_dense` to decode straight into the
        batch; otherwise a list, consecutive indices fetched in one read."""
        n = len(self)
        if any(not 0 <= i < n for i in indices):
            return [self[i] for i in indices]  # negative indices and the IndexError message
        if self.pipeline.raw_events and self.pipeline.source.columns is not None:
            return PendingEvents(self.pipeline, indices)
        if self.pipeline.stored is not None and self.pipeline.stored.direct:
            return PendingFrames(self.pipeline, indices)
        return read_items(self.pipeline, list(indices))

    def __repr__(self) -> str:
        return f"CacheDataset({self.pipeline.source!r}, precomputed={self.pipeline.stored is not None})"
