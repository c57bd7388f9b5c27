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

__all__ = ["BLOCK", "CHARGE_MODES", "SURROGATE_IDS", "neuron_forward", "neuron_backward"]

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
def _surrogate_row(sid, h_seq, t, lo, v_threshold, alpha, out):
    """``out[j] = g'(H[t, lo + j] - V_th)`` for surrogate id ``sid`` (order of ``SURROGATE_IDS``)."""
    width = out.shape[0]
    if sid == 0:  # sigmoid
        for j in range(width):
            s = _ONE / (_ONE + np.exp(-alpha * (h_seq[t, lo + j] - v_threshold)))
            out[j] = alpha * s * (_ONE - s)
    elif sid == 1:  # atan
        half_alpha = _HALF * alpha
        scale = _HALF_PI * alpha
        for j in range(width):
            z = scale * (h_seq[t, lo + j] - v_threshold)
            out[j] = half_alpha / (_ONE + z * z)
    elif sid == 2:  # piecewise_quadratic
        for j in range(width):
            out[j] = max(alpha - alpha * alpha * abs(h_seq[t, lo + j] - v_threshold), _ZERO)
    elif sid == 3:  # piecewise_exp
        half_alpha = _HALF * alpha
        for j in range(width):
            out[j] = half_alpha * np.exp(-alpha * abs(h_seq[t, lo + j] - v_threshold))
    elif sid == 4:  # soft_sign
        inv_alpha = _ONE / alpha
        for j in range(width):
            z = inv_alpha + abs(h_seq[t, lo + j] - v_threshold)
            out[j] = _ONE / (np.float32(2.0) * alpha * z * z)
    elif sid == 5:  # super_spike
        for j in range(width):
            z = _ONE + abs(h_seq[t, lo + j] - v_threshold)
            out[j] = alpha / (z * z)
    elif sid == 6:  # erf: alpha / sqrt(pi) * exp(-(alpha x)^2)
        scale = _INV_SQRT_PI * alpha
        for j in range(width):
            z = alpha * (h_seq[t, lo + j] - v_threshold)
            out[j] = scale * np.exp(-z * z)
    else:  # rect
        bound = _HALF / alpha
        for j in range(width):
            out[j] = alpha if abs(h_seq[t, lo + j] - v_threshold) < bound else _ZERO


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
            _surrogate_row(sid, h_seq, t, lo, v_threshold, alpha, sg)
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
