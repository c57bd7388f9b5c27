"""Execution backends of the multi-step neurons, one sibling module each.

Every backend module exposes ``KINDS`` (the neuron kinds it runs) and the same entry point
``multi_step(x_seq, state, p) -> (spikes, final_state)``, with ``p`` the parameter object of
:mod:`snn.params`:

* ``"torch"`` (:mod:`.torch_backend`): the reference loop :func:`snn.functional.multi_step`;
  every neuron, every surrogate, tensor fields;
* ``"numba"`` (:mod:`.numba_backend`): IF/LIF/PLIF/ALIF/CubaLIF, one autograd node whose forward
  and backward are Numba kernels compiled once per installation (CPU tensors); imported on first
  use (:func:`numba_module`), so that ``import snn`` does not import Numba;
* ``"cpu"`` (:mod:`.cpu_backend`): IF/LIF/PLIF, one autograd node with a hand-written backward and
  time loops compiled by torch.compile per configuration and sequence length (any device);
* ``"triton"`` (:mod:`.triton_backend`): IF/LIF/PLIF/ALIF/CubaLIF on CUDA tensors (when asked for
  explicitly, CPU tensors too under ``TRITON_INTERPRET=1``, Triton's interpreter, which the tests
  use); imported lazily, triton is optional;
* ``"auto"``: numba for fp32/bf16/fp16 CPU tensors, triton for CUDA tensors when triton imports
  (else cpu for IF/LIF/PLIF); torch for what the fused backends do not cover (Izhikevich, custom
  surrogates, tensor fields other than ``v_init`` and PLIF's ``w``, CubaLIF's ``v_leak``) and for
  fp64 CPU tensors (numba computes in fp32).

The fused backends share :mod:`.fused` (a parameter object as their kernels' scalars).
"""

from __future__ import annotations

import functools
import os
from types import ModuleType
from typing import NamedTuple

import torch

from ..params import NeuronParameters
from . import cpu_backend, torch_backend
from .fused import FUSED_KINDS, check_fusable, unsupported

__all__ = ["BACKENDS", "KINDS", "check_backend", "resolve_backend", "backend_module", "multi_step", "numba_module"]

BACKENDS = ("auto", "torch", "numba", "cpu", "triton")
# The neuron kinds each concrete backend runs (triton's module imports lazily).
KINDS: dict[str, tuple[str, ...]] = {
    "torch": torch_backend.KINDS,
    "numba": FUSED_KINDS,
    "cpu": cpu_backend.KINDS,
    "triton": FUSED_KINDS,
}


def numba_module() -> ModuleType:
    """:mod:`.numba_backend`, imported (with Numba, ~0.2 s) on the first call."""
    from . import numba_backend

    return numba_backend


@functools.cache
def _triton_module() -> ModuleType | None:
    """:mod:`.triton_backend`, or None when triton (or the kernel module) does not import."""
    try:
        from . import triton_backend
    except Exception:  # triton missing or broken: the fused CPU path serves instead
        return None
    return triton_backend


def _triton_device(x: torch.Tensor) -> bool:
    return x.is_cuda or os.environ.get("TRITON_INTERPRET", "0") == "1"


def check_backend(backend: str, p: NeuronParameters) -> None:
    """Raise ValueError if ``backend`` is unknown or cannot run the neurons of ``p`` at all."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend not in ("auto", "torch"):
        check_fusable(p, KINDS[backend], backend)


def resolve_backend(backend: str, p: NeuronParameters, x: torch.Tensor) -> str:
    """The concrete backend ("torch", "numba", "cpu" or "triton") that runs ``p``'s neurons on ``x``."""
    check_backend(backend, p)
    if backend == "auto":
        if not x.is_floating_point() or unsupported(p, KINDS["numba"]) is not None:
            return "torch"
        if x.is_cuda and _triton_module() is not None:
            return "triton"
        if x.device.type == "cpu":
            return "torch" if x.dtype == torch.float64 else "numba"
        return "cpu" if p.kind in KINDS["cpu"] else "torch"
    if backend != "torch" and not x.is_floating_point():
        raise ValueError(f"backend={backend!r} needs floating-point input, got {x.dtype}")
    if backend == "numba" and x.device.type != "cpu":
        raise ValueError(f"backend='numba' needs CPU tensors, got {x.device}; use backend='auto'")
    if backend == "triton":
        if not _triton_device(x):
            raise ValueError("backend='triton' needs CUDA tensors; use backend='numba' or 'auto'")
        if _triton_module() is None:
            raise ImportError("backend='triton' needs the triton package (pip install triton)")
    return backend


def backend_module(name: str) -> ModuleType:
    """The module of concrete backend ``name`` ("torch", "numba", "cpu" or "triton")."""
    if name == "triton":
        return _triton_module()
    if name == "numba":
        return numba_module()
    return {"torch": torch_backend, "cpu": cpu_backend}[name]


def multi_step(
    backend: str, x_seq: torch.Tensor, state: NamedTuple | None, p: NeuronParameters
) -> tuple[torch.Tensor, NamedTuple]:
    """Run ``p``'s neurons over ``x_seq`` from ``state`` on ``backend`` (resolved against ``x_seq``).

    A ``state`` whose tensors are not shaped like one time step is a ValueError on every backend
    (the torch loop broadcast one, silently).
    """
    for name, tensor in zip(getattr(state, "_fields", ()), state or (), strict=True):
        if x_seq.ndim >= 1 and tensor.shape != x_seq.shape[1:]:
            raise ValueError(
                f"state.{name} shape {tuple(tensor.shape)} does not match one time step {tuple(x_seq.shape[1:])}"
            )
    return backend_module(resolve_backend(backend, p, x_seq)).multi_step(x_seq, state, p)
