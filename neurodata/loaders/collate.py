"""Batching variable-length event samples and dense representations, plus a length-bucketing sampler.

* :func:`pad_events`: ``(events, label)`` samples -> :class:`EventBatch` of ``[B, L]`` tensors padded
  to the batch's longest sample, with a boolean ``mask`` of real events.
* :func:`stack_dense` / :func:`stack_time_major`: equal-shape arrays (frames ``[T, P, H, W]``) ->
  ``[B, T, ...]`` or ``[T, B, ...]`` (the layout the SNN trainer steps through).
* :class:`LengthBucketBatchSampler`: batches of similar length, so padding wastes little.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Sampler


class EventBatch(NamedTuple):
    """Padded events: ``t`` int64, ``x``/``y`` int32, ``p`` uint8, ``mask`` bool (all ``[B, L]``),
    ``lengths`` int64 ``[B]``, ``labels`` ``[B]``. Padding is zero with ``mask`` False."""

    t: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    p: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor

    def pin_memory(self) -> EventBatch:
        """Called by ``DataLoader(pin_memory=True)``."""
        return EventBatch(*(tensor.pin_memory() for tensor in self))

    def to(self, *args: Any, **kwargs: Any) -> EventBatch:
        return EventBatch(*(tensor.to(*args, **kwargs) for tensor in self))


FIELD_DTYPES = {"t": np.int64, "x": np.int32, "y": np.int32, "p": np.uint8}


def _labels(labels: Sequence[Any]) -> torch.Tensor | list:
    """Labels as a tensor when they are numbers or tensors, else left as a list."""
    first = labels[0] if len(labels) else 0
    if isinstance(first, torch.Tensor):
        return torch.stack(list(labels))
    if isinstance(first, (int, float, np.integer, np.floating, np.ndarray)):
        return torch.as_tensor(np.asarray(labels))
    return list(labels)


def pad_events(batch: Sequence[tuple[Any, Any]]) -> EventBatch:
    """Collate ``(events, label)`` samples by padding each event field to the longest sample.

    ``events`` is a structured array or any mapping with ``t``, ``x``, ``y``, ``p`` columns
    (Tonic's and SpikingJelly's sample forms).
    """
    lengths = np.array([len(events["t"]) for events, _ in batch], dtype=np.int64)
    width = int(lengths.max(initial=0))
    columns = {name: np.zeros((len(batch), width), dtype=dtype) for name, dtype in FIELD_DTYPES.items()}
    mask = np.arange(width)[None, :] < lengths[:, None]
    for row, (events, _) in enumerate(batch):
        n = lengths[row]
        for name, column in columns.items():
            column[row, :n] = events[name]
    tensors = [torch.from_numpy(columns[name]) for name in FIELD_DTYPES]
    labels = _labels([label for _, label in batch])
    return EventBatch(*tensors, torch.from_numpy(mask), torch.from_numpy(lengths), labels)


def stack_dense(batch: Sequence[tuple[Any, Any]], time_major: bool = False) -> tuple[torch.Tensor, Any]:
    """Collate equal-shape inputs into ``[B, T, ...]`` (``time_major``: ``[T, B, ...]``) and labels ``[B]``.

    numpy inputs are stacked by numpy (several times faster than ``torch.stack`` on CPU for frames).
    """
    inputs = [x for x, _ in batch]
    shapes = {tuple(x.shape) for x in inputs}
    if len(shapes) > 1:
        raise ValueError(
            f"stack_dense needs equal shapes, got {sorted(shapes)}; use a fixed number of bins "
            "(n_time_bins, n_event_bins) or pad_events for raw events"
        )
    axis = 1 if time_major else 0
    if all(isinstance(x, np.ndarray) for x in inputs):
        stacked = torch.from_numpy(np.stack(inputs, axis=axis))
    else:
        stacked = torch.stack([torch.as_tensor(x) for x in inputs], dim=axis)
    return stacked, _labels([label for _, label in batch])


def stack_time_major(batch: Sequence[tuple[Any, Any]]) -> tuple[torch.Tensor, Any]:
    """:func:`stack_dense` with ``time_major=True``: ``[T, B, ...]`` for the SNN trainer."""
    return stack_dense(batch, time_major=True)


def length_buckets(
    lengths: np.ndarray,
    batch_size: int,
    bucket_batches: int,
    rng: np.random.Generator | None,
    drop_last: bool,
) -> list[np.ndarray]:
    """Batches of indices with similar lengths: shuffle, cut into buckets of ``bucket_batches`` batches,
    sort each bucket by length, cut it into batches, then shuffle the batches (no shuffling without ``rng``)."""
    order = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    bucket = batch_size * bucket_batches
    batches = []
    for start in range(0, len(order), bucket):
        members = order[start : start + bucket]
        members = members[np.argsort(lengths[members], kind="stable")]
        batches += [members[i : i + batch_size] for i in range(0, len(members), batch_size)]
    if drop_last:
        batches = [b for b in batches if len(b) == batch_size]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batch sampler grouping samples of similar event count (pass ``dataset.lengths``).

    Deterministic from ``seed`` and :meth:`set_epoch`; with ``num_replicas``/``rank`` each rank takes
    every ``num_replicas``-th batch (the last ``len % num_replicas`` batches are dropped so ranks
    run the same number of steps).
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        *,
        bucket_batches: int = 50,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.bucket_batches = bucket_batches
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch]) if self.shuffle else None
        batches = length_buckets(self.lengths, self.batch_size, self.bucket_batches, rng, self.drop_last)
        usable = len(batches) - len(batches) % self.num_replicas
        return batches[self.rank : usable : self.num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        return (batch.tolist() for batch in self._batches())

    def __len__(self) -> int:
        return len(self._batches())
