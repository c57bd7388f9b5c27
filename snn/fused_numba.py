"""Fast multi-step IF / LIF / PLIF on CPU: Numba kernels behind one autograd node.

Same signature and semantics as :func:`snn.fused_cpu.neuron_multistep_cpu` (the torch.compile path),
without its per-configuration compilation: the kernels in :mod:`snn.kernels.numba_neurons` are
compiled once per installation (``cache=True``) and serve every neuron configuration, shape and
sequence length. The forward saves only ``H`` (fp32) for the backward, plus references to ``X``
and ``V0`` for PLIF (its ``dH/dk`` needs them; no copies when ``X`` is contiguous fp32).

The state is fp32 whatever the input dtype: bf16/fp16/fp64 inputs are converted to fp32 for the
kernels, spikes and ``dL/dX`` come back in the input's dtype, ``v_last`` in fp32 (as the Triton
kernels). Numba's thread count follows ``torch.get_num_threads()``.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from .kernels.numba_neurons import BLOCK, CHARGE_MODES, SURROGATE_IDS, neuron_backward, neuron_forward
from .kernels.reference import NEURON_KINDS

__all__ = ["KINDS", "neuron_multistep_numba"]

KINDS = NEURON_KINDS


def _f32(t: Tensor) -> np.ndarray:
    """A C-contiguous float32 numpy view of CPU tensor ``t`` (zero-copy when it already is one)."""
    return t.detach().to(torch.float32).contiguous().numpy()


def _set_threads() -> None:
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def _charge_partials(kind: str, decay_input: bool, leak: float) -> tuple[np.float32, np.float32]:
    """``(dH/dV[t-1], dH/dX[t])``: constants of the charge; ``leak`` is 1/tau (LIF) or k (PLIF)."""
    if kind == "if":
        return np.float32(1.0), np.float32(1.0)
    return np.float32(1.0 - leak), np.float32(leak if decay_input else 1.0)


class _NumbaNeuron(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq: Tensor, v0: Tensor, k: Tensor, config: tuple, save_h: bool):
        kind, decay_input, v_threshold, v_reset, _detach, _surrogate, _alpha, tau = config
        x = _f32(x_seq)
        spikes = np.empty(x.shape, np.float32)
        h_seq = np.empty(x.shape if save_h else (0, 0), np.float32)
        v_last = np.empty(x.shape[1], np.float32)
        c = tau if kind == "lif" else float(k)
        rest = 0.0 if v_reset is None else v_reset
        _set_threads()
        neuron_forward(
            x, _f32(v0), spikes, h_seq, v_last, CHARGE_MODES[kind, decay_input], np.float32(rest),
            np.float32(c), np.float32(v_threshold), np.float32(rest), v_reset is None, save_h,
        )  # fmt: skip
        if save_h:
            h = torch.from_numpy(h_seq)
            ctx.save_for_backward(h, x_seq, v0, k) if kind == "plif" else ctx.save_for_backward(h)
        ctx.config = config
        ctx.dtypes = (x_seq.dtype, v0.dtype)
        return torch.from_numpy(spikes).to(x_seq.dtype), torch.from_numpy(v_last)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor | None, grad_v_last: Tensor | None):
        kind, decay_input, v_threshold, v_reset, detach_reset, surrogate_name, alpha, tau = ctx.config
        h, *plif_inputs = ctx.saved_tensors
        n_steps, n = h.shape
        grad_s = np.zeros((n_steps, n), np.float32) if grad_spikes is None else _f32(grad_spikes)
        grad_v = np.zeros(n, np.float32) if grad_v_last is None else _f32(grad_v_last)
        if kind == "plif":
            x_seq, v0, k = plif_inputs
            x, v0_np, leak = _f32(x_seq), _f32(v0), float(k)
        else:
            x = v0_np = np.empty((0, 0), np.float32)
            leak = 1.0 / tau if kind == "lif" else 0.0
        grad_x = np.empty((n_steps, n), np.float32)
        grad_v0 = np.empty(n, np.float32)
        grad_k_partial = np.empty((n + BLOCK - 1) // BLOCK, np.float64)
        rest = 0.0 if v_reset is None else v_reset
        _set_threads()
        neuron_backward(
            grad_s, grad_v, h.numpy(), x, v0_np.reshape(-1), grad_x, grad_v0, grad_k_partial, kind == "plif",
            decay_input, *_charge_partials(kind, decay_input, leak), np.float32(v_threshold),
            np.float32(rest), np.float32(rest), v_reset is None, detach_reset, SURROGATE_IDS[surrogate_name],
            np.float32(alpha),
        )  # fmt: skip
        grad_k = torch.tensor(grad_k_partial.sum(), dtype=torch.float32) if kind == "plif" else None
        x_dtype, v0_dtype = ctx.dtypes
        return (
            torch.from_numpy(grad_x).to(x_dtype),
            torch.from_numpy(grad_v0).to(v0_dtype),
            grad_k,
            None,
            None,
        )


def neuron_multistep_numba(
    kind: str,
    x_seq: Tensor,
    v0: Tensor | None,
    *,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    detach_reset: bool = False,
    decay_input: bool = True,
    surrogate_name: str = "atan",
    alpha: float = 2.0,
    tau: float | Tensor = 2.0,
) -> tuple[Tensor, Tensor]:
    """Run ``kind`` ("if", "lif", "plif") over CPU tensor ``x_seq`` ``[T, ...]``; returns ``(spikes, v_last)``.

    ``v0`` is the initial membrane potential (one time step's shape), None for the resting state
    (``v_reset``, 0 for soft reset). ``tau`` is the LIF time constant (a float) or, for PLIF, the
    learnable 1-element tensor ``w`` with ``1/tau = sigmoid(w)``. Differentiable w.r.t. ``x_seq``,
    ``v0`` and ``w``. Spikes come back in ``x_seq``'s dtype, ``v_last`` in fp32.
    """
    if kind not in KINDS:
        raise ValueError(f"neuron_multistep_numba: kind must be one of {KINDS}, got {kind!r}")
    if surrogate_name not in SURROGATE_IDS:
        raise ValueError(f"surrogate_name must be one of {tuple(SURROGATE_IDS)}, got {surrogate_name!r}")
    if x_seq.ndim < 1 or x_seq.shape[0] == 0:
        raise ValueError(f"x_seq must be time-major [T, ...] with T >= 1, got shape {tuple(x_seq.shape)}")
    if not x_seq.is_floating_point():
        raise ValueError(f"x_seq must be a floating-point tensor, got {x_seq.dtype}")
    if v0 is None:
        v0 = x_seq.new_full(x_seq.shape[1:], 0.0 if v_reset is None else float(v_reset), dtype=torch.float32)
    if v0.shape != x_seq.shape[1:]:
        raise ValueError(f"v0 shape {tuple(v0.shape)} does not match one time step {tuple(x_seq.shape[1:])}")
    if x_seq.device.type != "cpu" or v0.device.type != "cpu":
        raise ValueError(
            f"the numba backend runs on CPU tensors, got x_seq on {x_seq.device}, v0 on {v0.device}"
        )
    if kind == "plif":
        if not isinstance(tau, Tensor) or tau.numel() != 1:
            raise TypeError("for kind='plif', tau must be a 1-element tensor holding w (1/tau = sigmoid(w))")
        k, tau_value = torch.sigmoid(tau.to(torch.float32)).reshape(()), 0.0
    else:
        if isinstance(tau, Tensor):
            raise TypeError(f"for kind={kind!r}, tau must be a Python float (a tensor w is for 'plif')")
        k, tau_value = torch.zeros(()), float(tau) if kind == "lif" else 0.0
        if kind == "lif" and not tau_value > 0:
            raise ValueError(f"tau must be positive, got {tau}")
    config = (
        kind,
        bool(decay_input) if kind != "if" else True,
        float(v_threshold),
        None if v_reset is None else float(v_reset),
        bool(detach_reset),
        surrogate_name,
        float(alpha),
        tau_value,
    )
    save_h = torch.is_grad_enabled() and (x_seq.requires_grad or v0.requires_grad or k.requires_grad)
    shape = x_seq.shape
    spikes, v_last = _NumbaNeuron.apply(x_seq.reshape(shape[0], -1), v0.reshape(-1), k, config, save_h)
    return spikes.reshape(shape), v_last.reshape(shape[1:])
