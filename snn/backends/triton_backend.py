"""The "triton" backend: launches the kernels of :mod:`snn.kernels.triton_neurons` (IF, LIF, PLIF, ALIF, CUBA LIF).

The forward and backward kernels are registered as ``torch.ops.snn_triton.neuron_forward`` /
``neuron_backward`` with fake (meta) implementations and an autograd formula, so
``torch.compile`` treats each as one opaque node; eager calls skip the ops' dispatch (see
:class:`_EagerNeuron`). CUDA tensors; the tests run the kernels on CPU tensors through Triton's
interpreter (``TRITON_INTERPRET=1``, set before triton is imported).
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import NamedTuple, get_type_hints

import torch
import triton
from torch import Tensor

from .. import functional as F
from ..kernels.triton_neurons import KIND_IDS, _neuron_backward_kernel, _neuron_forward_kernel
from ..params import NeuronParameters
from ..surrogate import NAMES as SURROGATE_NAMES
from .fused import FUSED_KINDS, TWO_STATE_KINDS, FusedConfig, fused_config, plif_k

__all__ = ["KINDS", "SUPPORTED_DTYPES", "multi_step", "neuron_forward", "neuron_backward"]

KINDS = FUSED_KINDS
SURROGATE_IDS: dict[str, int] = {name: i for i, name in enumerate(SURROGATE_NAMES)}
SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

# Launch shape on a GPU (a heuristic): each thread owns one 16-byte vector of x per step (4 fp32
# or 8 bf16/fp16 neurons; the sm_90 PTX then uses ld/st.global.v4 when the neuron count is a
# multiple of 16), GPU_NUM_WARPS warps per program. Layers too small to give the GPU
# GPU_MIN_PROGRAMS programs get narrower programs. LAUNCH_OVERRIDE = (BLOCK, num_warps) pins the
# shape (the benchmark's --sweep uses it).
GPU_NUM_WARPS = 4
GPU_MIN_PROGRAMS = 1024
LAUNCH_OVERRIDE: tuple[int, int] | None = None
# Under the interpreter each program costs Python overhead per operation: use few, wide programs.
_INTERPRETER_MAX_BLOCK = 1024


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _launch_config(n_neurons: int, element_size: int) -> tuple[int, int]:
    """(BLOCK, num_warps) for ``n_neurons`` neurons whose input elements take ``element_size`` bytes."""
    if _interpreting():
        return min(_INTERPRETER_MAX_BLOCK, triton.next_power_of_2(max(n_neurons, 1))), 1
    if LAUNCH_OVERRIDE is not None:
        return LAUNCH_OVERRIDE
    per_thread = 16 // element_size
    block = 32 * GPU_NUM_WARPS * per_thread
    while block > 128 and triton.cdiv(n_neurons, block) < GPU_MIN_PROGRAMS:
        block //= 2
    return block, max(1, block // (32 * per_thread))


def _on_device(t: Tensor) -> contextlib.AbstractContextManager:
    """Launch on ``t``'s GPU (Triton uses the current device's stream), not whichever is current."""
    return torch.cuda.device(t.device) if t.device.type == "cuda" else contextlib.nullcontext()


def _check_device(t: Tensor) -> None:
    if t.device.type != "cuda" and not _interpreting():
        raise RuntimeError(
            f"the triton backend runs on CUDA tensors, got x_seq on {t.device} "
            "(use backend='numba' or 'cpu', or set TRITON_INTERPRET=1 before importing triton to test)"
        )


def _state_seq(x_seq: Tensor, needed: bool) -> Tensor:
    """An fp32 buffer shaped like ``x_seq`` for a saved per-step state, or an empty one."""
    return x_seq.new_empty(x_seq.shape if needed else (0,), dtype=torch.float32)


def _forward(
    x_seq: Tensor, v0: Tensor, u0: Tensor, k: Tensor, config: FusedConfig, save_h: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(spikes [T, ...] x dtype, v_last fp32, u_last fp32, H [T, ...] fp32, theta [T, ...] fp32).

    ``x_seq``, ``v0`` and ``u0`` (fp32; empty unless the kind has a second state U) are contiguous;
    ``k`` is a 1-element fp32 tensor holding 1/tau (PLIF). H is empty unless ``save_h``, theta unless
    also ``alif``. ``detach_reset`` and the surrogate only shape the backward pass.
    """
    _check_device(x_seq)
    two_state = config.kind in TWO_STATE_KINDS
    spikes = torch.empty_like(x_seq)
    v_last = torch.empty_like(v0)
    u_last = torch.empty_like(u0)
    h_seq = _state_seq(x_seq, save_h)
    theta_seq = _state_seq(x_seq, save_h and config.kind == "alif")
    n_neurons = v0.numel()
    if n_neurons == 0:
        return spikes, v_last, u_last, h_seq, theta_seq
    block, num_warps = _launch_config(n_neurons, x_seq.element_size())
    c = config
    with _on_device(x_seq):
        _neuron_forward_kernel[(triton.cdiv(n_neurons, block),)](
            x_seq, v0, u0 if two_state else v0, k, spikes, h_seq, theta_seq, v_last, u_last if two_state else v_last,
            x_seq.shape[0], n_neurons, c.v_threshold, c.rest, c.v_leak, c.tau, c.tau_adapt, c.beta, c.current_decay,
            c.voltage_decay, KIND=KIND_IDS[c.kind], DECAY_INPUT=c.decay_input, SOFT_RESET=c.soft_reset,
            SAVE_H=save_h, BLOCK=block, num_warps=num_warps, enable_fp_fusion=False,
        )  # fmt: skip
    return spikes, v_last, u_last, h_seq, theta_seq


def _backward(
    grad_spikes: Tensor,
    grad_v_last: Tensor,
    grad_u_last: Tensor,
    saved: tuple[Tensor, ...],
    config: FusedConfig,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(dL/dx_seq in x dtype, dL/dv0, dL/du0 (empty unless two-state), dL/dk [1]; zero unless PLIF).

    ``saved`` is ``(h_seq, theta_seq, x_seq, v0, u0, k)`` as the forward left them.
    """
    h_seq, theta_seq, x_seq, v0, u0, k = saved
    _check_device(h_seq)
    two_state = config.kind in TWO_STATE_KINDS
    grad_spikes = grad_spikes.contiguous()
    grad_v_last = grad_v_last.float().contiguous()
    grad_u_last = grad_u_last.float().contiguous()
    grad_x = torch.empty_like(x_seq)
    grad_v0 = torch.empty_like(v0)
    grad_u0 = torch.empty_like(u0)
    n_neurons = v0.numel()
    block, num_warps = _launch_config(n_neurons, x_seq.element_size())
    n_programs = triton.cdiv(n_neurons, block)
    grad_k_partial = torch.zeros(max(n_programs, 1), dtype=torch.float32, device=h_seq.device)
    c = config
    if n_neurons > 0:
        with _on_device(h_seq):
            _neuron_backward_kernel[(n_programs,)](
                grad_spikes, grad_v_last, grad_u_last if two_state else grad_v_last, h_seq,
                theta_seq if c.kind == "alif" else h_seq, x_seq, v0, k, grad_x, grad_v0,
                grad_u0 if two_state else grad_v0, grad_k_partial,
                h_seq.shape[0], n_neurons, c.v_threshold, c.rest, c.v_leak, c.tau, c.tau_adapt, c.beta,
                c.current_decay, c.voltage_decay, c.alpha, KIND=KIND_IDS[c.kind], DECAY_INPUT=c.decay_input,
                SOFT_RESET=c.soft_reset, DETACH_RESET=c.detach_reset, SURROGATE=SURROGATE_IDS[c.surrogate],
                BLOCK=block, num_warps=num_warps, enable_fp_fusion=False,
            )  # fmt: skip
    return grad_x, grad_v0, grad_u0, grad_k_partial.sum().reshape(1)


# -- the custom ops: FusedConfig's fields by name in the schema (an op takes no dataclass) -----------

_SCHEMA_TYPES = {str: "str", float: "float", float | None: "float?", bool: "bool"}
_CONFIG_SCHEMA = ", ".join(f"{_SCHEMA_TYPES[kind]} {name}" for name, kind in get_type_hints(FusedConfig).items())


def _forward_op(x_seq: Tensor, v0: Tensor, u0: Tensor, k: Tensor, *scalars) -> tuple[Tensor, ...]:
    """:func:`_forward` with the config spelled out: ``scalars`` is FusedConfig's fields, then ``save_h``."""
    *config, save_h = scalars
    return _forward(x_seq, v0, u0, k, FusedConfig(*config), save_h)


def _backward_op(*args) -> tuple[Tensor, ...]:
    """:func:`_backward` with the config spelled out: 3 gradients, 6 saved tensors, FusedConfig's fields."""
    return _backward(*args[:3], args[3:9], FusedConfig(*args[9:]))


neuron_forward = torch.library.custom_op(
    "snn_triton::neuron_forward",
    _forward_op,
    mutates_args=(),
    schema=f"(Tensor x_seq, Tensor v0, Tensor u0, Tensor k, {_CONFIG_SCHEMA}, bool save_h) "
    "-> (Tensor, Tensor, Tensor, Tensor, Tensor)",
)
neuron_backward = torch.library.custom_op(
    "snn_triton::neuron_backward",
    _backward_op,
    mutates_args=(),
    schema="(Tensor grad_spikes, Tensor grad_v_last, Tensor grad_u_last, Tensor h_seq, Tensor theta_seq, "
    f"Tensor x_seq, Tensor v0, Tensor u0, Tensor k, {_CONFIG_SCHEMA}) -> (Tensor, Tensor, Tensor, Tensor)",
)


@neuron_forward.register_fake
def _(x_seq, v0, u0, k, kind, *scalars):
    save_h = scalars[-1]
    return (
        torch.empty_like(x_seq),
        torch.empty_like(v0),
        torch.empty_like(u0),
        _state_seq(x_seq, save_h),
        _state_seq(x_seq, save_h and kind == "alif"),
    )


@neuron_backward.register_fake
def _(grad_spikes, grad_v_last, grad_u_last, h_seq, theta_seq, x_seq, v0, u0, k, *scalars):
    return torch.empty_like(x_seq), torch.empty_like(v0), torch.empty_like(u0), k.new_empty((1,))


def _setup_context(ctx, inputs, output) -> None:
    x_seq, v0, u0, k, *scalars, _save_h = inputs
    ctx.save_for_backward(output[3], output[4], x_seq, v0, u0, k)
    ctx.config = FusedConfig(*scalars)


def _op_backward(ctx, grad_spikes, grad_v_last, grad_u_last, _grad_h, _grad_theta):
    """The op's autograd: through the registered backward op (tracers see its fake kernel)."""
    grads = neuron_backward(grad_spikes, grad_v_last, grad_u_last, *ctx.saved_tensors, *ctx.config)
    return *grads, *([None] * (len(FusedConfig._fields) + 1))


neuron_forward.register_autograd(_op_backward, setup_context=_setup_context)


class _EagerNeuron(torch.autograd.Function):
    """The custom ops' forward and backward without their dispatch, for eager calls: in a short
    call (small T) the ops' Python dispatch and autograd wrapper cost more host time than the GPU
    spends on both kernels (profiled in benchmarks/device_notes.md)."""

    @staticmethod
    def forward(ctx, x_seq, v0, u0, k, config: FusedConfig, save_h: bool):
        output = _forward(x_seq, v0, u0, k, config, save_h)
        ctx.save_for_backward(output[3], output[4], x_seq, v0, u0, k)
        ctx.config = config
        ctx.mark_non_differentiable(output[3], output[4])
        return output

    @staticmethod
    def backward(ctx, grad_spikes, grad_v_last, grad_u_last, _grad_h, _grad_theta):
        grads = _backward(grad_spikes, grad_v_last, grad_u_last, ctx.saved_tensors, ctx.config)
        return *grads, None, None


def _run_forward(x_seq, v0, u0, k, config: FusedConfig, save_h: bool) -> tuple[Tensor, ...]:
    """The registered op while torch.compile traces (it sees one opaque node), else the eager twin."""
    if torch.compiler.is_compiling():
        return neuron_forward(x_seq, v0, u0, k, *config, save_h)
    return _EagerNeuron.apply(x_seq, v0, u0, k, config, save_h)


def _checked_inputs(x_seq: Tensor, config: FusedConfig) -> None:
    if not (math.isfinite(config.alpha) and config.alpha > 0):
        raise ValueError(f"alpha must be finite and positive, got {config.alpha}")
    if not math.isfinite(config.v_threshold) or not math.isfinite(config.rest):
        raise ValueError(f"v_threshold and v_reset must be finite, got {config.v_threshold} and {config.v_reset}")
    if x_seq.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"x_seq must be float32, bfloat16 or float16, got {x_seq.dtype}")
    if x_seq.dim() < 1:
        raise ValueError("x_seq must be time-major [T, ...], got a 0-d tensor")
    _check_device(x_seq)


def _state_tensor(name: str, state: Tensor, x_seq: Tensor) -> Tensor:
    """``state`` as contiguous fp32, checked to be one time step's shape on ``x_seq``'s device."""
    if state.shape != x_seq.shape[1:]:
        raise ValueError(
            f"state.{name} must have shape x_seq.shape[1:] = {tuple(x_seq.shape[1:])}, got {tuple(state.shape)}"
        )
    if state.device != x_seq.device:
        raise ValueError(f"state.{name} is on {state.device} but x_seq is on {x_seq.device}")
    return state.float().contiguous()


def _needs_grad(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def multi_step(x_seq: Tensor, state: NamedTuple | None, p: NeuronParameters) -> tuple[Tensor, NamedTuple]:
    """Run ``x_seq`` [T, ...] through a layer of ``p``'s neurons in one fused kernel per direction.

    Args:
        x_seq: input currents, time-major [T, ...]; fp32, bf16 or fp16; any strides.
        state: the kind's state NamedTuple (one time step's shape; read as fp32), or None for
            ``p``'s initial state (needs T >= 1).
        p: the parameter object of an IF, LIF, PLIF, ALIF or CubaLIF layer (float fields; PLIF's
            ``w`` a one-element tensor, gradients flow to it).

    Returns:
        ``(spikes [T, ...] in x_seq's dtype, final state in fp32)``, differentiable w.r.t.
        ``x_seq``, the initial state and PLIF's ``w``. ALIF and CubaLIF save H (and ALIF its
        threshold) in fp32 for the backward.
    """
    config = fused_config(p, KINDS, "triton")
    _checked_inputs(x_seq, config)
    if state is None:
        state = F.init_state(p, x_seq[0])
    tensors = [_state_tensor(name, s, x_seq) for name, s in zip(state._fields, state, strict=True)]
    v0 = tensors[0]
    u0 = tensors[1] if config.kind in TWO_STATE_KINDS else v0.new_empty(0)
    k = plif_k(p, x_seq.device).reshape(1)
    spikes, v_last, u_last, *_ = _run_forward(
        x_seq.contiguous(), v0, u0, k, config, _needs_grad(x_seq, *state, k)
    )
    return spikes, type(state)(v_last, u_last) if len(state) == 2 else type(state)(v_last)
