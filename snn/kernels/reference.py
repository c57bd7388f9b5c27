"""Readable plain-torch time loops that the fused Triton neuron kernels are tested against.

Same equations and signature as :func:`snn.kernels.triton_neurons.neuron_multistep_triton`
(SpikingJelly semantics): charge ``H[t]`` from ``V[t-1]`` and ``X[t]``, fire
``S[t] = heaviside(H[t] - V_th)`` (``>= 0`` fires), reset ``V[t]`` from ``H[t]`` and ``S[t]``.
The state is computed in fp32 whatever the input dtype; the backward pass of the heaviside is the
named surrogate derivative. This is slow on purpose: one autograd node per operation per step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# Default alpha of each surrogate (SpikingJelly's defaults).
SURROGATE_DEFAULT_ALPHA: dict[str, float] = {
    "sigmoid": 4.0,
    "atan": 2.0,
    "piecewise_quadratic": 1.0,
    "piecewise_exp": 1.0,
    "soft_sign": 2.0,
    "super_spike": 1.0,
    "erf": 2.0,
    "rect": 1.0,
}
NEURON_KINDS = ("if", "lif", "plif")
# Neurons with a second state variable U: the adaptation trace A (alif) or the synaptic current I (cuba_lif).
TWO_STATE_KINDS = ("alif", "cuba_lif")


def surrogate_derivative(name: str, x: Tensor, alpha: float) -> Tensor:
    """g'(x) of the named surrogate: the gradient the heaviside spike function passes back."""
    if name == "sigmoid":
        s = torch.sigmoid(alpha * x)
        return alpha * s * (1.0 - s)
    if name == "atan":
        return (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * x) ** 2)
    if name == "piecewise_quadratic":
        return torch.clamp(alpha - alpha * alpha * x.abs(), min=0.0)
    if name == "piecewise_exp":
        return (alpha / 2.0) * torch.exp(-alpha * x.abs())
    if name == "soft_sign":
        return 1.0 / (2.0 * alpha * (1.0 / alpha + x.abs()) ** 2)
    if name == "super_spike":
        return alpha / (1.0 + x.abs()) ** 2
    if name == "erf":
        return (alpha / math.sqrt(math.pi)) * torch.exp(-(alpha * alpha) * x * x)
    if name == "rect":
        return alpha * (x.abs() < 0.5 / alpha).to(x.dtype)
    raise ValueError(f"unknown surrogate {name!r}; expected one of {sorted(SURROGATE_DEFAULT_ALPHA)}")


class _SurrogateSpike(torch.autograd.Function):
    """heaviside(x) (x >= 0 fires) forward, surrogate derivative backward."""

    @staticmethod
    def forward(ctx, x: Tensor, name: str, alpha: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.name, ctx.alpha = name, alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        return grad * surrogate_derivative(ctx.name, x, ctx.alpha), None, None


def charge(
    kind: str, x: Tensor, v: Tensor, v_reset: float | None, decay_input: bool, tau: float | Tensor
) -> Tensor:
    """H[t] from V[t-1] and X[t]. For ``plif`` ``tau`` holds ``w`` and ``1/tau = sigmoid(w)``."""
    if kind == "if":
        return v + x
    rest = 0.0 if v_reset is None else v_reset
    if kind in ("lif", "alif"):
        return v + (x - (v - rest)) / tau if decay_input else v - (v - rest) / tau + x
    if kind == "plif":
        k = torch.sigmoid(tau.float())
        return v + (x - (v - rest)) * k if decay_input else v - (v - rest) * k + x
    raise ValueError(f"unknown neuron kind {kind!r}; expected one of {NEURON_KINDS + TWO_STATE_KINDS}")


def reset(
    h: Tensor, spike: Tensor, v_threshold: float | Tensor, v_reset: float | None, detach_reset: bool
) -> Tensor:
    """V[t] after firing: hard reset to ``v_reset``, or soft reset (``v_reset=None``) subtracting ``v_threshold``."""
    if detach_reset:
        spike = spike.detach()
    if v_reset is None:
        return h - spike * v_threshold
    return spike * v_reset + (1.0 - spike) * h


def _multistep(
    kind: str, x_seq: Tensor, v0: Tensor | None, u0: Tensor | None, p: dict
) -> tuple[Tensor, Tensor, Tensor]:
    """The time loop shared by all kinds: (spikes in x's dtype, V[T-1], U[T-1]) with fp32 state."""
    zeros = torch.zeros(x_seq.shape[1:], dtype=torch.float32, device=x_seq.device)
    v = zeros if v0 is None else v0.float()
    u = zeros if u0 is None else u0.float()
    spikes = []
    for x in x_seq.float():
        if kind == "cuba_lif":
            u = u * p["current_decay"] + x
            h = v * p["voltage_decay"] + u
        else:
            h = charge(kind, x, v, p["v_reset"], p["decay_input"], p["tau"])
        theta = p["v_threshold"] + p["beta"] * u if kind == "alif" else p["v_threshold"]
        spike = _SurrogateSpike.apply(h - theta, p["surrogate_name"], p["alpha"])
        v = reset(h, spike, theta, p["v_reset"], p["detach_reset"])
        if kind == "alif":
            u = u - u / p["tau_adapt"] + spike
        spikes.append(spike)
    return torch.stack(spikes).to(x_seq.dtype), v, u


def positive(name: str, value: float) -> float:
    """``value`` as a float; ValueError unless it is finite and positive (time constants)."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and positive, got {value}")
    return float(value)


def decay_parameters(kind: str, tau: float | Tensor) -> tuple[Tensor | None, float]:
    """The fused backends' checked ``(k, tau)`` of an IF/LIF/PLIF layer: PLIF's ``k = sigmoid(w)``
    (0-d fp32, differentiable w.r.t. the tensor ``w`` given as ``tau``) with tau 0; LIF's positive
    float ``tau`` with k None; IF: (None, 0)."""
    if kind == "plif":
        if not isinstance(tau, Tensor) or tau.numel() != 1:
            raise TypeError("for kind='plif', tau must be a 1-element tensor holding w (1/tau = sigmoid(w))")
        return torch.sigmoid(tau.float()).reshape(()), 0.0
    if isinstance(tau, Tensor):
        raise TypeError(f"for kind={kind!r}, tau must be a Python float (a tensor w is for 'plif')")
    return None, positive("tau", tau) if kind == "lif" else 0.0


def neuron_multistep_reference(
    kind: str,
    x_seq: Tensor,
    v0: Tensor | None,
    *,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    decay_input: bool,
    surrogate_name: str,
    alpha: float,
    tau: float | Tensor = 2.0,
) -> tuple[Tensor, Tensor]:
    """Run ``x_seq`` [T, ...] through IF/LIF/PLIF neurons; returns (spikes [T, ...] in x's dtype, v_last fp32)."""
    if kind not in NEURON_KINDS:
        raise ValueError(f"unknown neuron kind {kind!r}; expected one of {NEURON_KINDS}")
    spikes, v_last, _ = _multistep(kind, x_seq, v0, None, dict(locals()))
    return spikes, v_last


def two_state_multistep_reference(
    kind: str,
    x_seq: Tensor,
    v0: Tensor | None,
    u0: Tensor | None,
    *,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    surrogate_name: str,
    alpha: float,
    tau: float = 2.0,
    decay_input: bool = True,
    tau_adapt: float = 20.0,
    beta: float = 0.2,
    current_decay: float = 0.5,
    voltage_decay: float = 0.75,
) -> tuple[Tensor, Tensor, Tensor]:
    """Adaptive LIF (``alif``) or current-based LIF (``cuba_lif``); returns (spikes, v_last, u_last).

    ``alif``: H = LIF charge (tau, decay_input); theta = V_th + beta * A[t-1]; S = heaviside(H - theta);
    reset with theta in place of V_th; A[t] = A[t-1] - A[t-1] / tau_adapt + S.
    ``cuba_lif``: I[t] = I[t-1] * current_decay + X; H = V[t-1] * voltage_decay + I[t]; fire; reset.
    U is A or I; ``u0=None`` starts it at 0.
    """
    if kind not in TWO_STATE_KINDS:
        raise ValueError(f"unknown two-state neuron kind {kind!r}; expected one of {TWO_STATE_KINDS}")
    return _multistep(kind, x_seq, v0, u0, dict(locals()))
