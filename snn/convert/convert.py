"""``ann_to_snn``: an ANN with ReLU / QCFS activations to a multi-step spiking network of IF neurons.

The steps, each in its own module: trace with torch.fx (:mod:`.tracing`), fold batch norm
(:mod:`.folding`), measure the activation scales on calibration data (:mod:`.calibration`; a QCFS
brings its own), give every tensor a scale (:mod:`.scales`), fold the scales into the weights and
replace each node by its multi-step counterpart (:mod:`.build`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn

from ..backends import BACKENDS
from .build import build_spiking_graph
from .calibration import calibrate, calibration_batches, parse_mode
from .errors import ConversionError
from .folding import fold_batchnorm, fold_scales
from .qcfs import QCFS
from .scales import resolve_scales
from .static import static_graph
from .tracing import Kind, node_kinds, node_path, trace

__all__ = ["ann_to_snn", "ConvertedSNN"]


class ConvertedSNN(nn.Module):
    """The spiking network :func:`ann_to_snn` returns: ``[T, B, *input]`` in, ``[T, B, *output]`` out per step.

    The last layer has no neuron: its per-step output is analog and its mean over ``T``
    approximates the ANN's output. Static inputs are given as the same value at every step; given
    as an expanded tensor (``x.unsqueeze(0).expand(T, ...)``, stride 0 along time), the layers
    before the first neuron run once instead of ``T`` times (:mod:`snn.convert.static`).

    Attributes:
        network: the multi-step fx graph (the ANN's module paths, IF neurons at its activations).
        input_shape: the per-sample input shape seen during calibration, or None.
    """

    def __init__(self, network: fx.GraphModule, input_shape: tuple[int, ...] | None) -> None:
        super().__init__()
        self.network = network
        self.input_shape = input_shape
        # shares network's modules; kept out of the module tree so state_dict and repr list them once
        object.__setattr__(self, "_static", static_graph(network))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """The spiking network's per-step output for time-major ``x_seq`` ``[T, B, ...]`` (an input
        repeated over time, stride 0 along ``T``, runs its static part once)."""
        if x_seq.ndim < 2 or (self.input_shape is not None and tuple(x_seq.shape[2:]) != self.input_shape):
            expected = "[T, B, ...]" if self.input_shape is None else f"[T, B, {', '.join(map(str, self.input_shape))}]"
            raise ValueError(f"x_seq: expected a time-major input {expected}, got shape {tuple(x_seq.shape)}")
        if x_seq.shape[0] > 1 and x_seq.stride(0) == 0:
            return self._static(x_seq)
        return self.network(x_seq)

    def extra_repr(self) -> str:
        return f"input_shape={self.input_shape}"


def _thresholds(
    gm: fx.GraphModule, kinds: dict[fx.Node, Kind], batches: list[torch.Tensor] | None, mode: str | float,
    per_channel: bool,
) -> dict[fx.Node, torch.Tensor]:  # fmt: skip
    """The activation scale of every ReLU / QCFS node: a QCFS's ``lam``, else measured on ``batches``."""
    activations = [n for n, kind in kinds.items() if kind is Kind.ACTIVATION]
    qcfs = {n: gm.get_submodule(str(n.target)) for n in activations if n.op == "call_module"}
    qcfs = {n: m for n, m in qcfs.items() if isinstance(m, QCFS)}
    relus = [n for n in activations if n not in qcfs]
    if relus and batches is None:
        raise ConversionError(
            f"calibration: None, but {len(relus)} ReLU activation(s) need calibration data to set their "
            f"thresholds (first: {node_path(relus[0])}); only QCFS activations take theirs from lam"
        )
    thresholds = {}
    for n, m in qcfs.items():
        lam = m.lam.detach().clone().float()
        if not bool((lam > 0).all() & torch.isfinite(lam).all()):
            raise ConversionError(f"{node_path(n)}: QCFS lam must be finite and > 0, got {lam.tolist()}")
        thresholds[n] = lam
    if batches is not None:
        thresholds.update(calibrate(gm, kinds, relus, batches, parse_mode(mode), per_channel))
    return thresholds


def ann_to_snn(
    ann: nn.Module,
    calibration: Any,
    *,
    mode: str | float = "max",
    per_channel: bool = False,
    backend: str = "auto",
) -> ConvertedSNN:
    """Convert ``ann`` (not modified) to a multi-step spiking network of IF neurons with soft reset.

    Every ReLU (module, ``F.relu``, ``torch.relu``, ``Tensor.relu``) and :class:`~snn.convert.QCFS`
    becomes an :class:`snn.IF` neuron with threshold 1 and ``v_reset=None``: the activation scales
    are folded into the weights, as batch norm is, so no scaler layer remains. QCFS neurons start
    at half the threshold (``v_init=0.5``). See ``docs/sections/convert.md`` for the rules.

    Args:
        ann: the network (Linear, Conv1d/2d, BatchNorm1d/2d after them, ReLU, QCFS, AvgPool,
            AdaptiveAvgPool, MaxPool, Flatten / view / reshape, Dropout, residual sums).
        calibration: input data for the ReLU thresholds: a tensor batch, an iterable of tensors
            or ``(x, y)`` batches, or a DataLoader; None when every activation is a QCFS.
        mode: the ReLU scale: ``"max"`` (the maximum over the calibration data), a percentile
            such as ``"99.9%"``, ``"robust"`` (99.99th percentile), or a float in (0, 1] times the max.
        per_channel: one scale per channel (dimension 1) instead of one per layer.
        backend: the IF neurons' backend ("auto", "torch", "numba", "cpu", "triton").

    Returns:
        A :class:`ConvertedSNN` taking ``[T, B, *input]`` and returning ``[T, B, *output]``.

    Raises:
        ConversionError: naming every unsupported layer at once, or the argument / layer at fault
            (empty or ill-shaped calibration data, NaN or infinite activations, a bad ``mode``).
    """
    if backend not in BACKENDS:
        raise ConversionError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    parse_mode(mode)
    batches = None if calibration is None else calibration_batches(calibration)
    gm = trace(ann)
    kinds = node_kinds(gm)
    inputs = [n for n, kind in kinds.items() if kind is Kind.INPUT]
    output = next(n for n, kind in kinds.items() if kind is Kind.OUTPUT)
    if len(inputs) != 1 or not isinstance(output.args[0], fx.Node):
        raise ConversionError("ann: conversion needs a forward with one tensor input and one tensor output")
    fold_batchnorm(gm, kinds)
    thresholds = _thresholds(gm, kinds, batches, mode, per_channel)
    scales = resolve_scales(gm.graph, kinds, thresholds, per_channel)
    for node, kind in kinds.items():
        if kind is Kind.WEIGHTED:
            fold_scales(gm.get_submodule(str(node.target)), scales[node.args[0]], scales[node], node_path(node))
    input_shape = None if batches is None else tuple(batches[0].shape[1:])
    return ConvertedSNN(build_spiking_graph(gm, kinds, backend), input_shape)
