"""What the fused backends (numba, cpu, triton) share: a parameter object as their kernels take it.

The kernels are compiled for scalar arguments (Numba and Triton arguments, torch.compile guards):
:func:`fused_config` turns a parameter object of :mod:`snn.params` into a :class:`FusedConfig` of
Python scalars, or raises saying why the kernels cannot run it. They run floats in every field,
PLIF's one-element ``w`` (passed beside the config, since gradients flow to it), any ``v_init``
(it only shapes the initial state) and ``v_leak`` for LIF, PLIF and ALIF; other tensor fields and
CubaLIF's ``v_leak`` run on the torch backend.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..params import (
    ALIFParameters,
    CubaLIFParameters,
    LeakyParameters,
    LIFParameters,
    NeuronParameters,
    PLIFParameters,
)
from ..surrogate import NAMES as SURROGATE_NAMES

__all__ = [
    "ONE_STATE_KINDS",
    "TWO_STATE_KINDS",
    "FusedConfig",
    "unsupported",
    "check_fusable",
    "fused_config",
    "plif_k",
]

ONE_STATE_KINDS = ("if", "lif", "plif")
# Neurons with a second state U: the adaptation trace A (alif) or the synaptic current I (cuba_lif).
TWO_STATE_KINDS = ("alif", "cuba_lif")
FUSED_KINDS = ONE_STATE_KINDS + TWO_STATE_KINDS  # what the fused backends (numba, triton) run


class FusedConfig(NamedTuple):
    """A neuron configuration as plain scalars (hashable: it keys the cpu backend's compiled loops).

    ``v_leak`` is the leak target of LIF, PLIF and ALIF (the resting potential for the others);
    ``tau`` is LIF's and ALIF's time constant (0 otherwise; PLIF's ``w`` travels as a tensor);
    fields a kind does not have keep their defaults. A NamedTuple rather than a frozen dataclass
    because it is built on every call and a NamedTuple builds several times faster.

    Attributes:
        kind: The neuron kind, one of :data:`ONE_STATE_KINDS` or :data:`TWO_STATE_KINDS`.
        v_threshold: The firing threshold ``V_th``.
        v_reset: The hard reset's potential, or None for the soft reset (subtract ``V_th``).
        v_leak: The leak target (LIF, PLIF, ALIF) or the resting potential (the others).
        detach_reset: Keep the reset out of the gradient.
        surrogate: Name of the built-in surrogate gradient (a key of ``SURROGATE_NAMES``).
        alpha: The surrogate's sharpness.
        decay_input: LIF/PLIF: the input is scaled by the leak as well (SpikingJelly's ``decay_input``).
        tau: LIF's and ALIF's membrane time constant in steps (0 for other kinds).
        tau_adapt: ALIF's adaptation time constant in steps.
        beta: ALIF's adaptation strength (threshold added per unit of the trace).
        current_decay: CubaLIF's synaptic current decay per step (0..1).
        voltage_decay: CubaLIF's membrane voltage decay per step (0..1).
    """

    kind: str
    v_threshold: float
    v_reset: float | None
    v_leak: float
    detach_reset: bool
    surrogate: str
    alpha: float
    decay_input: bool = True
    tau: float = 0.0
    tau_adapt: float = 1.0
    beta: float = 0.0
    current_decay: float = 0.0
    voltage_decay: float = 0.0

    @property
    def soft_reset(self) -> bool:
        """True when spikes subtract ``v_threshold`` (``v_reset`` is None) instead of resetting to a potential."""
        return self.v_reset is None

    @property
    def rest(self) -> float:
        """The hard-reset potential (0 with soft reset, where the reset does not use it)."""
        return 0.0 if self.v_reset is None else self.v_reset


def unsupported(p: NeuronParameters, kinds: tuple[str, ...]) -> str | None:
    """Why fused kernels covering ``kinds`` cannot run ``p``; None when they can."""
    if p.kind not in kinds:
        return f"{p.kind} neurons"
    if p.surrogate.name not in SURROGATE_NAMES:
        return f"the surrogate {p.surrogate!r}"
    if p.strict:
        return "the strict threshold H > v_threshold"
    tensors = [name for name in p.tensor_fields() if name not in ("v_init", "w")]
    if isinstance(p, PLIFParameters) and torch.as_tensor(p.w).numel() != 1:
        tensors.append("w")
    if tensors:
        return f"tensor fields {', '.join(tensors)}"
    if isinstance(p, CubaLIFParameters) and p.v_leak is not None:
        return "CubaLIF's v_leak"
    return None


def check_fusable(p: NeuronParameters, kinds: tuple[str, ...], backend: str) -> None:
    """Raise ValueError naming the reason when ``backend`` (whose kernels cover ``kinds``) cannot run ``p``."""
    reason = unsupported(p, kinds)
    if reason is not None:
        raise ValueError(
            f"backend={backend!r} supports {', '.join(kinds)} neurons with a built-in surrogate and float "
            f"fields; this neuron ({reason}) runs on backend='torch'"
        )


def fused_config(p: NeuronParameters, kinds: tuple[str, ...], backend: str) -> FusedConfig:
    """``p`` as :class:`FusedConfig`; ValueError when ``backend``'s kernels (covering ``kinds``) cannot run it."""
    check_fusable(p, kinds, backend)
    extra: dict[str, float | bool] = {}
    if isinstance(p, (LIFParameters, PLIFParameters)):
        extra["decay_input"] = bool(p.decay_input)
    if isinstance(p, LIFParameters):
        extra["tau"] = float(p.tau)
    if isinstance(p, ALIFParameters):
        extra.update(tau_adapt=float(p.tau_adapt), beta=float(p.beta))
    if isinstance(p, CubaLIFParameters):
        extra.update(current_decay=float(p.current_decay), voltage_decay=float(p.voltage_decay))
    leaks = isinstance(p, LeakyParameters) and not isinstance(p, CubaLIFParameters)
    return FusedConfig(
        kind=p.kind,
        v_threshold=float(p.v_threshold),
        v_reset=None if p.v_reset is None else float(p.v_reset),
        v_leak=float(p.leak_target if leaks else p.rest),
        detach_reset=bool(p.detach_reset),
        surrogate=p.surrogate.name,
        alpha=float(p.surrogate.alpha),
        **extra,
    )


def plif_k(p: NeuronParameters, device: torch.device) -> torch.Tensor:
    """PLIF's leak ``k = sigmoid(w)`` as a 0-d fp32 tensor (differentiable w.r.t. ``w``); 0 for other kinds.

    Args:
        p: The neuron's parameters; only :class:`PLIFParameters` carry ``w``.
        device: Where the returned tensor lives (the device of the input sequence).
    """
    if not isinstance(p, PLIFParameters):
        return torch.zeros((), device=device)
    return torch.sigmoid(torch.as_tensor(p.w).float()).reshape(()).to(device)
