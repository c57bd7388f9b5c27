"""Functional core of the spiking neurons: pure single-step updates over explicit state.

Each ``*_step(x, state, p)`` takes one time step of input ``x`` (any shape), the neuron state (a
small NamedTuple of tensors shaped like ``x``) and the kind's parameter object ``p`` (a frozen
dataclass of :mod:`snn.params`), and returns ``(spike, new_state)``, as Norse's functional core
does. Nothing is stored anywhere; the modules in :mod:`snn.neurons` only hold parameters.
:func:`multi_step` runs a kind's step function over a time-major ``[T, ...]`` sequence with a
plain Python loop: it is the ``"torch"`` backend, the readable ground truth that every fused
backend (Numba, torch.compile, Triton) is tested against. It takes tensor fields (per channel or
per neuron) as well as floats.

Shared conventions (identical to SpikingJelly 2.0):

* spike ``S = heaviside(H - V_th)`` with ``heaviside(x) = 1 if x >= 0``; the surrogate supplies the
  backward derivative (``strict=True``, NIR's rule: ``S = 1 if H > V_th``);
* hard reset (``v_reset`` a value) ``V = S * V_reset + (1 - S) * H``; soft reset (``v_reset=None``)
  ``V = H - S * V_th``; ``detach_reset=True`` detaches ``S`` inside the reset only;
* the initial membrane potential is ``v_init``, by default ``v_reset`` (hard reset) or 0 (soft
  reset); the leaky kinds leak towards ``v_leak``, by default the same resting value.

The charge expressions are written with SpikingJelly's exact operation order so that membrane
traces agree bit for bit, not just to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from .params import (
    ALIFParameters,
    CubaLIFParameters,
    IFParameters,
    IzhikevichParameters,
    LIFParameters,
    NeuronParameters,
    PLIFParameters,
    Value,
)
from .surrogate import SurrogateFunction

__all__ = [
    "MembraneState",
    "AdaptiveState",
    "CubaState",
    "IzhikevichState",
    "NeuronState",
    "STEPS",
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
    """State of IF, LIF and PLIF neurons: the membrane potential ``v`` after reset."""

    v: torch.Tensor


class AdaptiveState(NamedTuple):
    """State of the adaptive LIF: membrane potential ``v`` and threshold-adaptation trace ``a``."""

    v: torch.Tensor
    a: torch.Tensor


class CubaState(NamedTuple):
    """State of the current-based LIF: membrane potential ``v`` and synaptic current ``i``."""

    v: torch.Tensor
    i: torch.Tensor


class IzhikevichState(NamedTuple):
    """State of the Izhikevich neuron: membrane potential ``v`` and recovery variable ``w``."""

    v: torch.Tensor
    w: torch.Tensor


# Any neuron kind's state (a name for annotations: ``NamedTuple`` itself is a function, so
# ``NamedTuple | None`` cannot be evaluated by tools that read the annotations).
NeuronState = MembraneState | AdaptiveState | CubaState | IzhikevichState


def fire(h: torch.Tensor, v_threshold: Value, surrogate: SurrogateFunction, strict: bool = False) -> torch.Tensor:
    """Spikes ``heaviside(H - V_th)`` with the surrogate's gradient; with ``strict``, spikes where ``H > V_th``.

    The strict comparison compares against the next value of ``H``'s dtype above ``V_th``
    (``H > V_th`` exactly when ``H >= nextafter(V_th, inf)``), so the surrogate and every
    operation stay those of the ``>=`` rule.

    Args:
        h: The charged potential ``H``.
        v_threshold: The threshold ``V_th`` (scalar or broadcasting tensor).
        surrogate: Gives the spike's gradient.
        strict: Fire where ``H > V_th`` rather than ``H >= V_th``.
    """
    if strict:
        threshold = torch.as_tensor(v_threshold, dtype=h.dtype, device=h.device)
        v_threshold = torch.nextafter(threshold, torch.tensor(math.inf, dtype=h.dtype, device=h.device))
    return surrogate(h - v_threshold)


def reset(
    h: torch.Tensor,
    spike: torch.Tensor,
    v_threshold: Value,
    v_reset: Value | None,
    detach_reset: bool,
) -> torch.Tensor:
    """Membrane potential after the spike: hard reset to ``v_reset`` or soft (subtract ``V_th``).

    Args:
        h: The charged potential.
        spike: The spikes :func:`fire` returned for ``h``.
        v_threshold: ``V_th``, subtracted by the soft reset.
        v_reset: The hard reset's potential, or None for the soft reset.
        detach_reset: Keep the reset out of the gradient (``spike`` detached).
    """
    if detach_reset:
        spike = spike.detach()
    if v_reset is None:
        return h - spike * v_threshold
    return spike * v_reset + (1.0 - spike) * h


def if_charge(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Integrate-and-fire charge ``H = V + X`` of the input ``x`` onto the potential ``v``."""
    return v + x


def lif_charge(x: torch.Tensor, v: torch.Tensor, tau: Value, decay_input: bool, v_leak: Value) -> torch.Tensor:
    """Leaky charge of the input ``x`` onto the potential ``v`` with time constant ``tau``; the leak
    pulls toward ``v_leak`` (the neurons' default: ``v_reset``, 0 with soft reset).

    ``decay_input=True``: ``H = V + (X - (V - V_leak)) / tau``;
    ``decay_input=False``: ``H = V - (V - V_leak) / tau + X``.
    """
    if decay_input:
        return v + (x - (v - v_leak)) / tau
    return v - (v - v_leak) / tau + x


def plif_charge(x: torch.Tensor, v: torch.Tensor, w: Value, decay_input: bool, v_leak: Value) -> torch.Tensor:
    """Parametric LIF charge: :func:`lif_charge` (of ``x`` onto ``v``, with ``decay_input`` and
    ``v_leak``) with ``1/tau = sigmoid(w)`` and ``w`` learnable."""
    q = torch.as_tensor(w).sigmoid()
    if decay_input:
        return v + (x - (v - v_leak)) * q
    return v - (v - v_leak) * q + x


def _fire_and_reset(
    h: torch.Tensor, v_threshold: Value, p: NeuronParameters
) -> tuple[torch.Tensor, torch.Tensor]:
    spike = fire(h, v_threshold, p.surrogate, p.strict)
    return spike, reset(h, spike, v_threshold, p.v_reset, p.detach_reset)


def if_step(
    x: torch.Tensor, state: MembraneState, p: IFParameters
) -> tuple[torch.Tensor, MembraneState]:
    """One step of the integrate-and-fire neuron.

    ``x`` is this step's input, ``state`` the potential after the previous step and ``p`` the
    neuron's parameters; returns the spikes and the new state.
    """
    spike, v = _fire_and_reset(if_charge(x, state.v), p.v_threshold, p)
    return spike, MembraneState(v)


def lif_step(
    x: torch.Tensor, state: MembraneState, p: LIFParameters
) -> tuple[torch.Tensor, MembraneState]:
    """One step of the leaky integrate-and-fire neuron (see :func:`lif_charge`).

    ``x`` is this step's input, ``state`` the potential after the previous step and ``p`` the
    neuron's parameters; returns the spikes and the new state.
    """
    h = lif_charge(x, state.v, p.tau, p.decay_input, p.leak_target)
    spike, v = _fire_and_reset(h, p.v_threshold, p)
    return spike, MembraneState(v)


def plif_step(
    x: torch.Tensor, state: MembraneState, p: PLIFParameters
) -> tuple[torch.Tensor, MembraneState]:
    """One step of the parametric LIF (Fang et al. 2021): ``1/tau = sigmoid(w)``.

    ``x`` is this step's input, ``state`` the potential after the previous step and ``p`` the
    neuron's parameters; returns the spikes and the new state.
    """
    h = plif_charge(x, state.v, p.w, p.decay_input, p.leak_target)
    spike, v = _fire_and_reset(h, p.v_threshold, p)
    return spike, MembraneState(v)


def alif_step(
    x: torch.Tensor, state: AdaptiveState, p: ALIFParameters
) -> tuple[torch.Tensor, AdaptiveState]:
    """One step of the adaptive-threshold LIF (LSNN-style, Bellec et al. 2018).

    ``H = lif_charge(X, V)``; effective threshold ``theta = V_th + beta * A[t-1]``;
    ``S = heaviside(H - theta)``; ``A[t] = A[t-1] - A[t-1] / tau_adapt + S``; reset as usual with
    ``theta`` in place of ``V_th`` for the soft reset. ``beta = 0`` gives back the plain LIF.
    ``x`` is this step's input, ``state`` the potential and trace after the previous step and ``p``
    the neuron's parameters; returns the spikes and the new state.
    """
    h = lif_charge(x, state.v, p.tau, p.decay_input, p.leak_target)
    theta = p.v_threshold + p.beta * state.a
    spike, v = _fire_and_reset(h, theta, p)
    a = state.a - state.a / p.tau_adapt + spike
    return spike, AdaptiveState(v, a)


def cuba_lif_step(
    x: torch.Tensor, state: CubaState, p: CubaLIFParameters
) -> tuple[torch.Tensor, CubaState]:
    """One step of the current-based LIF, as SpikingJelly's ``CUBALIFNode``.

    ``I[t] = I[t-1] * current_decay + X``; ``H = V[t-1] * voltage_decay + I[t]`` (with ``v_leak``:
    ``H = v_leak + (V[t-1] - v_leak) * voltage_decay + I[t]``); fire; reset. ``x`` is the input
    ``X``, ``state`` holds ``V[t-1]`` and ``I[t-1]``, ``p`` the neuron's parameters; returns the
    spikes and the new state.
    """
    i = state.i * p.current_decay + x
    if p.v_leak is None:
        h = state.v * p.voltage_decay + i
    else:
        h = p.v_leak + (state.v - p.v_leak) * p.voltage_decay + i
    spike, v = _fire_and_reset(h, p.v_threshold, p)
    return spike, CubaState(v, i)


def izhikevich_step(
    x: torch.Tensor, state: IzhikevichState, p: IzhikevichParameters
) -> tuple[torch.Tensor, IzhikevichState]:
    """One step of SpikingJelly 2.0's ``IzhikevichNode`` (quadratic integrate-and-fire + recovery).

    ``H = V + (X + a0 (V - v_rest)(V - v_c) - W) / tau``; fire;
    ``W' = W + (a (H - v_rest) - W) / tau_w + b S``; reset V as usual. ``x`` is the input ``X``,
    ``state`` holds ``V`` and ``W``, ``p`` the neuron's parameters; returns the spikes and the new
    state.
    """
    h = state.v + (x + p.a0 * (state.v - p.v_rest) * (state.v - p.v_c) - state.w) / p.tau
    spike = fire(h, p.v_threshold, p.surrogate, p.strict)
    w = state.w + (p.a * (h - p.v_rest) - state.w) / p.tau_w + p.b * spike
    return spike, IzhikevichState(reset(h, spike, p.v_threshold, p.v_reset, p.detach_reset), w)


def plif_w_from_tau(tau: float) -> float:
    """The PLIF parameter ``w`` with ``sigmoid(w) = 1/tau`` (SpikingJelly's ``-log(tau - 1)``)."""
    if not tau > 1.0:
        raise ValueError(f"init_tau must be > 1, got {tau}")
    return -math.log(tau - 1.0)


# Each kind's step function and state (the state's first field is always the potential ``v``).
STEPS: dict[str, tuple[Callable[..., tuple[torch.Tensor, NamedTuple]], type]] = {
    "if": (if_step, MembraneState),
    "lif": (lif_step, MembraneState),
    "plif": (plif_step, MembraneState),
    "alif": (alif_step, AdaptiveState),
    "cuba_lif": (cuba_lif_step, CubaState),
    "izhikevich": (izhikevich_step, IzhikevichState),
}


def _filled(like: torch.Tensor, value: Value, dtype: torch.dtype) -> torch.Tensor:
    """A tensor shaped like ``like`` holding ``value`` (a number, or a tensor broadcast to it)."""
    if isinstance(value, torch.Tensor):
        return torch.broadcast_to(value.to(device=like.device, dtype=dtype), like.shape).clone()
    return torch.full_like(like, value, dtype=dtype)


def init_state(p: NeuronParameters, like: torch.Tensor) -> NeuronState:
    """The state of ``p``'s neuron before the first step, shaped like one time step ``like``.

    ``V`` starts at ``p.initial_v`` (``v_init``, else ``v_reset``, 0 for soft reset); adaptation
    and synaptic current start at 0; the Izhikevich recovery ``W`` starts at ``w_rest``. The state
    is at least fp32 whatever the input's dtype (as the fused kernels keep it): a bf16 or fp16
    ``v_reset`` such as -0.2 would start every neuron off by a rounding error and shift its spike times.
    """
    state_cls = STEPS[p.kind][1]
    dtype = torch.promote_types(like.dtype, torch.float32)
    v = _filled(like, p.initial_v, dtype)
    if state_cls is MembraneState:
        return MembraneState(v)
    if state_cls is IzhikevichState:
        return IzhikevichState(v, _filled(like, p.w_rest, dtype))
    return state_cls(v, torch.zeros_like(like, dtype=dtype))


def multi_step(
    x_seq: torch.Tensor,
    state: NeuronState | None,
    p: NeuronParameters,
    *,
    return_v_seq: bool = False,
) -> tuple[torch.Tensor, NeuronState] | tuple[torch.Tensor, NeuronState, torch.Tensor]:
    """Reference multi-step run: ``p``'s step function applied to ``x_seq[0], x_seq[1], ...`` in order.

    Returns ``(spike_seq, final_state)`` and, with ``return_v_seq``, also the ``[T, ...]`` trace of
    the membrane potential after each reset. ``state=None`` starts from :func:`init_state`.
    """
    if x_seq.ndim < 1 or x_seq.shape[0] == 0:
        raise ValueError(f"x_seq must be time-major [T, ...] with T >= 1, got shape {tuple(x_seq.shape)}")
    step = STEPS[p.kind][0]
    if state is None:
        state = init_state(p, x_seq[0])
    spikes, voltages = [], []
    for x in x_seq:
        spike, state = step(x, state, p)
        spikes.append(spike)
        if return_v_seq:
            voltages.append(state.v)
    if return_v_seq:
        return torch.stack(spikes), state, torch.stack(voltages)
    return torch.stack(spikes), state
