"""Optimizer and per-epoch learning-rate schedule built from a :class:`TrainConfig`."""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .config import TrainConfig


def lr_factor(epoch: int, config: TrainConfig) -> float:
    """Multiplier of ``config.lr`` during ``epoch`` (0-based): linear warm-up, then the schedule."""
    warm = config.warmup_epochs
    if epoch < warm:
        return (epoch + 1) / (warm + 1)
    if config.schedule == "cosine":
        span = config.epochs - warm
        return 0.5 * (1.0 + math.cos(math.pi * (epoch - warm) / span))
    if config.schedule == "step":
        return config.gamma ** ((epoch - warm) // config.step_size)
    return 1.0


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """``config.optimizer`` over the trainable parameters of ``model``, with the config's
    learning rate, weight decay and (SGD) momentum."""
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer(params, lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler of ``optimizer``'s learning rate following ``config.schedule``, stepped once per
    epoch (its state is just the epoch counter, so resuming is exact)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(lr_factor, config=config))
