"""Readout and losses: a spiking model's per-step output to class scores, and the training loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

READOUTS = ("mean", "none")


def readout(output: torch.Tensor, mode: str, n_labels: int) -> torch.Tensor:
    """Class scores ``[B, C]`` from a model's output for a batch of ``n_labels`` samples.

    ``mode="mean"``: the output must be per-step ``[T, B, C]`` (the convention of every ``snn``
    network) and is averaged over time; ``"none"``: the output must already be ``[B, C]``. Any
    other shape is an error naming ``TrainConfig.readout``: nothing is transposed by guessing.
    """
    if mode == "mean":
        if output.ndim == 3 and output.shape[1] == n_labels:
            return output.float().mean(0)
        expected = f"per-step [T, B={n_labels}, C]"
        fix = "return [T, B, C] (zoo models: readout='sequence', the default) or set TrainConfig.readout='none'"
    elif mode == "none":
        if output.ndim == 2 and output.shape[0] == n_labels:
            return output.float()
        expected = f"class scores [B={n_labels}, C]"
        fix = "return [B, C] or set TrainConfig.readout='mean' for a per-step [T, B, C] output"
    else:
        raise ValueError(f"unknown readout {mode!r}; choose one of {READOUTS}")
    raise ValueError(
        f"fit: TrainConfig.readout={mode!r} expects the model to return {expected}, "
        f"got shape {tuple(output.shape)}; {fix}"
    )


def loss_fn(name: str, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss ``name`` of ``scores`` [B, C] against ``target`` [B] class indices: ``"ce"``:
    cross-entropy with the scores as logits; ``"mse"``: MSE of the scores to one-hot targets."""
    if name == "ce":
        return F.cross_entropy(scores, target)
    if name == "mse":
        return F.mse_loss(scores, F.one_hot(target, scores.shape[1]).to(scores.dtype))
    raise ValueError(f"unknown loss {name!r}")
