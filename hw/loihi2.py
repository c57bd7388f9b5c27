"""Loihi 2 export: a lava-dl netx HDF5 network of CUBA neurons, quantized with Loihi's fixed-point rules.

:data:`LOIHI2` is the chip's arithmetic as a :class:`snn.quant.QuantTarget`: 8-bit weight
mantissas (one scale per layer), 13-bit bias mantissas, synaptic sums shifted left by 6 bits
into 24-bit current and voltage registers, 12-bit decays (4096 = 1.0, truncated towards zero),
thresholds ``vThMant << 6`` crossed from above (``v > threshold``), reset to zero, and every
dense or convolution layer delivering its weighted sum one step late (its bias every step). A float model
is quantized with it (or a model that :func:`snn.quant.prepare_qat` prepared for it is frozen);
:func:`export` writes the netx layout, :func:`hw.loihi2_sim.simulate` runs that file with numpy
alone. See ``docs/sections/hw-loihi2.md``.
"""

from __future__ import annotations

import io
import os

import h5py
import numpy as np
from torch import nn

from snn.neurons import Neuron
from snn.quant import IntegerModel, QuantError, QuantTarget, freeze
from snn.quant.fake import FakeQuantModel
from snn.quant.integer import IntNeuron, IntSynapse
from snn.quant.plan import leaves
from snn.quant.staged import QFlatten, QPool

from .artefacts import HwError, raise_problems, write_with_report
from .loihi2_sim import simulate

__all__ = ["LOIHI2", "DECAY_UNITY", "export", "quantize", "simulate"]

DECAY_UNITY = 4096  # netx's iDecay / vDecay: 4096 decays everything in one step
LOIHI2 = QuantTarget(
    name="loihi2",
    weight_bits=8,
    granularity="per_tensor",
    bias_bits=13,
    threshold_bits=17,
    state_bits=24,
    input_bits=2,
    rounding="nearest",
    decay="multiply",
    decay_bits=12,
    decay_rounding="trunc",
    resets=("zero",),
    overflow="saturate",
    current_shift=6,
    threshold_shift=6,
    fire_above=True,
    synapse_delay=True,
)


def _refusals(model: nn.Module) -> list[str]:
    """What netx or the CUBA neuron cannot express, before quantization names anything else."""
    problems = []
    for label, m in leaves(model):
        if isinstance(m, Neuron):
            p = m.params()
            if p.v_reset is None:
                problems.append(
                    f"{label} ({type(m).__name__}): soft reset (v_reset=None) is not available: Loihi 2's CUBA "
                    "neuron resets to zero (use v_reset=0.0)"
                )
            if p.v_init not in (None, 0.0):
                problems.append(f"{label} ({type(m).__name__}): v_init={p.v_init} (netx neurons start at 0)")
        elif isinstance(m, (nn.AvgPool1d, nn.AvgPool2d, nn.MaxPool1d, nn.MaxPool2d)):
            problems.append(
                f"{label} ({type(m).__name__}): netx has no pooling layer (use a strided convolution)"
            )
        elif isinstance(m, nn.Conv1d):
            problems.append(f"{label} (Conv1d): netx convolutions are 2-D")
    return problems


def quantize(model: nn.Module) -> IntegerModel:
    """``model`` as Loihi 2 computes it: a float model quantized with :data:`LOIHI2`, a fake-quantized one
    frozen, or a frozen one as it is (both prepared for :data:`LOIHI2`).

    Raises:
        HwError: listing every layer the chip or netx cannot run.
    """
    quantized = isinstance(model, (FakeQuantModel, IntegerModel))
    problems = [] if quantized else _refusals(model)
    try:
        integer = model if isinstance(model, IntegerModel) else freeze(model, None if quantized else LOIHI2)
    except QuantError as error:
        raise HwError("loihi2", [*problems, str(error)]) from None
    if integer.target != LOIHI2:
        problems.append(f"the model was prepared for target {integer.target.name!r}, not {LOIHI2.name!r}")
    raise_problems("loihi2", problems)
    return integer


def _layers(integer: IntegerModel, input_shape: tuple[int, ...] | None) -> tuple[list[dict], list[str]]:
    """The netx layer descriptions (as dicts of arrays) of the integer model, and what does not fit netx."""
    described, problems, pending = [], [], None
    shape = input_shape
    for stage in integer.stages:
        if isinstance(stage, IntSynapse):
            pending = stage
            if stage.geometry.dims and shape is None:
                problems.append(f"{stage.label}: a convolution needs input_shape (channels, height, width)")
                return described, problems
            takes = int(stage.weight.shape[1])
            gets = None if shape is None else (int(shape[0]) if stage.geometry.dims else int(np.prod(shape)))
            if gets is not None and gets != takes:
                what = "channels" if stage.geometry.dims else "inputs"
                problems.append(f"{stage.label}: takes {takes} {what}, the shape before it {shape} gives {gets}")
                return described, problems
        elif isinstance(stage, IntNeuron):
            described.append(_synapse_layer(pending, stage, shape))
            shape = tuple(int(s) for s in described[-1]["shape"])
            pending = None
        elif isinstance(stage, QFlatten):
            shape = None if shape is None else (int(np.prod(shape)),)
            described.append({"type": "flatten", "shape": np.array(shape)})
        elif isinstance(stage, QPool):
            problems.append(f"{stage.label}: netx has no pooling layer")
    if pending is not None:
        problems.append(
            f"{pending.label}: no neuron after it (every netx layer ends in CUBA neurons; no analog readout)"
        )
    return described, problems


def _synapse_layer(synapse: IntSynapse, neuron: IntNeuron, shape: tuple[int, ...]) -> dict:
    weight = synapse.weight.numpy()
    k = DECAY_UNITY if neuron.decay is None else neuron.decay.k
    threshold = int(neuron.threshold) - 1  # fire_above: the chip compares v > vThMant << 6
    layer = {
        "weight": weight.astype(np.int8),
        "neuron": {
            "type": "CUBA",
            "iDecay": DECAY_UNITY,
            "vDecay": DECAY_UNITY - k,
            "vThMant": threshold >> LOIHI2.threshold_shift,
            "refDelay": 1,
            "gradedSpike": False,
        },
    }
    if synapse.bias is not None:
        layer["bias"] = synapse.bias.numpy().astype(np.int16)
    out = weight.shape[0]
    if synapse.geometry.dims == 0:
        layer.update(type="dense", shape=np.array([out]), inFeatures=weight.shape[1], outFeatures=out)
        return layer
    g = synapse.geometry
    size = [
        (s + 2 * p - k) // st + 1 for s, k, st, p in zip(shape[1:], weight.shape[2:], g.stride, g.padding)
    ]
    layer.update(
        type="conv",
        shape=np.array([out, *size]),
        inChannels=weight.shape[1],
        outChannels=out,
        kernelSize=np.array(weight.shape[2:]),
        stride=np.array(g.stride),
        padding=np.array(g.padding),
        dilation=np.array([1, 1]),
        groups=1,
    )
    return layer


def _write_group(group: h5py.Group, fields: dict) -> None:
    for key, value in fields.items():
        if isinstance(value, dict):
            _write_group(group.create_group(key), value)
        elif key == "type":
            group.create_dataset(key, (1,), "S10", [value.encode("ascii")])
        else:
            group.create_dataset(key, data=value)


def export(model: nn.Module, path: str | os.PathLike, input_shape: tuple[int, ...] | None = None) -> dict:
    """Quantize ``model`` for Loihi 2 and write it as a lava-dl netx HDF5 file, with a JSON report beside it.

    Args:
        model: a float multi-step ``nn.Sequential`` of Linear / Conv2d (batch norm folded), IF / LIF
            neurons with ``v_reset=0.0`` after every synapse, and Flatten; or a model that
            :func:`snn.quant.prepare_qat` prepared for :data:`LOIHI2`, or :func:`snn.quant.freeze` froze.
        path: the ``.h5`` file to write (replaced atomically).
        input_shape: the input without batch and time, e.g. ``(2, 32, 32)``; needed for convolutions.

    Returns:
        the report: per layer its type, shape, neuron and weight counts and netx neuron fields; the
        values clamped at quantization; the latency in steps (one per dense or convolution layer).

    Raises:
        HwError: listing every layer that does not fit, before anything is written.
    """
    integer = quantize(model)
    layers, problems = _layers(integer, None if input_shape is None else tuple(int(s) for s in input_shape))
    raise_problems("loihi2", problems)

    def write(fileobj) -> None:
        buffer = io.BytesIO()  # h5py needs a seekable, readable file; the atomic output is write-only
        with h5py.File(buffer, "w") as f:
            for i, layer in enumerate(layers):
                _write_group(f.create_group(f"layer/{i}"), layer)
        fileobj.write(buffer.getvalue())

    report = {
        "target": "loihi2",
        "format": "lava-dl netx hdf5",
        "input_shape": None if input_shape is None else list(input_shape),
        "clamped": integer.clamped,
        "layers": [
            {
                "type": layer["type"],
                "shape": [int(s) for s in layer["shape"]],
                "neurons": int(np.prod(layer["shape"])),
                "weights": int(layer["weight"].size) if "weight" in layer else 0,
                "neuron": layer.get("neuron"),
            }
            for layer in layers
        ],
        "delay_steps": sum(layer["type"] != "flatten" for layer in layers),
    }
    return write_with_report(path, write, report)
