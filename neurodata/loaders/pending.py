"""A batch's samples as the DataLoader hands them to the collate function, not yet read.

:meth:`.dataset.CacheDataset.__getitems__` returns :class:`PendingEvents` when items are raw events
(no representation, no event transform) of a cache the fused reader handles (:mod:`.event_columns`),
and :class:`PendingFrames` when they are a precomputed representation read directly from its shards.
Both are read-only sequences of ``(input, target)``, read on first access, so any collate function
works on them. They also implement the filler protocols of :mod:`.fillers` (``EventRowsFiller``,
``StackFiller``), through which :func:`.collate.pad_events` and :func:`.collate.stack_dense` have
them decode every sample straight into its slot of the batch: no per-sample arrays and no second
copy; in the main process the samples decode side by side (see :mod:`.decode_pool`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..cache.shard_reader import fetch_spans
from .decode_pool import decode_map
from .pipeline import SamplePipeline, read_items
from .source import naming_samples


class PendingItems(Sequence):
    """Items ``indices`` of a pipeline, read when first needed."""

    def __init__(self, pipeline: SamplePipeline, indices: Sequence[int]):
        self.pipeline = pipeline
        self.indices = [int(i) for i in indices]
        self._items: list[tuple[Any, Any]] | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k):  # type: ignore[override]
        if self._items is None:
            self._items = read_items(self.pipeline, self.indices)
        return self._items[k]

    def targets(self) -> list[Any]:
        """The items' targets (labels through the pipeline's ``target_transform``)."""
        labels = self.pipeline.source.reader.labels[self.indices].tolist()
        return [self.pipeline.target(label) for label in labels]

    def _each_row(self, fill: Callable[[int], Any]) -> list[Any]:
        """``fill(row)`` for every row of the batch, side by side where threads are free (the
        longest samples first, so the threads finish together)."""
        order = sorted(range(len(self.indices)), key=self._size, reverse=True)
        results: list[Any] = [None] * len(order)
        for row, result in zip(order, decode_map(fill, order)):
            results[row] = result
        return results

    def _size(self, row: int) -> int:
        """How much work sample ``row`` is, for ordering (all equal unless a subclass knows)."""
        return 0


class PendingEvents(PendingItems):
    """Raw event samples, an :class:`.fillers.EventRowsFiller`: :func:`.collate.pad_events` decodes
    them into the padded batch."""

    def _size(self, row: int) -> int:
        offsets = self.pipeline.source.reader.offsets
        i = self.indices[row]
        return int(offsets[i + 1] - offsets[i])

    def lengths(self) -> np.ndarray:
        """Events per sample (int64)."""
        offsets = self.pipeline.source.reader.offsets
        index = np.asarray(self.indices, dtype=np.int64)
        return offsets[index + 1] - offsets[index]

    def fill_rows(self, columns: dict[str, np.ndarray]) -> int:
        """Each sample's events into row ``b`` of the padded ``t, x, y, p`` columns (``[B, L]``, at
        least as long as each sample); returns the largest coordinate seen."""
        reader = self.pipeline.source.columns
        fields = [columns[name] for name in ("t", "x", "y", "p")]
        ranges = self.pipeline.source.reader.sample_spans(self.indices)
        # a remote store answers the whole batch's requests in one round trip; local reads stay
        # on the decode threads, beside the decoding
        chunks = reader.fetch(ranges) if reader.fetcher.one_round else [None] * len(ranges)

        def fill(row: int) -> int:
            first, last = ranges[row]
            with naming_samples(self.indices[row], self.indices[row] + 1):
                return reader.read_row(first, last, [column[row] for column in fields], chunks[row])

        return max(self._each_row(fill), default=0)


class PendingFrames(PendingItems):
    """Stored representations (one chunk per sample), a :class:`.fillers.StackFiller`:
    :func:`.collate.stack_dense` decodes them into the stacked batch."""

    @property
    def shape(self) -> tuple[int, ...]:
        """One stored sample's shape."""
        return self.pipeline.stored.shape

    @property
    def dtype(self) -> np.dtype:
        """The stored dtype."""
        return self.pipeline.stored.dtype

    def fill_stacked(self, out: np.ndarray, axis: int) -> None:
        """Sample ``b`` into ``out``'s index ``b`` along ``axis`` (0: ``[B, ...]``, 1: ``[T, B, ...]``),
        widened from the stored dtype to ``out``'s; the batch's chunks are fetched in one round."""
        fetcher, rows = self.pipeline.stored.array
        blobs = fetch_spans(fetcher, [(rows, i, i + 1) for i in self.indices])

        def fill(row: int) -> None:
            slot = out[row] if axis == 0 else out[:, row]
            i = self.indices[row]
            with naming_samples(i, i + 1):
                rows.assemble(i, i + 1, blobs[row], out=slot[None])

        self._each_row(fill)
