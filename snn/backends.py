"""Backend selection for the multi-step IF / LIF / PLIF run.

* ``"torch"``: the reference loop of :func:`snn.functional.multi_step` (any neuron, any surrogate);
* ``"cpu"``: :func:`snn.fused_cpu.neuron_multistep_cpu`, one autograd node with a hand-written
  backward and compiled time loops (IF/LIF/PLIF; runs on any device, it is plain torch);
* ``"triton"``: :func:`snn.kernels.triton_neurons.neuron_multistep_triton` (CUDA tensors);
* ``"auto"``: triton for CUDA tensors when triton imports, else cpu; torch for neurons or
  surrogates the fused paths do not cover.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from .fused_cpu import KINDS, neuron_multistep_cpu
from .surrogate import SurrogateFunction, by_name

__all__ = ["BACKENDS", "resolve_backend", "fused_function"]

BACKENDS = ("auto", "torch", "cpu", "triton")


@functools.cache
def _triton_function() -> Callable | None:
    """The Triton multi-step function, or None when triton (or the kernel module) does not import."""
    try:
        from .kernels.triton_neurons import neuron_multistep_triton
    except Exception:  # triton missing or broken: the fused CPU path serves instead
        return None
    return neuron_multistep_triton


def _fusable_surrogate(surrogate: SurrogateFunction) -> bool:
    try:
        by_name(surrogate.name)
    except ValueError:
        return False
    return True


def resolve_backend(backend: str, kind: str | None, surrogate: SurrogateFunction, x: torch.Tensor) -> str:
    """The concrete backend ("torch", "cpu" or "triton") that runs neuron ``kind`` on ``x``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    fusable = kind in KINDS and _fusable_surrogate(surrogate) and x.is_floating_point()
    if backend == "auto":
        if not fusable:
            return "torch"
        return "triton" if x.is_cuda and _triton_function() is not None else "cpu"
    if backend != "torch" and not fusable:
        raise ValueError(
            f"backend={backend!r} supports IF, LIF and PLIF neurons with a built-in surrogate on float "
            f"input; this neuron/surrogate ({kind or 'no fused kernel'}, {surrogate!r}) runs on backend='torch'"
        )
    if backend == "triton":
        if not x.is_cuda:
            raise ValueError("backend='triton' needs CUDA tensors; use backend='cpu' or 'auto'")
        if _triton_function() is None:
            raise ImportError("backend='triton' needs the triton package (pip install triton)")
    return backend


def fused_function(backend: str) -> Callable:
    """The multi-step function of a fused backend ("cpu" or "triton"); both share one signature."""
    return _triton_function() if backend == "triton" else neuron_multistep_cpu
