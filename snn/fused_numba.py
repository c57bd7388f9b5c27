"""Fast multi-step IF / LIF / PLIF / ALIF / CUBA LIF on CPU: Numba kernels behind one autograd node.

Same signatures and semantics as :func:`snn.fused_cpu.neuron_multistep_cpu` (the torch.compile path)
and :func:`snn.kernels.triton_neurons.two_state_multistep_triton` (ALIF, CUBA LIF),
without its per-configuration compilation: the kernels in :mod:`snn.kernels.numba_neurons` are
compiled once per installation (``cache=True``) and serve every neuron configuration, shape and
sequence length. IF/LIF/PLIF save references to ``X`` and ``V0`` (no copies when ``X`` is
contiguous fp32) and the backward reruns the forward from them (bit-identical ``H``, kept in cache
rather than written out and read back: less memory traffic and one ``[T, N]`` buffer fewer);
ALIF and CUBA LIF save ``H`` (fp32) and ALIF its per-step threshold.

The state is fp32 whatever the input dtype: bf16/fp16/fp64 inputs are converted to fp32 for the
kernels, spikes and ``dL/dX`` come back in the input's dtype, ``v_last`` in fp32 (as the Triton
kernels). Numba's thread count follows ``torch.get_num_threads()``.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from .kernels.numba_neurons import (
    BLOCK,
    CHARGE_MODES,
    SURROGATE_IDS,
    neuron_backward,
    neuron_forward,
    two_state_backward,
    two_state_forward,
)
from .kernels.reference import NEURON_KINDS, TWO_STATE_KINDS, decay_parameters, positive

__all__ = [
    "KINDS",
    "TWO_STATE_KINDS",
    "neuron_multistep_numba",
    "neuron_maxpool2d_numba",
    "two_state_multistep_numba",
]

KINDS = NEURON_KINDS


def _f32(t: Tensor) -> np.ndarray:
    """A C-contiguous float32 numpy view of CPU tensor ``t`` (zero-copy when it already is one)."""
    return t.detach().to(torch.float32).contiguous().numpy()


def _memory_order(x_seq: Tensor) -> tuple[int, ...]:
    """The dims of ``x_seq`` outermost first in memory when time (dim 0) is outermost and ``x_seq`` is
    dense in that order (a channels_last convolution's output unfolded to ``[T, B, C, H, W]``), else
    the identity. Neurons are elementwise within a step, so the kernels run on the permuted view
    (contiguous, no copy) and the results are permuted back: spikes keep the input's layout."""
    identity = tuple(range(x_seq.ndim))
    try:
        order = tuple(x_seq.dim_order())
    except RuntimeError:  # strides no permutation explains (overlapping or gapped): copy as before
        return identity
    if order[0] != 0 or not x_seq.permute(order).is_contiguous():
        return identity
    return order


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


def _charge_partials(kind: str, decay_input: bool, leak: float) -> tuple[np.float32, np.float32]:
    """``(dH/dV[t-1], dH/dX[t])``: constants of the charge; ``leak`` is 1/tau (LIF) or k (PLIF)."""
    if kind == "if":
        return np.float32(1.0), np.float32(1.0)
    return np.float32(1.0 - leak), np.float32(leak if decay_input else 1.0)


def _blocking(pool: tuple[int, int] | None) -> tuple[int, int, int]:
    """``(block, pool_width, pool_channels)`` of the kernels: ``BLOCK`` neurons per block without
    pooling; with a 2x2 max-pool of images ``[..., width, channels]``, whole pairs of image rows."""
    if pool is None:
        return BLOCK, 0, 0
    width, channels = pool
    pair = 2 * width * channels
    return pair * max(1, BLOCK // pair), width, channels


class _NumbaNeuron(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq: Tensor, v0: Tensor, k: Tensor, config: tuple, save_h: bool, pool: tuple | None):
        kind, decay_input, v_threshold, v_reset, _detach, _surrogate, _alpha, tau = config
        x = _f32(x_seq)
        n_steps, n = x.shape
        spikes = np.empty((n_steps, n // 4 if pool else n), np.float32)
        v_last = np.empty(n, np.float32)
        c = tau if kind == "lif" else float(k)
        rest = 0.0 if v_reset is None else v_reset
        _set_threads()
        neuron_forward(
            x, _f32(v0), spikes, v_last, CHARGE_MODES[kind, decay_input], np.float32(rest), np.float32(c),
            np.float32(v_threshold), v_reset is None, *_blocking(pool),
        )  # fmt: skip
        if save_h:
            ctx.save_for_backward(x_seq, v0, k)
        ctx.config, ctx.pool = config, pool
        ctx.dtypes = (x_seq.dtype, v0.dtype)
        return torch.from_numpy(spikes).to(x_seq.dtype), torch.from_numpy(v_last)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor | None, grad_v_last: Tensor | None):
        kind, decay_input, v_threshold, v_reset, detach_reset, surrogate_name, alpha, tau = ctx.config
        x_seq, v0, k = ctx.saved_tensors
        n_steps, n = x_seq.shape
        block, pool_width, pool_channels = _blocking(ctx.pool)
        n_out = n // 4 if ctx.pool else n
        grad_s = np.zeros((n_steps, n_out), np.float32) if grad_spikes is None else _f32(grad_spikes)
        grad_v = np.zeros(n, np.float32) if grad_v_last is None else _f32(grad_v_last)
        leak = float(k) if kind == "plif" else 1.0 / tau if kind == "lif" else 0.0
        c = tau if kind == "lif" else leak
        grad_x = np.empty((n_steps, n), np.float32)
        grad_v0 = np.empty(n, np.float32)
        grad_k_partial = np.empty((n + block - 1) // block, np.float64)
        rest = 0.0 if v_reset is None else v_reset
        _set_threads()
        neuron_backward(
            grad_s, grad_v, _f32(x_seq), _f32(v0), grad_x, grad_v0, grad_k_partial, CHARGE_MODES[kind, decay_input],
            np.float32(c), kind == "plif", decay_input, *_charge_partials(kind, decay_input, leak), np.float32(v_threshold),
            np.float32(rest), v_reset is None, detach_reset, SURROGATE_IDS[surrogate_name],
            np.float32(alpha), block, pool_width, pool_channels,
        )  # fmt: skip
        grad_k = torch.tensor(grad_k_partial.sum(), dtype=torch.float32) if kind == "plif" else None
        x_dtype, v0_dtype = ctx.dtypes
        return (
            torch.from_numpy(grad_x).to(x_dtype),
            torch.from_numpy(grad_v0).to(v0_dtype),
            grad_k,
            None,
            None,
            None,
        )


def _check_common(fn: str, kind: str, kinds: tuple[str, ...], x_seq: Tensor, surrogate_name: str) -> None:
    if kind not in kinds:
        raise ValueError(f"{fn}: kind must be one of {kinds}, got {kind!r}")
    if surrogate_name not in SURROGATE_IDS:
        raise ValueError(f"surrogate_name must be one of {tuple(SURROGATE_IDS)}, got {surrogate_name!r}")
    if x_seq.ndim < 1 or x_seq.shape[0] == 0:
        raise ValueError(f"x_seq must be time-major [T, ...] with T >= 1, got shape {tuple(x_seq.shape)}")
    if not x_seq.is_floating_point():
        raise ValueError(f"x_seq must be a floating-point tensor, got {x_seq.dtype}")
    if x_seq.device.type != "cpu":
        raise ValueError(f"the numba backend runs on CPU tensors, got x_seq on {x_seq.device}")


def _initial_state(name: str, state: Tensor | None, x_seq: Tensor, rest: float) -> Tensor:
    """``state``, checked to be one CPU time step of ``x_seq``; a ``rest``-filled fp32 one when None."""
    if state is None:
        return torch.full(x_seq.shape[1:], rest, dtype=torch.float32)
    if state.shape != x_seq.shape[1:]:
        raise ValueError(
            f"{name} shape {tuple(state.shape)} does not match one time step {tuple(x_seq.shape[1:])}"
        )
    if state.device.type != "cpu":
        raise ValueError(f"the numba backend runs on CPU tensors, got {name} on {state.device}")
    return state


def _neuron_inputs(
    fn: str,
    kind: str,
    x_seq: Tensor,
    v0: Tensor | None,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    decay_input: bool,
    surrogate_name: str,
    alpha: float,
    tau: float | Tensor,
) -> tuple[Tensor, Tensor, tuple, bool]:
    """Checked ``(v0, k, config, save_h)`` for :class:`_NumbaNeuron` (see :func:`neuron_multistep_numba`)."""
    _check_common(fn, kind, KINDS, x_seq, surrogate_name)
    v0 = _initial_state("v0", v0, x_seq, 0.0 if v_reset is None else float(v_reset))
    k, tau_value = decay_parameters(kind, tau)
    k = torch.zeros(()) if k is None else k
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
    return v0, k, config, save_h


@torch.compiler.disable  # opaque to torch.compile: Dynamo must not trace the Numba calls
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
    ``v0`` and ``w``. Spikes come back in ``x_seq``'s dtype and memory layout, ``v_last`` in fp32.
    """
    v0, k, config, save_h = _neuron_inputs(
        "neuron_multistep_numba", kind, x_seq, v0, v_threshold, v_reset, detach_reset, decay_input,
        surrogate_name, alpha, tau,
    )  # fmt: skip
    order = _memory_order(x_seq)
    x_perm, state_order = x_seq.permute(order), [d - 1 for d in order[1:]]
    spikes, v_last = _NumbaNeuron.apply(
        x_perm.reshape(x_perm.shape[0], -1), v0.permute(state_order).reshape(-1), k, config, save_h, None
    )
    return (
        spikes.reshape(x_perm.shape).permute(_inverse(order)),
        v_last.reshape(x_perm.shape[1:]).permute(_inverse(state_order)),
    )


CHANNELS_LAST_5D = (0, 1, 3, 4, 2)  # memory order of a channels_last [T*B, C, H, W] unfolded to [T, B, ...]


@torch.compiler.disable  # opaque to torch.compile: Dynamo must not trace the Numba calls
def neuron_maxpool2d_numba(
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
    """:func:`neuron_multistep_numba` followed by ``max_pool2d(spikes, 2)``, in one kernel.

    ``x_seq`` is ``[T, B, C, H, W]`` with even ``H`` and ``W``; returns the pooled spikes
    ``[T, B, C, H/2, W/2]`` (same values and gradients as the neuron then ``nn.MaxPool2d(2)``,
    whose gradient goes to the first maximum of each window) and ``v_last`` ``[B, C, H, W]``.
    The full-size spikes and the pool's indices are never stored: the backward recomputes the
    spikes. Contiguous and channels_last layouts run as they are, others are copied.
    """
    if x_seq.ndim != 5 or x_seq.shape[-1] % 2 or x_seq.shape[-2] % 2:
        raise ValueError(f"x_seq must be [T, B, C, H, W] with even H and W, got shape {tuple(x_seq.shape)}")
    v0, k, config, save_h = _neuron_inputs(
        "neuron_maxpool2d_numba", kind, x_seq, v0, v_threshold, v_reset, detach_reset, decay_input,
        surrogate_name, alpha, tau,
    )  # fmt: skip
    order = _memory_order(x_seq)
    if order != CHANNELS_LAST_5D:
        order, x_seq = tuple(range(5)), x_seq.contiguous()
    x_perm, state_order = x_seq.permute(order), [d - 1 for d in order[1:]]
    width, channels = (
        (x_perm.shape[3], x_perm.shape[4]) if order == CHANNELS_LAST_5D else (x_perm.shape[4], 1)
    )
    pooled, v_last = _NumbaNeuron.apply(
        x_perm.reshape(x_perm.shape[0], -1), v0.permute(state_order).reshape(-1), k, config, save_h,
        (width, channels),
    )  # fmt: skip
    steps, batch, channels_in, height, width_in = x_seq.shape
    pooled_shape = [steps, batch, channels_in, height // 2, width_in // 2]
    return (
        pooled.reshape([pooled_shape[d] for d in order]).permute(_inverse(order)),
        v_last.reshape(x_perm.shape[1:]).permute(_inverse(state_order)),
    )


class _NumbaTwoState(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq: Tensor, v0: Tensor, u0: Tensor, config: tuple, save_h: bool):
        (
            kind,
            decay_input,
            v_threshold,
            v_reset,
            _detach,
            _sg,
            _alpha,
            tau,
            tau_adapt,
            beta,
            i_decay,
            v_decay,
        ) = config
        x = _f32(x_seq)
        spikes = np.empty(x.shape, np.float32)
        h_seq = np.empty(x.shape if save_h else (0, 0), np.float32)
        theta_seq = np.empty(x.shape if save_h and kind == "alif" else (0, 0), np.float32)
        v_last, u_last = np.empty(x.shape[1], np.float32), np.empty(x.shape[1], np.float32)
        f32 = np.float32
        _set_threads()
        two_state_forward(
            x, _f32(v0), _f32(u0), spikes, h_seq, theta_seq, v_last, u_last, kind == "alif",
            CHARGE_MODES["lif", decay_input], f32(tau), f32(tau_adapt), f32(beta), f32(i_decay), f32(v_decay),
            f32(v_threshold), f32(0.0 if v_reset is None else v_reset), v_reset is None, save_h,
        )  # fmt: skip
        if save_h:
            ctx.save_for_backward(torch.from_numpy(h_seq), torch.from_numpy(theta_seq))
        ctx.config = config
        ctx.dtypes = (x_seq.dtype, v0.dtype, u0.dtype)
        return torch.from_numpy(spikes).to(x_seq.dtype), torch.from_numpy(v_last), torch.from_numpy(u_last)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor | None, grad_v_last: Tensor | None, grad_u_last: Tensor | None):
        (
            kind,
            decay_input,
            v_threshold,
            v_reset,
            detach_reset,
            sg,
            alpha,
            tau,
            tau_adapt,
            beta,
            i_decay,
            v_decay,
        ) = ctx.config
        h, theta = ctx.saved_tensors
        n_steps, n = h.shape
        grad_s = np.zeros((n_steps, n), np.float32) if grad_spikes is None else _f32(grad_spikes)
        grad_v = np.zeros(n, np.float32) if grad_v_last is None else _f32(grad_v_last)
        grad_u = np.zeros(n, np.float32) if grad_u_last is None else _f32(grad_u_last)
        grad_x, grad_v0, grad_u0 = (
            np.empty((n_steps, n), np.float32),
            np.empty(n, np.float32),
            np.empty(n, np.float32),
        )
        if kind == "alif":
            dh_dv, dh_dx = _charge_partials("lif", decay_input, 1.0 / tau)
        else:
            dh_dv, dh_dx = np.float32(v_decay), np.float32(1.0)
        f32 = np.float32
        _set_threads()
        two_state_backward(
            grad_s, grad_v, grad_u, h.numpy(), theta.numpy(), grad_x, grad_v0, grad_u0, kind == "alif", dh_dv, dh_dx,
            f32(tau_adapt), f32(beta), f32(i_decay), f32(v_threshold), f32(0.0 if v_reset is None else v_reset),
            v_reset is None, detach_reset, SURROGATE_IDS[sg], f32(alpha),
        )  # fmt: skip
        x_dtype, v0_dtype, u0_dtype = ctx.dtypes
        grads = (
            torch.from_numpy(g).to(d)
            for g, d in ((grad_x, x_dtype), (grad_v0, v0_dtype), (grad_u0, u0_dtype))
        )
        return *grads, None, None


@torch.compiler.disable  # opaque to torch.compile: Dynamo must not trace the Numba calls
def two_state_multistep_numba(
    kind: str,
    x_seq: Tensor,
    v0: Tensor | None,
    u0: Tensor | None,
    *,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    detach_reset: bool = False,
    surrogate_name: str = "atan",
    alpha: float = 2.0,
    tau: float = 2.0,
    decay_input: bool = True,
    tau_adapt: float = 20.0,
    beta: float = 0.2,
    current_decay: float = 0.5,
    voltage_decay: float = 0.75,
) -> tuple[Tensor, Tensor, Tensor]:
    """Adaptive LIF (``"alif"``) or current-based LIF (``"cuba_lif"``) over CPU tensor ``x_seq`` ``[T, ...]``.

    Equations of :func:`snn.functional.alif_step` and :func:`snn.functional.cuba_lif_step`; the
    second state ``U`` is the adaptation trace ``A`` or the synaptic current ``I`` (``u0=None``:
    zeros; ``v0=None``: the resting potential). ALIF saves its per-step threshold besides ``H``.
    Returns ``(spikes, v_last, u_last)``, differentiable w.r.t. ``x_seq``, ``v0`` and ``u0``.
    """
    _check_common("two_state_multistep_numba", kind, TWO_STATE_KINDS, x_seq, surrogate_name)
    v0 = _initial_state("v0", v0, x_seq, 0.0 if v_reset is None else float(v_reset))
    u0 = _initial_state("u0", u0, x_seq, 0.0)
    if kind == "alif":
        tau, tau_adapt = positive("tau", tau), positive("tau_adapt", tau_adapt)
    config = (
        kind,
        bool(decay_input),
        float(v_threshold),
        None if v_reset is None else float(v_reset),
        bool(detach_reset),
        surrogate_name,
        float(alpha),
        float(tau),
        float(tau_adapt),
        float(beta),
        float(current_decay),
        float(voltage_decay),
    )
    save_h = torch.is_grad_enabled() and (x_seq.requires_grad or v0.requires_grad or u0.requires_grad)
    order = _memory_order(x_seq)
    x_perm, state_order = x_seq.permute(order), [d - 1 for d in order[1:]]
    spikes, v_last, u_last = _NumbaTwoState.apply(
        x_perm.reshape(x_perm.shape[0], -1),
        v0.permute(state_order).reshape(-1),
        u0.permute(state_order).reshape(-1),
        config,
        save_h,
    )
    state_inverse = _inverse(state_order)
    return (
        spikes.reshape(x_perm.shape).permute(_inverse(order)),
        v_last.reshape(x_perm.shape[1:]).permute(state_inverse),
        u_last.reshape(x_perm.shape[1:]).permute(state_inverse),
    )
