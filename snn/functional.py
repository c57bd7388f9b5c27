"""Functional core of the spiking neurons: pure single-step updates over explicit state.

Each ``*_step(x, state, ...)`` takes one time step of input ``x`` (any shape) and the neuron state
(a small NamedTuple of tensors shaped like ``x``) and returns ``(spike, new_state)``. Nothing is
stored anywhere; the modules in :mod:`snn.neurons` are thin wrappers. :func:`multi_step` runs a
step function over a time-major ``[T, ...]`` sequence with a plain Python loop: it is the readable
ground truth that every fast backend (fused CPU, Triton) is tested against.

Shared conventions (identical to SpikingJelly 2.0):

* spike ``S = heaviside(H - V_th)`` with ``heaviside(x) = 1 if x >= 0``; the surrogate supplies the
  backward derivative;
* hard reset (``v_reset`` a float) ``V = S * V_reset + (1 - S) * H``; soft reset (``v_reset=None``)
  ``V = H - S * V_th``; ``detach_reset=True`` detaches ``S`` inside the reset only;
* the initial membrane potential is ``v_reset`` (hard reset) or 0 (soft reset).

The charge expressions are written with SpikingJelly's exact operation order so that membrane
traces agree bit for bit, not just to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from .surrogate import SurrogateFunction

__all__ = [
    "MembraneState",
    "AdaptiveState",
    "CubaState",
    "IzhikevichState",
    "fire",
    "reset",
    "if_charge",
    "lif_charge",
    "plif_charge",
    "if_step",
    "lif_step",
    "plif_step",
    "alif_step",
    "cuba_lif_step",
    "izhikevich_step",
    "init_state",
    "multi_step",
    "plif_w_from_tau",
]


class MembraneState(NamedTuple):
    """State of IF, LIF and PLIF neurons: the membrane potential after reset."""

    v: torch.Tensor


class AdaptiveState(NamedTuple):
    """State of the adaptive LIF: membrane potential and threshold-adaptation trace."""

    v: torch.Tensor
    a: torch.Tensor


class CubaState(NamedTuple):
    """State of the current-based LIF: membrane potential and synaptic current."""

    v: torch.Tensor
    i: torch.Tensor


class IzhikevichState(NamedTuple):
    """State of the Izhikevich neuron: membrane potential and recovery variable ``w``."""

    v: torch.Tensor
    w: torch.Tensor


def fire(h: torch.Tensor, v_threshold: float | torch.Tensor, surrogate: SurrogateFunction) -> torch.Tensor:
    """Spikes ``heaviside(H - V_th)`` with the surrogate's gradient."""
    return surrogate(h - v_threshold)


def reset(
    h: torch.Tensor,
    spike: torch.Tensor,
    v_threshold: float | torch.Tensor,
    v_reset: float | None,
    detach_reset: bool,
) -> torch.Tensor:
    """Membrane potential after the spike: hard reset to ``v_reset`` or soft (subtract ``V_th``)."""
    if detach_reset:
        spike = spike.detach()
    if v_reset is None:
        return h - spike * v_threshold
    return spike * v_reset + (1.0 - spike) * h


def if_charge(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Integrate-and-fire charge ``H = V + X``."""
    return v + x


def lif_charge(
    x: torch.Tensor, v: torch.Tensor, tau: float, decay_input: bool, v_reset: float | None
) -> torch.Tensor:
    """Leaky charge; the leak pulls toward ``v_reset`` (toward 0 with soft reset).

    ``decay_input=True``: ``H = V + (X - (V - V_reset)) / tau``;
    ``decay_input=False``: ``H = V - (V - V_reset) / tau + X``.
    """
    rest = 0.0 if v_reset is None else v_reset
    if decay_input:
        return v + (x - (v - rest)) / tau
    return v - (v - rest) / tau + x


def plif_charge(
    x: torch.Tensor, v: torch.Tensor, w: torch.Tensor, decay_input: bool, v_reset: float | None
) -> torch.Tensor:
    """Parametric LIF charge: :func:`lif_charge` with ``1/tau = sigmoid(w)`` and ``w`` learnable."""
    rest = 0.0 if v_reset is None else v_reset
    q = w.sigmoid()
    if decay_input:
        return v + (x - (v - rest)) * q
    return v - (v - rest) * q + x


def _fire_and_reset(h, v_threshold, v_reset, surrogate, detach_reset):
    spike = fire(h, v_threshold, surrogate)
    return spike, reset(h, spike, v_threshold, v_reset, detach_reset)


def if_step(
    x: torch.Tensor,
    state: MembraneState,
    *,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    surrogate: SurrogateFunction,
    detach_reset: bool = False,
) -> tuple[torch.Tensor, MembraneState]:
    """One step of the integrate-and-fire neuron."""
    spike, v = _fire_and_reset(if_charge(x, state.v), v_threshold, v_reset, surrogate, detach_reset)
    return spike, MembraneState(v)


def lif_step(
    x: torch.Tensor,
    state: MembraneState,
    *,
    tau: float = 2.0,
    decay_input: bool = True,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    surrogate: SurrogateFunction,
    detach_reset: bool = False,
) -> tuple[torch.Tensor, MembraneState]:
    """One step of the leaky integrate-and-fire neuron (see :func:`lif_charge`)."""
    h = lif_charge(x, state.v, tau, decay_input, v_reset)
    spike, v = _fire_and_reset(h, v_threshold, v_reset, surrogate, detach_reset)
    return spike, MembraneState(v)


def plif_step(
    x: torch.Tensor,
    state: MembraneState,
    *,
    w: torch.Tensor,
    decay_input: bool = True,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    surrogate: SurrogateFunction,
    detach_reset: bool = False,
) -> tuple[torch.Tensor, MembraneState]:
    """One step of the parametric LIF (Fang et al. 2021): ``1/tau = sigmoid(w)``."""
    h = plif_charge(x, state.v, w, decay_input, v_reset)
    spike, v = _fire_and_reset(h, v_threshold, v_reset, surrogate, detach_reset)
    return spike, MembraneState(v)


def alif_step(
    x: torch.Tensor,
    state: AdaptiveState,
    *,
    tau: float = 2.0,
    tau_adapt: float = 20.0,
    beta: float = 0.2,
    decay_input: bool = True,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    surrogate: SurrogateFunction,
    detach_reset: bool = False,
) -> tuple[torch.Tensor, AdaptiveState]:
    """One step of the adaptive-threshold LIF (LSNN-style, Bellec et al. 2018).

    ``H = lif_charge(X, V)``; effective threshold ``theta = V_th + beta * A[t-1]``;
    ``S = heaviside(H - theta)``; ``A[t] = A[t-1] - A[t-1] / tau_adapt + S``; reset as usual with
    ``theta`` in place of ``V_th`` for the soft reset. ``beta = 0`` gives back the plain LIF.
    """
    h = lif_charge(x, state.v, tau, decay_input, v_reset)
    theta = v_threshold + beta * state.a
    spike, v = _fire_and_reset(h, theta, v_reset, surrogate, detach_reset)
    a = state.a - state.a / tau_adapt + spike
    return spike, AdaptiveState(v, a)


def cuba_lif_step(
    x: torch.Tensor,
    state: CubaState,
    *,
    current_decay: float = 0.5,
    voltage_decay: float = 0.75,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    surrogate: SurrogateFunction,
    detach_reset: bool = False,
) -> tuple[torch.Tensor, CubaState]:
    """One step of the current-based LIF, as SpikingJelly's ``CUBALIFNode``.

    ``I[t] = I[t-1] * current_decay + X``; ``H = V[t-1] * voltage_decay + I[t]``; fire; reset.
    """
    i = state.i * current_decay + x
    h = state.v * voltage_decay + i
    spike, v = _fire_and_reset(h, v_threshold, v_reset, surrogate, detach_reset)
    return spike, CubaState(v, i)


def izhikevich_step(
    x: torch.Tensor,
    state: IzhikevichState,
    *,
    tau: float = 2.0,
    v_c: float = 0.8,
    a0: float = 1.0,
    v_rest: float = -0.1,
    a: float = 0.0,
    b: float = 0.0,
    tau_w: float = 2.0,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    surrogate: SurrogateFunction,
    detach_reset: bool = False,
) -> tuple[torch.Tensor, IzhikevichState]:
    """One step of SpikingJelly 2.0's ``IzhikevichNode`` (quadratic integrate-and-fire + recovery).

    ``H = V + (X + a0 (V - v_rest)(V - v_c) - W) / tau``; fire;
    ``W' = W + (a (H - v_rest) - W) / tau_w + b S``; reset V as usual.
    """
    h = state.v + (x + a0 * (state.v - v_rest) * (state.v - v_c) - state.w) / tau
    spike = fire(h, v_threshold, surrogate)
    w = state.w + (a * (h - v_rest) - state.w) / tau_w + b * spike
    return spike, IzhikevichState(reset(h, spike, v_threshold, v_reset, detach_reset), w)


def plif_w_from_tau(tau: float) -> float:
    """The PLIF parameter ``w`` with ``sigmoid(w) = 1/tau`` (SpikingJelly's ``-log(tau - 1)``)."""
    if not tau > 1.0:
        raise ValueError(f"init_tau must be > 1, got {tau}")
    return -math.log(tau - 1.0)


_STEP_STATES: dict[Callable[..., Any], type] = {
    if_step: MembraneState,
    lif_step: MembraneState,
    plif_step: MembraneState,
    alif_step: AdaptiveState,
    cuba_lif_step: CubaState,
    izhikevich_step: IzhikevichState,
}


def init_state(
    step: Callable[..., Any], like: torch.Tensor, *, v_reset: float | None = 0.0, w_rest: float = 0.0
) -> NamedTuple:
    """The resting state of ``step``'s neuron, shaped like one time step ``like``.

    ``V`` starts at ``v_reset`` (0 for soft reset); adaptation and synaptic current start at 0;
    the Izhikevich recovery ``W`` starts at ``w_rest``. The state is at least fp32 whatever the
    input's dtype (as the fused kernels keep it): a bf16 or fp16 ``v_reset`` such as -0.2 would
    start every neuron off by a rounding error and shift its spike times.
    """
    try:
        state_cls = _STEP_STATES[step]
    except KeyError:
        raise ValueError(f"init_state: unknown step function {step!r}") from None
    dtype = torch.promote_types(like.dtype, torch.float32)
    v = torch.full_like(like, 0.0 if v_reset is None else v_reset, dtype=dtype)
    if state_cls is MembraneState:
        return MembraneState(v)
    if state_cls is IzhikevichState:
        return IzhikevichState(v, torch.full_like(like, w_rest, dtype=dtype))
    return state_cls(v, torch.zeros_like(like, dtype=dtype))


def multi_step(
    step: Callable[..., tuple[torch.Tensor, NamedTuple]],
    x_seq: torch.Tensor,
    state: NamedTuple | None = None,
    *,
    return_v_seq: bool = False,
    w_rest: float = 0.0,
    **params: Any,
) -> tuple[torch.Tensor, NamedTuple] | tuple[torch.Tensor, NamedTuple, torch.Tensor]:
    """Reference multi-step run: ``step`` applied to ``x_seq[0], x_seq[1], ...`` in order.

    Returns ``(spike_seq, final_state)`` and, with ``return_v_seq``, also the ``[T, ...]`` trace of
    the membrane potential after each reset. ``state=None`` starts from :func:`init_state`.
    """
    if x_seq.ndim < 1 or x_seq.shape[0] == 0:
        raise ValueError(f"x_seq must be time-major [T, ...] with T >= 1, got shape {tuple(x_seq.shape)}")
    if state is None:
        state = init_state(step, x_seq[0], v_reset=params.get("v_reset", 0.0), w_rest=w_rest)
    spikes, voltages = [], []
    for x in x_seq:
        spike, state = step(x, state, **params)
        spikes.append(spike)
        if return_v_seq:
            voltages.append(state.v)
    if return_v_seq:
        return torch.stack(spikes), state, torch.stack(voltages)
    return torch.stack(spikes), state
