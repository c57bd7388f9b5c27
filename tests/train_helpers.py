"""A tiny spiking classifier and a tiny rate-coded data set for the trainer tests (fast on CPU)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import snn
from snn import layers

N_IN, N_CLASSES, STEPS = 24, 4, 6


def rate_coded(n: int, seed: int) -> TensorDataset:
    """``n`` samples ``[T, N_IN]`` of Bernoulli spikes: class ``c`` fires its 6 inputs at 60%, the rest at 10%."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % N_CLASSES
    rates = torch.full((n, N_IN), 0.1)
    for c in range(N_CLASSES):
        rates[labels == c, c * 6 : (c + 1) * 6] = 0.6
    spikes = (torch.rand(n, STEPS, N_IN, generator=g) < rates[:, None, :]).float()
    return TensorDataset(spikes, labels)


def loaders(batch_size: int = 16, shuffle: bool = True, n_train: int = 96, n_val: int = 48):
    train = DataLoader(rate_coded(n_train, 1), batch_size=batch_size, shuffle=shuffle)
    val = DataLoader(rate_coded(n_val, 2), batch_size=batch_size)
    return train, val


class TinyNet(nn.Module):
    """Linear-LIF-(dropout)-Linear readout: outputs ``[T, B, N_CLASSES]`` (spiking output with ``spiking_out``).

    Neurons use the reference torch backend: the fused CPU path compiles with ``torch.compile`` on
    first use, which takes longer than these tests.
    """

    def __init__(
        self, hidden: int = 32, dropout: float = 0.0, seed: int = 0, spiking_out: bool = False
    ) -> None:
        super().__init__()
        torch.manual_seed(seed)
        head = [snn.LIF(tau=2.0, v_threshold=0.5, backend="torch")] if spiking_out else []
        self.body = nn.Sequential(
            layers.Linear(N_IN, hidden),
            snn.LIF(tau=2.0, backend="torch"),
            layers.Dropout(dropout),
            layers.Linear(hidden, N_CLASSES),
            *head,
        )

    def forward(self, x):
        return self.body(x)
