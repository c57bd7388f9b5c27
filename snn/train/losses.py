"""Readout and losses: a spiking model's output over time to class scores, and the training loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def time_mean(output: torch.Tensor) -> torch.Tensor:
    """Class scores ``[B, C]``: the mean over time of a ``[T, B, C]`` output (``[B, C]`` passes through)."""
    if output.ndim == 3:
        return output.float().mean(0)
    if output.ndim == 2:
        return output.float()
    raise ValueError(f"model output must be [T, B, C] or [B, C], got shape {tuple(output.shape)}")


def loss_fn(name: str, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``"ce"``: cross-entropy with the scores as logits; ``"mse"``: MSE of the scores to one-hot targets."""
    if name == "ce":
        return F.cross_entropy(scores, target)
    if name == "mse":
        return F.mse_loss(scores, F.one_hot(target, scores.shape[1]).to(scores.dtype))
    raise ValueError(f"unknown loss {name!r}")

