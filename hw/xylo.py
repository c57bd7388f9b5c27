"""Xylo (SynSense SYNS61201) export: a feed-forward CubaLIF network as ``XyloSim.from_specification`` arguments.

The chip's neurons have synaptic currents and a membrane, both decayed by bit shifts
(``x -= x >> dash``, see :mod:`hw.xylo_sim`), 8-bit weights with a left shift per weight
matrix, 16-bit saturating state, a threshold subtracted per spike, and no reset to zero.
A float ``Linear -> CubaLIF -> Linear -> CubaLIF`` network (no biases, soft reset) maps onto one
hidden population and the readout: weights become int8 with one scale per matrix, the decays
the nearest bit shifts, the threshold is expressed in the chip's units. The chip's rules that
:class:`snn.quant.QuantTarget` describes are :data:`XYLO`; its synaptic current, minimum decay
step and multi-spike hidden neurons live in the reference :func:`hw.xylo_sim.simulate`.
See ``docs/sections/hw-xylo.md``.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from snn.neurons import CubaLIF, Neuron
from snn.quant import QuantTarget
from snn.quant.plan import leaves, non_finite

from .artefacts import HwError, raise_problems, write_npz, write_with_report
from .xylo_sim import MAX_INPUT_EVENTS, simulate

__all__ = ["XYLO", "LIMITS", "XyloLimits", "XyloExport", "export", "save", "load_spec", "compare", "simulate"]

XYLO = QuantTarget(
    name="xylo",
    weight_bits=8,
    bias_bits=None,
    state_bits=16,
    threshold_bits=15,
    input_bits=5,
    rounding="nearest",
    decay="shift",
    decay_rounding="floor",
    resets=("subtract",),
    overflow="saturate",
)


class XyloLimits(NamedTuple):
    """The SYNS61201 network limits.

    Attributes:
        inputs: input channels.
        hidden: hidden neurons.
        outputs: readout neurons.
        synapses: input synapses per hidden neuron.
        weight_shift: largest weight bit shift.
        dash: largest decay bit shift (``dash``).
    """

    inputs: int = 16
    hidden: int = 1000
    outputs: int = 8
    synapses: int = 2
    weight_shift: int = 7
    dash: int = 15


LIMITS = XyloLimits()
# the arrays and shifts of a specification, as export makes it and save writes it
SPEC_KEYS = (
    "weights_in", "weights_out", "weights_rec", "dash_mem", "dash_syn", "dash_syn_2", "threshold", "bias",
    "dash_mem_out", "dash_syn_out", "threshold_out", "bias_out", "weight_shift_in", "weight_shift_rec",
    "weight_shift_out",
)  # fmt: skip
_THRESHOLD_HEADROOM = 2**14  # thresholds are shifted up to here, leaving the membrane room above them
_STATE_MAX = 2**15 - 1


@dataclass(frozen=True)
class XyloExport:
    """``spec``: the keyword arguments of ``XyloSim.from_specification``; ``report``: JSON-ready quantization facts."""

    spec: dict
    report: dict


class _Layer(NamedTuple):
    label: str
    weight: torch.Tensor
    neuron: CubaLIF | None  # None: a neuron the chip cannot run (its problem is listed)


def _structure(model: nn.Module, problems: list[str]) -> list[_Layer]:
    modules = [(label, m) for label, m in leaves(model) if not isinstance(m, (nn.Dropout, nn.Identity))]
    kinds = [type(m).__name__ for _, m in modules]
    shaped = len(modules) == 4 and all(
        isinstance(m, nn.Linear) == (i % 2 == 0) and (i % 2 == 0 or isinstance(m, Neuron))
        for i, (_, m) in enumerate(modules)
    )
    if not shaped:
        problems.append(
            f"expected Linear, CubaLIF, Linear, CubaLIF (a hidden population and a spiking readout), got {kinds}"
        )
        return []
    layers = []
    for (label, linear), (n_label, neuron) in zip(modules[::2], modules[1::2]):
        if linear.bias is not None:
            problems.append(
                f"{label} (Linear): has a bias (export with bias=False: Xylo's bias adds to the membrane)"
            )
        weight = linear.weight.detach().double().cpu()
        problem = non_finite(weight, None)
        if problem is not None:
            problems.append(f"{label} (Linear): {problem}")
            layers.append(_Layer(label, weight, None))
            continue
        if not isinstance(neuron, CubaLIF):
            problems.append(
                f"{n_label} ({type(neuron).__name__}): Xylo neurons have a synaptic current: use snn.CubaLIF"
            )
            layers.append(_Layer(label, weight, None))
            continue
        p = neuron.params()
        if p.tensor_fields():
            problems.append(
                f"{n_label} (CubaLIF): tensor fields {p.tensor_fields()} (scalar parameters only)"
            )
            layers.append(_Layer(label, weight, None))
            continue
        if p.v_reset is not None:
            problems.append(
                f"{n_label} (CubaLIF): v_reset={p.v_reset}: Xylo subtracts the threshold (v_reset=None)"
            )
        if p.v_leak not in (None, 0.0) or p.v_init not in (None, 0.0):
            problems.append(f"{n_label} (CubaLIF): v_leak or v_init set (Xylo leaks towards 0 from 0)")
        if p.current_decay < 0.5:
            problems.append(
                f"{n_label} (CubaLIF): current_decay={p.current_decay} < 0.5 (the shortest synaptic decay, dash 1)"
            )
        if not p.v_threshold > 0:
            problems.append(f"{n_label} (CubaLIF): v_threshold={p.v_threshold} (> 0 only)")
        layers.append(_Layer(label, weight, neuron))
    return layers


def _dash(decay: float) -> int:
    """The bit shift whose decay ``1 - 2^-dash`` is nearest ``decay`` in time constant (``log2 tau``)."""
    if decay <= 0.0:
        return 0
    if decay >= 1.0:
        return LIMITS.dash
    return min(LIMITS.dash, max(0, round(math.log2(1.0 / (1.0 - decay)))))


def _quantize(layer: _Layer, events: int, problems: list[str]) -> dict:
    """Integer weights, shift, threshold and decays of one layer (``events``: the most input events per
    source and step), and its quantization facts."""
    p = layer.neuron.params()
    w = layer.weight
    peak = float(w.abs().max()) or 1.0
    scale = peak / XYLO.weight_max
    weight = torch.round(w / scale).clamp(-XYLO.weight_max, XYLO.weight_max)
    dash_syn, dash_mem = max(1, _dash(float(p.current_decay))), _dash(float(p.voltage_decay))
    # the chip's current after its decay is (1 - 2^-dash_syn) times the float model's, in units of scale / 2^shift
    gain = (1.0 - 2.0**-dash_syn) / scale
    unshifted = float(p.v_threshold) * gain
    # the largest shift at which the threshold keeps headroom and a step's worst-case input cannot saturate
    worst = float(weight.abs().sum(1).max()) * events
    shift = 0
    while (
        shift < LIMITS.weight_shift
        and unshifted * 2 ** (shift + 1) <= _THRESHOLD_HEADROOM
        and worst * 2 ** (shift + 1) <= _STATE_MAX
    ):
        shift += 1
    threshold = round(unshifted * 2**shift)
    if not 1 <= threshold <= XYLO.threshold_max:
        problems.append(
            f"{layer.label}: threshold {threshold} in chip units outside [1, {XYLO.threshold_max}]"
        )
    facts = {
        "layer": layer.label,
        "weight_scale": scale,
        "weight_shift": shift,
        "threshold": threshold,
        "weight_error_max": float((weight * scale - w).abs().max()) / peak,
        "dash_syn": dash_syn,
        "dash_mem": dash_mem,
        "current_decay": [float(p.current_decay), 1.0 - 2.0**-dash_syn],
        "voltage_decay": [float(p.voltage_decay), 1.0 - 2.0**-dash_mem if dash_mem else 0.0],
    }
    return {"weight": weight.numpy().astype(np.int8), "facts": facts}


def export(model: nn.Module) -> XyloExport:
    """Quantize a float ``Linear -> CubaLIF -> Linear -> CubaLIF`` network for Xylo (SYNS61201).

    Args:
        model: the network (``nn.Sequential``, dropout ignored); Linear layers without bias,
            CubaLIF with soft reset (``v_reset=None``), scalar parameters, ``current_decay >= 0.5``.
            The input is event counts per step (at most 15 per channel on the chip).

    Returns:
        :class:`XyloExport`; the float model's ``current_decay`` and ``voltage_decay`` become the
        nearest ``dash_syn`` and ``dash_mem`` (the realised values are in the report).

    Raises:
        HwError: listing every problem (structure, sizes beyond 16 inputs, 1000 hidden or 8
            outputs, biases, neuron settings, thresholds beyond 15 bits).
    """
    problems: list[str] = []
    layers = _structure(model, problems)
    if len(layers) == 2:
        (n_hidden, n_in), (n_out, _) = layers[0].weight.shape, layers[1].weight.shape
        for what, n, limit in (
            ("inputs", n_in, LIMITS.inputs),
            ("hidden neurons", n_hidden, LIMITS.hidden),
            ("outputs", n_out, LIMITS.outputs),
        ):
            if n > limit:
                problems.append(f"{n} {what} > {limit} on SYNS61201")
    if problems:
        raise HwError("xylo", problems)
    hidden = _quantize(layers[0], MAX_INPUT_EVENTS, problems)
    readout = _quantize(
        layers[1], 1, problems
    )  # the float model's hidden neurons spike at most once per step
    raise_problems("xylo", problems)
    w_in = np.zeros((n_in, n_hidden, LIMITS.synapses), np.int8)
    w_in[:, :, 0] = hidden["weight"].T
    h, r = hidden["facts"], readout["facts"]
    spec = {
        "weights_in": w_in,
        "weights_out": readout["weight"].T.copy(),
        "weights_rec": np.zeros((n_hidden, n_hidden, LIMITS.synapses), np.int8),
        "dash_mem": np.full(n_hidden, h["dash_mem"], np.int8),
        "dash_syn": np.full(n_hidden, h["dash_syn"], np.int8),
        "dash_syn_2": np.full(n_hidden, h["dash_syn"], np.int8),
        "threshold": np.full(n_hidden, h["threshold"], np.int16),
        "bias": np.zeros(n_hidden, np.int16),
        "dash_mem_out": np.full(n_out, r["dash_mem"], np.int8),
        "dash_syn_out": np.full(n_out, r["dash_syn"], np.int8),
        "threshold_out": np.full(n_out, r["threshold"], np.int16),
        "bias_out": np.zeros(n_out, np.int16),
        "weight_shift_in": h["weight_shift"],
        "weight_shift_rec": 0,
        "weight_shift_out": r["weight_shift"],
    }
    report = {
        "target": "xylo",
        "chip": "SYNS61201",
        "inputs": n_in,
        "hidden": n_hidden,
        "outputs": n_out,
        "limits": LIMITS._asdict(),
        "layers": [h, r],
    }
    return XyloExport(spec, report)


def save(exported: XyloExport, path: str | os.PathLike) -> dict:
    """Write ``exported``'s specification to ``path`` (``.npz``: int8 weights, dashes, thresholds, shifts) and the report beside it."""
    arrays = {key: np.asarray(value) for key, value in exported.spec.items()}
    return write_with_report(path, write_npz(arrays), exported.report)


def load_spec(path: str | os.PathLike) -> dict:
    """The specification saved by :func:`save` at ``path`` (arrays, with the weight shifts as ints).

    Args:
        path: The ``.npz`` file.

    Raises:
        ValueError: naming ``path``, when it is not such a file or lacks one of its arrays.
    """
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{os.fspath(path)}: not an .npz archive (hw.xylo.save writes one)")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            spec = {key: arrays[key] for key in arrays.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{os.fspath(path)}: a damaged .npz archive ({exc})") from None
    missing = sorted(set(SPEC_KEYS) - set(spec))
    if missing:
        raise ValueError(f"{os.fspath(path)}: lacks {missing}; not a specification hw.xylo.save wrote")
    return {key: int(value) if value.ndim == 0 else value for key, value in spec.items()}


def compare(exported: XyloExport, model: nn.Module, raster: torch.Tensor) -> dict:
    """How far the exported network's readout spikes are from the float model's, on ``raster [T, B, n_in]``.

    The chip delivers hidden spikes to the readout one step later, so the reference's step
    ``t + 1`` is compared with the model's step ``t``. Returns spike counts and the differing spikes.
    """
    if raster.shape[0] < 2:
        raise ValueError(f"raster has {raster.shape[0]} step(s); comparing needs 2 or more (the chip's readout lags a step)")
    with torch.no_grad():
        ours = model(raster.float()).numpy()
    reference = np.stack(
        [simulate(exported.spec, raster[:, b].long().numpy()).output for b in range(raster.shape[1])], 1
    )
    differing = int((ours[:-1] != reference[1:]).sum())
    return {
        "model_spikes": int(ours[:-1].sum()),
        "reference_spikes": int(reference[1:].sum()),
        "differing": differing,
    }
