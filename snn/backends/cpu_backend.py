"""The "cpu" backend: multi-step IF / LIF / PLIF with a hand-written backward, time loops fused by torch.compile.

The autograd graph of the reference loop holds about ten nodes and as many saved tensors per time
step. Here the whole ``[T, ...]`` run is one autograd node: the forward saves only the pre-spike
potential ``H`` (plus ``X`` and ``V0`` for PLIF, whose ``dH/dtau`` needs them) and the backward
walks ``t = T-1 .. 0`` recomputing each spike and surrogate derivative from ``H``, like
SpikingJelly's GPU kernels. Both time loops are compiled with ``torch.compile`` (one fused C++
loop each, cached per neuron configuration); if compilation is unavailable or fails, the same
Python functions run eagerly. Set ``NEURODATA_SNN_COMPILE=0`` or call
:func:`set_compile_enabled` to force eager mode (the first compilation of a configuration is slow,
see ``docs/sections/snn.md``). Plain torch: it runs on any device.
"""

from __future__ import annotations

import functools
import os
import types
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from .. import functional as F
from ..params import NeuronParameters
from ..surrogate import surrogate_grad
from .fused import ONE_STATE_KINDS, FusedConfig, fused_config

__all__ = ["KINDS", "multi_step", "set_compile_enabled", "compile_enabled"]

KINDS = ONE_STATE_KINDS

_compile_enabled = os.environ.get("NEURODATA_SNN_COMPILE", "1") not in ("0", "false", "no")


def set_compile_enabled(enabled: bool) -> None:
    """Turn ``torch.compile`` of the fused loops on or off (process-wide).

    Args:
        enabled: True compiles the fused loops on their first call; False runs them eagerly. The
            environment variable ``NEURODATA_SNN_COMPILE=0`` sets the same switch at import.
    """
    global _compile_enabled
    _compile_enabled = bool(enabled)


def compile_enabled() -> bool:
    """Whether the fused loops are compiled (see :func:`set_compile_enabled`)."""
    return _compile_enabled


def _with_own_code(fn: Callable, tag: str) -> Callable:
    """A copy of the closure ``fn`` with its own code object.

    Dynamo keeps compiled graphs per code object and guards on closure values; without copies,
    every neuron configuration would recompile the same code object and, past the recompile
    limit (8), silently run eagerly.
    """
    code = fn.__code__.replace(co_name=f"{fn.__name__}_{tag}")
    return types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)


class _MaybeCompiled:
    """Calls ``fn`` through ``torch.compile`` when enabled; falls back to eager for good on failure."""

    def __init__(self, fn: Callable, tag: str) -> None:
        self.fn = _with_own_code(fn, tag)
        self.compiled: Callable | None = None
        self.failed = False

    def __call__(self, *args):
        if not _compile_enabled or self.failed:
            return self.fn(*args)
        try:
            if self.compiled is None:
                self.compiled = torch.compile(self.fn)
            return self.compiled(*args)
        except Exception as exc:  # compiler missing, unsupported platform, inductor bug
            warnings.warn(
                f"snn: torch.compile of the fused neuron loop failed ({type(exc).__name__}: {exc}); "
                "running the same loop eagerly",
                RuntimeWarning,
                stacklevel=3,
            )
            self.failed = True
            return self.fn(*args)


def _charge(kind: str, x: Tensor, v: Tensor, k: Tensor | None, tau: float, decay_input: bool, leak: float):
    """``H[t]`` in SpikingJelly's exact operation order (see :mod:`snn.functional`)."""
    if kind == "if":
        return v + x
    if kind == "lif":
        return v + (x - (v - leak)) / tau if decay_input else v - (v - leak) / tau + x
    return v + (x - (v - leak)) * k if decay_input else v - (v - leak) * k + x


def _reset(h: Tensor, spike: Tensor, v_threshold: float, v_reset: float | None) -> Tensor:
    if v_reset is None:
        return h - spike * v_threshold
    return spike * v_reset + (1.0 - spike) * h


@functools.lru_cache(maxsize=256)
def _loops(config: FusedConfig) -> tuple[_MaybeCompiled, _MaybeCompiled]:
    """The forward and backward time loops for one neuron configuration (cached, compiled lazily)."""
    kind, decay_input, tau, leak = config.kind, config.decay_input, config.tau, config.v_leak
    v_threshold, v_reset, detach_reset = config.v_threshold, config.v_reset, config.detach_reset
    surrogate_name, alpha = config.surrogate, config.alpha

    def forward(x_seq: Tensor, v: Tensor, k: Tensor):
        spikes, charged = [], []
        for t in range(x_seq.shape[0]):
            h = _charge(kind, x_seq[t], v, k, tau, decay_input, leak)
            spike = (h >= v_threshold).to(h.dtype)
            v = _reset(h, spike, v_threshold, v_reset)
            spikes.append(spike)
            charged.append(h)
        return torch.stack(spikes), v, torch.stack(charged)

    def backward(
        grad_spikes: Tensor, grad_v_last: Tensor, h_seq: Tensor, x_seq: Tensor, v0: Tensor, k: Tensor
    ):
        n_steps = h_seq.shape[0]
        grad_x = []
        grad_k = torch.zeros((), dtype=h_seq.dtype, device=h_seq.device)
        grad_v = grad_v_last
        for t in range(n_steps - 1, -1, -1):
            h = h_seq[t]
            sg = surrogate_grad(surrogate_name, h - v_threshold, alpha)
            if v_reset is None:
                dv_dh = 1.0 if detach_reset else 1.0 - v_threshold * sg
            else:
                dv_dh = 1.0 - (h >= v_threshold).to(h.dtype)
                if not detach_reset:
                    dv_dh = dv_dh + (v_reset - h) * sg
            grad_h = grad_spikes[t] * sg + grad_v * dv_dh
            if kind == "if":
                grad_x.append(grad_h)
                grad_v = grad_h
            elif kind == "lif":
                grad_x.append(grad_h / tau if decay_input else grad_h)
                grad_v = grad_h - grad_h / tau
            else:
                if t == 0:
                    v_prev = v0
                else:
                    h_prev = h_seq[t - 1]
                    v_prev = _reset(h_prev, (h_prev >= v_threshold).to(h.dtype), v_threshold, v_reset)
                dh_dk = x_seq[t] - (v_prev - leak) if decay_input else -(v_prev - leak)
                grad_k = grad_k + (grad_h * dh_dk).sum()
                grad_x.append(grad_h * k if decay_input else grad_h)
                grad_v = grad_h - grad_h * k
        grad_x.reverse()
        return torch.stack(grad_x), grad_v, grad_k

    tag = f"{kind}_{_loops.cache_info().currsize}"
    return _MaybeCompiled(forward, tag), _MaybeCompiled(backward, tag)


class _FusedNeuron(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq: Tensor, v0: Tensor, k: Tensor, config: FusedConfig):
        forward_loop, _ = _loops(config)
        spikes, v_last, h_seq = forward_loop(x_seq, v0, k)
        if config.kind == "plif":
            ctx.save_for_backward(h_seq, x_seq, v0, k)
        else:
            ctx.save_for_backward(h_seq)
        ctx.config = config
        return spikes, v_last

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes: Tensor | None, grad_v_last: Tensor | None):
        saved = ctx.saved_tensors
        h_seq = saved[0]
        x_seq, v0, k = saved[1:] if len(saved) > 1 else (h_seq, h_seq, h_seq.new_zeros(()))
        if grad_spikes is None:
            grad_spikes = torch.zeros_like(h_seq)
        if grad_v_last is None:
            grad_v_last = torch.zeros_like(h_seq[0])
        _, backward_loop = _loops(ctx.config)
        grad_x, grad_v0, grad_k = backward_loop(grad_spikes.contiguous(), grad_v_last, h_seq, x_seq, v0, k)
        return grad_x, grad_v0, (grad_k.reshape(k.shape) if ctx.config.kind == "plif" else None), None


def multi_step(x_seq: Tensor, state: NamedTuple | None, p: NeuronParameters) -> tuple[Tensor, NamedTuple]:
    """Run ``p``'s IF, LIF or PLIF neurons over ``x_seq`` ``[T, ...]`` from ``state`` (None: ``p``'s initial state).

    Returns ``(spikes, final_state)``: spikes in ``x_seq``'s dtype, the state in float32 for
    float16 and bfloat16 inputs (as the other backends keep it: a state rounded to 8 bits of
    mantissa every step fires differently) and in ``x_seq``'s dtype otherwise; differentiable
    w.r.t. ``x_seq``, the initial state and PLIF's ``w``.
    """
    config = fused_config(p, KINDS, "cpu")
    if x_seq.ndim < 1 or x_seq.shape[0] == 0:
        raise ValueError(f"x_seq must be time-major [T, ...] with T >= 1, got shape {tuple(x_seq.shape)}")
    v0 = F.init_state(p, x_seq[0]).v if state is None else state.v
    if v0.shape != x_seq.shape[1:]:
        raise ValueError(f"v0 shape {tuple(v0.shape)} does not match one time step {tuple(x_seq.shape[1:])}")
    dtype = torch.float32 if x_seq.dtype in (torch.float16, torch.bfloat16) else x_seq.dtype
    if config.kind == "plif":
        k = torch.sigmoid(torch.as_tensor(p.w).to(dtype)).reshape(())
    else:
        k = x_seq.new_zeros((), dtype=dtype)
    shape = x_seq.shape
    flat_x = x_seq.reshape(shape[0], -1).to(dtype).contiguous()
    spikes, v_last = _FusedNeuron.apply(flat_x, v0.reshape(-1).to(dtype), k, config)
    return spikes.to(x_seq.dtype).reshape(shape), F.MembraneState(v_last.reshape(shape[1:]))
