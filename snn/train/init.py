"""Data-driven initialisation: scale the fully connected layers so their neurons fire from the first step.

PyTorch initialises a ``Linear`` layer for dense inputs (weights uniform in ``±1/sqrt(fan_in)``).
Fed sparse spikes (a few percent of the inputs active per step), its output has a standard deviation
of about ``sqrt(rate / 3)``, a fifth of a threshold of 1: the neurons after it never fire, the
layers after those receive nothing, and a network whose output layer is silent outputs zeros (a
cross-entropy of exactly ``ln(classes)``) that the surrogate gradient moves only slowly. Convolutions
followed by batch normalisation do not need this (the normalisation rescales them).

Batch normalisation has the opposite lag: its running statistics start at mean 0 and variance 1,
while a convolution of sparse spikes has a variance of about 0.01. At the default momentum (0.1)
the running variance needs some 30 steps to come down, and until then an evaluation (which uses
the running statistics) sees outputs several times too small: the layers after the first silent
one never fire on validation data, although they fire in training.

:func:`data_init` fixes both from one batch of training data: it rescales each ``Linear`` layer, in
forward order, so that its output has a standard deviation of twice the following neurons'
threshold (layer-sequential unit variance, Mishkin & Matas 2016, in units of the threshold), then sets
each batch-norm layer's running statistics to those of the batch.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import layers

__all__ = ["data_init"]


@torch.no_grad()
def data_init(model: nn.Module, x: torch.Tensor, target_std: float = 2.0) -> dict[str, float]:
    """Multiply each ``nn.Linear`` weight of ``model`` so its output on ``x`` has standard deviation
    ``target_std``, then set the batch-norm running statistics to those of ``x``; returns
    ``{layer name: factor}`` (a layer whose output is constant on ``x`` keeps factor 1).

    Parameters
    ----------
    model: a network taking ``x``; run in training mode (batch statistics), as it will be trained.
    x: one input batch, e.g. ``[T, B, C, H, W]`` frames from the training set.
    target_std: the output standard deviation to reach, in units of a threshold of 1. The default,
        2, is twice the threshold: a leaky neuron's potential averages its input over about ``tau``
        steps, so at one threshold's spread the output layer of ``dvsgesture-net`` barely fired on
        validation data (dropout off) and at two it did.

    Dropout is off while measuring (the spread evaluation sees; training only adds to it).
    """
    if not target_std > 0:
        raise ValueError(f"data_init: target_std must be > 0, got {target_std}")
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    was_training = model.training
    model.train()
    factors: dict[str, float] = {}
    try:
        for name, layer in linears:
            seen: list[torch.Tensor] = []
            handle = layer.register_forward_hook(lambda m, i, o, seen=seen: seen.append(o.detach().float()))
            try:
                _measure(model, x)
            finally:
                handle.remove()
            std = float(torch.cat([o.flatten() for o in seen]).std()) if seen else 0.0
            factor = target_std / std if std > 0 else 1.0
            layer.weight.mul_(factor)
            factors[name] = factor
        for name, b in model.named_buffers():  # the measurements above must not move the statistics
            b.copy_(buffers[name])
        momenta = [norm.momentum for norm in norms]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average: after one batch, that batch's statistics
        try:
            _measure(model, x)
        finally:
            for norm, momentum in zip(norms, momenta):
                norm.momentum = momentum
    finally:
        model.train(was_training)
    return factors


def _measure(model: nn.Module, x: torch.Tensor) -> None:
    """One forward pass in training mode with dropout off: batch statistics as in training, and
    the spread that evaluation will see (dropout only adds to it in training)."""
    dropouts = [m for m in model.modules() if isinstance(m, (nn.Dropout, layers.Dropout))]
    for dropout in dropouts:
        dropout.eval()
    try:
        model(x)
    finally:
        for dropout in dropouts:
            dropout.train()
