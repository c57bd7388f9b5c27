"""Non-spiking neurons whose output is the membrane potential: the leaky integrator and the integrator.

NIR's ``LI`` and ``I`` nodes (read-out layers of many exported networks). They follow the charge
equations of :mod:`snn.functional` (``lif_charge`` and ``if_charge``) from the parameter objects of
:mod:`snn.params`, without firing or reset; every multi-step call starts at ``v_init``.
"""

from __future__ import annotations

import torch
from torch import nn

from . import functional as F
from .params import IFParameters, LIFParameters, Value

__all__ = ["LeakyIntegrator", "Integrator"]


def _buffer_or_float(module: nn.Module, name: str, value: Value | None) -> None:
    if isinstance(value, torch.Tensor):
        module.register_buffer(name, value.detach().clone())
    else:
        setattr(module, name, None if value is None else float(value))


def _potentials(x_seq: torch.Tensor, v: torch.Tensor, charge) -> torch.Tensor:
    if x_seq.ndim < 2:
        raise ValueError(f"expected a time-major sequence [T, B, ...], got shape {tuple(x_seq.shape)}")
    out = []
    for x in x_seq:
        v = charge(x, v)
        out.append(v)
    return torch.stack(out)


class LeakyIntegrator(nn.Module):
    """Leaky integrator: the LIF charge ``H = V + (X - (V - v_leak)) / tau`` (or ``decay_input=False``), no spikes.

    Args:
        tau: time constant in steps (float or tensor).
        v_leak: the potential the leak pulls towards (default 0).
        v_init: potential before the first step (default ``v_leak``).
        decay_input: as :class:`snn.LIF`.
    """

    def __init__(
        self, tau: Value = 2.0, *, v_leak: Value = 0.0, v_init: Value | None = None, decay_input: bool = True
    ) -> None:
        super().__init__()
        for name, value in (("tau", tau), ("v_leak", v_leak), ("v_init", v_init)):
            _buffer_or_float(self, name, value)
        self.decay_input = bool(decay_input)
        self.params()  # validates tau

    def params(self) -> LIFParameters:
        """The parameter object (threshold and reset unused)."""
        return LIFParameters(
            tau=self.tau, v_leak=self.v_leak, v_reset=self.v_leak, v_init=self.v_init, decay_input=self.decay_input
        )

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``[T, B, ...]`` input to the ``[T, B, ...]`` potentials after each step.

        Args:
            x_seq: Input currents ``[T, B, ...]``; the potential starts at ``v_init`` each call.
        """
        p = self.params()
        v = F.init_state(p, x_seq[0]).v
        return _potentials(x_seq, v, lambda x, v: F.lif_charge(x, v, p.tau, p.decay_input, p.leak_target))

    def extra_repr(self) -> str:
        return f"decay_input={self.decay_input}"


class Integrator(nn.Module):
    """Integrator: ``H = V + X`` without spikes (NIR's ``I`` with ``r * dt = 1``).

    Args:
        v_init: potential before the first step (default 0).
    """

    def __init__(self, *, v_init: Value | None = None) -> None:
        super().__init__()
        _buffer_or_float(self, "v_init", v_init)

    def params(self) -> IFParameters:
        """The parameter object (threshold and reset unused)."""
        return IFParameters(v_init=self.v_init)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``[T, B, ...]`` input to the ``[T, B, ...]`` potentials after each step.

        Args:
            x_seq: Input currents ``[T, B, ...]``; the potential starts at ``v_init`` each call.
        """
        return _potentials(x_seq, F.init_state(self.params(), x_seq[0]).v, F.if_charge)
