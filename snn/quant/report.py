"""The quantization report: accuracy float / fake-quantized / integer and model size per target.

One pass over the data runs the float model, every fake-quantized model and its frozen integer
model, and also counts the spikes on which the fake-quantized and the integer model differ
(0 is the contract) and the register values out of range.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .fake import FakeQuantModel
from .integer import IntegerModel, freeze

__all__ = ["ReportRow", "QuantReport", "quant_report", "mean_readout"]


def mean_readout(output: torch.Tensor) -> torch.Tensor:
    """Class predictions from a ``[T, B, classes]`` output: the arg-max of the mean over time."""
    return output.float().mean(0).argmax(-1)


@dataclass(frozen=True)
class ReportRow:
    """One quantized model: its target's name and weight width, accuracies, size and spike agreement.

    Attributes:
        target: The target's name.
        weight_bits: The target's weight width.
        fake_accuracy: Accuracy of the fake-quantized model.
        integer_accuracy: Accuracy of the integer model.
        size_bytes: Parameter storage of the integer model.
        spikes: Spikes the fake-quantized model emitted in all neuron stages.
        differing_spikes: Spikes where the integer model's differ from the fake-quantized model's.
        out_of_range: Register values of the integer model that did not fit their width.
    """

    target: str
    weight_bits: int
    fake_accuracy: float
    integer_accuracy: float
    size_bytes: float
    spikes: int
    differing_spikes: int
    out_of_range: int


@dataclass(frozen=True)
class QuantReport:
    """The float model's accuracy and size (fp32 parameters) and one :class:`ReportRow` per quantized model.

    Attributes:
        float_accuracy: Accuracy of the float model.
        float_size_bytes: Parameter storage of the float model at 32 bits.
        rows: One row per quantized model.
    """

    float_accuracy: float
    float_size_bytes: float
    rows: tuple[ReportRow, ...]

    def table(self) -> str:
        """A Markdown table, the float model first."""
        lines = [
            "| model | weight bits | accuracy fake-quant | accuracy integer | size (bytes) | spikes | differing | out of range |",
            "|---|---|---|---|---|---|---|---|",
            f"| float | 32 | {self.float_accuracy:.4f} | - | {self.float_size_bytes:.0f} | - | - | - |",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.target} | {r.weight_bits} | {r.fake_accuracy:.4f} | {r.integer_accuracy:.4f} | "
                f"{r.size_bytes:.0f} | {r.spikes} | {r.differing_spikes} | {r.out_of_range} |"
            )
        return "\n".join(lines)


@contextmanager
def _evaluating(models: Sequence[nn.Module]):
    """Eval mode and no gradients inside; each model's own mode restored after."""
    modes = [m.training for m in models]
    try:
        for m in models:
            m.eval()
        with torch.no_grad():
            yield
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)


def quant_report(
    float_model: nn.Module,
    quantized: Sequence[FakeQuantModel],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    readout: Callable[[torch.Tensor], torch.Tensor] = mean_readout,
) -> QuantReport:
    """Compare ``float_model`` with fake-quantized models and their integer models on ``batches``.

    Args:
        float_model: the float multi-step model.
        quantized: fake-quantized models (from :func:`snn.quant.prepare_qat`, trained or not),
            for example one per weight width; each is frozen with :func:`snn.quant.freeze`.
        batches: ``(x, labels)`` pairs, ``x`` time-major ``[T, B, ...]``.
        readout: real-valued model output to class predictions (default: arg-max of the mean over time).
    """
    integers: list[IntegerModel] = [freeze(fake) for fake in quantized]
    float_correct, total = 0, 0
    fake_correct = [0] * len(quantized)
    int_correct = [0] * len(quantized)
    spikes = [0] * len(quantized)
    differing = [0] * len(quantized)
    for model in integers:
        model.counter.reset()
    with _evaluating([float_model, *quantized]):
        for x, labels in batches:
            total += labels.numel()
            float_correct += int((readout(float_model(x)) == labels).sum())
            for k, (fake, integer) in enumerate(zip(quantized, integers)):
                fake_run, int_run = fake.run(x, record=True), integer.run(x, record=True)
                fake_correct[k] += int((readout(fake_run.real) == labels).sum())
                int_correct[k] += int((readout(int_run.real) == labels).sum())
                for label, s in fake_run.spikes.items():
                    spikes[k] += int(s.sum())
                    differing[k] += int((s.long() != int_run.spikes[label]).sum())
    if total == 0:
        raise ValueError("quant_report: batches is empty")
    rows = tuple(
        ReportRow(
            fake.target.name,
            fake.target.weight_bits,
            fake_correct[k] / total,
            int_correct[k] / total,
            integers[k].size_bytes(),
            spikes[k],
            differing[k],
            integers[k].counter.total,
        )
        for k, fake in enumerate(quantized)
    )
    float_bytes = 4.0 * sum(p.numel() for p in float_model.parameters())
    return QuantReport(float_correct / total, float_bytes, rows)
