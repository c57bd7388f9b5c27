"""Backend selection for the multi-step IF / LIF / PLIF run.

* ``"torch"``: the reference loop of :func:`snn.functional.multi_step` (any neuron, any surrogate);
* ``"numba"``: :func:`snn.fused_numba.neuron_multistep_numba` (IF/LIF/PLIF) and
  ``two_state_multistep_numba`` (ALIF/CubaLIF), one autograd node whose forward and backward are
  Numba kernels compiled once per installation (CPU tensors);
* ``"cpu"``: :func:`snn.fused_cpu.neuron_multistep_cpu`, one autograd node with a hand-written
  backward and time loops compiled by torch.compile per configuration and sequence length
  (IF/LIF/PLIF; runs on any device, it is plain torch);
* ``"triton"``: :func:`snn.kernels.triton_neurons.neuron_multistep_triton` for IF/LIF/PLIF and
  ``two_state_multistep_triton`` for ALIF/CubaLIF (CUDA tensors; when asked for explicitly, CPU
  tensors too under ``TRITON_INTERPRET=1``, Triton's interpreter, which the tests use);
* ``"auto"``: numba for fp32/bf16/fp16 CPU tensors, triton for CUDA tensors when triton imports
  (else cpu for IF/LIF/PLIF); torch for neurons or surrogates the fused paths do not cover
  (Izhikevich, custom surrogates) and for fp64 CPU tensors (numba computes in fp32).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import torch

from .fused_cpu import KINDS, neuron_multistep_cpu
from .fused_numba import neuron_multistep_numba, two_state_multistep_numba
from .surrogate import SurrogateFunction, by_name

__all__ = ["BACKENDS", "TWO_STATE_KINDS", "check_backend", "resolve_backend", "fused_function"]

BACKENDS = ("auto", "torch", "numba", "cpu", "triton")
TWO_STATE_KINDS = ("alif", "cuba_lif")  # numba and triton: (spikes, v_last, u_last)


@functools.cache
def _triton_module():
    """``snn.kernels.triton_neurons``, or None when triton (or the kernel module) does not import."""
    try:
        from .kernels import triton_neurons
    except Exception:  # triton missing or broken: the fused CPU path serves instead
        return None
    return triton_neurons


def _triton_function(kind: str | None) -> Callable | None:
    module = _triton_module()
    name = "two_state_multistep_triton" if kind in TWO_STATE_KINDS else "neuron_multistep_triton"
    return getattr(module, name, None)


def _triton_device(x: torch.Tensor) -> bool:
    return x.is_cuda or os.environ.get("TRITON_INTERPRET", "0") == "1"


def _fusable_surrogate(surrogate: SurrogateFunction) -> bool:
    try:
        by_name(surrogate.name)
    except ValueError:
        return False
    return True


def check_backend(backend: str, kind: str | None, surrogate: SurrogateFunction) -> None:
    """Raise if ``backend`` is unknown or cannot run neuron ``kind`` with ``surrogate`` at all."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    supported = {"numba": KINDS + TWO_STATE_KINDS, "cpu": KINDS, "triton": KINDS + TWO_STATE_KINDS}.get(
        backend
    )
    if supported is not None and not (kind in supported and _fusable_surrogate(surrogate)):
        raise ValueError(
            f"backend={backend!r} supports {', '.join(supported)} neurons with a built-in surrogate; "
            f"this neuron/surrogate ({kind or 'no fused kernel'}, {surrogate!r}) runs on backend='torch'"
        )


def resolve_backend(backend: str, kind: str | None, surrogate: SurrogateFunction, x: torch.Tensor) -> str:
    """The concrete backend ("torch", "numba", "cpu" or "triton") that runs neuron ``kind`` on ``x``."""
    check_backend(backend, kind, surrogate)
    if backend == "auto":
        if not (_fusable_surrogate(surrogate) and x.is_floating_point() and kind in KINDS + TWO_STATE_KINDS):
            return "torch"
        if x.is_cuda and _triton_function(kind) is not None:
            return "triton"
        if x.device.type == "cpu":
            return "torch" if x.dtype == torch.float64 else "numba"
        return "cpu" if kind in KINDS else "torch"
    if backend != "torch" and not x.is_floating_point():
        raise ValueError(f"backend={backend!r} needs floating-point input, got {x.dtype}")
    if backend == "numba" and x.device.type != "cpu":
        raise ValueError(f"backend='numba' needs CPU tensors, got {x.device}; use backend='auto'")
    if backend == "triton":
        if not _triton_device(x):
            raise ValueError("backend='triton' needs CUDA tensors; use backend='numba' or 'auto'")
        if _triton_function(kind) is None:
            raise ImportError("backend='triton' needs the triton package (pip install triton)")
    return backend


def fused_function(backend: str, kind: str) -> Callable:
    """The multi-step function of a fused backend ("numba", "cpu" or "triton") for neuron ``kind``.

    IF/LIF/PLIF functions share one signature and return ``(spikes, v_last)``; the two-state
    (ALIF, CubaLIF) function also takes and returns the second state ``u``.
    """
    if backend == "triton":
        return _triton_function(kind)
    if backend == "numba":
        return two_state_multistep_numba if kind in TWO_STATE_KINDS else neuron_multistep_numba
    return neuron_multistep_cpu
