"""Fused multi-step spiking-neuron kernels in Triton (IF, LIF, PLIF, adaptive LIF, CUBA LIF).

Semantics are SpikingJelly 2.0's (ALIF: snn.functional.alif_step's).

One program owns a block of neurons and runs the whole time loop in registers:

* forward: per step load ``X[t]``, charge ``H[t]``, fire ``S[t] = (H[t] - V_th >= 0)``, reset;
  store ``S[t]`` (in x's dtype) and, only when a gradient is needed, ``H[t]`` (fp32). The state
  ``V`` never leaves the chip except ``V[T-1]`` at the end.
* backward: loop ``t = T-1 .. 0`` recomputing spike and surrogate derivative from the saved ``H``,
  carrying ``dL/dV[t]`` backwards; writes ``dL/dX`` (x's dtype), ``dL/dV0`` and, for PLIF, one
  partial sum of ``dL/d(1/tau)`` per program.
* ALIF and CUBA LIF carry a second state U (adaptation trace, synaptic current) the same way;
  ALIF also saves its per-step threshold, since A[t-1] cannot be recovered exactly backwards.

The state is fp32 whatever the input dtype (fp32, bf16, fp16). Division by ``tau`` is
round-to-nearest (``tl.div_rn``) and fp contraction is off, so spikes are bit-identical to the
plain-torch reference in :mod:`snn.kernels.reference` on fp32 inputs.

The ops are registered as ``torch.ops.snn_triton.neuron_forward`` / ``neuron_backward`` with fake
(meta) implementations and an autograd formula, so ``torch.compile`` treats each as one opaque node.
Tests run the kernels on CPU tensors through Triton's interpreter (``TRITON_INTERPRET=1``).
"""

from __future__ import annotations

import contextlib
import math
import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from snn.kernels.reference import (
    NEURON_KINDS,
    SURROGATE_DEFAULT_ALPHA,
    TWO_STATE_KINDS,
    decay_parameters,
    positive,
)

SURROGATE_IDS: dict[str, int] = {name: i for i, name in enumerate(SURROGATE_DEFAULT_ALPHA)}
KIND_IDS: dict[str, int] = {name: i for i, name in enumerate(NEURON_KINDS + TWO_STATE_KINDS)}
SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

# Launch shape on a GPU (a heuristic, not measured on a GPU yet): each thread owns one 16-byte
# vector of x per step (4 fp32 or 8 bf16/fp16 neurons; the sm_90 PTX then uses ld/st.global.v4 when
# the neuron count is a multiple of 16), GPU_NUM_WARPS warps per program. Layers too small to give
# the GPU GPU_MIN_PROGRAMS programs get narrower programs. LAUNCH_OVERRIDE = (BLOCK, num_warps)
# pins the shape (the benchmark's --sweep uses it).
GPU_NUM_WARPS = 4
GPU_MIN_PROGRAMS = 1024
LAUNCH_OVERRIDE: tuple[int, int] | None = None
# Under the interpreter each program costs Python overhead per operation: use few, wide programs.
_INTERPRETER_MAX_BLOCK = 1024


@triton.jit
def _surrogate_derivative(x, alpha, SURROGATE: tl.constexpr):
    """g'(x) for the surrogate with id SURROGATE (order of SURROGATE_DEFAULT_ALPHA)."""
    if SURROGATE == 0:  # sigmoid
        s = 1.0 / (1.0 + tl.exp(-alpha * x))
        g = alpha * s * (1.0 - s)
    elif SURROGATE == 1:  # atan
        z = 1.5707963267948966 * alpha * x
        g = (0.5 * alpha) / (1.0 + z * z)
    elif SURROGATE == 2:  # piecewise_quadratic
        g = tl.maximum(alpha - alpha * alpha * tl.abs(x), 0.0)
    elif SURROGATE == 3:  # piecewise_exp
        g = (0.5 * alpha) * tl.exp(-alpha * tl.abs(x))
    elif SURROGATE == 4:  # soft_sign
        z = 1.0 / alpha + tl.abs(x)
        g = 1.0 / (2.0 * alpha * z * z)
    elif SURROGATE == 5:  # super_spike
        z = 1.0 + tl.abs(x)
        g = alpha / (z * z)
    elif SURROGATE == 6:  # erf: alpha / sqrt(pi) * exp(-(alpha x)^2)
        z = alpha * x
        g = (0.5641895835477563 * alpha) * tl.exp(-z * z)
    else:  # rect
        g = tl.where(tl.abs(x) < 0.5 / alpha, alpha, 0.0)
    return g


@triton.jit
def _charge(x, v, rest, tau, k, KIND: tl.constexpr, DECAY_INPUT: tl.constexpr):
    """H[t] from V[t-1]: IF v + x; LIF/ALIF leak towards ``rest`` by 1/tau; PLIF by k = sigmoid(w)."""
    if KIND == 0:
        h = v + x
    elif KIND == 1 or KIND == 3:
        if DECAY_INPUT:
            h = v + tl.div_rn(x - (v - rest), tau)
        else:
            h = v - tl.div_rn(v - rest, tau) + x
    else:
        if DECAY_INPUT:
            h = v + (x - (v - rest)) * k
        else:
            h = v - (v - rest) * k + x
    return h


@triton.jit
def _reset(h, spike, v_threshold, v_reset, SOFT_RESET: tl.constexpr):
    """V[t] from H[t] and S[t]: subtract the threshold (soft) or jump to v_reset (hard)."""
    if SOFT_RESET:
        v = h - spike * v_threshold
    else:
        v = spike * v_reset + (1.0 - spike) * h
    return v


# KIND ids (KIND_IDS): 0 if, 1 lif, 2 plif, 3 alif, 4 cuba_lif. U is the second state of the last two:
# the adaptation trace A (alif) or the synaptic current I (cuba_lif).


@triton.jit
def _neuron_forward_kernel(
    x_ptr,
    v0_ptr,
    u0_ptr,
    k_ptr,
    spikes_ptr,
    h_ptr,
    theta_ptr,
    v_last_ptr,
    u_last_ptr,
    T,
    N,
    v_threshold,
    v_reset,
    tau,
    tau_adapt,
    beta,
    current_decay,
    voltage_decay,
    KIND: tl.constexpr,
    DECAY_INPUT: tl.constexpr,
    SOFT_RESET: tl.constexpr,
    SAVE_H: tl.constexpr,
    BLOCK: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    rest = 0.0 if SOFT_RESET else v_reset
    k = tl.load(k_ptr) if KIND == 2 else 0.0
    v = tl.load(v0_ptr + n, mask=mask, other=0.0)
    u = tl.load(u0_ptr + n, mask=mask, other=0.0) if KIND >= 3 else 0.0
    cur = n  # int64 offset of element n at step t: n + t * N
    for _ in range(T):
        x = tl.load(x_ptr + cur, mask=mask, other=0.0).to(tl.float32)
        if KIND == 4:
            u = u * current_decay + x
            h = v * voltage_decay + u
        else:
            h = _charge(x, v, rest, tau, k, KIND, DECAY_INPUT)
        theta = v_threshold + beta * u if KIND == 3 else v_threshold
        spike = (h - theta >= 0.0).to(tl.float32)
        tl.store(spikes_ptr + cur, spike.to(spikes_ptr.dtype.element_ty), mask=mask)
        if SAVE_H:
            tl.store(h_ptr + cur, h, mask=mask)
            if KIND == 3:
                tl.store(theta_ptr + cur, theta, mask=mask)
        v = _reset(h, spike, theta, v_reset, SOFT_RESET)
        if KIND == 3:
            u = u - tl.div_rn(u, tau_adapt) + spike
        cur += N
    tl.store(v_last_ptr + n, v, mask=mask)
    if KIND >= 3:
        tl.store(u_last_ptr + n, u, mask=mask)


@triton.jit
def _neuron_backward_kernel(
    grad_spikes_ptr,
    grad_v_last_ptr,
    grad_u_last_ptr,
    h_ptr,
    theta_ptr,
    x_ptr,
    v0_ptr,
    k_ptr,
    grad_x_ptr,
    grad_v0_ptr,
    grad_u0_ptr,
    grad_k_partial_ptr,
    T,
    N,
    v_threshold,
    v_reset,
    tau,
    tau_adapt,
    beta,
    current_decay,
    voltage_decay,
    alpha,
    KIND: tl.constexpr,
    DECAY_INPUT: tl.constexpr,
    SOFT_RESET: tl.constexpr,
    DETACH_RESET: tl.constexpr,
    SURROGATE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    n = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    rest = 0.0 if SOFT_RESET else v_reset
    # H[t] = a * V[t-1] + b * X[t] + const (cuba_lif: + I[t]): a = dH/dV[t-1], b = dH/dX[t].
    if KIND == 1 or KIND == 3:
        k = 1.0 / tau
    elif KIND == 2:
        k = tl.load(k_ptr)
    else:
        k = 0.0
    if KIND == 0:
        a = 1.0
    elif KIND == 4:
        a = voltage_decay
    else:
        a = 1.0 - k
    b = k if DECAY_INPUT and KIND >= 1 and KIND <= 3 else 1.0
    v0 = tl.load(v0_ptr + n, mask=mask, other=0.0)
    grad_v = tl.load(grad_v_last_ptr + n, mask=mask, other=0.0)  # dL/dV[t], carried backwards
    grad_u = tl.load(grad_u_last_ptr + n, mask=mask, other=0.0) if KIND >= 3 else 0.0  # dL/dU[t]
    grad_k = tl.zeros([BLOCK], dtype=tl.float32)
    cur = n + tl.cast(T - 1, tl.int64) * N
    h = tl.load(h_ptr + cur, mask=mask & (cur >= 0), other=0.0)  # H[T-1]; nothing when T == 0
    for _ in range(T):
        has_prev = mask & (cur >= N)  # t > 0 (cur = n + t * N with n < N)
        h_prev = tl.load(h_ptr + cur - N, mask=has_prev, other=0.0)  # prefetch H[t-1]
        theta = tl.load(theta_ptr + cur, mask=mask, other=0.0) if KIND == 3 else v_threshold
        spike = (h - theta >= 0.0).to(tl.float32)
        sg = _surrogate_derivative(h - theta, alpha, SURROGATE)
        # dL/dS[t]: from the output, from A[t] (alif) and from the reset unless it is detached.
        grad_spike = tl.load(grad_spikes_ptr + cur, mask=mask, other=0.0).to(tl.float32)
        if KIND == 3:
            grad_spike += grad_u
        if SOFT_RESET:
            dv_dh = 1.0
            if not DETACH_RESET:
                grad_spike -= theta * grad_v
        else:
            dv_dh = 1.0 - spike
            if not DETACH_RESET:
                grad_spike += (rest - h) * grad_v
        grad_h = grad_spike * sg + grad_v * dv_dh
        if KIND == 4:
            grad_i = grad_u + grad_h  # dL/dI[t]
            tl.store(grad_x_ptr + cur, grad_i.to(grad_x_ptr.dtype.element_ty), mask=mask)
            grad_u = grad_i * current_decay
        else:
            tl.store(grad_x_ptr + cur, (grad_h * b).to(grad_x_ptr.dtype.element_ty), mask=mask)
        if KIND == 3:  # theta = V_th + beta * A[t-1]; A[t] = A[t-1] - A[t-1] / tau_adapt + S[t]
            grad_theta = -grad_spike * sg
            if SOFT_RESET:
                grad_theta -= grad_v * spike  # V[t] = H - S * theta
            grad_u = grad_u * (1.0 - 1.0 / tau_adapt) + beta * grad_theta
        if KIND == 2:  # dH/dk = X[t] - (V[t-1] - rest)  (decay_input) or -(V[t-1] - rest)
            spike_prev = (h_prev - v_threshold >= 0.0).to(tl.float32)
            v_prev = tl.where(has_prev, _reset(h_prev, spike_prev, v_threshold, v_reset, SOFT_RESET), v0)
            if DECAY_INPUT:
                x = tl.load(x_ptr + cur, mask=mask, other=0.0).to(tl.float32)
                grad_k += grad_h * (x - (v_prev - rest))
            else:
                grad_k -= grad_h * (v_prev - rest)
        grad_v = grad_h * a
        h = h_prev
        cur -= N
    tl.store(grad_v0_ptr + n, grad_v, mask=mask)
    if KIND >= 3:
        tl.store(grad_u0_ptr + n, grad_u, mask=mask)
    if KIND == 2:
        tl.store(grad_k_partial_ptr + pid, tl.sum(tl.where(mask, grad_k, 0.0), axis=0))


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
            f"neuron_multistep_triton runs on CUDA tensors, got x_seq on {t.device} "
            "(use the fused CPU backend, snn.fused_cpu, or set TRITON_INTERPRET=1 before importing triton to test)"
        )


def _forward_impl(
    x_seq: Tensor,
    v0: Tensor,
    u0: Tensor,
    k: Tensor,
    kind: str,
    v_threshold: float,
    v_reset: float,
    soft_reset: bool,
    detach_reset: bool,
    decay_input: bool,
    tau: float,
    tau_adapt: float,
    beta: float,
    current_decay: float,
    voltage_decay: float,
    surrogate_name: str,
    alpha: float,
    save_h: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(spikes [T, ...] x dtype, v_last fp32, u_last fp32, H [T, ...] fp32, theta [T, ...] fp32).

    ``x_seq``, ``v0`` and ``u0`` (fp32; empty unless the kind has a second state U) are contiguous;
    ``k`` is a 1-element fp32 tensor holding 1/tau (PLIF). H is empty unless ``save_h``, theta unless
    also ``alif``. ``detach_reset``, ``surrogate_name`` and ``alpha`` only shape the backward pass.
    """
    _check_device(x_seq)
    two_state = kind in TWO_STATE_KINDS
    spikes = torch.empty_like(x_seq)
    v_last = torch.empty_like(v0)
    u_last = torch.empty_like(u0)
    h_seq = _state_seq(x_seq, save_h)
    theta_seq = _state_seq(x_seq, save_h and kind == "alif")
    n_neurons = v0.numel()
    if n_neurons == 0:
        return spikes, v_last, u_last, h_seq, theta_seq
    block, num_warps = _launch_config(n_neurons, x_seq.element_size())
    with _on_device(x_seq):
        _neuron_forward_kernel[(triton.cdiv(n_neurons, block),)](
            x_seq, v0, u0 if two_state else v0, k, spikes, h_seq, theta_seq, v_last, u_last if two_state else v_last,
            x_seq.shape[0], n_neurons, v_threshold, v_reset, tau, tau_adapt, beta, current_decay, voltage_decay,
            KIND=KIND_IDS[kind], DECAY_INPUT=decay_input, SOFT_RESET=soft_reset, SAVE_H=save_h, BLOCK=block,
            num_warps=num_warps, enable_fp_fusion=False,
        )  # fmt: skip
    return spikes, v_last, u_last, h_seq, theta_seq


neuron_forward = torch.library.custom_op("snn_triton::neuron_forward", mutates_args=())(_forward_impl)


def _state_seq(x_seq: Tensor, needed: bool) -> Tensor:
    """An fp32 buffer shaped like ``x_seq`` for a saved per-step state, or an empty one."""
    return x_seq.new_empty(x_seq.shape if needed else (0,), dtype=torch.float32)


@neuron_forward.register_fake
def _(x_seq, v0, u0, k, kind, *args):
    save_h = args[-1]
    return (
        torch.empty_like(x_seq),
        torch.empty_like(v0),
        torch.empty_like(u0),
        _state_seq(x_seq, save_h),
        _state_seq(x_seq, save_h and kind == "alif"),
    )


def _backward_impl(
    grad_spikes: Tensor,
    grad_v_last: Tensor,
    grad_u_last: Tensor,
    h_seq: Tensor,
    theta_seq: Tensor,
    x_seq: Tensor,
    v0: Tensor,
    u0: Tensor,
    k: Tensor,
    kind: str,
    v_threshold: float,
    v_reset: float,
    soft_reset: bool,
    detach_reset: bool,
    decay_input: bool,
    tau: float,
    tau_adapt: float,
    beta: float,
    current_decay: float,
    voltage_decay: float,
    surrogate_name: str,
    alpha: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(dL/dx_seq in x dtype, dL/dv0, dL/du0 (empty unless two-state), dL/dk [1]; zero unless PLIF)."""
    _check_device(h_seq)
    two_state = kind in TWO_STATE_KINDS
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
    if n_neurons > 0:
        with _on_device(h_seq):
            _neuron_backward_kernel[(n_programs,)](
                grad_spikes, grad_v_last, grad_u_last if two_state else grad_v_last, h_seq,
                theta_seq if kind == "alif" else h_seq, x_seq, v0, k, grad_x, grad_v0,
                grad_u0 if two_state else grad_v0, grad_k_partial,
                h_seq.shape[0], n_neurons, v_threshold, v_reset, tau, tau_adapt, beta, current_decay, voltage_decay,
                alpha, KIND=KIND_IDS[kind], DECAY_INPUT=decay_input, SOFT_RESET=soft_reset, DETACH_RESET=detach_reset,
                SURROGATE=SURROGATE_IDS[surrogate_name], BLOCK=block, num_warps=num_warps, enable_fp_fusion=False,
            )  # fmt: skip
    return grad_x, grad_v0, grad_u0, grad_k_partial.sum().reshape(1)


neuron_backward = torch.library.custom_op("snn_triton::neuron_backward", mutates_args=())(_backward_impl)


@neuron_backward.register_fake
def _(grad_spikes, grad_v_last, grad_u_last, h_seq, theta_seq, x_seq, v0, u0, k, *args):
    return torch.empty_like(x_seq), torch.empty_like(v0), torch.empty_like(u0), k.new_empty((1,))


def _setup_context(ctx, inputs, output) -> None:
    x_seq, v0, u0, k, *params, _save_h = inputs
    ctx.save_for_backward(output[3], output[4], x_seq, v0, u0, k)
    ctx.params = params


def _gradients(backward, ctx, grad_spikes, grad_v_last, grad_u_last) -> tuple:
    h_seq, theta_seq, x_seq, v0, u0, k = ctx.saved_tensors
    grads = backward(grad_spikes, grad_v_last, grad_u_last, h_seq, theta_seq, x_seq, v0, u0, k, *ctx.params)
    return *grads, *([None] * (len(ctx.params) + 1))


def _backward(ctx, grad_spikes, grad_v_last, grad_u_last, _grad_h, _grad_theta):
    """The op's autograd: through the registered backward op (tracers see its fake kernel)."""
    return _gradients(neuron_backward, ctx, grad_spikes, grad_v_last, grad_u_last)


neuron_forward.register_autograd(_backward, setup_context=_setup_context)


class _EagerNeuron(torch.autograd.Function):
    """The custom ops' forward and backward without their dispatch, for eager calls: in a short
    call (small T) the ops' Python dispatch and autograd wrapper cost more host time than the GPU
    spends on both kernels (profiled on an H200, see benchmarks/device_notes.md)."""

    @staticmethod
    def forward(ctx, *inputs):
        output = _forward_impl(*inputs)
        _setup_context(ctx, inputs, output)
        ctx.mark_non_differentiable(output[3], output[4])
        return output

    @staticmethod
    def backward(ctx, grad_spikes, grad_v_last, grad_u_last, _grad_h, _grad_theta):
        return _gradients(_backward_impl, ctx, grad_spikes, grad_v_last, grad_u_last)


def _run_forward(*inputs) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The registered op while torch.compile traces (it sees one opaque node), else the eager twin."""
    if torch.compiler.is_compiling():
        return neuron_forward(*inputs)
    return _EagerNeuron.apply(*inputs)


def _check_common(kind, kinds, x_seq, v_threshold, v_reset, surrogate_name, alpha) -> None:
    if kind not in kinds:
        raise ValueError(f"kind must be one of {kinds}, got {kind!r}")
    if surrogate_name not in SURROGATE_IDS:
        raise ValueError(f"surrogate_name must be one of {tuple(SURROGATE_IDS)}, got {surrogate_name!r}")
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be finite and positive, got {alpha}")
    if not math.isfinite(v_threshold) or (v_reset is not None and not math.isfinite(v_reset)):
        raise ValueError(f"v_threshold and v_reset must be finite, got {v_threshold} and {v_reset}")
    if x_seq.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"x_seq must be float32, bfloat16 or float16, got {x_seq.dtype}")
    if x_seq.dim() < 1:
        raise ValueError("x_seq must be time-major [T, ...], got a 0-d tensor")
    _check_device(x_seq)


def _initial_state(name: str, state: Tensor | None, x_seq: Tensor) -> Tensor:
    """``state`` as contiguous fp32 (zeros when None), checked to be one time step's shape."""
    if state is None:
        return torch.zeros(x_seq.shape[1:], dtype=torch.float32, device=x_seq.device)
    if state.shape != x_seq.shape[1:]:
        raise ValueError(
            f"{name} must have shape x_seq.shape[1:] = {tuple(x_seq.shape[1:])}, got {tuple(state.shape)}"
        )
    if state.device != x_seq.device:
        raise ValueError(f"{name} is on {state.device} but x_seq is on {x_seq.device}")
    return state.float().contiguous()


def _needs_grad(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def neuron_multistep_triton(
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
    """Run ``x_seq`` [T, ...] through a layer of IF/LIF/PLIF neurons in one fused kernel per direction.

    Args:
        kind: ``"if"``, ``"lif"`` or ``"plif"``.
        x_seq: input currents, time-major [T, ...]; fp32, bf16 or fp16; any strides.
        v0: initial potential [...] (= x_seq.shape[1:]) or None for zeros; read as fp32.
        v_threshold: firing threshold; a neuron fires when H - v_threshold >= 0.
        v_reset: hard-reset potential, or None for soft reset (subtract v_threshold; the leak
            then decays towards 0).
        detach_reset: treat the spike inside the reset as a constant in the backward pass.
        decay_input: LIF/PLIF only: H = V + (X - (V - V_reset))/tau (True) or
            H = V - (V - V_reset)/tau + X (False).
        surrogate_name: backward of the heaviside, one of ``SURROGATE_IDS``; ``alpha`` its sharpness.
        tau: LIF: the membrane time constant (a Python float). PLIF: a 0-d (or 1-element) tensor
            holding the learnable ``w`` with 1/tau = sigmoid(w); gradients flow to it. IF: unused.

    Returns:
        (spikes [T, ...] in x_seq's dtype, v_last [...] fp32). Differentiable w.r.t. ``x_seq``,
        ``v0`` and (PLIF) ``w``.
    """
    _check_common(kind, NEURON_KINDS, x_seq, v_threshold, v_reset, surrogate_name, alpha)
    v0 = _initial_state("v0", v0, x_seq)
    k, tau_value = decay_parameters(kind, tau)
    k = v0.new_zeros(1) if k is None else k.reshape(1).to(x_seq.device)
    no_state = v0.new_empty(0)
    spikes, v_last, *_ = _run_forward(
        x_seq.contiguous(), v0, no_state, k, kind, float(v_threshold), 0.0 if v_reset is None else float(v_reset),
        v_reset is None, detach_reset, decay_input, tau_value, 1.0, 0.0, 0.0, 0.0, surrogate_name, float(alpha),
        _needs_grad(x_seq, v0, k),
    )  # fmt: skip
    return spikes, v_last


def two_state_multistep_triton(
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
    """Adaptive LIF (``"alif"``) or current-based LIF (``"cuba_lif"``), fused like :func:`neuron_multistep_triton`.

    ``alif`` (LSNN-style, uses ``tau``, ``decay_input``, ``tau_adapt``, ``beta``): H is the LIF charge,
    theta = V_th + beta * A[t-1], S = heaviside(H - theta), reset with theta in place of V_th,
    A[t] = A[t-1] - A[t-1] / tau_adapt + S. ``cuba_lif`` (SpikingJelly's CUBALIFNode, uses
    ``current_decay``, ``voltage_decay``): I[t] = I[t-1] * current_decay + X,
    H = V[t-1] * voltage_decay + I[t]. The second state U is A or I; ``u0=None`` starts it at 0.
    The forward saves H (and, for alif, theta) in fp32 for the backward.

    Returns:
        (spikes [T, ...] in x_seq's dtype, v_last fp32, u_last fp32); differentiable w.r.t.
        ``x_seq``, ``v0`` and ``u0``.
    """
    _check_common(kind, TWO_STATE_KINDS, x_seq, v_threshold, v_reset, surrogate_name, alpha)
    v0, u0 = _initial_state("v0", v0, x_seq), _initial_state("u0", u0, x_seq)
    if kind == "alif":
        tau, tau_adapt = positive("tau", tau), positive("tau_adapt", tau_adapt)
    spikes, v_last, u_last, *_ = _run_forward(
        x_seq.contiguous(), v0, u0, v0.new_zeros(1), kind, float(v_threshold),
        0.0 if v_reset is None else float(v_reset), v_reset is None, detach_reset, decay_input, float(tau),
        float(tau_adapt), float(beta), float(current_decay), float(voltage_decay), surrogate_name, float(alpha),
        _needs_grad(x_seq, v0, u0),
    )  # fmt: skip
    return spikes, v_last, u_last
