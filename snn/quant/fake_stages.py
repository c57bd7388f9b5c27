"""The fake-quantized stages with parameters: synapses (Linear, Conv1d, Conv2d) and neurons (IF, LIF).

They hold float parameters (trainable copies of the original model's) and compute, on every
call, the integers the target would store (:meth:`QSynapse.quantized`, :meth:`QNeuron.rule`):
weights ``round(w / s)`` clamped to ``weight_bits``, biases and thresholds in units of the
layer's current. Their forward passes compute in those integer units with straight-through
gradients; :func:`snn.quant.freeze` reads the same integers, so both models hold the same
numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..params import IFParameters, LIFParameters
from .arith import NeuronRule, SteOps, decay_rule, limit, neuron_steps, round_value
from .arith import straight_through as ste
from .staged import Stage
from .target import QuantTarget

__all__ = ["Geometry", "SynapseInts", "QSynapse", "QNeuron", "float_synapse", "delay_one_step"]

# Below this bound on a layer's |current| a float32 accumulation is exact (24-bit mantissa, margin kept).
_FLOAT32_EXACT = 2**22


@dataclass(frozen=True)
class Geometry:
    """A synapse's operation: ``dims`` 0 (Linear over the last dimension), 1 or 2 (convolution).

    Attributes:
        dims: 0, 1 or 2 as above.
        stride: The convolution's stride per spatial dimension (empty for Linear).
        padding: The convolution's zero padding per spatial dimension (empty for Linear).
    """

    dims: int
    stride: tuple[int, ...] = ()
    padding: tuple[int, ...] = ()


class SynapseInts(NamedTuple):
    """A synapse's integers and the real value of one unit of its output current.

    Attributes:
        weight: Integer weights (float tensor, straight-through gradients).
        bias: Integer biases in units of the output current, or ``None``.
        scale: Real value of one unit of the output current (per output channel or 0-dim).
        bias_clamped: How many biases were clamped to ``bias_bits``.
    """

    weight: torch.Tensor
    bias: torch.Tensor | None
    scale: torch.Tensor
    bias_clamped: int


def float_synapse(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, g: Geometry) -> torch.Tensor:
    """The synapse ``weight``, ``bias`` of geometry ``g`` on a float ``[T, B, ...]`` tensor ``x``
    (time folded into the batch for convolutions)."""
    if g.dims == 0:
        return F.linear(x, weight, bias)
    conv = F.conv1d if g.dims == 1 else F.conv2d
    y = conv(x.flatten(0, 1), weight, bias, stride=g.stride, padding=g.padding)
    return y.unflatten(0, x.shape[:2])


def delay_one_step(y: torch.Tensor, bias: torch.Tensor | None, g: Geometry) -> torch.Tensor:
    """``y = W x + b`` over ``[T, B, ...]`` delivered one step late: ``W x[t-1] + b``, just ``bias``
    at step 0 (shaped by the geometry ``g``)."""
    first = torch.zeros_like(y[:1])
    if bias is not None:
        first = first + bias.to(y.dtype).reshape(-1, *([1] * g.dims))
    return torch.cat([first, y[:-1]])


class QSynapse(Stage):
    """A Linear or convolution whose weights are fake-quantized to the target's integers.

    Args:
        label: The original module's path.
        weight: The float weights (copied into a trainable parameter).
        bias: The float biases (copied), or ``None``.
        geometry: Linear or convolution, with its stride and padding.
        target: The integer rules (widths, rounding, scale granularity).
    """

    def __init__(
        self, label: str, weight: torch.Tensor, bias: torch.Tensor | None, geometry: Geometry, target: QuantTarget
    ) -> None:
        super().__init__(label)
        self.weight = nn.Parameter(weight.detach().clone().contiguous())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.geometry, self.target = geometry, target

    def weight_scale(self) -> torch.Tensor:
        """The real value of one weight unit (per output channel: shape ``[out, 1, ...]``), float64."""
        w = self.weight.detach().double().abs()
        if self.target.granularity == "per_channel":
            peak = w.flatten(1).amax(1).view(-1, *([1] * (w.ndim - 1)))
        else:
            peak = w.amax()
        scale = torch.where(peak > 0, peak, torch.ones_like(peak)) / self.target.weight_max
        return torch.exp2(torch.ceil(torch.log2(scale))) if self.target.power_of_two_scale else scale

    def quantized(self, x_scale: torch.Tensor) -> SynapseInts:
        """The integer weights and bias (float tensors, straight-through gradients).

        Args:
            x_scale: Real value of one input unit (0-dim tensor).
        """
        t = self.target
        w_scale = self.weight_scale()
        linear = self.weight / w_scale.to(self.weight.dtype)
        q = t.weight_max
        weight = ste(linear, round_value(linear.detach(), t.rounding).clamp(-q, q))
        out_shape = (-1,) + (1,) * self.geometry.dims
        scale = (w_scale.reshape(out_shape) if w_scale.ndim else w_scale) * x_scale.double()
        if self.bias is None:
            return SynapseInts(weight, None, scale, 0)
        b_linear = self.bias.double() / scale.reshape(-1)
        b, clamped = limit(round_value(b_linear.detach(), t.rounding), t.bias_bits, "saturate")
        return SynapseInts(weight, ste(b_linear, b), scale, int(clamped))

    def forward(self, x, scale, counter):
        """The integer current for input ``x`` in units of ``scale``, and that current's scale.

        Currents out of the state register's range are limited by the target's overflow and
        counted in ``counter`` (see :meth:`Stage.forward`).
        """
        q = self.quantized(scale)
        fan_in = q.weight.detach().abs().flatten(1).sum(1).amax()
        bound = fan_in * x.detach().abs().amax() + (0 if q.bias is None else q.bias.detach().abs().amax())
        dtype = torch.float32 if x.device.type == "cpu" and bound < _FLOAT32_EXACT else torch.float64
        bias = None if q.bias is None else q.bias.to(dtype)
        y = float_synapse(x.to(dtype), q.weight.to(dtype), bias, self.geometry).double()
        # exact already when the sum is exact; rounding absorbs any reordering error of a fast kernel
        y = ste(y, torch.round(y.detach()))
        if self.target.synapse_delay:
            y = delay_one_step(y, q.bias, self.geometry)
        y = y * 2**self.target.current_shift
        current, outside = limit(y.detach(), self.target.state_bits, self.target.overflow)
        counter.add(self.label, "current", outside)
        return ste(y, current), q.scale / 2**self.target.current_shift


class QNeuron(Stage):
    """An IF or LIF layer computing in integer units of its input current (see :mod:`snn.quant.arith`).

    Args:
        label: The original module's path.
        p: The float neuron's parameters (threshold, initial potential, reset, time constant).
        target: The integer rules (widths, rounding, decay form).
    """

    spiking = True

    def __init__(self, label: str, p: IFParameters | LIFParameters, target: QuantTarget) -> None:
        super().__init__(label)
        self.threshold = float(p.v_threshold)
        self.v_init = None if p.v_init is None else float(p.v_init)
        self.reset_mode = "subtract" if p.v_reset is None else "zero"
        self.decay = decay_rule(float(p.tau), target) if isinstance(p, LIFParameters) else None
        # decay_input=True scales the input by 1/tau: one unit of potential is then scale / tau
        self.input_tau = self.decay.tau if self.decay is not None and p.decay_input else 1.0
        self.surrogate, self.detach_reset, self.target = p.surrogate, p.detach_reset, target

    def rule(self, scale: torch.Tensor) -> tuple[NeuronRule, int]:
        """The integer rule (float64 tensors) for input current in units of ``scale``, and how many
        thresholds and initial potentials were clamped to their widths."""
        t = self.target
        unit = scale.detach().double() / self.input_tau
        step = 2**t.threshold_shift
        raw = round_value(self.threshold / (unit * step), t.rounding)
        mantissa = raw.clamp(1, t.threshold_max)
        clamped = int((raw != mantissa).sum())
        # integer potentials: v > m * step is v >= m * step + 1
        threshold = mantissa * step + int(t.fire_above)
        if self.v_init is None:
            v_init = torch.zeros_like(threshold)
        else:
            v_init, outside = limit(round_value(self.v_init / unit, t.rounding), t.state_bits, "saturate")
            clamped += int(outside)
        rule = NeuronRule(
            threshold, v_init, unit, self.decay, self.reset_mode, t.state_bits, t.overflow, self.detach_reset
        )
        return rule, clamped

    def forward(self, x, scale, counter):
        """Spikes for the current ``x`` in units of ``scale`` (output scale 1); potentials out of
        range are counted in ``counter`` (see :meth:`Stage.forward`)."""
        rule, _ = self.rule(scale)
        spikes, outside = neuron_steps(x.double(), rule, SteOps(self.surrogate))
        counter.add(self.label, "state", outside)
        return spikes, scale.new_ones(())

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, reset={self.reset_mode!r}, decay={self.decay}"

