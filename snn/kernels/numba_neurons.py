"""Fused multi-step IF / LIF / PLIF kernels for CPU in Numba (compiled once, cached on disk).

Each ``prange`` iteration owns a block of ``BLOCK`` neurons and runs the whole time loop over it;
inside a step, short loops over the block's neurons (contiguous in memory) vectorise. Branches on
the neuron configuration (charge form, reset mode, surrogate id) sit outside those inner loops.

* forward: charge ``H[t]`` in SpikingJelly's exact operation order (fp32 throughout, no fused
  multiply-add: ``fastmath=False``), fire ``S[t] = (H[t] - V_th >= 0)``, reset; writes ``S``,
  ``V[T-1]`` and, when a backward pass will follow, ``H`` (fp32).
* backward: ``t = T-1 .. 0`` recomputing spikes and surrogate derivatives from ``H``, carrying
  ``dL/dV[t]``; writes ``dL/dX``, ``dL/dV0`` and, for PLIF, one partial sum of ``dL/dk``
  (``k = 1/tau = sigmoid(w)``) per block, which the caller adds up (no races, and the sum does
  not depend on the thread count).

All arrays are C-contiguous float32, ``[T, N]`` for sequences and ``[N]`` for states; the caller
(:mod:`snn.fused_numba`) checks shapes, since Numba does not bounds-check.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .reference import SURROGATE_DEFAULT_ALPHA

__all__ = [
    "BLOCK",
    "CHARGE_MODES",
    "SURROGATE_IDS",
    "neuron_forward",
    "neuron_backward",
    "two_state_forward",
    "two_state_backward",
]

BLOCK = 256  # neurons per prange iteration: a few KiB of state, in L1
SURROGATE_IDS: dict[str, int] = {name: i for i, name in enumerate(SURROGATE_DEFAULT_ALPHA)}
# Charge forms (SpikingJelly's operation order); ``c`` is 1/tau's carrier: tau (LIF) or k (PLIF).
CHARGE_MODES: dict[tuple[str, bool], int] = {
    ("if", True): 0,  # H = V + X
    ("if", False): 0,
    ("lif", True): 1,  # H = V + (X - (V - rest)) / tau
    ("lif", False): 2,  # H = V - (V - rest) / tau + X
    ("plif", True): 3,  # H = V + (X - (V - rest)) * k
    ("plif", False): 4,  # H = V - (V - rest) * k + X
}

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_HALF_PI = np.float32(math.pi / 2)
_INV_SQRT_PI = np.float32(1.0 / math.sqrt(math.pi))

_OPTIONS = {
    "cache": True,
    "fastmath": False,
    "nogil": True,
    "error_model": "numpy",
}  # numpy: IEEE x/0, no branch
_jit = numba.njit(**_OPTIONS)


@_jit
def _charge_row(mode, x, t, lo, v, h, rest, c):
    """``h[j] = H[t, lo + j]`` from ``v[j] = V[t-1]`` for the block starting at ``lo``."""
    width = v.shape[0]
    if mode == 0:
        for j in range(width):
            h[j] = v[j] + x[t, lo + j]
    elif mode == 1:
        for j in range(width):
            h[j] = v[j] + (x[t, lo + j] - (v[j] - rest)) / c
    elif mode == 2:
        for j in range(width):
            h[j] = v[j] - (v[j] - rest) / c + x[t, lo + j]
    elif mode == 3:
        for j in range(width):
            h[j] = v[j] + (x[t, lo + j] - (v[j] - rest)) * c
    else:
        for j in range(width):
            h[j] = v[j] - (v[j] - rest) * c + x[t, lo + j]


@_jit
def _fire_reset_row(h, v, spikes, t, lo, v_threshold, v_reset, soft_reset):
    """``S[t] = (H - V_th >= 0)``; ``V = H - S V_th`` (soft) or ``S V_reset + (1 - S) H`` (hard)."""
    width = v.shape[0]
    if soft_reset:
        for j in range(width):
            s = _ONE if h[j] - v_threshold >= _ZERO else _ZERO
            spikes[t, lo + j] = s
            v[j] = h[j] - s * v_threshold
    else:
        for j in range(width):
            s = _ONE if h[j] - v_threshold >= _ZERO else _ZERO
            spikes[t, lo + j] = s
            v[j] = s * v_reset + (_ONE - s) * h[j]


@numba.njit(parallel=True, **_OPTIONS)
def neuron_forward(x, v0, spikes, h_seq, v_last, mode, rest, c, v_threshold, v_reset, soft_reset, save_h):
    """Run ``x`` [T, N] from ``v0`` [N]; fills ``spikes`` [T, N], ``v_last`` [N] and, if ``save_h``, ``h_seq``."""
    n_steps, n = x.shape
    for b in numba.prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        width = min(BLOCK, n - lo)
        v = v0[lo : lo + width].copy()
        h = np.empty(width, np.float32)
        for t in range(n_steps):
            _charge_row(mode, x, t, lo, v, h, rest, c)
            _fire_reset_row(h, v, spikes, t, lo, v_threshold, v_reset, soft_reset)
            if save_h:
                h_seq[t, lo : lo + width] = h
        v_last[lo : lo + width] = v


@_jit
def _surrogate_row(sid, z, alpha, out):
    """``out[j] = g'(z[j])`` (``z = H - V_th``) for surrogate id ``sid`` (order of ``SURROGATE_IDS``)."""
    width = out.shape[0]
    if sid == 0:  # sigmoid
        for j in range(width):
            s = _ONE / (_ONE + np.exp(-alpha * z[j]))
            out[j] = alpha * s * (_ONE - s)
    elif sid == 1:  # atan
        half_alpha = _HALF * alpha
        scale = _HALF_PI * alpha
        for j in range(width):
            y = scale * z[j]
            out[j] = half_alpha / (_ONE + y * y)
    elif sid == 2:  # piecewise_quadratic
        for j in range(width):
            out[j] = max(alpha - alpha * alpha * abs(z[j]), _ZERO)
    elif sid == 3:  # piecewise_exp
        half_alpha = _HALF * alpha
        for j in range(width):
            out[j] = half_alpha * np.exp(-alpha * abs(z[j]))
    elif sid == 4:  # soft_sign
        inv_alpha = _ONE / alpha
        for j in range(width):
            y = inv_alpha + abs(z[j])
            out[j] = _ONE / (np.float32(2.0) * alpha * y * y)
    elif sid == 5:  # super_spike
        for j in range(width):
            y = _ONE + abs(z[j])
            out[j] = alpha / (y * y)
    elif sid == 6:  # erf: alpha / sqrt(pi) * exp(-(alpha x)^2)
        scale = _INV_SQRT_PI * alpha
        for j in range(width):
            y = alpha * z[j]
            out[j] = scale * np.exp(-y * y)
    else:  # rect
        bound = _HALF / alpha
        for j in range(width):
            out[j] = alpha if abs(z[j]) < bound else _ZERO


@_jit
def _grad_h_row(grad_spikes, h_seq, t, lo, sg, grad_v, grad_h, v_threshold, rest, soft_reset, detach_reset):
    """``grad_h[j] = dL/dH[t]`` from ``dL/dS[t]``, the surrogate ``sg`` and ``grad_v[j] = dL/dV[t]``."""
    width = sg.shape[0]
    if soft_reset:  # V = H - S V_th: dV/dH = 1, dV/dS = -V_th
        for j in range(width):
            gs = grad_spikes[t, lo + j]
            if not detach_reset:
                gs = gs - v_threshold * grad_v[j]
            grad_h[j] = gs * sg[j] + grad_v[j]
    else:  # V = S V_reset + (1 - S) H: dV/dH = 1 - S, dV/dS = V_reset - H
        for j in range(width):
            h = h_seq[t, lo + j]
            s = _ONE if h - v_threshold >= _ZERO else _ZERO
            gs = grad_spikes[t, lo + j]
            if not detach_reset:
                gs = gs + (rest - h) * grad_v[j]
            grad_h[j] = gs * sg[j] + grad_v[j] * (_ONE - s)


@_jit
def _plif_grad_k_row(grad_h, h_seq, x, v0, t, lo, decay_input, v_threshold, v_reset, rest, soft_reset, acc):
    """``acc[j] += dL/dH[t] * dH[t]/dk`` with ``dH/dk = X[t] - (V[t-1] - rest)`` (or ``-(V[t-1] - rest)``)."""
    width = grad_h.shape[0]
    for j in range(width):
        if t == 0:
            v_prev = v0[lo + j]
        else:
            h_prev = h_seq[t - 1, lo + j]
            s = _ONE if h_prev - v_threshold >= _ZERO else _ZERO
            v_prev = h_prev - s * v_threshold if soft_reset else s * v_reset + (_ONE - s) * h_prev
        dh_dk = x[t, lo + j] - (v_prev - rest) if decay_input else rest - v_prev
        acc[j] += np.float64(grad_h[j] * dh_dk)


@numba.njit(parallel=True, **_OPTIONS)
def neuron_backward(
    grad_spikes,
    grad_v_last,
    h_seq,
    x,
    v0,
    grad_x,
    grad_v0,
    grad_k_partial,
    is_plif,
    decay_input,
    dh_dv,
    dh_dx,
    v_threshold,
    v_reset,
    rest,
    soft_reset,
    detach_reset,
    sid,
    alpha,
):
    """Backward of :func:`neuron_forward`: fills ``grad_x`` [T, N], ``grad_v0`` [N], ``grad_k_partial`` [blocks].

    ``dh_dv`` and ``dh_dx`` are the charge's constant partial derivatives (1 and 1 for IF;
    ``1 - 1/tau`` and ``1/tau`` or 1 for LIF; the same with ``k`` for PLIF). ``x`` and ``v0`` are
    read only for PLIF (``dH/dk``).
    """
    n_steps, n = h_seq.shape
    for b in numba.prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        width = min(BLOCK, n - lo)
        grad_v = grad_v_last[lo : lo + width].copy()
        sg = np.empty(width, np.float32)
        grad_h = np.empty(width, np.float32)
        acc = np.zeros(width, np.float64)
        for t in range(n_steps - 1, -1, -1):
            for j in range(width):
                sg[j] = h_seq[t, lo + j] - v_threshold
            _surrogate_row(sid, sg, alpha, sg)
            _grad_h_row(
                grad_spikes, h_seq, t, lo, sg, grad_v, grad_h, v_threshold, rest, soft_reset, detach_reset
            )
            for j in range(width):
                grad_x[t, lo + j] = grad_h[j] * dh_dx
                grad_v[j] = grad_h[j] * dh_dv
            if is_plif:
                _plif_grad_k_row(
                    grad_h, h_seq, x, v0, t, lo, decay_input, v_threshold, v_reset, rest, soft_reset, acc
                )
        grad_v0[lo : lo + width] = grad_v
        grad_k_partial[b] = acc.sum()


# -- two-state neurons: ALIF (U = adaptation trace A) and CUBA LIF (U = synaptic current I) -----------


@numba.njit(parallel=True, **_OPTIONS)
def two_state_forward(
    x,
    v0,
    u0,
    spikes,
    h_seq,
    theta_seq,
    v_last,
    u_last,
    is_alif,
    mode,
    tau,
    tau_adapt,
    beta,
    current_decay,
    voltage_decay,
    v_threshold,
    v_reset,
    soft_reset,
    save_h,
):
    """ALIF or CUBA LIF over ``x`` [T, N] from ``(v0, u0)``; fills spikes, ``v_last``, ``u_last`` and, if
    ``save_h``, ``h_seq`` (and ``theta_seq`` for ALIF, whose threshold ``V_th + beta A[t-1]`` varies).

    ALIF: ``H`` is the LIF charge (``mode`` 1 or 2 of ``CHARGE_MODES``), ``theta = V_th + beta A``,
    ``A = A - A / tau_adapt + S``. CUBA LIF: ``I = I current_decay + X``, ``H = V voltage_decay + I``.
    """
    n_steps, n = x.shape
    for b in numba.prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        width = min(BLOCK, n - lo)
        v = v0[lo : lo + width].copy()
        u = u0[lo : lo + width].copy()
        h = np.empty(width, np.float32)
        theta = np.full(width, v_threshold, np.float32)
        for t in range(n_steps):
            if is_alif:
                _charge_row(mode, x, t, lo, v, h, v_reset, tau)
                for j in range(width):
                    theta[j] = v_threshold + beta * u[j]
            else:
                for j in range(width):
                    u[j] = u[j] * current_decay + x[t, lo + j]
                    h[j] = v[j] * voltage_decay + u[j]
            for j in range(width):
                s = _ONE if h[j] - theta[j] >= _ZERO else _ZERO
                spikes[t, lo + j] = s
                v[j] = h[j] - s * theta[j] if soft_reset else s * v_reset + (_ONE - s) * h[j]
                if is_alif:
                    u[j] = u[j] - u[j] / tau_adapt + s
            if save_h:
                h_seq[t, lo : lo + width] = h
                if is_alif:
                    theta_seq[t, lo : lo + width] = theta
        v_last[lo : lo + width] = v
        u_last[lo : lo + width] = u


@numba.njit(parallel=True, **_OPTIONS)
def two_state_backward(
    grad_spikes,
    grad_v_last,
    grad_u_last,
    h_seq,
    theta_seq,
    grad_x,
    grad_v0,
    grad_u0,
    is_alif,
    dh_dv,
    dh_dx,
    tau_adapt,
    beta,
    current_decay,
    v_threshold,
    v_reset,
    soft_reset,
    detach_reset,
    sid,
    alpha,
):
    """Backward of :func:`two_state_forward`: fills ``grad_x`` [T, N], ``grad_v0``, ``grad_u0`` [N].

    ``dh_dv``, ``dh_dx``: the ALIF charge's constant partials (``1 - 1/tau``, ``1/tau`` or 1); CUBA
    LIF uses ``voltage_decay`` and ``current_decay`` instead.
    """
    n_steps, n = h_seq.shape
    keep_adapt = _ONE - _ONE / tau_adapt
    for b in numba.prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        width = min(BLOCK, n - lo)
        grad_v = grad_v_last[lo : lo + width].copy()  # dL/dV[t]
        grad_u = grad_u_last[lo : lo + width].copy()  # dL/dA[t] or dL/dI[t+1] * current_decay
        theta = np.full(width, v_threshold, np.float32)
        sg = np.empty(width, np.float32)
        for t in range(n_steps - 1, -1, -1):
            if is_alif:
                theta[:] = theta_seq[t, lo : lo + width]
            for j in range(width):
                sg[j] = h_seq[t, lo + j] - theta[j]
            _surrogate_row(sid, sg, alpha, sg)
            for j in range(width):
                h = h_seq[t, lo + j]
                s = _ONE if h - theta[j] >= _ZERO else _ZERO
                grad_spike = grad_spikes[t, lo + j]  # dL/dS[t]
                if is_alif:
                    grad_spike += grad_u[j]
                if soft_reset:
                    dv_dh = _ONE
                    if not detach_reset:
                        grad_spike -= theta[j] * grad_v[j]
                else:
                    dv_dh = _ONE - s
                    if not detach_reset:
                        grad_spike += (v_reset - h) * grad_v[j]
                grad_h = grad_spike * sg[j] + grad_v[j] * dv_dh
                if is_alif:  # theta = V_th + beta A[t-1]; A[t] = A[t-1] (1 - 1/tau_adapt) + S[t]
                    grad_theta = -grad_spike * sg[j]
                    if soft_reset:
                        grad_theta -= grad_v[j] * s  # V[t] = H - S theta
                    grad_x[t, lo + j] = grad_h * dh_dx
                    grad_u[j] = grad_u[j] * keep_adapt + beta * grad_theta
                    grad_v[j] = grad_h * dh_dv
                else:  # I[t] = I[t-1] current_decay + X[t]; H = V[t-1] voltage_decay + I[t]
                    grad_i = grad_u[j] + grad_h
                    grad_x[t, lo + j] = grad_i
                    grad_u[j] = grad_i * current_decay
                    grad_v[j] = grad_h * dh_dv
        grad_v0[lo : lo + width] = grad_v
        grad_u0[lo : lo + width] = grad_u
