"""Quantization for integer targets: quantization-aware training and a bit-exact integer model.

* :class:`QuantTarget` describes the target's integer rules (bit widths, rounding, decay form,
  reset, overflow); chips' exact instances live in ``hw/``;
* :func:`prepare_qat` returns a fake-quantized copy of a float multi-step model to train with
  straight-through gradients;
* :func:`freeze` returns the :class:`IntegerModel`, computing with int64 tensors, whose spikes
  equal the fake-quantized model's on every input; out-of-range register values are counted in
  its ``counter``;
* :func:`quant_report` compares float, fake-quantized and integer accuracy and model size.

See ``docs/sections/quant.md``.
"""

from .arith import DecayRule, NeuronRule
from .fake import FakeQuantModel, prepare_qat
from .integer import IntegerModel, freeze
from .report import QuantReport, ReportRow, quant_report
from .staged import QuantRun, RangeCounter
from .target import QuantError, QuantTarget

__all__ = [
    "QuantTarget",
    "QuantError",
    "prepare_qat",
    "FakeQuantModel",
    "freeze",
    "IntegerModel",
    "RangeCounter",
    "QuantRun",
    "DecayRule",
    "NeuronRule",
    "quant_report",
    "QuantReport",
    "ReportRow",
]
