"""Quantization-aware training: :func:`prepare_qat` and the fake-quantized model it returns.

The fake-quantized model computes in the target's integer units (float64 tensors holding
integers, see :mod:`snn.quant.arith`) with straight-through gradients to float copies of the
original weights; its forward returns real values (spikes, or the last layer's currents times
their scale). Train it like the float model; :func:`snn.quant.freeze` then turns it into the
integer model, whose spikes are its spikes.
"""

from __future__ import annotations

import torch
from torch import nn

from .plan import plan_stages
from .staged import StagedModel
from .target import QuantError, QuantTarget

__all__ = ["FakeQuantModel", "prepare_qat"]


class FakeQuantModel(StagedModel):
    """A float model's fake-quantized twin (built by :func:`prepare_qat`).

    ``model(x)`` takes ``[T, B, ...]`` and returns the real-valued output; ``model.run(x,
    record=True)`` also returns the integer output, its scale and every neuron stage's spikes.
    ``model.counter`` counts values that did not fit a register (see :class:`snn.quant.RangeCounter`).

    Args:
        stages: The fake-quantized stages, in order (from :func:`snn.quant.plan.plan_stages`).
        target: The integer rules the stages follow.
    """

    def __init__(self, stages: list, target: QuantTarget) -> None:
        super().__init__(stages)
        self.target = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The real-valued output (:attr:`QuantRun.real`) for a ``[T, B, ...]`` input ``x``."""
        return self.run(x).real


def prepare_qat(model: nn.Module, target: QuantTarget, *, input_scale: float = 1.0) -> FakeQuantModel:
    """A fake-quantized copy of ``model`` for ``target``; ``model`` itself is not modified.

    Args:
        model: a multi-step ``nn.Sequential`` of Linear / Conv1d / Conv2d (each optionally
            followed by batch norm, folded in with its running statistics), IF / LIF neurons
            (soft or zero reset), average / max pooling, ``snn.layers.Flatten`` and dropout
            (dropped). The last layer may be a synapse without a neuron (an analog readout).
        target: the integer rules (bit widths, rounding, decay form, resets).
        input_scale: the real value of one input unit: the input is quantized to
            ``round(x / input_scale)`` in ``target.input_bits`` (1.0 for spikes or event counts).

    Raises:
        QuantError: naming every unsupported layer or setting at once.
    """
    if not isinstance(target, QuantTarget):
        raise QuantError(f"target must be a snn.quant.QuantTarget, got {type(target).__name__}")
    if not isinstance(model, nn.Module):
        raise QuantError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    fake = FakeQuantModel(plan_stages(model, target, input_scale), target)
    parameter = next(model.parameters(), None)
    if parameter is not None:
        fake.to(parameter.device)
    return fake.train(model.training)
