"""Spiking neuron modules: thin stateful shells over :mod:`snn.functional`.

Calling a neuron on a time-major ``[T, B, ...]`` tensor runs all ``T`` steps and returns spikes
of the same shape. State handling is explicit and leak-free:

* ``neuron(x_seq)`` starts from the resting state on every call (no ``reset_net`` to forget);
* ``neuron(x_seq, state=prev, return_state=True)`` continues from ``prev`` and returns
  ``(spikes, state)`` for streaming chunk by chunk;
* ``stateful=True`` makes multi-step calls continue from the previous call's final state until
  :meth:`Neuron.reset`;
* ``neuron.step(x)`` (or ``step_mode="s"``) advances one time step from an internal state kept
  until :meth:`Neuron.reset`; a shape change without a reset raises a clear error.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypedDict, Unpack

import torch
from torch import nn

from . import backends
from . import functional as F
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
from .surrogate import ATan, SurrogateFunction

__all__ = ["Neuron", "IF", "LIF", "PLIF", "ALIF", "CubaLIF", "Izhikevich"]


class NeuronOptions(TypedDict, total=False):
    """The arguments every neuron constructor takes besides its kind's own (see :class:`Neuron`)."""

    v_threshold: Value
    v_reset: Value | None
    detach_reset: bool
    surrogate: SurrogateFunction | None
    backend: str
    step_mode: str
    stateful: bool
    v_init: Value | None
    strict: bool


def _value(value: Value) -> Value:
    """A field's value: a Python float, or a tensor (per channel or per neuron) kept as it is."""
    return value if isinstance(value, torch.Tensor) else float(value)


def _optional_value(value: Value | None) -> Value | None:
    return None if value is None else _value(value)


class Neuron(nn.Module):
    """Common machinery: parameters, step modes, state handling, backend dispatch.

    A subclass names its parameter class (``param_cls``, a frozen dataclass of :mod:`snn.params`)
    and passes its own fields to this constructor by keyword; they become attributes of the same
    names, and :meth:`params` builds the parameter object from the attributes on every call
    (so changing ``neuron.v_threshold`` takes effect). A field given as a tensor (per channel,
    e.g. ``(C, 1, 1)``, or per neuron, shaped like one sample) becomes a buffer, so it follows
    ``.to(device)`` and the ``state_dict``; such neurons run on the torch backend.

    Args:
        v_threshold: firing threshold (a float or a tensor).
        v_reset: hard-reset potential, None for soft reset.
        detach_reset: detach the spike inside the reset in the backward pass.
        surrogate: spike function with surrogate gradient (default ``ATan(alpha=2)``).
        backend: "auto", "torch", "numba", "cpu" or "triton" (see :mod:`snn.backends`).
        step_mode: "m" (multi-step ``[T, B, ...]``) or "s" (one step per call).
        stateful: multi-step calls continue from the previous call's final state until :meth:`reset`.
        v_init: membrane potential before the first step; None: the resting value.
        strict: fire when ``H > v_threshold`` (NIR's rule) instead of ``H >= v_threshold``.
        **fields: the kind's own fields (names of ``param_cls``'s fields).
    """

    param_cls: ClassVar[type[NeuronParameters]] = IFParameters
    # param_cls's field names, looked up once per class (params() runs on every call)
    _param_names: ClassVar[tuple[str, ...]] = IFParameters.field_names()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._param_names = cls.param_cls.field_names()

    def __init__(
        self,
        v_threshold: Value = 1.0,
        v_reset: Value | None = 0.0,
        detach_reset: bool = False,
        surrogate: SurrogateFunction | None = None,
        backend: str = "auto",
        step_mode: str = "m",
        stateful: bool = False,
        v_init: Value | None = None,
        strict: bool = False,
        **fields: Any,
    ) -> None:
        super().__init__()
        if step_mode not in ("m", "s"):
            raise ValueError(f"step_mode must be 'm' (multi-step) or 's' (single-step), got {step_mode!r}")
        self._set_field("v_threshold", _value(v_threshold))
        self._set_field("v_reset", _optional_value(v_reset))
        self._set_field("v_init", _optional_value(v_init))
        self.strict = bool(strict)
        self.detach_reset = bool(detach_reset)
        self.surrogate = ATan(alpha=2.0) if surrogate is None else surrogate
        self.backend = backend
        self.step_mode = step_mode
        self.stateful = stateful
        self.state: F.NeuronState | None = None
        for name, value in fields.items():
            if name not in self._param_names:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument {name!r}")
            self._set_field(name, value)
        backends.check_backend(backend, self.params())  # also validates the fields

    def _set_field(self, name: str, value: Any) -> None:
        """Set a field: a plain tensor becomes a buffer (a learnable ``nn.Parameter`` stays one)."""
        if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
            self.register_buffer(name, value.detach().clone())
        else:
            setattr(self, name, value)

    def params(self) -> NeuronParameters:
        """This layer's parameter object (what :mod:`snn.functional` and the backends take)."""
        return self.param_cls(**{name: getattr(self, name) for name in self._param_names})

    def init_state(self, like: torch.Tensor) -> F.NeuronState:
        """The state before the first step, shaped like one time step ``like``."""
        return F.init_state(self.params(), like)

    # -- running ---------------------------------------------------------------------------------
    def forward(
        self, x: torch.Tensor, state: F.NeuronState | None = None, return_state: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, F.NeuronState]:
        """Multi-step (``[T, ...]`` in, spikes out) or, with ``step_mode="s"``, one step.

        Args:
            x: input current, time-major ``[T, B, ...]`` (one step ``[B, ...]`` in single-step mode).
            state: state to continue from; None starts at rest (or, with ``stateful``, from the
                previous call's final state).
            return_state: also return the final state, as ``(spikes, state)``.
        """
        if self.step_mode == "s":
            return self.step(x, state=state, return_state=return_state)
        if x.ndim < 2:
            raise ValueError(
                f"{type(self).__name__}: multi-step input must be [T, B, ...], got shape {tuple(x.shape)}"
            )
        if state is None and self.stateful:
            state = self._stored_state(x[0])
        spikes, new_state = self.multi_step(x, state)
        if self.stateful:
            self.state = new_state
        return (spikes, new_state) if return_state else spikes

    def multi_step(
        self, x_seq: torch.Tensor, state: F.NeuronState | None = None
    ) -> tuple[torch.Tensor, F.NeuronState]:
        """Run all time steps of ``x_seq`` from ``state`` (initial state if None); no module state is touched."""
        p = self.params()
        if x_seq.ndim < 1 or x_seq.shape[0] == 0:
            raise ValueError(f"x_seq must be time-major [T, ...] with T >= 1, got shape {tuple(x_seq.shape)}")
        if state is None:
            state = F.init_state(p, x_seq[0])
        return backends.multi_step(self.backend, x_seq, state, p)

    def step(
        self, x: torch.Tensor, state: F.NeuronState | None = None, return_state: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, F.NeuronState]:
        """One time step. Without ``state``, continues from the internal state (kept until :meth:`reset`).

        Args:
            x: input current of one step, ``[B, ...]``.
            state: state to advance instead of the internal one (which is then left untouched).
            return_state: also return the new state, as ``(spike, state)``.
        """
        p = self.params()
        current = self._stored_state(x) if state is None else state
        spike, new_state = F.STEPS[p.kind][0](x, current, p)
        if state is None:
            self.state = new_state
        return (spike, new_state) if return_state else spike

    def reset(self) -> None:
        """Forget the internal state (``step``/``stateful`` use); the next call starts at rest."""
        self.state = None

    def detach_state(self) -> None:
        """Cut the autograd history of the internal state (truncated BPTT in streaming use)."""
        if self.state is not None:
            self.state = type(self.state)(*(t.detach() for t in self.state))

    def _stored_state(self, like: torch.Tensor) -> F.NeuronState:
        if self.state is None:
            return self.init_state(like)
        if self.state.v.shape != like.shape:
            raise ValueError(
                f"{type(self).__name__}: stored state has shape {tuple(self.state.v.shape)} but this step "
                f"has shape {tuple(like.shape)}; call .reset() before starting a new sequence"
            )
        return self.state

    def extra_repr(self) -> str:
        reset = "soft" if self.v_reset is None else f"v_reset={_short(self.v_reset)}"
        strict = ", strict=True" if self.strict else ""
        return (
            f"v_threshold={_short(self.v_threshold)}, {reset}, detach_reset={self.detach_reset}, "
            f"surrogate={self.surrogate!r}, backend={self.backend!r}, step_mode={self.step_mode!r}{strict}"
        )


def _short(value: Value) -> str:
    """A field for ``repr``: a float, or a tensor's shape (its values can be millions)."""
    return f"tensor{tuple(value.shape)}" if isinstance(value, torch.Tensor) else str(value)


class IF(Neuron):
    """Integrate-and-fire: ``H = V + X``."""

    param_cls = IFParameters


class LIF(Neuron):
    """Leaky integrate-and-fire (SpikingJelly's ``LIFNode`` equations; see :func:`snn.functional.lif_charge`).

    Default surrogate ``ATan(alpha=2)`` where SpikingJelly defaults to ``Sigmoid(alpha=4)``; pass
    ``surrogate=snn.surrogate.Sigmoid()`` to reproduce SpikingJelly's gradients exactly.
    ``v_leak`` (default: ``v_reset``, 0 with soft reset) is the potential the leak pulls towards.

    Args:
        tau: membrane time constant (a float or a tensor, > 1).
        decay_input: the input is divided by ``tau`` too (``H = V + (X - (V - v_leak)) / tau``).
        v_leak: potential the leak pulls towards; None: ``v_reset`` (0 with soft reset).
        **common: the options of :class:`Neuron` (``v_threshold``, ``v_reset``, ``surrogate``, ...).
    """

    param_cls = LIFParameters

    def __init__(
        self,
        tau: Value = 2.0,
        *,
        decay_input: bool = True,
        v_leak: Value | None = None,
        **common: Unpack[NeuronOptions],
    ) -> None:
        super().__init__(tau=_value(tau), decay_input=bool(decay_input), v_leak=_optional_value(v_leak), **common)

    def extra_repr(self) -> str:
        return f"tau={_short(self.tau)}, decay_input={self.decay_input}, " + super().extra_repr()


class PLIF(Neuron):
    """Parametric LIF (Fang et al. 2021): ``1/tau = sigmoid(w)`` with ``w`` learned, ``w0 = -log(tau0 - 1)``.

    Args:
        init_tau: initial time constant ``tau0`` (> 1).
        decay_input: the input is divided by ``tau`` too, as in :class:`LIF`.
        v_leak: potential the leak pulls towards; None: ``v_reset`` (0 with soft reset).
        **common: the options of :class:`Neuron`.
    """

    param_cls = PLIFParameters

    def __init__(
        self,
        init_tau: float = 2.0,
        *,
        decay_input: bool = True,
        v_leak: float | None = None,
        **common: Unpack[NeuronOptions],
    ) -> None:
        w = nn.Parameter(torch.tensor(F.plif_w_from_tau(init_tau)))
        super().__init__(w=w, decay_input=bool(decay_input), v_leak=_optional_value(v_leak), **common)

    @property
    def tau(self) -> float:
        """The current time constant ``1 / sigmoid(w)``."""
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g}, decay_input={self.decay_input}, " + super().extra_repr()


class ALIF(Neuron):
    """Adaptive-threshold LIF (see :func:`snn.functional.alif_step` for the equations).

    Args:
        tau: membrane time constant.
        tau_adapt: time constant of the adaptation variable ``A``.
        beta: weight of ``A`` in the effective threshold ``v_threshold + beta * A`` (0: plain LIF).
        decay_input: the input is divided by ``tau`` too, as in :class:`LIF`.
        v_leak: potential the leak pulls towards; None: ``v_reset`` (0 with soft reset).
        **common: the options of :class:`Neuron`.
    """

    param_cls = ALIFParameters

    def __init__(
        self,
        tau: float = 2.0,
        tau_adapt: float = 20.0,
        beta: float = 0.2,
        *,
        decay_input: bool = True,
        v_leak: float | None = None,
        **common: Unpack[NeuronOptions],
    ) -> None:
        super().__init__(
            tau=float(tau),
            tau_adapt=float(tau_adapt),
            beta=float(beta),
            decay_input=bool(decay_input),
            v_leak=_optional_value(v_leak),
            **common,
        )


class CubaLIF(Neuron):
    """Current-based LIF, SpikingJelly's ``CUBALIFNode`` equations (see :func:`snn.functional.cuba_lif_step`).

    SpikingJelly defaults to ``v_threshold=0.5`` and a ``Rect`` surrogate; we keep the uniform
    ``v_threshold=1.0`` and ``ATan(2)`` of all our neurons. ``v_leak`` (default: SpikingJelly's
    leak towards 0) runs on the torch backend only.

    Args:
        current_decay: factor of the synaptic current per step, ``I[t] = I[t-1] * current_decay + X``.
        voltage_decay: factor of the membrane potential per step, ``H = V[t-1] * voltage_decay + I[t]``.
        v_leak: potential the voltage decays towards; None: 0.
        **common: the options of :class:`Neuron`.
    """

    param_cls = CubaLIFParameters

    def __init__(
        self,
        current_decay: Value = 0.5,
        voltage_decay: Value = 0.75,
        *,
        v_leak: Value | None = None,
        **common: Unpack[NeuronOptions],
    ) -> None:
        super().__init__(
            current_decay=_value(current_decay),
            voltage_decay=_value(voltage_decay),
            v_leak=_optional_value(v_leak),
            **common,
        )


class Izhikevich(Neuron):
    """SpikingJelly 2.0's ``IzhikevichNode`` (same equations and defaults; see :func:`snn.functional.izhikevich_step`).

    ``H = V + (X + a0 (V - v_rest)(V - v_c) - W) / tau``; ``W' = W + (a (H - v_rest) - W) / tau_w + b S``.

    Args:
        tau: membrane time constant.
        v_c: critical potential of the quadratic term.
        a0: scale of the quadratic term.
        v_rest: resting potential.
        w_rest: recovery variable ``W`` at rest.
        tau_w: time constant of ``W``.
        a: coupling of ``W`` to the potential.
        b: jump of ``W`` per spike.
        **common: the options of :class:`Neuron`.
    """

    param_cls = IzhikevichParameters

    def __init__(
        self,
        tau: float = 2.0,
        v_c: float = 0.8,
        a0: float = 1.0,
        v_rest: float = -0.1,
        w_rest: float = 0.0,
        tau_w: float = 2.0,
        a: float = 0.0,
        b: float = 0.0,
        **common: Unpack[NeuronOptions],
    ) -> None:
        values = dict(tau=tau, v_c=v_c, a0=a0, v_rest=v_rest, w_rest=w_rest, tau_w=tau_w, a=a, b=b)
        super().__init__(**{name: float(value) for name, value in values.items()}, **common)
