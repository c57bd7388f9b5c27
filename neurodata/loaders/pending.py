"""A batch of raw event samples as the DataLoader hands it to the collate function, not yet decoded.

:meth:`.dataset.CacheDataset.__getitems__` returns :class:`PendingEvents` when items are raw events
(no representation, no event transform) of a cache the fused reader handles (:mod:`.event_columns`).
It is a read-only sequence of ``(events, label)``, decoded on first access, so any collate function
works on it. :func:`.collate.pad_events` instead has it decode every sample straight into the
batch's padded ``[B, L]`` columns: no per-sample record arrays and no second copy; in the main
process the samples decode side by side (see :mod:`.decode_pool`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .decode_pool import decode_pool, decode_threads
from .pipeline import SamplePipeline, read_items


class PendingEvents(Sequence):
    """Samples ``indices`` of a pipeline whose items are raw events (see the module docstring)."""

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

    def lengths(self) -> np.ndarray:
        """Events per sample (int64)."""
        offsets = self.pipeline.source.reader.offsets
        index = np.asarray(self.indices, dtype=np.int64)
        return offsets[index + 1] - offsets[index]

    def targets(self) -> list[Any]:
        labels = self.pipeline.source.reader.labels[self.indices].tolist()
        return [self.pipeline.target(label) for label in labels]

    def fill_rows(self, columns: dict[str, np.ndarray]) -> int:
        """Each sample's events into row ``b`` of the padded ``t, x, y, p`` columns (``[B, L]``, at
        least as long as each sample); returns the largest coordinate seen."""
        reader = self.pipeline.source.columns
        offsets = self.pipeline.source.reader.offsets
        fields = [columns[name] for name in ("t", "x", "y", "p")]

        def fill(row: int) -> int:
            i = self.indices[row]
            return reader.read_row(int(offsets[i]), int(offsets[i + 1]), [column[row] for column in fields])

        threads = decode_threads(len(self.indices))
        if threads == 1:
            return max(map(fill, range(len(self.indices))), default=0)
        return max(decode_pool(threads).map(fill, range(len(self.indices))), default=0)
