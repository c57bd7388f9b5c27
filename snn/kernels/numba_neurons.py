"""Fused multi-step IF / LIF / PLIF / ALIF / CUBA LIF kernels for CPU in Numba (compiled once, cached on disk).

Each ``prange`` iteration owns a block of ``BLOCK`` neurons and runs the whole time loop over it;
inside a step, loops over the block's row of neurons (contiguous 1-d slices, so they vectorise)
do the work. Branches on the neuron configuration (charge form, reset mode, surrogate id) sit
outside those inner loops. Blocks are wide (16 KiB of fp32 per row) because each step touches a
new row of every ``[T, N]`` array and narrow blocks pay in TLB and prefetch misses (measured in
``docs/sections/snn.md``).

* forward: charge ``H[t]`` in SpikingJelly's exact operation order (fp32 throughout, no fused
  multiply-add: ``fastmath=False``), fire ``S[t] = (H[t] - V_th >= 0)``, reset; writes ``S`` and
  ``V[T-1]`` (IF/LIF/PLIF), also ``H`` (fp32) for the two-state neurons when a backward follows.
* backward: IF/LIF/PLIF first rerun each block's forward from ``X`` and ``V0`` into ``dL/dX``'s
  columns (``H`` stays in cache, never makes a round trip to memory); then ``t = T-1 .. 0``
  recomputing spikes and surrogate derivatives from ``H``, carrying ``dL/dV[t]``; writes
  ``dL/dX``, ``dL/dV0`` and, for PLIF, one partial sum of ``dL/dk`` (``k = 1/tau = sigmoid(w)``)
  per block, which the caller adds up (no races, and the sum does not depend on the thread count).

The surrogate derivatives are compiled copies of :func:`snn.surrogate.surrogate_grad`, tested
against it. All arrays are C-contiguous float32, ``[T, N]`` for sequences and ``[N]`` for states;
the caller (:mod:`snn.backends.numba_backend`) checks shapes, since Numba does not bounds-check.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..surrogate import NAMES as SURROGATE_NAMES

__all__ = [
    "BLOCK",
    "CHARGE_MODES",
    "SURROGATE_IDS",
    "neuron_forward",
    "neuron_backward",
    "two_state_forward",
    "two_state_backward",
]

BLOCK = 4096  # neurons per prange iteration
SURROGATE_IDS: dict[str, int] = {name: i for i, name in enumerate(SURROGATE_NAMES)}
# Charge forms (SpikingJelly's operation order); ``c`` is tau (LIF, ALIF) or k = 1/tau (PLIF);
# ``leak`` is the leak target (v_leak; by default ``rest``). ``rest`` is v_reset for hard reset
# and 0 for soft reset (where the reset itself ignores it).
CHARGE_MODES: dict[tuple[str, bool], int] = {
    ("if", True): 0,  # H = V + X
    ("if", False): 0,
    ("lif", True): 1,  # H = V + (X - (V - leak)) / tau
    ("lif", False): 2,  # H = V - (V - leak) / tau + X
    ("plif", True): 3,  # H = V + (X - (V - leak)) * k
    ("plif", False): 4,  # H = V - (V - leak) * k + X
}

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_HALF_PI = np.float32(math.pi / 2)
_INV_SQRT_PI = np.float32(1.0 / math.sqrt(math.pi))

_OPTIONS = {"cache": True, "fastmath": False, "nogil": True, "error_model": "numpy"}  # numpy: x/0 is IEEE
_jit = numba.njit(**_OPTIONS)


@_jit
def _charge_row(mode, x, v, h, leak, c):
    """``h = H[t]`` from ``v = V[t-1]`` and ``x = X[t]`` (one block's row) in charge form ``mode``."""
    if mode == 0:
        for j in range(v.shape[0]):
            h[j] = v[j] + x[j]
    elif mode == 1:
        for j in range(v.shape[0]):
            h[j] = v[j] + (x[j] - (v[j] - leak)) / c
    elif mode == 2:
        for j in range(v.shape[0]):
            h[j] = v[j] - (v[j] - leak) / c + x[j]
    elif mode == 3:
        for j in range(v.shape[0]):
            h[j] = v[j] + (x[j] - (v[j] - leak)) * c
    else:
        for j in range(v.shape[0]):
            h[j] = v[j] - (v[j] - leak) * c + x[j]


@_jit
def _fire_reset_row(h, theta, spikes, v, rest, soft_reset):
    """``spikes = (H - theta >= 0)``; ``v = H - S theta`` (soft) or ``S rest + (1 - S) H`` (hard)."""
    if soft_reset:
        for j in range(v.shape[0]):
            s = _ONE if h[j] - theta[j] >= _ZERO else _ZERO
            spikes[j] = s
            v[j] = h[j] - s * theta[j]
    else:
        for j in range(v.shape[0]):
            s = _ONE if h[j] - theta[j] >= _ZERO else _ZERO
            spikes[j] = s
            v[j] = s * rest + (_ONE - s) * h[j]


@_jit
def _spike_row(h, theta, spikes):
    """``spikes = (H - theta >= 0)`` (as :func:`_fire_reset_row`, without the reset)."""
    for j in range(h.shape[0]):
        spikes[j] = _ONE if h[j] - theta[j] >= _ZERO else _ZERO


@_jit
def _max_pool_row(spikes, out, width, channels):
    """2x2 max-pool (stride 2) of ``spikes``, whole pairs of image rows ``[pairs, 2, width, channels]``,
    into ``out`` ``[pairs, width / 2, channels]``."""
    row = width * channels
    for p in range(spikes.shape[0] // (2 * row)):
        top, o = 2 * p * row, p * (row // 2)
        for wo in range(width // 2):
            a, b = top + 2 * wo * channels, o + wo * channels
            for ch in range(channels):
                left = max(spikes[a + ch], spikes[a + row + ch])
                right = max(spikes[a + channels + ch], spikes[a + row + channels + ch])
                out[b + ch] = max(left, right)


@_jit
def _max_unpool_grad_row(spikes, grad_out, grad_s, width, channels):
    """Backward of :func:`_max_pool_row`: each window's gradient goes to its first maximum in the
    order (0, 0), (0, 1), (1, 0), (1, 1), as torch's max-pool routes it; zero elsewhere."""
    row = width * channels
    for p in range(spikes.shape[0] // (2 * row)):
        top, o = 2 * p * row, p * (row // 2)
        for wo in range(width // 2):
            a, b = top + 2 * wo * channels, o + wo * channels
            for ch in range(channels):
                i0, i1, i2, i3 = a + ch, a + channels + ch, a + row + ch, a + row + channels + ch
                s0, s1, s2, s3 = spikes[i0], spikes[i1], spikes[i2], spikes[i3]
                m = max(max(s0, s1), max(s2, s3))
                g = grad_out[b + ch]
                t0 = s0 == m
                t1 = s1 == m and not t0
                t2 = s2 == m and not (t0 or t1)
                grad_s[i0] = g if t0 else _ZERO
                grad_s[i1] = g if t1 else _ZERO
                grad_s[i2] = g if t2 else _ZERO
                grad_s[i3] = g if not (t0 or t1 or t2) else _ZERO


@numba.njit(parallel=True, **_OPTIONS)
def neuron_forward(
    x, v0, spikes, v_last, mode, leak, rest, c, v_threshold, soft_reset, block, pool_width, pool_channels
):
    """Run ``x`` [T, N] from ``v0`` [N]; fills ``spikes`` and ``v_last`` [N].

    ``pool_channels == 0``: ``spikes`` is [T, N], one block is ``block`` neurons. Otherwise the
    neurons are images ``[M, H, W, C]`` (``W = pool_width``, ``C = pool_channels``, H and W even),
    ``spikes`` [T, N / 4] receives their 2x2 max-pool (stride 2) and ``block`` must be a multiple
    of ``2 W C`` (whole pairs of image rows).

    Args:
        mode: The charge form, a value of :data:`CHARGE_MODES`.
        leak: The leak target (``v_leak``; by default ``rest``).
        rest: The hard reset's potential (0 with soft reset).
        c: ``tau`` (LIF) or ``k = 1/tau`` (PLIF); unused by IF.
        v_threshold: The firing threshold.
        soft_reset: Spikes subtract ``v_threshold`` instead of setting ``V = rest``.
    """
    n_steps, n = x.shape
    pooled = pool_channels > 0
    for b in numba.prange((n + block - 1) // block):
        lo, hi = b * block, min(b * block + block, n)
        v = v0[lo:hi].copy()
        h = np.empty(hi - lo, np.float32)
        s = np.empty(hi - lo if pooled else 0, np.float32)
        theta = np.full(hi - lo, v_threshold, np.float32)
        for t in range(n_steps):
            _charge_row(mode, x[t][lo:hi], v, h, leak, c)
            if pooled:
                _fire_reset_row(h, theta, s, v, rest, soft_reset)
                _max_pool_row(s, spikes[t][lo // 4 : hi // 4], pool_width, pool_channels)
            else:
                _fire_reset_row(h, theta, spikes[t][lo:hi], v, rest, soft_reset)
        v_last[lo:hi] = v


@_jit
def _surrogate_row(sid, h, theta, alpha, out):
    """``out[j] = g'(h[j] - theta[j])`` for surrogate id ``sid`` (order of ``SURROGATE_IDS``)."""
    width = out.shape[0]
    if sid == 0:  # sigmoid
        for j in range(width):
            s = _ONE / (_ONE + np.exp(-alpha * (h[j] - theta[j])))
            out[j] = alpha * s * (_ONE - s)
    elif sid == 1:  # atan
        half_alpha = _HALF * alpha
        scale = _HALF_PI * alpha
        for j in range(width):
            y = scale * (h[j] - theta[j])
            out[j] = half_alpha / (_ONE + y * y)
    elif sid == 2:  # piecewise_quadratic
        for j in range(width):
            out[j] = max(alpha - alpha * alpha * abs(h[j] - theta[j]), _ZERO)
    elif sid == 3:  # piecewise_exp
        half_alpha = _HALF * alpha
        for j in range(width):
            out[j] = half_alpha * np.exp(-alpha * abs(h[j] - theta[j]))
    elif sid == 4:  # soft_sign
        inv_alpha = _ONE / alpha
        for j in range(width):
            y = inv_alpha + abs(h[j] - theta[j])
            out[j] = _ONE / (np.float32(2.0) * alpha * y * y)
    elif sid == 5:  # super_spike
        for j in range(width):
            y = _ONE + abs(h[j] - theta[j])
            out[j] = alpha / (y * y)
    elif sid == 6:  # erf: alpha / sqrt(pi) * exp(-(alpha x)^2)
        scale = _INV_SQRT_PI * alpha
        for j in range(width):
            y = alpha * (h[j] - theta[j])
            out[j] = scale * np.exp(-y * y)
    else:  # rect
        bound = _HALF / alpha
        for j in range(width):
            out[j] = alpha if abs(h[j] - theta[j]) < bound else _ZERO


@_jit
def _grad_h_row(grad_out, grad_s, h, theta, sg, grad_v, grad_h, rest, soft_reset, detach_reset):
    """``grad_h = dL/dH[t]`` and ``grad_s = dL/dS[t]`` (``grad_out`` plus the reset's share; may be
    ``grad_out`` itself) from the surrogate ``sg`` and ``grad_v = dL/dV[t]``."""
    if soft_reset:  # V = H - S theta: dV/dH = 1, dV/dS = -theta
        for j in range(sg.shape[0]):
            grad_s[j] = grad_out[j] if detach_reset else grad_out[j] - theta[j] * grad_v[j]
            grad_h[j] = grad_s[j] * sg[j] + grad_v[j]
    else:  # V = S rest + (1 - S) H: dV/dH = 1 - S, dV/dS = rest - H
        for j in range(sg.shape[0]):
            s = _ONE if h[j] - theta[j] >= _ZERO else _ZERO
            grad_s[j] = grad_out[j] if detach_reset else grad_out[j] + (rest - h[j]) * grad_v[j]
            grad_h[j] = grad_s[j] * sg[j] + grad_v[j] * (_ONE - s)


@numba.njit(parallel=True, **_OPTIONS)
def neuron_backward(
    grad_spikes,
    grad_v_last,
    x,
    v0,
    grad_x,
    grad_v0,
    grad_k_partial,
    mode,
    c,
    is_plif,
    decay_input,
    dh_dv,
    dh_dx,
    v_threshold,
    leak,
    rest,
    soft_reset,
    detach_reset,
    sid,
    alpha,
    block,
    pool_width,
    pool_channels,
):
    """Backward of :func:`neuron_forward`: fills ``grad_x`` [T, N], ``grad_v0`` [N], ``grad_k_partial`` [blocks].

    ``grad_spikes`` is [T, N], or with pooling (``pool_channels > 0``, ``block``, ``pool_width``
    as in :func:`neuron_forward`) the gradient of the pooled spikes [T, N / 4], routed back to the
    recomputed spikes.

    Each block first reruns its forward from ``x`` and ``v0`` (charge form ``mode``, constant ``c``
    as in :func:`neuron_forward`, same operations, so the same ``H``) into its columns of
    ``grad_x``, then walks back over them, overwriting ``H[t]`` with ``dL/dX[t]`` once read: ``H``
    stays in cache instead of making a round trip to memory between the passes.
    ``dh_dv`` and ``dh_dx`` are the charge's constant partial derivatives (1 and 1 for IF;
    ``1 - 1/tau`` and ``1/tau`` or 1 for LIF; the same with ``k`` for PLIF). PLIF's
    ``dH[t]/dk = X[t] - (V[t-1] - leak)`` (``decay_input``) or ``-(V[t-1] - leak)``, with
    ``V[t-1]`` recomputed from ``H[t-1]``.

    Args:
        grad_v_last: ``dL/dV`` of the final potential [N].
        is_plif: Accumulate ``dL/dk`` per block into ``grad_k_partial`` (PLIF's learnable leak).
        v_threshold: The firing threshold.
        rest: The hard reset's potential (0 with soft reset).
        soft_reset: Spikes subtract ``v_threshold`` instead of setting ``V = rest``.
        detach_reset: The reset is kept out of the gradient.
        sid: The surrogate's id (a value of :data:`SURROGATE_IDS`).
        alpha: The surrogate's sharpness.
    """
    n_steps, n = x.shape
    h_seq = grad_x
    pooled = pool_channels > 0
    for b in numba.prange((n + block - 1) // block):
        lo, hi = b * block, min(b * block + block, n)
        theta = np.full(hi - lo, v_threshold, np.float32)
        v = v0[lo:hi].copy()
        spikes_row = np.empty(hi - lo, np.float32)
        for t in range(n_steps):
            h_row = h_seq[t][lo:hi]
            _charge_row(mode, x[t][lo:hi], v, h_row, leak, c)
            _fire_reset_row(h_row, theta, spikes_row, v, rest, soft_reset)
        grad_v = grad_v_last[lo:hi].copy()
        sg = np.empty(hi - lo, np.float32)
        grad_s = np.empty(hi - lo, np.float32)
        grad_h = np.empty(hi - lo, np.float32)
        v_prev = np.empty(hi - lo, np.float32)
        acc = np.zeros(hi - lo, np.float64)
        grad_out = np.empty(hi - lo if pooled else 0, np.float32)
        for t in range(n_steps - 1, -1, -1):
            h = h_seq[t][lo:hi]
            if pooled:
                _spike_row(h, theta, spikes_row)
                _max_unpool_grad_row(
                    spikes_row, grad_spikes[t][lo // 4 : hi // 4], grad_out, pool_width, pool_channels
                )
            else:
                grad_out = grad_spikes[t][lo:hi]
            _surrogate_row(sid, h, theta, alpha, sg)
            _grad_h_row(grad_out, grad_s, h, theta, sg, grad_v, grad_h, rest, soft_reset, detach_reset)
            gx = grad_x[t][lo:hi]
            for j in range(hi - lo):
                gx[j] = grad_h[j] * dh_dx
                grad_v[j] = grad_h[j] * dh_dv
            if is_plif:
                if t == 0:
                    v_prev[:] = v0[lo:hi]
                else:
                    _fire_reset_row(h_seq[t - 1][lo:hi], theta, spikes_row, v_prev, rest, soft_reset)
                if decay_input:
                    xt = x[t][lo:hi]
                    for j in range(hi - lo):
                        acc[j] += np.float64(grad_h[j] * (xt[j] - (v_prev[j] - leak)))
                else:
                    for j in range(hi - lo):
                        acc[j] += np.float64(grad_h[j] * (leak - v_prev[j]))
        grad_v0[lo:hi] = grad_v
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
    leak,
    rest,
    soft_reset,
    save_h,
):
    """ALIF or CUBA LIF over ``x`` [T, N] from ``(v0, u0)``; fills spikes, ``v_last``, ``u_last`` and, if
    ``save_h``, ``h_seq`` (and ``theta_seq`` for ALIF, whose threshold ``V_th + beta A[t-1]`` varies).

    ALIF: ``H`` is the LIF charge (``mode`` 1 or 2 of ``CHARGE_MODES``), ``theta = V_th + beta A``,
    ``A = A - A / tau_adapt + S``. CUBA LIF: ``I = I current_decay + X``, ``H = V voltage_decay + I``.

    Args:
        is_alif: True for ALIF (``u`` is the adaptation trace), False for CUBA LIF (``u`` is the current).
        tau: ALIF's membrane time constant in steps (the ``c`` of the LIF charge).
        v_threshold: The base firing threshold.
        leak: ALIF's leak target.
        rest: The hard reset's potential (0 with soft reset).
        soft_reset: Spikes subtract the threshold instead of setting ``V = rest``.
    """
    n_steps, n = x.shape
    for b in numba.prange((n + BLOCK - 1) // BLOCK):
        lo, hi = b * BLOCK, min(b * BLOCK + BLOCK, n)
        v = v0[lo:hi].copy()
        u = u0[lo:hi].copy()
        h = np.empty(hi - lo, np.float32)
        theta = np.full(hi - lo, v_threshold, np.float32)
        for t in range(n_steps):
            h_row = h_seq[t][lo:hi] if save_h else h
            theta_row = theta_seq[t][lo:hi] if save_h and is_alif else theta
            xt = x[t][lo:hi]
            if is_alif:
                _charge_row(mode, xt, v, h_row, leak, tau)
                for j in range(hi - lo):
                    theta_row[j] = v_threshold + beta * u[j]
            else:
                for j in range(hi - lo):
                    u[j] = u[j] * current_decay + xt[j]
                    h_row[j] = v[j] * voltage_decay + u[j]
            s_row = spikes[t][lo:hi]
            _fire_reset_row(h_row, theta_row, s_row, v, rest, soft_reset)
            if is_alif:
                for j in range(hi - lo):
                    u[j] = u[j] - u[j] / tau_adapt + s_row[j]
        v_last[lo:hi] = v
        u_last[lo:hi] = u


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
    rest,
    soft_reset,
    detach_reset,
    sid,
    alpha,
):
    """Backward of :func:`two_state_forward`: fills ``grad_x`` [T, N], ``grad_v0``, ``grad_u0`` [N].

    ``dh_dv``, ``dh_dx``: the charge's constant partials (ALIF: ``1 - 1/tau`` and ``1/tau`` or 1;
    CUBA LIF: ``voltage_decay`` and 1, with ``dH/dI = 1`` and ``dI[t]/dI[t-1] = current_decay``).

    Args:
        grad_spikes: ``dL/dS`` [T, N].
        grad_v_last: ``dL/dV`` of the final potential [N].
        grad_u_last: ``dL/dU`` of the final second state [N].
        h_seq: The charged potentials ``H`` [T, N] the forward saved.
        theta_seq: ALIF's thresholds [T, N] the forward saved (unused for CUBA LIF).
        is_alif: True for ALIF, False for CUBA LIF.
        tau_adapt: ALIF's adaptation time constant in steps.
        beta: ALIF's adaptation strength.
        v_threshold: The base firing threshold.
        rest: The hard reset's potential (0 with soft reset).
        soft_reset: Spikes subtract the threshold instead of setting ``V = rest``.
        detach_reset: The reset is kept out of the gradient.
        sid: The surrogate's id (a value of :data:`SURROGATE_IDS`).
        alpha: The surrogate's sharpness.
    """
    n_steps, n = h_seq.shape
    keep_adapt = _ONE - _ONE / tau_adapt
    for b in numba.prange((n + BLOCK - 1) // BLOCK):
        lo, hi = b * BLOCK, min(b * BLOCK + BLOCK, n)
        grad_v = grad_v_last[lo:hi].copy()  # dL/dV[t]
        grad_u = grad_u_last[lo:hi].copy()  # dL/dA[t] (alif) or the carried dL/dI[t] (cuba_lif)
        theta = np.full(hi - lo, v_threshold, np.float32)
        sg = np.empty(hi - lo, np.float32)
        grad_s = np.empty(hi - lo, np.float32)
        grad_h = np.empty(hi - lo, np.float32)
        for t in range(n_steps - 1, -1, -1):
            h = h_seq[t][lo:hi]
            if is_alif:
                theta[:] = theta_seq[t][lo:hi]
            _surrogate_row(sid, h, theta, alpha, sg)
            grad_s[:] = grad_spikes[t][lo:hi]
            if is_alif:  # A[t] = A[t-1] (1 - 1/tau_adapt) + S[t]
                for j in range(hi - lo):
                    grad_s[j] += grad_u[j]
            _grad_h_row(grad_s, grad_s, h, theta, sg, grad_v, grad_h, rest, soft_reset, detach_reset)
            gx = grad_x[t][lo:hi]
            if is_alif:  # theta = V_th + beta A[t-1]; soft reset V[t] = H - S theta
                for j in range(hi - lo):
                    grad_theta = -grad_s[j] * sg[j]
                    if soft_reset:
                        grad_theta -= grad_v[j] * (_ONE if h[j] - theta[j] >= _ZERO else _ZERO)
                    grad_u[j] = grad_u[j] * keep_adapt + beta * grad_theta
                    gx[j] = grad_h[j] * dh_dx
                    grad_v[j] = grad_h[j] * dh_dv
            else:  # I[t] = I[t-1] current_decay + X[t]; H = V[t-1] voltage_decay + I[t]
                for j in range(hi - lo):
                    grad_i = grad_u[j] + grad_h[j]
                    gx[j] = grad_i
                    grad_u[j] = grad_i * current_decay
                    grad_v[j] = grad_h[j] * dh_dv
        grad_v0[lo:hi] = grad_v
        grad_u0[lo:hi] = grad_u
