"""The frozen integer model: :func:`freeze` and :class:`IntegerModel`.

Its stages hold int64 weights, biases, thresholds and initial potentials, and its forward
computes with int64 tensors as the target does: synaptic currents as exact integer sums (an
int64 matrix product, or an unfolded convolution, on CPU), then the register width (clamped or
wrapped, and counted), then :func:`snn.quant.arith.neuron_step` without gradients. On CUDA the
sums run as float64 convolutions of integers below ``2**53``, rounded back to int64.
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .arith import EXACT, NeuronRule, limit, neuron_steps
from .fake import FakeQuantModel, prepare_qat
from .fake_stages import Geometry, QNeuron, QSynapse, delay_one_step, float_synapse
from .staged import QuantRun, Stage, StagedModel
from .target import QuantError, QuantTarget

__all__ = ["IntegerModel", "IntSynapse", "IntNeuron", "freeze"]


def integer_synapse(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, g: Geometry) -> torch.Tensor:
    """The exact integer current of a synapse (``weight``, ``bias``, geometry ``g``) on int64
    ``[T, B, ...]`` input ``x``."""
    if x.is_cuda:  # no int64 matrix products on CUDA; float64 sums of these integers are exact
        y = float_synapse(x.double(), weight.double(), None if bias is None else bias.double(), g)
        return torch.round(y).long()
    if g.dims == 0:
        y = x @ weight.T
    else:
        folded = x.flatten(0, 1)
        padding = [p for p in reversed(g.padding) for _ in (0, 1)]
        windows = F.pad(folded, padding)
        for axis, (k, s) in enumerate(zip(weight.shape[2:], g.stride)):
            windows = windows.unfold(2 + axis, k, s)
        spec = "ncli,oci->nol" if g.dims == 1 else "nchwij,ocij->nohw"
        y = torch.einsum(spec, windows, weight).unflatten(0, x.shape[:2])
    if bias is not None:
        y = y + bias.reshape(-1, *([1] * g.dims))
    return y


class IntSynapse(Stage):
    """A synapse with int64 weights: ``current = W x + b`` in the state register.

    Args:
        stage: The fake-quantized synapse whose integers it takes.
        x_scale: Real value of one input unit (fixed at freezing).
    """

    def __init__(self, stage: QSynapse, x_scale: torch.Tensor) -> None:
        super().__init__(stage.label)
        with torch.no_grad():
            q = stage.quantized(x_scale)
        self.register_buffer("weight", q.weight.detach().long())
        self.register_buffer("bias", None if q.bias is None else q.bias.detach().long())
        self.register_buffer("scale", q.scale.detach() / 2**stage.target.current_shift)
        self.geometry, self.target, self.clamped = stage.geometry, stage.target, q.bias_clamped

    def forward(self, x, scale, counter):
        """The int64 current for integer input ``x`` and its scale (the one fixed at freezing, not
        ``scale``); currents out of range are counted in ``counter`` (see :meth:`Stage.forward`)."""
        y = integer_synapse(x.long(), self.weight, self.bias, self.geometry)
        if self.target.synapse_delay:
            y = delay_one_step(y, self.bias, self.geometry)
        y = y * 2**self.target.current_shift
        current, outside = limit(y, self.target.state_bits, self.target.overflow)
        counter.add(self.label, "current", outside)
        return current, self.scale

    def out_scale(self, scale):
        """The output current's scale, fixed at freezing (the input's ``scale`` is not used)."""
        return self.scale

    def bits(self) -> int:
        """The storage of the weights and biases in bits."""
        bias_bits = 0 if self.bias is None else self.bias.numel() * self.target.bias_bits
        return self.weight.numel() * self.target.weight_bits + bias_bits


class IntNeuron(Stage):
    """An IF / LIF layer with int64 threshold and initial potential.

    Args:
        stage: The fake-quantized neuron whose integer rule it takes.
        x_scale: Real value of one unit of the input current (fixed at freezing).
    """

    spiking = True

    def __init__(self, stage: QNeuron, x_scale: torch.Tensor) -> None:
        super().__init__(stage.label)
        rule, self.clamped = stage.rule(x_scale)
        self.register_buffer("threshold", rule.threshold.long())
        self.register_buffer("v_init", rule.v_init.long())
        self.register_buffer("scale", rule.scale)
        self.decay, self.reset_mode, self.target = rule.decay, rule.reset, stage.target

    def rule(self) -> NeuronRule:
        """The integer rule this layer computes with."""
        t = self.target
        return NeuronRule(self.threshold, self.v_init, self.scale, self.decay, self.reset_mode, t.state_bits, t.overflow)

    def forward(self, x, scale, counter):
        """Spikes for the integer current ``x`` (its ``scale`` is fixed at freezing); potentials out
        of range are counted in ``counter`` (see :meth:`Stage.forward`)."""
        spikes, outside = neuron_steps(x.long(), self.rule(), EXACT)
        counter.add(self.label, "state", outside)
        return spikes, self.out_scale(scale)

    def out_scale(self, scale):
        """1: spikes are whole units (a 0-dim tensor like ``scale``)."""
        return scale.new_ones(())

    def bits(self) -> int:
        """The storage of the thresholds in bits."""
        return self.threshold.numel() * self.target.threshold_bits

    def extra_repr(self) -> str:
        return f"reset={self.reset_mode!r}, decay={self.decay}"


class IntegerModel(StagedModel):
    """The integer twin of a fake-quantized model (built by :func:`freeze`).

    ``model(x)`` returns the integer output (spikes, or the last layer's currents as int64);
    ``model.run(x, record=True)`` also gives their scale (``.real`` multiplies it in) and every
    neuron stage's spikes. ``model.counter`` counts register values that did not fit;
    ``model.clamped`` the biases, thresholds and initial potentials that did not fit their widths at freezing.

    Args:
        stages: The integer stages, in order.
        target: The integer rules they follow.
    """

    def __init__(self, stages: list[Stage], target: QuantTarget) -> None:
        super().__init__(stages)
        self.target = target
        self.clamped = {s.label: s.clamped for s in stages if getattr(s, "clamped", 0)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The integer output (:attr:`QuantRun.output`) for a ``[T, B, ...]`` input ``x``."""
        return self.run(x).output

    def run(self, x: torch.Tensor, record: bool = False) -> QuantRun:
        """:meth:`StagedModel.run`, refusing NaN or infinite input first (it gave spikes here; the
        fake-quantized model's training loop checks its batches itself, so its steps pay nothing).

        Args:
            x: ``[T, B, ...]`` input.
            record: Keep each spiking stage's spikes.
        """
        if isinstance(x, torch.Tensor) and x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise QuantError("input holds NaN or infinite values")
        return super().run(x, record)

    def size_bytes(self) -> float:
        """The parameter storage: weights, biases and thresholds at the target's widths, in bytes."""
        return sum(s.bits() for s in self.stages if isinstance(s, (IntSynapse, IntNeuron))) / 8


def freeze(model: nn.Module, target: QuantTarget | None = None, *, input_scale: float = 1.0) -> IntegerModel:
    """The integer model of a :class:`FakeQuantModel`, or of a float model quantized for ``target``.

    Args:
        model: a fake-quantized model from :func:`prepare_qat` (its target is used), or a float
            model that :func:`prepare_qat` accepts (then ``target`` is required).
        target: the target for a float model; must be None or the fake model's own.
        input_scale: the real value of one input unit, for a float model (see :func:`prepare_qat`).

    Biases, thresholds or initial potentials that do not fit their widths are clamped, listed in
    ``.clamped`` and warned about.
    """
    if isinstance(model, FakeQuantModel):
        if target is not None and target != model.target:
            raise QuantError(f"target {target.name!r} differs from the fake-quantized model's {model.target.name!r}")
        fake = model
    elif target is None:
        raise QuantError("freeze: a float model needs a target (or pass the model prepare_qat returned)")
    else:
        fake = prepare_qat(model, target, input_scale=input_scale)
    parameter = next(fake.parameters(), None)
    scale = torch.ones((), dtype=torch.float64, device=None if parameter is None else parameter.device)
    stages: list[Stage] = []
    for stage in fake.stages:
        if isinstance(stage, QSynapse):
            stages.append(IntSynapse(stage, scale))
        elif isinstance(stage, QNeuron):
            stages.append(IntNeuron(stage, scale))
        else:
            stages.append(copy.deepcopy(stage))
        scale = stages[-1].out_scale(scale)
    frozen = IntegerModel(stages, fake.target).eval()
    if frozen.clamped:
        clamped = frozen.clamped
        warnings.warn(f"freeze: biases, thresholds or initial potentials clamped to their widths: {clamped}", stacklevel=2)
    return frozen
