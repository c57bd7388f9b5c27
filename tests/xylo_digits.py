"""A Xylo-sized network on real data: scikit-learn's digits 0-7, 2x2 sum-pooled to 16 inputs of 0-4 events per step."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import snn
from snn import layers
from tests.quant_digits import load

STEPS = 8


def events() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: ``[N, 16]`` event counts (pixel sums of 2x2 blocks / 16) and labels 0-7."""
    data = load()

    def pick(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = y < 8
        return torch.floor(F.avg_pool2d(x[keep] * 16, 2) / 4).flatten(1), y[keep]

    return (*pick(data.x_train, data.y_train), *pick(data.x_test, data.y_test))


def trained_network(x: torch.Tensor, y: torch.Tensor, epochs: int = 3) -> torch.nn.Sequential:
    """16 -> 64 CubaLIF -> 8 CubaLIF (soft reset, no biases), trained on spike counts over :data:`STEPS` steps."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        layers.Linear(16, 64, bias=False),
        snn.CubaLIF(0.5, 0.75, v_reset=None, backend="torch"),
        layers.Linear(64, 8, bias=False),
        snn.CubaLIF(0.5, 0.75, v_reset=None, backend="torch"),
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            out = net(x[batch].unsqueeze(0).expand(STEPS, -1, -1))
            loss = F.cross_entropy(out.mean(0) * 10, y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval()
