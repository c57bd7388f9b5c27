"""Fused multi-step spiking-neuron kernels in Triton (IF, LIF, PLIF, adaptive LIF, CUBA LIF).

Only the ``@triton.jit`` kernels; :mod:`snn.backends.triton_backend` launches them, registers them
as custom ops and wires autograd. Semantics are SpikingJelly 2.0's (ALIF: snn.functional.alif_step's).

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
round-to-nearest (``tl.div_rn``) and fp contraction is off (the launcher's ``enable_fp_fusion=False``),
so spikes are bit-identical to the torch backend on fp32 inputs. The surrogate derivatives are a
compiled copy of :func:`snn.surrogate.surrogate_grad`, tested against it.
"""

from __future__ import annotations

import triton
import triton.language as tl

# Kind ids of the kernels' KIND argument; U is the second state of the last two: the adaptation
# trace A (alif) or the synaptic current I (cuba_lif).
KIND_IDS: dict[str, int] = {"if": 0, "lif": 1, "plif": 2, "alif": 3, "cuba_lif": 4}


@triton.jit
def _surrogate_derivative(x, alpha, SURROGATE: tl.constexpr):
    """g'(x) for the surrogate with id SURROGATE (position in snn.surrogate.NAMES)."""
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
def _charge(x, v, v_leak, tau, k, KIND: tl.constexpr, DECAY_INPUT: tl.constexpr):
    """H[t] from V[t-1]: IF v + x; LIF/ALIF leak towards ``v_leak`` by 1/tau; PLIF by k = sigmoid(w)."""
    if KIND == 0:
        h = v + x
    elif KIND == 1 or KIND == 3:
        if DECAY_INPUT:
            h = v + tl.div_rn(x - (v - v_leak), tau)
        else:
            h = v - tl.div_rn(v - v_leak, tau) + x
    else:
        if DECAY_INPUT:
            h = v + (x - (v - v_leak)) * k
        else:
            h = v - (v - v_leak) * k + x
    return h


@triton.jit
def _reset(h, spike, v_threshold, v_reset, SOFT_RESET: tl.constexpr):
    """V[t] from H[t] and S[t]: subtract the threshold (soft) or jump to v_reset (hard)."""
    if SOFT_RESET:
        v = h - spike * v_threshold
    else:
        v = spike * v_reset + (1.0 - spike) * h
    return v


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
    v_leak,
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
            h = _charge(x, v, v_leak, tau, k, KIND, DECAY_INPUT)
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
    v_leak,
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
        if KIND == 2:  # dH/dk = X[t] - (V[t-1] - v_leak)  (decay_input) or -(V[t-1] - v_leak)
            spike_prev = (h_prev - v_threshold >= 0.0).to(tl.float32)
            v_prev = tl.where(has_prev, _reset(h_prev, spike_prev, v_threshold, v_reset, SOFT_RESET), v0)
            if DECAY_INPUT:
                x = tl.load(x_ptr + cur, mask=mask, other=0.0).to(tl.float32)
                grad_k += grad_h * (x - (v_prev - v_leak))
            else:
                grad_k -= grad_h * (v_prev - v_leak)
        grad_v = grad_h * a
        h = h_prev
        cur -= N
    tl.store(grad_v0_ptr + n, grad_v, mask=mask)
    if KIND >= 3:
        tl.store(grad_u0_ptr + n, grad_u, mask=mask)
    if KIND == 2:
        tl.store(grad_k_partial_ptr + pid, tl.sum(tl.where(mask, grad_k, 0.0), axis=0))
