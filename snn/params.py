"""Parameter objects of the spiking neurons: one frozen dataclass per neuron kind.

A neuron module builds its parameter object (:meth:`snn.Neuron.params`); the pure step functions
of :mod:`snn.functional` and every backend of :mod:`snn.backends` take it, and so can
quantization or an exporter: it is the complete description of a layer of neurons.

Fields are Python floats or tensors (per channel or per neuron, broadcast against one time step
``[B, ...]``, e.g. ``v_threshold=torch.full((C, 1, 1), 0.8)`` for a ``[T, B, C, H, W]`` input).
The torch backend accepts tensors in every field; the fused backends take floats (and PLIF's
one-element ``w``) and the backend choice falls back to torch otherwise (see :mod:`snn.backends`).
The defaults reproduce the neurons' own defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import ClassVar

import torch

from .surrogate import ATan, SurrogateFunction

__all__ = [
    "Value",
    "NeuronParameters",
    "IFParameters",
    "LeakyParameters",
    "LIFParameters",
    "PLIFParameters",
    "ALIFParameters",
    "CubaLIFParameters",
    "IzhikevichParameters",
]

Value = float | torch.Tensor


def _check(name: str, value: Value, ok: Callable[[Value], object], requirement: str) -> None:
    """Raise ValueError unless ``ok(value)`` holds (for every element of a tensor)."""
    holds = ok(value)
    if not isinstance(holds, torch.Tensor):
        if not holds:
            raise ValueError(f"{name} must be {requirement}, got {value}")
    elif not bool(holds.all()):
        first = value.detach()[~holds].flatten()[0].item()  # a tensor's text may run to many lines
        raise ValueError(f"{name} must be {requirement}, got {first} (in a tensor of shape {list(value.shape)})")


_STATE_FIELDS = ("v_threshold", "v_reset", "v_init")


def _time_constant(name: str, tau: Value) -> None:
    _check(name, tau, lambda t: t >= 1.0, ">= 1 (a time constant in steps)")


@dataclass(frozen=True, kw_only=True, eq=False)
class NeuronParameters:
    """The fields every neuron kind has.

    Args:
        v_threshold: firing threshold; a neuron fires when ``H - v_threshold >= 0`` (``H > v_threshold``
            with ``strict``).
        v_reset: hard-reset potential, or None for soft reset (subtract the threshold).
        v_init: membrane potential before the first step; None: the resting value ``v_reset``
            (0 for soft reset). Low-latency ANN-to-SNN conversion starts at half the threshold.
        detach_reset: treat the spike inside the reset as a constant in the backward pass.
        surrogate: the spike function and its surrogate gradient.
        strict: fire when ``H > v_threshold``, NIR's rule, rather than SpikingJelly's ``H >= v_threshold``
            (graphs imported from NIR; see :func:`snn.functional.fire`).
    """

    kind: ClassVar[str]

    v_threshold: Value = 1.0
    v_reset: Value | None = 0.0
    v_init: Value | None = None
    detach_reset: bool = False
    surrogate: SurrogateFunction = field(default_factory=ATan)
    strict: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.surrogate, SurrogateFunction):
            raise TypeError(f"surrogate must be a snn.surrogate.SurrogateFunction, got {self.surrogate!r}")
        for f in fields(self):  # a NaN number never fires, or fires always
            value = getattr(self, f.name)
            # tensors: the state-setting fields only (a trained one, PLIF's w, is checked by no one
            # on every call: that would stall torch.compile and a GPU at each step)
            if isinstance(value, float) or (isinstance(value, torch.Tensor) and f.name in _STATE_FIELDS):
                _check(f.name, value, lambda v: v == v, "a number, not NaN")

    @property
    def rest(self) -> Value:
        """The resting potential: ``v_reset``, or 0 with soft reset."""
        return 0.0 if self.v_reset is None else self.v_reset

    @property
    def initial_v(self) -> Value:
        """The membrane potential before the first step: ``v_init``, else :attr:`rest`."""
        return self.rest if self.v_init is None else self.v_init

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of this kind's fields, in order."""
        return tuple(f.name for f in fields(cls))

    def tensor_fields(self) -> tuple[str, ...]:
        """Names of the fields that hold tensors rather than Python numbers."""
        return tuple(name for name, value in vars(self).items() if isinstance(value, torch.Tensor))


@dataclass(frozen=True, kw_only=True, eq=False)
class IFParameters(NeuronParameters):
    """Integrate-and-fire: ``H = V + X``."""

    kind: ClassVar[str] = "if"


@dataclass(frozen=True, kw_only=True, eq=False)
class LeakyParameters(NeuronParameters):
    """Neurons whose membrane leaks towards ``v_leak``.

    Args:
        v_leak: the potential the leak pulls towards; None: :attr:`default_leak` (the kinds'
            SpikingJelly equations), a value is what a NIR graph's ``v_leak`` carries.
    """

    v_leak: Value | None = None

    @property
    def default_leak(self) -> Value:
        """The leak target when ``v_leak`` is None: the resting potential."""
        return self.rest

    @property
    def leak_target(self) -> Value:
        """``v_leak``, else :attr:`default_leak`."""
        return self.default_leak if self.v_leak is None else self.v_leak


@dataclass(frozen=True, kw_only=True, eq=False)
class LIFParameters(LeakyParameters):
    """Leaky integrate-and-fire (SpikingJelly's ``LIFNode``).

    ``decay_input=True``: ``H = V + (X - (V - V_leak)) / tau``; ``False``: ``H = V - (V - V_leak) / tau + X``.
    """

    kind: ClassVar[str] = "lif"

    tau: Value = 2.0
    decay_input: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _time_constant("tau", self.tau)


@dataclass(frozen=True, kw_only=True, eq=False)
class PLIFParameters(LeakyParameters):
    """Parametric LIF (Fang et al. 2021): the LIF charge with ``1/tau = sigmoid(w)``, ``w`` learnable.

    The default ``w = 0`` is ``tau = 2``. ``decay_input`` chooses between the two LIF charges,
    as in :class:`LIFParameters`.
    """

    kind: ClassVar[str] = "plif"

    w: Value = field(default_factory=lambda: torch.tensor(0.0))
    decay_input: bool = True

    @property
    def tau(self) -> Value:
        """The time constant ``1 / sigmoid(w)``."""
        return 1.0 / torch.sigmoid(torch.as_tensor(self.w).detach())


@dataclass(frozen=True, kw_only=True, eq=False)
class ALIFParameters(LIFParameters):
    """Adaptive-threshold LIF: the LIF charge, threshold ``V_th + beta * A[t-1]``, ``A`` decaying by ``1/tau_adapt``."""

    kind: ClassVar[str] = "alif"

    tau_adapt: Value = 20.0
    beta: Value = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        _time_constant("tau_adapt", self.tau_adapt)


@dataclass(frozen=True, kw_only=True, eq=False)
class CubaLIFParameters(LeakyParameters):
    """Current-based LIF (SpikingJelly's ``CUBALIFNode``): ``I = I current_decay + X``, ``H = V voltage_decay + I``.

    With ``v_leak`` set, ``H = v_leak + (V - v_leak) voltage_decay + I``; SpikingJelly's equation
    (``v_leak=None``) leaks towards 0 whatever the reset.
    """

    kind: ClassVar[str] = "cuba_lif"

    current_decay: Value = 0.5
    voltage_decay: Value = 0.75

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("current_decay", "voltage_decay"):
            _check(name, getattr(self, name), lambda d: (d >= 0.0) & (d <= 1.0), "in [0, 1]")

    @property
    def default_leak(self) -> Value:
        """0: SpikingJelly's ``CUBALIFNode`` decays the potential towards 0 (not towards ``v_reset``)."""
        return 0.0


@dataclass(frozen=True, kw_only=True, eq=False)
class IzhikevichParameters(NeuronParameters):
    """SpikingJelly 2.0's ``IzhikevichNode``: ``H = V + (X + a0 (V - v_rest)(V - v_c) - W) / tau``,
    ``W' = W + (a (H - v_rest) - W) / tau_w + b S``; ``W`` starts at ``w_rest``."""

    kind: ClassVar[str] = "izhikevich"

    tau: Value = 2.0
    v_c: Value = 0.8
    a0: Value = 1.0
    v_rest: Value = -0.1
    w_rest: Value = 0.0
    tau_w: Value = 2.0
    a: Value = 0.0
    b: Value = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _time_constant("tau", self.tau)
        _time_constant("tau_w", self.tau_w)
        _check("a0", self.a0, lambda a0: a0 > 0, "> 0")

