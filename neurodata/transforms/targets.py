"""Tonic's array-form transforms: casts for DataLoaders and target encodings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib import recfunctions


@dataclass(frozen=True)
class NumpyAsType:
    """Cast to ``dtype``: a structured event array becomes a plain ``[N, fields]`` array (which
    PyTorch's default collate accepts), a plain array a structured one when ``dtype`` has fields,
    and a plain array is cast with ``astype``."""

    dtype: object

    def __call__(self, events):
        dtype = np.dtype(self.dtype)
        structured_in = isinstance(events, np.ndarray) and events.dtype.names is not None
        if structured_in and dtype.names is None:
            return recfunctions.structured_to_unstructured(events, dtype)
        if structured_in:
            raise ValueError("NumpyAsType casts between structured and plain arrays, not structured to structured")
        if dtype.names is not None:
            return recfunctions.unstructured_to_structured(np.asarray(events), dtype)
        return np.asarray(events).astype(dtype)


@dataclass(frozen=True)
class ToOneHotEncoding:
    """An integer class label (or array of labels) -> one-hot float64 rows of ``n_classes``."""

    n_classes: int

    def __call__(self, target):
        target = np.asarray(target)
        if target.size and (target.min() < 0 or target.max() >= self.n_classes):
            raise ValueError(f"label {target.max() if target.max() >= self.n_classes else target.min()} "
                             f"is outside 0..{self.n_classes - 1}")
        return np.eye(self.n_classes)[target]


@dataclass(frozen=True)
class Repeat:
    """Repeat a target ``n_repeat`` times along a new first axis (a label per time step):
    ``[n]`` -> ``[n_repeat, n]``, a scalar -> ``[n_repeat, 1]``."""

    n_repeat: int

    def __call__(self, target):
        return np.tile(np.expand_dims(target, 0), [self.n_repeat, 1])
