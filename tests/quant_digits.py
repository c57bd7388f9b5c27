"""scikit-learn's digits (1797 real 8x8 handwritten digits) for the quantization tests and report.

Pixels (0..16) are scaled to [0, 1] and fed as the same analog input at every one of ``STEPS``
time steps; with ``INPUT_SCALE = 1/16`` the quantized input is the original integer pixel.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import snn
from snn import layers

STEPS = 4
INPUT_SCALE = 1 / 16


@dataclass(frozen=True)
class Digits:
    """A seeded split: 1400 training and 397 test images, pixels in [0, 1], shape ``[N, 1, 8, 8]``."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside: these networks are tiny, and threads contending for the cores are slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def load() -> Digits:
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    return Digits(x[:1400], y[:1400], x[1400:], y[1400:])


def sequence(x: torch.Tensor, flat: bool) -> torch.Tensor:
    """``[N, 1, 8, 8]`` images as ``[STEPS, N, ...]`` constant input (flattened for an MLP)."""
    x = x.flatten(1) if flat else x
    return x.unsqueeze(0).expand(STEPS, *x.shape)


def mlp() -> torch.nn.Sequential:
    """64 -> 64 (batch norm, soft-reset LIF) -> 10 analog readout."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        layers.Linear(64, 64), layers.BatchNorm1d(64), snn.LIF(tau=2.0, v_reset=None, backend="torch"),
        layers.Linear(64, 10),
    )


def cnn() -> torch.nn.Sequential:
    """conv 3x3 (batch norm, LIF) -> average pool 2 -> 128 -> 10 analog readout."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        layers.Conv2d(1, 8, 3, padding=1), layers.BatchNorm2d(8), snn.LIF(tau=2.0, backend="torch"),
        layers.AvgPool2d(2), layers.Flatten(), layers.Linear(128, 10),
    )


def fit(model: torch.nn.Module, data: Digits, flat: bool, epochs: int, lr: float) -> torch.nn.Module:
    """Adam on the mean-over-time cross entropy, batches of 64 in a seeded order; returns the model in eval mode."""
    torch.manual_seed(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(data.x_train))
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            loss = F.cross_entropy(model(sequence(data.x_train[batch], flat)).mean(0), data.y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def evaluation_batches(data: Digits, flat: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The test split as ``(x, labels)`` batches of 200."""
    return [
        (sequence(data.x_test[i : i + 200], flat), data.y_test[i : i + 200]) for i in range(0, len(data.x_test), 200)
    ]
