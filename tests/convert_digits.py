"""scikit-learn's digits (1797 real 8x8 handwritten digits) and the small ANNs the conversion evidence trains on
them: an MLP with BatchNorm1d and a CNN with BatchNorm2d and average pooling, ReLU or QCFS activations.
Shared by tests/test_convert_digits.py and benchmarks/bench_convert.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from snn.convert import QCFS


class Digits(NamedTuple):
    """A seeded split: 1347 training and 450 test images ``[N, 1, 8, 8]`` in [0, 1], labels ``[N]``."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def test_batches(self, size: int = 150) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(zip(self.test_x.split(size), self.test_y.split(size)))


def load_digits(seed: int = 0) -> Digits:
    from sklearn.datasets import load_digits as sklearn_digits

    data = sklearn_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train, test = order[:1347], order[1347:]
    return Digits(x[train], y[train], x[test], y[test])


def activation(kind: str) -> Callable[[], nn.Module]:
    """``"relu"`` or ``"qcfs"`` (8 levels)."""
    return nn.ReLU if kind == "relu" else (lambda: QCFS(levels=8))


def mlp(kind: str) -> nn.Module:
    act = activation(kind)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 96), nn.BatchNorm1d(96), act(), nn.Dropout(0.1),
        nn.Linear(96, 64), nn.BatchNorm1d(64), act(), nn.Linear(64, 10),
    )  # fmt: skip


def cnn(kind: str) -> nn.Module:
    act = activation(kind)
    return nn.Sequential(
        nn.Conv2d(1, 12, 3, padding=1), nn.BatchNorm2d(12), act(), nn.AvgPool2d(2),
        nn.Conv2d(12, 24, 3, padding=1), nn.BatchNorm2d(24), act(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(96, 10),
    )  # fmt: skip


MODELS = {"mlp": mlp, "cnn": cnn}


def train(model: nn.Module, digits: Digits, epochs: int = 20, seed: int = 0) -> nn.Module:
    """Adam, batch 64, seeded; returns ``model`` in eval mode."""
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for index in torch.randperm(len(digits.train_x), generator=generator).split(64):
            optimizer.zero_grad()
            F.cross_entropy(model(digits.train_x[index]), digits.train_y[index]).backward()
            optimizer.step()
    return model.eval()


def accuracy(model: nn.Module, digits: Digits) -> float:
    with torch.no_grad():
        return float((model(digits.test_x).argmax(1) == digits.test_y).float().mean())
