"""What a loader does to each sample: read it (events, or a stored representation), transform it.

Order per sample: ``transform(events)`` (event augmentations), then ``representation(events)``,
then ``target_transform(label)``. When the representation is precomputed in the cache and no event
``transform`` is given, the stored array is read instead of the events (same values, no compute).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .precomputed import PrecomputedSource
from .representation import representation_spec, resolve_representation, spec_key
from .source import SplitSource, naming_samples


def choose_precomputed(
    source: SplitSource, representation: Callable | None, transform: Callable | None, precomputed: bool | str
) -> PrecomputedSource | None:
    """The stored representation of ``source`` to read for ``representation``, per the
    ``precomputed`` policy ``"auto"``, True or False; None when computing (always with a
    ``transform``, which the stored copy lacks)."""
    if precomputed not in ("auto", True, False):
        raise ValueError(f"precomputed must be 'auto', True or False, got {precomputed!r}")
    if precomputed is False or representation is None:
        return None
    spec = representation_spec(representation)
    if spec is None or transform is not None:
        if precomputed is True:
            raise ValueError(
                "precomputed=True needs a representation with a spec (a neurodata.transforms object) "
                "and no event transform (the stored frames were computed from untransformed events)"
            )
        return None
    found = PrecomputedSource.find(source, spec_key(spec))
    if found is None and precomputed is True:
        raise FileNotFoundError(
            f"{source.url}: split {source.split!r} has no precomputed {spec_key(spec)}; "
            f"run `neurodata frames {source.url} --spec ...` or neurodata.loaders.precompute()"
        )
    return found


class SamplePipeline:
    """Reads samples of one split and turns them into ``(input, target)`` pairs; picklable.

    ``source``, ``representation``, ``transform``, ``target_transform`` and ``precomputed`` are
    :func:`neurodata.loaders.load`'s (``source`` is the opened split).
    """

    def __init__(
        self,
        source: SplitSource,
        representation: Any = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        precomputed: bool | str = "auto",
    ):
        self.source = source
        self.representation = resolve_representation(representation, source.sensor_size)
        self.transform = transform
        self.target_transform = target_transform
        self.stored = choose_precomputed(source, self.representation, transform, precomputed)

    def __len__(self) -> int:
        return self.source.n_samples

    def read(self, start: int, stop: int) -> list[tuple[np.ndarray, int]]:
        """Raw samples ``start:stop`` in one read: events, or stored representations (a CacheError
        names the samples)."""
        labels = self.source.reader.labels[start:stop]
        with naming_samples(start, stop):
            raw = self.stored.read(start, stop) if self.stored is not None else self.source.samples(start, stop)
        return list(zip(raw, labels.tolist()))

    def finish(self, raw: np.ndarray, label: int) -> tuple[Any, Any]:
        """A ``raw`` sample and its ``label`` -> ``(input, target)`` through transform,
        representation, target_transform."""
        if self.stored is None:
            if self.transform is not None:
                raw = self.transform(raw)
            if self.representation is not None:
                raw = self.representation(raw)
        return raw, self.target(label)

    def target(self, label: int) -> Any:
        """A label through ``target_transform``."""
        return self.target_transform(label) if self.target_transform is not None else label

    @property
    def raw_events(self) -> bool:
        """Whether items are the cache's events as stored (no representation, no event transform)."""
        return self.stored is None and self.transform is None and self.representation is None

    def item(self, index: int) -> tuple[Any, Any]:
        """``(input, target)`` of sample ``index`` (negative counts from the end); IndexError
        naming the cache and split when out of range."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(
                f"{self.source.url}: sample {index} out of range for split {self.source.split!r} of {n}"
            )
        index %= n
        ((raw, label),) = self.read(index, index + 1)
        return self.finish(raw, label)


def consecutive_runs(indices: list[int]) -> list[tuple[int, int]]:
    """``[3, 4, 5, 9, 2]`` -> ``[(3, 6), (9, 10), (2, 3)]``: runs of consecutive indices, in order."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def read_items(pipeline: SamplePipeline, indices: list[int]) -> list[tuple[Any, Any]]:
    """Items ``indices`` (each in range) of ``pipeline`` in order; consecutive indices are fetched
    in one read."""
    return [
        pipeline.finish(raw, label)
        for start, stop in consecutive_runs(indices)
        for raw, label in pipeline.read(start, stop)
    ]
