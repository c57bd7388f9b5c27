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

from typing import Any, NamedTuple

import torch
from torch import nn

from . import functional as F
from .backends import check_backend, fused_function, resolve_backend
from .surrogate import ATan, SurrogateFunction

__all__ = ["Neuron", "IF", "LIF", "PLIF", "ALIF", "CubaLIF", "Izhikevich"]


class Neuron(nn.Module):
    """Common machinery: step modes, state handling, backend dispatch.

    Subclasses set ``step_fn`` (a function of :mod:`snn.functional`), ``fused_kind`` (the kernel
    name in :mod:`snn.backends`, None when only the torch loop exists) and implement
    :meth:`params` and :meth:`fused_params`.
    """

    step_fn = staticmethod(F.if_step)
    fused_kind: str | None = None

    def __init__(
        self,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate: SurrogateFunction | None = None,
        backend: str = "auto",
        step_mode: str = "m",
        stateful: bool = False,
    ) -> None:
        super().__init__()
        if step_mode not in ("m", "s"):
            raise ValueError(f"step_mode must be 'm' (multi-step) or 's' (single-step), got {step_mode!r}")
        self.v_threshold = float(v_threshold)
        self.v_reset = None if v_reset is None else float(v_reset)
        self.detach_reset = bool(detach_reset)
        self.surrogate = ATan(alpha=2.0) if surrogate is None else surrogate
        self.backend = backend
        self.step_mode = step_mode
        self.stateful = stateful
        self.state: NamedTuple | None = None
        check_backend(backend, self.fused_kind, self.surrogate)

    # -- what subclasses provide ---------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """Keyword arguments of ``step_fn`` besides ``x`` and ``state``."""
        return {
            "v_threshold": self.v_threshold,
            "v_reset": self.v_reset,
            "surrogate": self.surrogate,
            "detach_reset": self.detach_reset,
        }

    def fused_params(self) -> dict[str, Any]:
        """Neuron-specific keyword arguments of the fused backends (see :mod:`snn.backends`)."""
        return {"decay_input": True}

    def init_state(self, like: torch.Tensor) -> NamedTuple:
        """The resting state for one time step shaped like ``like``."""
        return F.init_state(self.step_fn, like, v_reset=self.v_reset)

    def fused_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the fused backends' multi-step functions besides ``x_seq`` and the state."""
        return {
            "v_threshold": self.v_threshold,
            "v_reset": self.v_reset,
            "detach_reset": self.detach_reset,
            "surrogate_name": self.surrogate.name,
            "alpha": float(self.surrogate.alpha),
            **self.fused_params(),
        }

    # -- running ---------------------------------------------------------------------------------
    def forward(
        self, x: torch.Tensor, state: NamedTuple | None = None, return_state: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, NamedTuple]:
        """Multi-step (``[T, ...]`` in, spikes out) or, with ``step_mode="s"``, one step."""
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
        self, x_seq: torch.Tensor, state: NamedTuple | None = None
    ) -> tuple[torch.Tensor, NamedTuple]:
        """Run all time steps of ``x_seq`` from ``state`` (resting state if None); no module state is touched."""
        if state is None:
            state = self.init_state(x_seq[0])
        backend = resolve_backend(self.backend, self.fused_kind, self.surrogate, x_seq)
        if backend == "torch":
            return F.multi_step(self.step_fn, x_seq, state, **self.params())
        common = self.fused_kwargs()
        run = fused_function(backend, self.fused_kind)
        if len(state) == 1:
            spikes, v_last = run(self.fused_kind, x_seq, state.v, **common)
            return spikes, type(state)(v_last)
        spikes, v_last, u_last = run(self.fused_kind, x_seq, state[0], state[1], **common)
        return spikes, type(state)(v_last, u_last)

    def step(
        self, x: torch.Tensor, state: NamedTuple | None = None, return_state: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, NamedTuple]:
        """One time step. Without ``state``, continues from the internal state (kept until :meth:`reset`)."""
        current = self._stored_state(x) if state is None else state
        spike, new_state = self.step_fn(x, current, **self.params())
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

    def _stored_state(self, like: torch.Tensor) -> NamedTuple:
        if self.state is None:
            return self.init_state(like)
        if self.state.v.shape != like.shape:
            raise ValueError(
                f"{type(self).__name__}: stored state has shape {tuple(self.state.v.shape)} but this step "
                f"has shape {tuple(like.shape)}; call .reset() before starting a new sequence"
            )
        return self.state

    def extra_repr(self) -> str:
        reset = "soft" if self.v_reset is None else f"v_reset={self.v_reset}"
        return (
            f"v_threshold={self.v_threshold}, {reset}, detach_reset={self.detach_reset}, "
            f"surrogate={self.surrogate!r}, backend={self.backend!r}, step_mode={self.step_mode!r}"
        )


def _check_tau(name: str, tau: float) -> float:
    if not tau >= 1.0:
        raise ValueError(f"{name} must be >= 1 (a time constant in steps), got {tau}")
    return float(tau)


class IF(Neuron):
    """Integrate-and-fire: ``H = V + X``."""

    step_fn = staticmethod(F.if_step)
    fused_kind = "if"


class LIF(Neuron):
    """Leaky integrate-and-fire (SpikingJelly's ``LIFNode`` equations; see :func:`snn.functional.lif_charge`).

    Default surrogate ``ATan(alpha=2)`` where SpikingJelly defaults to ``Sigmoid(alpha=4)``; pass
    ``surrogate=snn.surrogate.Sigmoid()`` to reproduce SpikingJelly's gradients exactly.
    """

    step_fn = staticmethod(F.lif_step)
    fused_kind = "lif"

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        decay_input: bool = True,
        detach_reset: bool = False,
        surrogate: SurrogateFunction | None = None,
        backend: str = "auto",
        step_mode: str = "m",
        stateful: bool = False,
    ) -> None:
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, backend, step_mode, stateful)
        self.tau = _check_tau("tau", tau)
        self.decay_input = bool(decay_input)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "tau": self.tau, "decay_input": self.decay_input}

    def fused_params(self) -> dict[str, Any]:
        return {"tau": self.tau, "decay_input": self.decay_input}

    def extra_repr(self) -> str:
        return f"tau={self.tau}, decay_input={self.decay_input}, " + super().extra_repr()


class PLIF(Neuron):
    """Parametric LIF (Fang et al. 2021): ``1/tau = sigmoid(w)`` with ``w`` learned, ``w0 = -log(tau0 - 1)``."""

    step_fn = staticmethod(F.plif_step)
    fused_kind = "plif"

    def __init__(
        self,
        init_tau: float = 2.0,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        decay_input: bool = True,
        detach_reset: bool = False,
        surrogate: SurrogateFunction | None = None,
        backend: str = "auto",
        step_mode: str = "m",
        stateful: bool = False,
    ) -> None:
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, backend, step_mode, stateful)
        self.decay_input = bool(decay_input)
        self.w = nn.Parameter(torch.tensor(F.plif_w_from_tau(init_tau)))

    @property
    def tau(self) -> float:
        """The current time constant ``1 / sigmoid(w)``."""
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def params(self) -> dict[str, Any]:
        return {**super().params(), "w": self.w, "decay_input": self.decay_input}

    def fused_params(self) -> dict[str, Any]:
        return {"tau": self.w, "decay_input": self.decay_input}

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g}, decay_input={self.decay_input}, " + super().extra_repr()


class ALIF(Neuron):
    """Adaptive-threshold LIF (see :func:`snn.functional.alif_step` for the equations)."""

    step_fn = staticmethod(F.alif_step)
    fused_kind = "alif"

    def __init__(
        self,
        tau: float = 2.0,
        tau_adapt: float = 20.0,
        beta: float = 0.2,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        decay_input: bool = True,
        detach_reset: bool = False,
        surrogate: SurrogateFunction | None = None,
        backend: str = "auto",
        step_mode: str = "m",
        stateful: bool = False,
    ) -> None:
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, backend, step_mode, stateful)
        self.tau = _check_tau("tau", tau)
        self.tau_adapt = _check_tau("tau_adapt", tau_adapt)
        self.beta = float(beta)
        self.decay_input = bool(decay_input)

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "tau": self.tau,
            "tau_adapt": self.tau_adapt,
            "beta": self.beta,
            "decay_input": self.decay_input,
        }

    def fused_params(self) -> dict[str, Any]:
        params = self.params()
        return {k: params[k] for k in ("tau", "tau_adapt", "beta", "decay_input")}


class CubaLIF(Neuron):
    """Current-based LIF, SpikingJelly's ``CUBALIFNode`` equations (see :func:`snn.functional.cuba_lif_step`).

    SpikingJelly defaults to ``v_threshold=0.5`` and a ``Rect`` surrogate; we keep the uniform
    ``v_threshold=1.0`` and ``ATan(2)`` of all our neurons.
    """

    step_fn = staticmethod(F.cuba_lif_step)
    fused_kind = "cuba_lif"

    def __init__(
        self,
        current_decay: float = 0.5,
        voltage_decay: float = 0.75,
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate: SurrogateFunction | None = None,
        backend: str = "auto",
        step_mode: str = "m",
        stateful: bool = False,
    ) -> None:
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, backend, step_mode, stateful)
        for name, value in (("current_decay", current_decay), ("voltage_decay", voltage_decay)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.current_decay = float(current_decay)
        self.voltage_decay = float(voltage_decay)

    def params(self) -> dict[str, Any]:
        return {**super().params(), **self.fused_params()}

    def fused_params(self) -> dict[str, Any]:
        return {"current_decay": self.current_decay, "voltage_decay": self.voltage_decay}


class Izhikevich(Neuron):
    """SpikingJelly 2.0's ``IzhikevichNode`` (same equations and defaults; see :func:`snn.functional.izhikevich_step`)."""

    step_fn = staticmethod(F.izhikevich_step)

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
        v_threshold: float = 1.0,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate: SurrogateFunction | None = None,
        backend: str = "auto",
        step_mode: str = "m",
        stateful: bool = False,
    ) -> None:
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, backend, step_mode, stateful)
        if not a0 > 0:
            raise ValueError(f"a0 must be > 0, got {a0}")
        self.tau = _check_tau("tau", tau)
        self.tau_w = _check_tau("tau_w", tau_w)
        self.v_c, self.a0, self.v_rest, self.w_rest = float(v_c), float(a0), float(v_rest), float(w_rest)
        self.a, self.b = float(a), float(b)

    def params(self) -> dict[str, Any]:
        return {
            **super().params(),
            "tau": self.tau,
            "v_c": self.v_c,
            "a0": self.a0,
            "v_rest": self.v_rest,
            "a": self.a,
            "b": self.b,
            "tau_w": self.tau_w,
        }

    def init_state(self, like: torch.Tensor) -> NamedTuple:
        return F.init_state(self.step_fn, like, v_reset=self.v_reset, w_rest=self.w_rest)
