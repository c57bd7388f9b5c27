"""Neurons both ways between :mod:`snn` and NIR's continuous-time nodes: the discrete mapping at ``dt``.

NIR's neurons are continuous: ``tau dv/dt = (v_leak - v) + r I`` (LIF, LI), ``dv/dt = r I`` (IF, I),
CubaLIF's ``tau_syn dI/dt = -I + w_in S`` feeding ``tau_mem dv/dt = (v_leak - v) + r I``; a spike
when ``v > v_threshold``, then ``v = v_reset``. Our neurons are those equations taken one forward
Euler step of ``dt`` at a time (``docs/sections/hw-nir.md`` has the table):

* IF: ``H = V + X`` is ``r = 1/dt``;
* LIF with ``decay_input=True``, ``H = V + (X - (V - v_leak)) / tau_steps``: ``tau = tau_steps dt``,
  ``r = 1``; with ``decay_input=False`` (``H = V - (V - v_leak) / tau_steps + X``) ``r = tau_steps``;
* CubaLIF, ``I = I current_decay + X``, ``H = v_leak + (V - v_leak) voltage_decay + I``:
  ``tau_syn = dt / (1 - current_decay)``, ``w_in = 1 / (1 - current_decay)``,
  ``tau_mem = dt / (1 - voltage_decay)``, ``r = 1 / (1 - voltage_decay)``.

Importing inverts it: ``tau_steps = tau / dt``, the decays ``1 - dt / tau``, and whatever input
gain is left (``r dt`` for IF and I; ``r`` for LIF and LI unless ``r = tau / dt``; ``w_in r dt^2 /
(tau_syn tau_mem)`` for CubaLIF) becomes an :class:`snn.layers.Scale` in front of the neuron,
left out where it is 1 in float32. Time constants are written in float64 so that the round
trip ``tau_steps -> tau -> tau_steps`` is exact after rounding to float32.

Thresholds: ours fire at ``H >= v_threshold``, NIR's at ``v > v_threshold``. An export writes the
largest float32 below our threshold, so NIR's strict rule fires exactly where ours does for float32
potentials; imported neurons use ``strict=True`` (``H > v_threshold``). Soft reset, a non-resting
start and PLIF's ``w`` have no NIR field: they travel as node metadata that :func:`hw.nir.from_nir`
honours (other readers see a hard reset to ``v_reset = 0`` and a start at rest; the export warns).
"""

from __future__ import annotations

import warnings
from typing import Any

import nir
import numpy as np
import torch
from torch import nn

import snn
from snn import layers
from snn.params import CubaLIFParameters, IFParameters, NeuronParameters, PLIFParameters, Value

from .errors import NIRError

__all__ = ["RESET_KEY", "V_INIT_KEY", "PLIF_W_KEY", "NEURON_NODES", "neuron_node", "integrator_node", "node_neuron"]

# Metadata keys of the fields NIR has no place for (see the module docstring).
RESET_KEY = "neurodata_reset"  # "subtract": soft reset (subtract the threshold)
V_INIT_KEY = "neurodata_v_init"  # the membrane potential before the first step
PLIF_W_KEY = "neurodata_plif_w"  # PLIF's w (its charge multiplies by sigmoid(w))

NEURON_NODES = (nir.IF, nir.LIF, nir.CubaLIF, nir.LI, nir.I)


# -- export ---------------------------------------------------------------------------------------
def _full(value: Value, shape: tuple[int, ...], dtype=np.float32, below: bool = False) -> np.ndarray:
    """``value`` (a number or a tensor broadcast against one sample) as an array of ``shape``.

    ``below``: the largest float32 below each value instead (a threshold: NIR's ``v > t`` then fires
    exactly where our ``v >= threshold`` does), taken before broadcasting, on the few distinct values.
    """
    small = value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    small = small.astype(dtype)
    if below:
        small = np.nextafter(small, dtype(-np.inf))
    if small.ndim == 0:
        return np.full(shape, small, dtype=dtype)
    return np.ascontiguousarray(np.broadcast_to(small, shape))


def _common(name: str, p: NeuronParameters, shape: tuple[int, ...]) -> tuple[dict[str, np.ndarray], dict]:
    """The threshold and reset fields, and the metadata of what NIR cannot say."""
    threshold = _full(p.v_threshold, shape, below=not p.strict)
    fields = {"v_threshold": threshold, "v_reset": _full(p.rest, shape)}
    metadata: dict[str, Any] = {}
    lossy = []
    if p.v_reset is None:
        metadata[RESET_KEY] = "subtract"
        lossy.append("soft reset (other readers reset to v_reset = 0)")
    if p.v_init is not None:
        metadata[V_INIT_KEY] = _full(p.v_init, shape)
        lossy.append("an initial potential v_init (other readers start at rest)")
    if lossy:
        warnings.warn(
            f"layer {name!r}: {' and '.join(lossy)} has no NIR field; written as node metadata "
            f"({', '.join(metadata)}) that hw.nir.from_nir honours and other libraries ignore",
            stacklevel=7,  # the caller of hw.nir.to_nir
        )
    return fields, metadata


def _time_constant(name: str, decay: Value, dt: float, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``tau = dt / (1 - decay)`` and ``1 / (1 - decay)`` in float64; a decay of 1 has no time constant."""
    keep = _full(decay, shape, np.float64)
    if (keep >= 1.0).any():
        raise NIRError([f"layer {name!r}: a decay factor of 1 (no leak) has no NIR time constant"])
    rate = 1.0 - keep
    return dt / rate, 1.0 / rate


def neuron_node(name: str, p: NeuronParameters, shape: tuple[int, ...], dt: float) -> nir.NIRNode:
    """The NIR node of neuron parameters ``p`` on samples of ``shape`` at step ``dt`` (seconds);
    ``name`` is the layer's name, used in errors."""
    fields, metadata = _common(name, p, shape)
    if isinstance(p, CubaLIFParameters):
        tau_syn, w_in = _time_constant(name, p.current_decay, dt, shape)
        tau_mem, r = _time_constant(name, p.voltage_decay, dt, shape)
        return nir.CubaLIF(
            tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=_full(p.leak_target, shape), w_in=w_in,
            **fields, metadata=metadata,
        )  # fmt: skip
    if p.kind in ("lif", "plif"):
        if isinstance(p, PLIFParameters):
            # a Python float: nir.write compresses every array, which a 0-d dataset refuses
            metadata[PLIF_W_KEY] = float(torch.as_tensor(p.w).detach().float())
        tau_steps = _full(p.tau, shape, np.float64)
        r = np.ones(shape) if p.decay_input else tau_steps
        return nir.LIF(tau=tau_steps * dt, r=r, v_leak=_full(p.leak_target, shape), **fields, metadata=metadata)
    if isinstance(p, IFParameters):
        return nir.IF(r=np.full(shape, 1.0 / dt), **fields, metadata=metadata)
    raise NIRError([f"layer {name!r}: {p.kind} neurons have no NIR node (IF, LIF, PLIF and CubaLIF export)"])


def integrator_node(module: nn.Module, shape: tuple[int, ...], dt: float) -> nir.NIRNode:
    """NIR's ``LI`` or ``I`` node of ``module``, an :class:`snn.LeakyIntegrator` or
    :class:`snn.Integrator`, on samples of ``shape`` at step ``dt`` (seconds)."""
    p = module.params()
    metadata = {} if p.v_init is None else {V_INIT_KEY: _full(p.v_init, shape)}
    if isinstance(module, snn.LeakyIntegrator):
        tau_steps = _full(p.tau, shape, np.float64)
        r = np.ones(shape) if p.decay_input else tau_steps
        return nir.LI(tau=tau_steps * dt, r=r, v_leak=_full(p.leak_target, shape), metadata=metadata)
    return nir.I(r=np.full(shape, 1.0 / dt), metadata=metadata)


# -- import ---------------------------------------------------------------------------------------
def _value(array: np.ndarray) -> Value:
    """A float where every element is equal (the fused backends then run it), else a float32 tensor."""
    array = np.asarray(array, dtype=np.float64)
    if array.size and (array == array.flat[0]).all():
        return float(np.float32(array.flat[0]))
    return torch.from_numpy(array.astype(np.float32))


def _metadata(node: nir.NIRNode) -> dict[str, Any]:
    """The node's metadata with strings decoded (``nir.read`` returns bytes)."""
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in (node.metadata or {}).items()}


def _gained(gain: np.ndarray, module: nn.Module) -> nn.Module:
    """``module`` behind an input :class:`snn.layers.Scale`, unless the gain is 1 in float32."""
    gain32 = np.asarray(gain, dtype=np.float64).astype(np.float32)
    if (gain32 == 1.0).all():
        return module
    return nn.Sequential(layers.Scale(_value(gain32)), module)


def _steps(tau: np.ndarray, dt: float) -> np.ndarray:
    return np.asarray(tau, dtype=np.float64) / dt


def _is_one(ratio: np.ndarray) -> bool:
    return bool((np.asarray(ratio, dtype=np.float64).astype(np.float32) == 1.0).all())


def node_neuron(node: nir.NIRNode, dt: float) -> nn.Module:
    """The module of NIR neuron ``node`` (one of :data:`NEURON_NODES`) at step ``dt`` (seconds)."""
    meta = _metadata(node)
    v_init = None if V_INIT_KEY not in meta else _value(meta[V_INIT_KEY])
    if isinstance(node, nir.I):
        return _gained(np.asarray(node.r, dtype=np.float64) * dt, snn.Integrator(v_init=v_init))
    if isinstance(node, nir.LI):
        tau_steps = _steps(node.tau, dt)
        direct = _is_one(node.r / tau_steps)
        li = snn.LeakyIntegrator(_value(tau_steps), v_leak=_value(node.v_leak), v_init=v_init, decay_input=not direct)
        return li if direct else _gained(node.r, li)
    common = dict(
        v_threshold=_value(node.v_threshold),
        v_reset=None if meta.get(RESET_KEY) == "subtract" else _value(node.v_reset),
        v_init=v_init,
        strict=True,
    )
    if isinstance(node, nir.IF):
        return _gained(np.asarray(node.r, dtype=np.float64) * dt, snn.IF(**common))
    if isinstance(node, nir.LIF):
        tau_steps = _steps(node.tau, dt)
        direct = _is_one(node.r / tau_steps)
        leak = _value(node.v_leak)
        if PLIF_W_KEY in meta:
            neuron = snn.PLIF(decay_input=not direct, v_leak=leak, **common)
            with torch.no_grad():
                neuron.w.copy_(torch.as_tensor(np.float32(meta[PLIF_W_KEY])))
        else:
            neuron = snn.LIF(_value(tau_steps), decay_input=not direct, v_leak=leak, **common)
        return neuron if direct else _gained(node.r, neuron)
    if isinstance(node, nir.CubaLIF):
        syn, mem = dt / np.asarray(node.tau_syn, np.float64), dt / np.asarray(node.tau_mem, np.float64)
        leak = np.asarray(node.v_leak, dtype=np.float64)
        neuron = snn.CubaLIF(
            _value(1.0 - syn), _value(1.0 - mem), v_leak=None if not leak.any() else _value(leak), **common
        )
        return _gained(np.asarray(node.w_in, np.float64) * syn * np.asarray(node.r, np.float64) * mem, neuron)
    raise NIRError([f"node type {type(node).__name__} is not a neuron"])
