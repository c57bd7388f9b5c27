"""Speck / DYNAP-CNN: discretization, a numpy integer reference of its IAF layers, and the exported artefact.

:func:`check` (in :mod:`hw.speck_map`) maps a model onto the 9 cores; :func:`discretize` quantizes
it with the chip's rules (:data:`SPECK`: 8-bit weights, 16-bit biases, thresholds and saturating
state, no leak); :func:`export` does both and keeps the integer layers, :func:`simulate` runs
them with numpy alone (convolution, IAF, sum pooling), and :func:`save` writes the weights
(``.npz``) and the JSON report with the layer-to-core mapping. See ``docs/sections/hw-speck.md``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from snn.quant import IntegerModel, QuantError, QuantTarget, freeze
from snn.quant.integer import IntNeuron, IntSynapse
from snn.quant.staged import QPool

from .artefacts import HwError, raise_problems, write_npz, write_with_report
from .speck_map import SpeckReport, check

__all__ = [
    "SPECK",
    "SpeckLayerInts",
    "SpeckExport",
    "check",
    "discretize",
    "export",
    "simulate",
    "save",
    "verify",
]

# The DYNAP-CNN neuron: 8-bit weights, 16-bit biases, thresholds and membrane (saturating), no leak;
# it resets to zero or subtracts the threshold. Input events are counts per pixel and step.
SPECK = QuantTarget(
    name="speck",
    weight_bits=8,
    bias_bits=16,
    threshold_bits=15,
    state_bits=16,
    input_bits=16,
    rounding="nearest",
    decay="shift",
    resets=("subtract", "zero"),
    overflow="saturate",
)


@dataclass(frozen=True)
class SpeckLayerInts:
    """One discretized layer: ``weight [f, c, ky, kx]`` int8, ``bias [f]`` int16 (zeros if none), IAF, pooling.

    Attributes:
        weight: int8 ``[f, c, ky, kx]``.
        bias: int16 ``[f]`` (zeros if none).
        stride: the convolution's ``(sy, sx)``.
        padding: the convolution's ``(py, px)``.
        threshold: the integer firing threshold.
        v_init: the integer membrane potential before the first step.
        reset: ``"zero"`` or ``"subtract"`` (by the threshold).
        pool: the sum pooling ``(py, px)`` after the neurons, ``(1, 1)`` for none.
    """

    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]
    threshold: int
    v_init: int
    reset: str
    pool: tuple[int, int]


@dataclass(frozen=True)
class SpeckExport:
    """A model ready for Speck: the integer model, its layers as arrays, and the mapping report."""

    model: IntegerModel
    layers: tuple[SpeckLayerInts, ...]
    report: SpeckReport


def discretize(model: nn.Module) -> IntegerModel:
    """``model`` quantized with Speck's rules (:data:`SPECK`): the integer model whose spikes the chip emits.

    Args:
        model: a float model that :func:`snn.quant.prepare_qat` accepts for :data:`SPECK` (IF
            neurons; batch norm folded), or a fake-quantized model prepared for :data:`SPECK`.
    """
    return freeze(model, None if getattr(model, "target", None) == SPECK else SPECK, input_scale=1.0)


def _layer_ints(model: IntegerModel, report: SpeckReport) -> tuple[SpeckLayerInts, ...]:
    synapses = [s for s in model.stages if isinstance(s, IntSynapse)]
    neurons = [s for s in model.stages if isinstance(s, IntNeuron)]
    pools = {s.label: s for s in model.stages if isinstance(s, QPool)}
    result = []
    for layer, syn, neuron in zip(report.layers, synapses, neurons):
        f, (ky, kx) = layer.features, layer.kernel
        weight = syn.weight.reshape(f, -1, ky, kx).numpy().astype(np.int8)
        bias = np.zeros(f, np.int16) if syn.bias is None else syn.bias.numpy().astype(np.int16)
        pool = next((pools[m].kernel for m in layer.modules if m in pools), (1, 1))
        result.append(
            SpeckLayerInts(
                weight,
                bias,
                layer.stride,
                layer.padding,
                int(neuron.threshold),
                int(neuron.v_init),
                neuron.reset_mode,
                tuple(pool),
            )
        )
    return tuple(result)


def export(model: nn.Module, input_shape: tuple[int, ...]) -> SpeckExport:
    """Check and discretize ``model`` for Speck.

    Args:
        model: see :func:`hw.speck_map.check`.
        input_shape: ``(channels, height, width)`` without batch.

    Raises:
        HwError: listing every violation of the mapping and every discretization problem
            (unsupported settings, thresholds or initial potentials beyond 16 bits).
    """
    report = check(model, input_shape)
    problems = list(report.violations)
    try:
        with warnings.catch_warnings():  # clamped values are listed as problems below
            warnings.simplefilter("ignore", UserWarning)
            integer = discretize(model)
    except QuantError as error:
        raise HwError("speck", [*problems, str(error)]) from None
    problems += [
        f"{label}: {n} thresholds, biases or initial potentials clamped to the 16-bit state at discretization"
        for label, n in integer.clamped.items()
    ]
    raise_problems("speck", problems)
    return SpeckExport(integer, _layer_ints(integer, report), report)


def _conv(x: np.ndarray, layer: SpeckLayerInts) -> np.ndarray:
    """The integer current of a layer on ``[N, c, H, W]`` int64 input."""
    py, px = layer.padding
    x = np.pad(x, ((0, 0), (0, 0), (py, py), (px, px)))
    ky, kx = layer.weight.shape[2:]
    windows = sliding_window_view(x, (ky, kx), axis=(2, 3))[:, :, :: layer.stride[0], :: layer.stride[1]]
    current = np.einsum("nchwij,fcij->nfhw", windows, layer.weight.astype(np.int64))
    return current + layer.bias.astype(np.int64)[:, None, None]


def _iaf(current: np.ndarray, layer: SpeckLayerInts) -> np.ndarray:
    """Integrate-and-fire over ``[T, ...]`` currents: 16-bit saturating membrane, spike at ``v >= threshold``."""
    low, high = -(2**15), 2**15 - 1
    v = np.full(current.shape[1:], layer.v_init, np.int64)
    spikes = np.zeros(current.shape, np.int64)
    for t, i in enumerate(current):
        v = np.clip(v + i, low, high)
        fired = v >= layer.threshold
        spikes[t] = fired
        v = np.where(fired, 0, v) if layer.reset == "zero" else v - fired * layer.threshold
    return spikes


def simulate(exported: SpeckExport | tuple[SpeckLayerInts, ...], spikes: np.ndarray) -> np.ndarray:
    """The chip's output spikes for input event counts ``spikes`` ``[T, B, c, H, W]`` (numpy
    integers only) through ``exported``, a :class:`SpeckExport` or its layers.

    Each layer: the current ``W * x + b`` (exact integers, clipped to the 16-bit state), then
    integrate-and-fire (``v += I`` saturating at 16 bits, a spike when ``v >= threshold``, reset
    to zero or by subtraction), then sum pooling. Returns the last layer's spikes ``[T, B, f, h, w]``.
    """
    layers = exported.layers if isinstance(exported, SpeckExport) else exported
    x = np.asarray(spikes).astype(np.int64)
    if x.ndim != 5:
        raise ValueError(f"spikes must be [T, B, channels, height, width], got shape {x.shape}")
    steps, batch = x.shape[:2]
    for layer in layers:
        x = x.reshape(steps * batch, *x.shape[2:])  # a Linear's kernel covers its whole [c, h, w] input
        current = np.clip(_conv(x, layer), -(2**15), 2**15 - 1)
        s = _iaf(current.reshape(steps, batch, *current.shape[1:]), layer)
        py, px = layer.pool
        if (py, px) != (1, 1):
            h, w = s.shape[-2] // py, s.shape[-1] // px
            s = s[..., : h * py, : w * px].reshape(*s.shape[:-2], h, py, w, px).sum((-3, -1))
        x = s
    return x


def verify(exported: SpeckExport, spikes: torch.Tensor) -> dict:
    """Run ``exported``'s integer model and :func:`simulate` on ``spikes`` ``[T, B, ...]``:
    ``{"spikes", "differing"}``."""
    ours = exported.model(spikes).numpy()
    reference = simulate(exported, spikes.reshape(*spikes.shape[:2], *exported.report.input_shape).numpy())
    reference = reference.reshape(ours.shape)
    return {"spikes": int(ours.sum()), "differing": int((ours != reference).sum())}


def save(exported: SpeckExport, path: str | os.PathLike) -> dict:
    """Write ``exported``'s discretized weights to ``path`` (``.npz``) and the report with the core mapping beside it (``.json``).

    Arrays per layer ``i``: ``layer{i}_weight`` (int8 ``[f, c, ky, kx]``), ``layer{i}_bias`` (int16),
    ``layer{i}_threshold``, ``layer{i}_v_init``, ``layer{i}_stride``, ``layer{i}_padding``,
    ``layer{i}_pool``; the report holds each layer's reset mode and core. Returns the report.
    """
    arrays = {}
    for i, layer in enumerate(exported.layers):
        arrays.update(
            {
                f"layer{i}_weight": layer.weight,
                f"layer{i}_bias": layer.bias,
                f"layer{i}_threshold": np.int16(layer.threshold),
                f"layer{i}_v_init": np.int16(layer.v_init),
                f"layer{i}_stride": np.array(layer.stride),
                f"layer{i}_padding": np.array(layer.padding),
                f"layer{i}_pool": np.array(layer.pool),
            }
        )
    report = exported.report.to_dict()
    for entry, layer in zip(report["layers"], exported.layers):
        entry.update(reset=layer.reset, threshold=layer.threshold, v_init=layer.v_init)
    return write_with_report(path, write_npz(arrays), report)
