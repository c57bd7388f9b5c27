"""QCFS, the quantization-clip-floor-shift activation (Bu et al., ICLR 2022): a drop-in for ``nn.ReLU``.

``y = lam * clamp(floor(x * L / lam + 1/2) / L, 0, 1)`` with ``L`` levels and a learned clip ``lam``.
The floor passes its gradient straight through, so ``lam`` and the layers before it train as for a
clipped ReLU. An ANN trained with it converts to IF neurons (soft reset, threshold ``lam``, membrane
starting at half the threshold) that match it after a few time steps: :func:`snn.convert.ann_to_snn`
takes the threshold from ``lam`` and needs no calibration for it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["QCFS", "qcfs"]


class _FloorSTE(torch.autograd.Function):
    """``floor`` whose backward is the identity (straight-through estimator)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def qcfs(x: torch.Tensor, lam: torch.Tensor, levels: int) -> torch.Tensor:
    """The QCFS activation of ``x`` with clip ``lam`` (a tensor broadcasting against ``x``) and ``levels`` steps."""
    return lam * torch.clamp(_FloorSTE.apply(x * levels / lam + 0.5) / levels, 0.0, 1.0)


class QCFS(nn.Module):
    """Quantization-clip-floor-shift activation with a learned clip ``lam``.

    Args:
        levels: ``L``, the number of quantization steps (the SNN's accuracy at ``T`` time steps is
            best around ``T >= L``).
        lam: the initial clip value (learned; a threshold of the converted network).
    """

    def __init__(self, levels: int = 8, lam: float = 8.0) -> None:
        super().__init__()
        if int(levels) != levels or levels < 1:
            raise ValueError(f"levels must be a positive integer, got {levels!r}")
        if not lam > 0:
            raise ValueError(f"lam must be > 0, got {lam!r}")
        self.levels = int(levels)
        self.lam = nn.Parameter(torch.tensor(float(lam)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The QCFS activation of ``x`` (see :func:`qcfs`)."""
        return qcfs(x, self.lam, self.levels)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, lam={float(self.lam.detach()):.4g}"
