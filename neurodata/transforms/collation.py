"""``PadTensors``: Tonic's collate for frames of different lengths (``tonic.collation.PadTensors``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

STRUCTURED_HINT = (
    "sample {index} is a structured event array, which torch cannot collate; collate events with "
    "neurodata.loaders.pad_events, or turn them into frames (ToFrame) or a plain array "
    "(NumpyAsType(int)) first"
)


def _tensor(value: Any, index: int):
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray) and value.dtype.names is not None:
        raise TypeError(STRUCTURED_HINT.format(index=index))
    if isinstance(value, dict):
        raise TypeError(STRUCTURED_HINT.format(index=index).replace("a structured event array", "a dict of event columns"))
    return torch.as_tensor(np.asarray(value))


class PadTensors:
    """Collate ``(frames, target)`` samples whose frames differ in length along the first axis: each
    is zero-padded (sparse tensors resized) to the longest, then stacked on a new batch axis (first
    when ``batch_first``, else second). Targets are stacked the same way when they are arrays, else
    gathered in one tensor. Structured event arrays raise a TypeError that says what to do instead.

    Parameters:
        batch_first: put the batch axis first (``[B, T, ...]``) rather than second (``[T, B, ...]``).
    """

    def __init__(self, batch_first: bool = True):
        self.batch_first = batch_first

    def __call__(self, batch: Sequence[tuple[Any, Any]]):
        import torch

        samples = [_tensor(sample, i) for i, (sample, _) in enumerate(batch)]
        targets = [torch.as_tensor(np.asarray(t)) if not isinstance(t, torch.Tensor) else t for _, t in batch]
        longest = max(s.shape[0] for s in samples)
        padded = []
        for sample in samples:
            if sample.is_sparse:
                sample = torch.sparse_coo_tensor(
                    sample._indices(), sample._values(), (longest, *sample.shape[1:]), check_invariants=False
                ).coalesce()  # the indices come from a valid tensor of a smaller size
            elif sample.shape[0] < longest:
                filler = sample.new_zeros((longest - sample.shape[0], *sample.shape[1:]))
                sample = torch.cat([sample, filler])
            padded.append(sample)
        axis = 0 if self.batch_first else 1
        stacked = torch.stack(padded, axis)
        if targets[0].dim() > 0:
            return stacked, torch.stack(targets, 0 if self.batch_first else -1)
        return stacked, torch.stack(targets)
