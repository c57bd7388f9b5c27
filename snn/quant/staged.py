"""What the fake-quantized and the integer model share: the stage loop, the range counter, the
parameter-free stages (input quantizer, pooling, flatten).

A quantized model is a list of stages. Each stage maps ``(x, scale)`` to ``(x, scale)``: ``x``
holds integers (float64 in the fake model, int64 in the integer model) and ``scale`` the real
value of one unit (a number, or one per channel), so the float tensor the original model
computes is approximately ``x * scale``. Spiking layers output ``scale = 1``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from .arith import limit, round_value
from .target import QuantError

__all__ = ["RangeCounter", "QuantRun", "Stage", "StagedModel", "QInput", "QPool", "QFlatten"]


class RangeCounter:
    """How many register values did not fit their width, per stage and register.

    Registers: "input" (the quantized input), "current" (a layer's synaptic current) and
    "state" (a neuron's membrane potential). Whether those values were clamped or wrapped is the
    target's ``overflow``; they are counted either way. Counts accumulate over calls until
    :meth:`reset`.

    Args:
        labels: The stage labels to count for.
    """

    REGISTERS = ("input", "current", "state")

    def __init__(self, labels: list[str]) -> None:
        self._labels = list(labels)
        self.reset()

    def reset(self) -> None:
        """Set every count to zero."""
        self._counts: dict[str, dict[str, torch.Tensor | int]] = {
            label: dict.fromkeys(self.REGISTERS, 0) for label in self._labels
        }

    def add(self, label: str, register: str, n: torch.Tensor | int) -> None:
        """Count ``n`` more out-of-range values of ``register`` in stage ``label`` (no device sync)."""
        self._counts[label][register] = self._counts[label][register] + n

    def counts(self) -> dict[str, dict[str, int]]:
        """``{stage label: {register: count}}`` for the stages and registers with a non-zero count."""
        result = {}
        for label, registers in self._counts.items():
            nonzero = {reg: int(n) for reg, n in registers.items() if int(n)}
            if nonzero:
                result[label] = nonzero
        return result

    @property
    def total(self) -> int:
        """All out-of-range values counted since the last :meth:`reset`."""
        return sum(sum(registers.values()) for registers in self.counts().values())

    def __repr__(self) -> str:
        return f"RangeCounter(total={self.total}, {self.counts()})"


class QuantRun(NamedTuple):
    """One run of a quantized model: its output in integer units, their scale, the spikes per neuron stage."""

    output: torch.Tensor
    scale: torch.Tensor
    spikes: dict[str, torch.Tensor]

    @property
    def real(self) -> torch.Tensor:
        """The output as real numbers, ``output * scale`` (float32)."""
        return (self.output.double() * self.scale.double()).float()


class Stage(nn.Module):
    """One step of a quantized model; ``label`` is the original module's path (for counts and errors)."""

    spiking = False  # stages whose output are spikes (recorded by StagedModel.run)

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def forward(
        self, x: torch.Tensor, scale: torch.Tensor, counter: RangeCounter
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute this stage on ``[T, B, ...]`` input; subclasses implement it.

        Args:
            x: Input in integer units (float64 holding integers in the fake model, int64 in the integer one).
            scale: Real value of one input unit (0-dim or per-channel tensor).
            counter: Where out-of-range register values are counted, under this stage's label.

        Returns:
            The output in integer units and the real value of one of its units.
        """
        raise NotImplementedError

    def out_scale(self, scale: torch.Tensor) -> torch.Tensor:
        """The scale of this stage's output given its input's (parameter-free stages)."""
        return scale


class StagedModel(nn.Module):
    """Runs its stages in order on ``[T, B, ...]`` input, counting out-of-range values in :attr:`counter`."""

    def __init__(self, stages: list[Stage]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.counter = RangeCounter([stage.label for stage in stages])

    def run(self, x: torch.Tensor, record: bool = False) -> QuantRun:
        """Run on ``x``; with ``record``, keep each spiking stage's output spikes.

        Args:
            x: ``[T, B, ...]`` input, at least one step.
            record: Keep each spiking stage's spikes.

        Raises:
            QuantError: ``x`` is not such a tensor, or a stage does not take its shape (named).
        """
        if not isinstance(x, torch.Tensor):
            raise QuantError(f"input must be a time-major [T, B, ...] tensor, got {type(x).__name__}")
        if x.ndim < 2:
            raise QuantError(f"input must be time-major [T, B, ...], got shape {tuple(x.shape)}")
        if x.shape[0] < 1:
            raise QuantError(f"input has no time steps (shape {tuple(x.shape)})")
        scale = torch.ones((), dtype=torch.float64, device=x.device)
        spikes = {}
        for stage in self.stages:
            try:
                x, scale = stage(x, scale, self.counter)
            except RuntimeError as error:  # torch's shape errors: name the stage and the shape it got
                cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise QuantError(f"{stage.label}: does not take input of shape {list(x.shape)} ({cause})") from None
            if record and stage.spiking:
                spikes[stage.label] = x.detach()
        return QuantRun(x, scale, spikes)


class QInput(Stage):
    """Quantizes the input to ``round(x / scale)`` in a signed ``bits``-wide register.

    Args:
        scale: The real value of one input unit (finite, > 0).
        bits: The input register's width.
        rounding: How ``x / scale`` is rounded (a :func:`snn.quant.arith.round_value` mode).
        overflow: "saturate" or "wrap", for inputs that do not fit ``bits``.

    Raises:
        QuantError: If ``scale`` is not a finite number > 0.
    """

    def __init__(self, scale: float, bits: int, rounding: str, overflow: str) -> None:
        super().__init__("input")
        if not (isinstance(scale, (int, float)) and scale > 0 and torch.isfinite(torch.tensor(scale))):
            raise QuantError(f"input_scale must be a finite number > 0, got {scale!r}")
        self.scale, self.bits, self.rounding, self.overflow = float(scale), bits, rounding, overflow

    def forward(self, x, scale, counter):
        """The real input ``x`` in integer units and their scale (the incoming ``scale`` only gives
        the device); inputs out of range are counted in ``counter``."""
        units, outside = limit(round_value(x.detach().double() / self.scale, self.rounding), self.bits, self.overflow)
        counter.add(self.label, "input", outside)
        return units, self.out_scale(scale.to(x.device))

    def out_scale(self, scale):
        """The input unit's real value, on ``scale``'s device."""
        return torch.tensor(self.scale, dtype=torch.float64, device=scale.device)


class QPool(Stage):
    """Sum pooling (an average pool: the ``1 / area`` goes into the scale) or max pooling, no padding.

    Args:
        label: The original module's path.
        mode: "max" or "avg".
        kernel: Window size per pooled (trailing) dimension.
        stride: Step per pooled dimension.
    """

    def __init__(self, label: str, mode: str, kernel: tuple[int, ...], stride: tuple[int, ...]) -> None:
        super().__init__(label)
        self.mode, self.kernel, self.stride = mode, kernel, stride

    def forward(self, x, scale, counter):
        """Pool ``x`` over its trailing dimensions; returns the result and :meth:`out_scale` of
        ``scale`` (no register can overflow here, so ``counter`` is unused)."""
        windows = x
        for offset, (k, s) in enumerate(zip(self.kernel, self.stride)):
            windows = windows.unfold(x.ndim - len(self.kernel) + offset, k, s)
        dims = tuple(range(-len(self.kernel), 0))
        pooled = windows.amax(dims) if self.mode == "max" else windows.sum(dims)
        return pooled, self.out_scale(scale)

    def out_scale(self, scale):
        """``scale`` for max pooling, ``scale / area`` for sum pooling."""
        return scale if self.mode == "max" else scale / math.prod(self.kernel)


class QFlatten(Stage):
    """``[T, B, d1, d2, ...]`` to ``[T, B, d1 * d2 * ...]`` (the scale is per tensor here)."""

    def forward(self, x, scale, counter):
        """``x`` flattened after the batch dimension, ``scale`` unchanged (``counter`` unused)."""
        return x.flatten(2), scale
