"""The boundary of the collate functions' fast path: what a batch still in the cache offers them.

A batch the DataLoader hands to :func:`.collate.pad_events` or :func:`.collate.stack_dense` is a
sequence of ``(input, target)`` pairs; the plain path collates those. A batch that also satisfies
:class:`EventRowsFiller` (:class:`.pending.PendingEvents`) or :class:`StackFiller`
(:class:`.pending.PendingFrames`) instead writes each sample straight into its slot of the batch's
tensors, and the collate functions take that path: same output, no per-sample arrays. Any class
with these methods takes it too (the protocols are checked structurally, at run time).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class BatchFiller(Protocol):
    """A batch of samples not yet read."""

    def __len__(self) -> int:
        """Samples in the batch."""
        ...

    def targets(self) -> list[Any]:
        """Each sample's target (its label through the loader's ``target_transform``)."""
        ...


@runtime_checkable
class EventRowsFiller(BatchFiller, Protocol):
    """Event samples that write themselves into padded ``[B, L]`` columns (for :func:`.collate.pad_events`)."""

    def lengths(self) -> np.ndarray:
        """Events per sample (int64 ``[B]``)."""
        ...

    def fill_rows(self, columns: dict[str, np.ndarray]) -> int:
        """Sample ``b``'s events into row ``b`` of the ``t``, ``x``, ``y``, ``p`` columns (each row at
        least as long as its sample; the padding is the caller's); returns the largest coordinate."""
        ...


@runtime_checkable
class StackFiller(BatchFiller, Protocol):
    """Equal-shape samples that write themselves into a stacked array (for :func:`.collate.stack_dense`)."""

    @property
    def shape(self) -> tuple[int, ...]:
        """One sample's shape."""
        ...

    @property
    def dtype(self) -> np.dtype:
        """The dtype samples are returned in."""
        ...

    def fill_stacked(self, out: np.ndarray, axis: int) -> None:
        """Sample ``b`` into ``out``'s index ``b`` along ``axis`` (0: ``[B, ...]``, 1: ``[T, B, ...]``)."""
        ...
