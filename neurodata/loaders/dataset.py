"""The map-style dataset over one cache split: random access for samplers (``DistributedSampler``,
length bucketing), batched reads of consecutive indices through ``__getitems__``."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

from .pipeline import SamplePipeline


def consecutive_runs(indices: list[int]) -> list[tuple[int, int]]:
    """``[3, 4, 5, 9, 2]`` -> ``[(3, 6), (9, 10), (2, 3)]``: runs of consecutive indices, in order."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


class SplitInfo:
    """Facts about the split that both dataset kinds expose (``self.pipeline`` is their SamplePipeline)."""

    pipeline: SamplePipeline

    @property
    def labels(self) -> np.ndarray:
        return self.pipeline.source.reader.labels

    @property
    def lengths(self) -> np.ndarray:
        """Events per sample, for length bucketing."""
        return self.pipeline.source.lengths

    @property
    def sensor_size(self) -> tuple[int, int, int] | None:
        return self.pipeline.source.sensor_size

    @property
    def class_names(self) -> list[str] | None:
        return self.pipeline.source.attrs.get("class_names")

    @property
    def precomputed(self) -> bool:
        """Whether samples are read from a stored representation rather than computed from events."""
        return self.pipeline.stored is not None


class CacheDataset(SplitInfo, Dataset):
    """``dataset[i]`` -> ``(input, target)`` of sample ``i`` of one split (see :class:`.pipeline.SamplePipeline`)."""

    def __init__(self, pipeline: SamplePipeline):
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.pipeline)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.pipeline.item(int(index))

    def __getitems__(self, indices: list[int]) -> list[tuple[Any, Any]]:
        """A batch's samples; consecutive indices are fetched in one read (the DataLoader calls this)."""
        n = len(self)
        if any(not 0 <= i < n for i in indices):
            return [self[i] for i in indices]  # negative indices and the IndexError message
        finish = self.pipeline.finish
        return [
            finish(raw, label)
            for start, stop in consecutive_runs(list(indices))
            for raw, label in self.pipeline.read(start, stop)
        ]

    def __repr__(self) -> str:
        return f"CacheDataset({self.pipeline.source!r}, precomputed={self.pipeline.stored is not None})"
