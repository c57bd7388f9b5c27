"""The "numba" backend: IF / LIF / PLIF / ALIF / CUBA LIF on CPU, Numba kernels behind one autograd node.

Same semantics as :func:`snn.functional.multi_step` (the torch backend), without the cpu backend's
per-configuration compilation: the kernels in :mod:`snn.kernels.numba_neurons` are compiled once
per installation (``cache=True``) and serve every neuron configuration, shape and sequence
length. IF/LIF/PLIF save references to ``X`` and ``V0`` (no copies when ``X`` is contiguous fp32)
and the backward reruns the forward from them (bit-identical ``H``, kept in cache rather than
written out and read back: less memory traffic and one ``[T, N]`` buffer fewer); ALIF and CUBA LIF
save ``H`` (fp32) and ALIF its per-step threshold.

The state is fp32 whatever the input dtype: bf16/fp16/fp64 inputs are converted to fp32 for the
kernels, spikes and ``dL/dX`` come back in the input's dtype, the final state in fp32 (as the
Triton kernels). Numba's thread count follows ``torch.get_num_threads()``.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
import torch
from torch import Tensor

from .. import functional as F
from ..kernels.numba_neurons import (
    BLOCK,
    CHARGE_MODES,
    SURROGATE_IDS,
    neuron_backward,
    neuron_forward,
    two_state_backward,
    two_state_forward,
)
from ..params import NeuronParameters
from .dynamo import opaque_to_dynamo
from .fused import FUSED_KINDS, ONE_STATE_KINDS, TWO_STATE_KINDS, FusedConfig, fused_config, plif_k

__all__ = ["KINDS", "multi_step", "neuron_maxpool2d"]

KINDS = FUSED_KINDS


def _f32(t: Tensor) -> np.ndarray:
    """A C-contiguous float32 numpy view of CPU tensor ``t`` (zero-copy when it already is one).

    A copy is made by numpy rather than torch: numpy puts large arrays on transparent huge pages,
    which spares most of the page faults of writing a freshly allocated buffer.
    """
    return np.ascontiguousarray(t.detach().to(torch.float32).numpy())


def _steps_f32(x_seq: Tensor) -> np.ndarray:
    """:func:`_f32` of the kernels' input ``[T, N]``, except that an fp32 input broadcast over time
    (stride 0 along T, each step contiguous: a static input expanded over the steps) stays a view:
    the kernel reads its one step T times instead of a ``[T, N]`` copy (the same values)."""
    if x_seq.dtype == torch.float32 and x_seq.stride() == (0, 1):
        return x_seq.detach().numpy()
    return _f32(x_seq)


def _memory_order(x_seq: Tensor) -> tuple[int, ...]:
    """The dims of ``x_seq`` outermost first in memory, time (dim 0) first, when each step is dense in
    that order (a channels_last convolution's output unfolded to ``[T, B, C, H, W]``) and time is
    outermost or broadcast (stride 0: a static input expanded over the steps), else the identity.
    Neurons are elementwise within a step, so the kernels run on the permuted view (contiguous, or
    copied step by step in that order when broadcast) and the results are permuted back: spikes
    keep the layout of the input's steps."""
    identity = tuple(range(x_seq.ndim))
    if x_seq.ndim < 2:
        return identity
    step = x_seq[0]
    try:
        step_order = tuple(step.dim_order())
    except RuntimeError:  # strides no permutation explains (overlapping or gapped): copy as before
        return identity
    dense = step.permute(step_order).is_contiguous()
    if not dense or (x_seq.shape[0] > 1 and x_seq.stride(0) not in (0, step.numel())):
        return identity
    return (0, *(d + 1 for d in step_order))


def _inverse(order: tuple[int, ...]) -> list[int]:
    return sorted(range(len(order)), key=order.__getitem__)


def _set_threads() -> None:
    """Run the kernels on ``torch.get_num_threads()`` threads (at most Numba's pool size).

    Starting Numba's OpenMP pool sets the process-wide OpenMP thread count, which torch reads as
    its own: torch's setting is put back so that using this backend never changes it.
    """
    threads = torch.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _charge_partials(kind: str, decay_input: bool, rate: float) -> tuple[np.float32, np.float32]:
    """``(dH/dV[t-1], dH/dX[t])``: constants of the charge; ``rate`` is 1/tau (LIF) or k (PLIF)."""
    if kind == "if":
        return np.float32(1.0), np.float32(1.0)
    return np.float32(1.0 - rate), np.float32(rate if decay_input else 1.0)


def _blocking(pool: tuple[int, int] | None) -> tuple[int, int, int]:
    """``(block, pool_width, pool_channels)`` of the kernels: ``BLOCK`` neurons per block without
    pooling; with a 2x2 max-pool of images ``[..., width, channels]``, whole pairs of image rows."""
    if pool is None:
        return BLOCK, 0, 0
    width, channels = pool
    pair = 2 * width * channels
    return pair * max(1, BLOCK // pair), width, channels


class _NumbaNeuron(torch.autograd.Function):
    """IF / LIF / PLIF: ``(x_seq [T, N], v0 [N], k) -> (spikes, v_last)``, optionally 2x2 max-pooled."""

    @staticmethod
    def forward(
        ctx, x_seq: Tensor, v0: Tensor, k: Tensor, config: FusedConfig, save_inputs: bool, pool: tuple | None
    ):
        x = _steps_f32(x_seq)
        n_steps, n = x.shape
        spikes = np.empty((n_steps, n // 4 if pool else n), np.float32)
        v_last = np.empty(n, np.float32)
        c = config.tau if config.kind == "lif" else float(k)
        f32 = np.float32
        _set_threads()
        neuron_forward(
            x, _f32(v0), spikes, v_last, CHARGE_MODES[config.kind, config.decay_input], f32(config.v_leak),
            f32(config.rest), f32(c), f32(config.v_threshold), config.soft_reset, *_blocking(pool),
        )  # fmt: skip
        if save_inputs:
            ctx.save_for_backward(x_seq, v0, k)
        ctx.config, ctx.pool = config, pool
        ctx.dtypes = (x_seq.dtype, v0.dtype)
        return torch.from_numpy(spikes).to(x_seq.dtype), torch.from_numpy(v_last)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor | None, grad_v_last: Tensor | None):
        config: FusedConfig = ctx.config
        kind = config.kind
        x_seq, v0, k = ctx.saved_tensors
        n_steps, n = x_seq.shape
        block, pool_width, pool_channels = _blocking(ctx.pool)
        n_out = n // 4 if ctx.pool else n
        grad_s = np.zeros((n_steps, n_out), np.float32) if grad_spikes is None else _f32(grad_spikes)
        grad_v = np.zeros(n, np.float32) if grad_v_last is None else _f32(grad_v_last)
        rate = float(k) if kind == "plif" else 1.0 / config.tau if kind == "lif" else 0.0
        c = config.tau if kind == "lif" else rate
        grad_x = np.empty((n_steps, n), np.float32)
        grad_v0 = np.empty(n, np.float32)
        grad_k_partial = np.empty((n + block - 1) // block, np.float64)
        f32 = np.float32
        _set_threads()
        neuron_backward(
            grad_s, grad_v, _f32(x_seq), _f32(v0), grad_x, grad_v0, grad_k_partial,
            CHARGE_MODES[kind, config.decay_input], f32(c), kind == "plif", config.decay_input,
            *_charge_partials(kind, config.decay_input, rate), f32(config.v_threshold), f32(config.v_leak),
            f32(config.rest), config.soft_reset, config.detach_reset, SURROGATE_IDS[config.surrogate],
            f32(config.alpha), block, pool_width, pool_channels,
        )  # fmt: skip
        grad_k = torch.tensor(grad_k_partial.sum(), dtype=torch.float32) if kind == "plif" else None
        x_dtype, v0_dtype = ctx.dtypes
        return torch.from_numpy(grad_x).to(x_dtype), torch.from_numpy(grad_v0).to(v0_dtype), grad_k, None, None, None


class _NumbaTwoState(torch.autograd.Function):
    """ALIF / CUBA LIF: ``(x_seq [T, N], v0 [N], u0 [N]) -> (spikes, v_last, u_last)``."""

    @staticmethod
    def forward(ctx, x_seq: Tensor, v0: Tensor, u0: Tensor, config: FusedConfig, save_h: bool):
        x = _f32(x_seq)
        alif = config.kind == "alif"
        spikes = np.empty(x.shape, np.float32)
        h_seq = np.empty(x.shape if save_h else (0, 0), np.float32)
        theta_seq = np.empty(x.shape if save_h and alif else (0, 0), np.float32)
        v_last, u_last = np.empty(x.shape[1], np.float32), np.empty(x.shape[1], np.float32)
        f32 = np.float32
        _set_threads()
        two_state_forward(
            x, _f32(v0), _f32(u0), spikes, h_seq, theta_seq, v_last, u_last, alif,
            CHARGE_MODES["lif", config.decay_input], f32(config.tau), f32(config.tau_adapt), f32(config.beta),
            f32(config.current_decay), f32(config.voltage_decay), f32(config.v_threshold), f32(config.v_leak),
            f32(config.rest), config.soft_reset, save_h,
        )  # fmt: skip
        if save_h:
            ctx.save_for_backward(torch.from_numpy(h_seq), torch.from_numpy(theta_seq))
        ctx.config = config
        ctx.dtypes = (x_seq.dtype, v0.dtype, u0.dtype)
        return torch.from_numpy(spikes).to(x_seq.dtype), torch.from_numpy(v_last), torch.from_numpy(u_last)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor | None, grad_v_last: Tensor | None, grad_u_last: Tensor | None):
        config: FusedConfig = ctx.config
        h, theta = ctx.saved_tensors
        n_steps, n = h.shape
        grad_s = np.zeros((n_steps, n), np.float32) if grad_spikes is None else _f32(grad_spikes)
        grad_v = np.zeros(n, np.float32) if grad_v_last is None else _f32(grad_v_last)
        grad_u = np.zeros(n, np.float32) if grad_u_last is None else _f32(grad_u_last)
        grad_x, grad_v0, grad_u0 = np.empty((n_steps, n), np.float32), np.empty(n, np.float32), np.empty(n, np.float32)
        alif = config.kind == "alif"
        if alif:
            dh_dv, dh_dx = _charge_partials("lif", config.decay_input, 1.0 / config.tau)
        else:
            dh_dv, dh_dx = np.float32(config.voltage_decay), np.float32(1.0)
        f32 = np.float32
        _set_threads()
        two_state_backward(
            grad_s, grad_v, grad_u, h.numpy(), theta.numpy(), grad_x, grad_v0, grad_u0, alif, dh_dv, dh_dx,
            f32(config.tau_adapt), f32(config.beta), f32(config.current_decay), f32(config.v_threshold),
            f32(config.rest), config.soft_reset, config.detach_reset, SURROGATE_IDS[config.surrogate],
            f32(config.alpha),
        )  # fmt: skip
        grads = (
            torch.from_numpy(g).to(d) for g, d in zip((grad_x, grad_v0, grad_u0), ctx.dtypes, strict=True)
        )
        return *grads, None, None


def _checked_state(x_seq: Tensor, state: NamedTuple | None, p: NeuronParameters) -> NamedTuple:
    """``state`` (``p``'s initial state when None), checked against ``x_seq``; ValueError on bad input."""
    if x_seq.ndim < 1 or x_seq.shape[0] == 0:
        raise ValueError(f"x_seq must be time-major [T, ...] with T >= 1, got shape {tuple(x_seq.shape)}")
    if not x_seq.is_floating_point():
        raise ValueError(f"x_seq must be a floating-point tensor, got {x_seq.dtype}")
    if x_seq.device.type != "cpu":
        raise ValueError(f"the numba backend runs on CPU tensors, got x_seq on {x_seq.device}")
    if state is None:
        return F.init_state(p, x_seq[0])
    for name, tensor in zip(state._fields, state, strict=True):
        if tensor.shape != x_seq.shape[1:]:
            raise ValueError(
                f"state.{name} shape {tuple(tensor.shape)} does not match one time step {tuple(x_seq.shape[1:])}"
            )
        if tensor.device.type != "cpu":
            raise ValueError(f"the numba backend runs on CPU tensors, got state.{name} on {tensor.device}")
    return state


def _needs_grad(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


@opaque_to_dynamo  # Dynamo must not trace the Numba calls
def multi_step(x_seq: Tensor, state: NamedTuple | None, p: NeuronParameters) -> tuple[Tensor, NamedTuple]:
    """Run ``p``'s neurons (IF, LIF, PLIF, ALIF or CubaLIF) over CPU tensor ``x_seq`` ``[T, ...]``.

    Args:
        x_seq: input, time-major; any floating dtype (computed in fp32), any memory layout.
        state: the kind's state NamedTuple (one time step's shape), None for ``p``'s initial state.
        p: the parameter object (float fields; PLIF's ``w`` a one-element tensor).

    Returns:
        ``(spikes, final_state)``: spikes in ``x_seq``'s dtype and memory layout, the state in fp32.
        Differentiable w.r.t. ``x_seq``, the initial state and PLIF's ``w``.
    """
    config = fused_config(p, KINDS, "numba")
    state = _checked_state(x_seq, state, p)
    order = _memory_order(x_seq)
    x_perm, state_order = x_seq.permute(order), [d - 1 for d in order[1:]]
    flat = [s.permute(state_order).reshape(-1) for s in state]
    if config.kind in TWO_STATE_KINDS:
        spikes, *last = _NumbaTwoState.apply(
            x_perm.reshape(x_perm.shape[0], -1), *flat, config, _needs_grad(x_seq, *state)
        )
    else:
        k = plif_k(p, x_seq.device)
        spikes, *last = _NumbaNeuron.apply(
            x_perm.reshape(x_perm.shape[0], -1), *flat, k, config, _needs_grad(x_seq, *state, k), None
        )
    state_inverse = _inverse(state_order)
    return (
        spikes.reshape(x_perm.shape).permute(_inverse(order)),
        type(state)(*(s.reshape(x_perm.shape[1:]).permute(state_inverse) for s in last)),
    )


CHANNELS_LAST_5D = (0, 1, 3, 4, 2)  # memory order of a channels_last [T*B, C, H, W] unfolded to [T, B, ...]


@opaque_to_dynamo  # Dynamo must not trace the Numba calls
def neuron_maxpool2d(x_seq: Tensor, state: NamedTuple | None, p: NeuronParameters) -> tuple[Tensor, NamedTuple]:
    """:func:`multi_step` of IF/LIF/PLIF neurons followed by ``max_pool2d(spikes, 2)``, in one kernel.

    ``x_seq`` is ``[T, B, C, H, W]`` with even ``H`` and ``W``; returns the pooled spikes
    ``[T, B, C, H/2, W/2]`` (same values and gradients as the neuron then ``nn.MaxPool2d(2)``,
    whose gradient goes to the first maximum of each window) and the final state ``[B, C, H, W]``.
    The full-size spikes and the pool's indices are never stored: the backward recomputes the
    spikes. Contiguous and channels_last layouts run as they are, others are copied.

    Args:
        x_seq: Input currents ``[T, B, C, H, W]`` (CPU tensor, even ``H`` and ``W``).
        state: The neurons' state at the first step (``[B, C, H, W]`` tensors), or None to start from rest.
        p: The IF, LIF or PLIF parameters (float fields and a built-in surrogate, as :func:`multi_step` needs).
    """
    if x_seq.ndim != 5 or x_seq.shape[-1] % 2 or x_seq.shape[-2] % 2:
        raise ValueError(f"x_seq must be [T, B, C, H, W] with even H and W, got shape {tuple(x_seq.shape)}")
    config = fused_config(p, ONE_STATE_KINDS, "numba")
    state = _checked_state(x_seq, state, p)
    order = _memory_order(x_seq)
    if order != CHANNELS_LAST_5D:
        order, x_seq = tuple(range(5)), x_seq.contiguous()
    x_perm, state_order = x_seq.permute(order), [d - 1 for d in order[1:]]
    width, channels = (
        (x_perm.shape[3], x_perm.shape[4]) if order == CHANNELS_LAST_5D else (x_perm.shape[4], 1)
    )
    k = plif_k(p, x_seq.device)
    pooled, v_last = _NumbaNeuron.apply(
        x_perm.reshape(x_perm.shape[0], -1), state.v.permute(state_order).reshape(-1), k, config,
        _needs_grad(x_seq, state.v, k), (width, channels),
    )  # fmt: skip
    steps, batch, channels_in, height, width_in = x_seq.shape
    pooled_shape = [steps, batch, channels_in, height // 2, width_in // 2]
    return (
        pooled.reshape([pooled_shape[d] for d in order]).permute(_inverse(order)),
        type(state)(v_last.reshape(x_perm.shape[1:]).permute(_inverse(state_order))),
    )
