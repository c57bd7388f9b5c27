"""The integer arithmetic, written once for both the fake-quantized and the integer model.

Every function here takes int64 tensors or float64 tensors that hold integers and returns the
same values for both: divisions are by powers of two (exact in float64) followed by an explicit
rounding, and every product stays below ``2**53``. The integer model calls them on int64
tensors; the fake-quantized model on float64 tensors, with :class:`SteOps` attaching
straight-through gradients, so its spikes are the integer model's spikes by construction.

One neuron step (:func:`neuron_step`), in units of the layer's current:

1. ``v <- decay(v)``: :func:`decay_value` (IF: no decay);
2. ``h = v + i``, then the state register: :func:`limit` to ``state_bits`` (counted);
3. ``s = h >= threshold``;
4. reset: "zero" ``v = h * (1 - s)``; "subtract" ``v = h - s * threshold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch

from ..surrogate import SurrogateFunction
from .target import QuantTarget

__all__ = [
    "round_value",
    "shift_right",
    "register_range",
    "limit",
    "Limited",
    "DecayRule",
    "decay_rule",
    "decay_value",
    "NeuronRule",
    "Ops",
    "EXACT",
    "SteOps",
    "straight_through",
    "neuron_step",
    "neuron_steps",
]


def round_value(x: torch.Tensor, mode: str) -> torch.Tensor:
    """``x`` rounded to integers by ``mode``: "nearest" (ties upwards), "floor" or "trunc" (towards zero)."""
    if mode == "nearest":
        return torch.floor(x + 0.5)
    return torch.floor(x) if mode == "floor" else torch.trunc(x)


def shift_right(x: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """``x / 2**n`` rounded by ``mode``; "floor" is the arithmetic shift ``x >> n``.

    ``x`` holds integers (int64, or float64 below ``2**53``); the result does too.
    """
    if n == 0:
        return x
    if mode == "nearest":
        return torch.div(x + 2 ** (n - 1), 2**n, rounding_mode="floor")
    return torch.div(x, 2**n, rounding_mode=mode)


def register_range(bits: int) -> tuple[int, int]:
    """The values of a signed ``bits``-wide register."""
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


class Limited(NamedTuple):
    """A register's content and how many elements did not fit (saturated or wrapped).

    Attributes:
        value: The register's content after clamping or wrapping.
        out_of_range: The count of elements that were out of range (a 0-dim tensor).
    """

    value: torch.Tensor
    out_of_range: torch.Tensor


def limit(x: torch.Tensor, bits: int, overflow: str) -> Limited:
    """``x`` stored in a signed ``bits``-wide register, by ``overflow``: clamped ("saturate") or
    wrapped ("wrap"); also the count of elements that were out of range."""
    low, high = register_range(bits)
    outside = ((x < low) | (x > high)).sum()
    if overflow == "saturate":
        return Limited(x.clamp(low, high), outside)
    return Limited(torch.remainder(x - low, 2**bits) + low, outside)


@dataclass(frozen=True)
class DecayRule:
    """The leak of one neuron layer: ``v <- R(v * k / 2**n)`` ("multiply") or ``v <- v - R(v / 2**n)`` ("shift").

    Attributes:
        form: "multiply" or "shift".
        k: The multiplier (0 for "shift").
        n: The right shift.
        rounding: How ``R`` rounds the shifted value (a :func:`shift_right` mode).
    """

    form: str
    k: int
    n: int
    rounding: str

    @property
    def factor(self) -> float:
        """The decay per step as a real number (what the straight-through gradient uses)."""
        return self.k / 2**self.n if self.form == "multiply" else 1.0 - 2.0**-self.n

    @property
    def tau(self) -> float:
        """The time constant the integer rule realises, ``1 / (1 - factor)``."""
        return math.inf if self.factor == 1.0 else 1.0 / (1.0 - self.factor)


def decay_rule(tau: float, target: QuantTarget) -> DecayRule:
    """The target's nearest integer leak for a LIF time constant ``tau`` (in steps, >= 1)."""
    if target.decay == "shift":
        return DecayRule("shift", 0, max(0, round(math.log2(tau))), target.decay_rounding)
    n = target.decay_bits
    k = min(2**n - 1, max(0, math.floor((1.0 - 1.0 / tau) * 2**n + 0.5)))
    return DecayRule("multiply", k, n, target.decay_rounding)


def decay_value(v: torch.Tensor, rule: DecayRule) -> torch.Tensor:
    """The potential ``v`` decayed by ``rule``, exactly as the integer target computes it."""
    if rule.form == "multiply":
        return shift_right(v * rule.k, rule.n, rule.rounding)
    return v - shift_right(v, rule.n, rule.rounding)


@dataclass(frozen=True, eq=False)
class NeuronRule:
    """Everything one integer neuron layer computes with; tensors broadcast against one step.

    ``threshold`` and ``v_init`` hold integers (int64 in the integer model, float64 in the fake
    one); ``scale`` is the real value of one unit (the float potential is ``v * scale``).

    Attributes:
        threshold: Integer threshold the potential is compared with.
        v_init: Integer initial potential.
        scale: Real value of one potential unit.
        decay: The leak (``None`` for IF neurons).
        reset: "subtract" (soft reset) or "zero".
        state_bits: Width of the potential register.
        overflow: "saturate" or "wrap", for a potential that does not fit ``state_bits``.
        detach_reset: Whether the reset carries no gradient (fake model only).
    """

    threshold: torch.Tensor
    v_init: torch.Tensor
    scale: torch.Tensor
    decay: DecayRule | None
    reset: str
    state_bits: int
    overflow: str
    detach_reset: bool = False


class Ops(Protocol):
    """How a step keeps gradients: not at all (integer model) or straight through (fake model)."""

    def keep(self, linear: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """``value``, carrying ``linear``'s gradient where gradients exist."""
        ...

    def fire(self, h: torch.Tensor, rule: NeuronRule) -> torch.Tensor:
        """Spikes ``h >= rule.threshold`` as ``h``'s dtype."""
        ...


class _ExactOps:
    """The integer model's operations: values only."""

    def keep(self, linear: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return value

    def fire(self, h: torch.Tensor, rule: NeuronRule) -> torch.Tensor:
        return (h >= rule.threshold).to(h.dtype)


EXACT: Ops = _ExactOps()


class _StraightThrough(torch.autograd.Function):
    """Forward: ``value``; backward: the gradient goes to ``linear`` unchanged."""

    @staticmethod
    def forward(ctx, linear: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return value.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def straight_through(linear: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``value`` (exactly) with ``linear``'s gradient; just ``value`` when ``linear`` needs none."""
    return _StraightThrough.apply(linear, value) if linear.requires_grad else value


class SteOps:
    """The fake-quantized model's operations: straight-through rounding, surrogate spikes.

    The surrogate sees ``(h - threshold) * scale``, the distance in the float model's units, so
    its width means what it means for the float neuron; its sign, hence the spike, is exact.
    """

    def __init__(self, surrogate: SurrogateFunction) -> None:
        self.surrogate = surrogate

    def keep(self, linear: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """``value`` with ``linear``'s gradient (straight through)."""
        return straight_through(linear, value)

    def fire(self, h: torch.Tensor, rule: NeuronRule) -> torch.Tensor:
        """Spikes ``h >= rule.threshold`` with the surrogate's gradient."""
        return self.surrogate((h - rule.threshold) * rule.scale)


def neuron_step(
    i: torch.Tensor, v: torch.Tensor, rule: NeuronRule, ops: Ops
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step from current ``i`` and potential ``v`` of a layer computing by ``rule``, with
    ``ops`` keeping gradients or not: ``(spikes, new v, state elements out of range)``."""
    if rule.decay is not None:
        decayed = decay_value(v.detach(), rule.decay)
        v = ops.keep(v * rule.decay.factor, decayed) if v.requires_grad else decayed
    h_linear = v + i
    h, outside = limit(h_linear.detach(), rule.state_bits, rule.overflow)
    h = ops.keep(h_linear, h)
    spike = ops.fire(h, rule)
    s = spike.detach() if rule.detach_reset else spike
    v = h * (1 - s) if rule.reset == "zero" else h - s * rule.threshold
    return spike, v, outside


def neuron_steps(i_seq: torch.Tensor, rule: NeuronRule, ops: Ops) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`neuron_step` with ``ops`` over ``i_seq``, ``[T, ...]`` currents, from ``rule.v_init``:
    ``(spikes, state values out of range)``."""
    v = torch.broadcast_to(rule.v_init.to(device=i_seq.device, dtype=i_seq.dtype), i_seq.shape[1:])
    spikes, outside = [], 0
    for i in i_seq:
        spike, v, n = neuron_step(i, v, rule, ops)
        spikes.append(spike)
        outside = outside + n
    return torch.stack(spikes), outside
