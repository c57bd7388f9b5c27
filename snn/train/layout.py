"""A loader batch -> the model's time-major input ``[T, B, ...]``, by the layout the batch declares
or the one configured; never by guessing from the shape."""

from __future__ import annotations

from typing import Any

import torch


def declared_time_major(batch: Any) -> bool | None:
    """The layout a batch says it has (``neurodata.loaders.StackedBatch`` / ``TimeMajorBatch`` and
    any batch with a boolean ``time_major`` attribute), else None."""
    declared = getattr(batch, "time_major", None)
    return declared if isinstance(declared, bool) else None


def batch_time_major(batch: Any, configured: bool | None) -> bool:
    """Whether ``batch``'s input is ``[T, B, ...]``: as ``configured`` (``TrainConfig.time_major``),
    else as the batch declares.

    Raises ValueError naming ``time_major`` when the configured and the declared layouts differ,
    and when neither says: a shape alone cannot tell ``[B, T, ...]`` from a static
    ``[B, C, H, W]`` batch, so nothing is transposed by guessing.
    """
    declared = declared_time_major(batch)
    if configured is None:
        if declared is None:
            raise ValueError(
                f"fit: the loader's batches ({type(batch).__name__}) do not say which axis is time; "
                "set TrainConfig.time_major=False for [B, T, ...] (PyTorch's default collate of "
                "[T, ...] samples) or True for [T, B, ...], or collate with "
                "neurodata.loaders.stack_time_major / stack_dense, whose batches declare their layout"
            )
        return declared
    if declared is not None and declared != configured:
        raise ValueError(
            f"fit: the batch says time_major={declared} ({type(batch).__name__}) but "
            f"TrainConfig.time_major={configured}; leave TrainConfig.time_major=None to follow the batch"
        )
    return configured


def to_time_major(x: torch.Tensor, time_major: bool, n_labels: int) -> torch.Tensor:
    """The model's ``[T, B, ...]`` input from ``x``, a loader batch (``[B, T, ...]`` unless
    ``time_major``), checked against ``n_labels``, the number of labels, so that a wrong layout
    fails with a message naming ``time_major`` rather than deep inside the model."""
    if x.ndim < 3:
        raise ValueError(
            f"fit: expected a batch of sequences with at least 3 dimensions ([T, B, ...] or [B, T, ...]), "
            f"got shape {tuple(x.shape)}"
        )
    batch_dim = 1 if time_major else 0
    if x.shape[batch_dim] != n_labels:
        layout = "[T, B, ...]" if time_major else "[B, T, ...]"
        other = "[B, T, ...]" if time_major else "[T, B, ...]"
        raise ValueError(
            f"fit: an input batch of shape {tuple(x.shape)} read as {layout} (time_major={time_major}) "
            f"holds {x.shape[batch_dim]} samples but comes with {n_labels} labels; if the loader "
            f"yields {other}, set TrainConfig.time_major={not time_major} or collate with "
            "neurodata.loaders.stack_time_major / stack_dense, whose batches declare their layout"
        )
    return x if time_major else x.transpose(0, 1)
