"""Multi-step layers: stateless torch layers applied to time-major ``[T, B, ...]`` sequences.

A stateless layer treats every time step alike, so it runs once on the sequence with time folded
into the batch (``[T*B, ...]``) and the result is unfolded back to ``[T, B, ...]``; one large call
instead of ``T`` small ones (SpikingJelly's ``SeqToANNContainer``). Consequently the batch-norm
layers compute their statistics over ``T*B`` samples. :class:`Dropout` draws one mask per
sequence and applies it at every time step, so a dropped unit stays silent for the whole sample.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "seq_to_ann",
    "SeqToANN",
    "Linear",
    "Conv1d",
    "Conv2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "TdBatchNorm1d",
    "TdBatchNorm2d",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "CumulativeMaxPool1d",
    "CumulativeMaxPool2d",
    "Flatten",
    "Reshape",
    "Add",
    "Dropout",
    "Voting",
    "Scale",
    "SumPool2d",
    "Threshold",
    "Delay",
]


def seq_to_ann(fn: Callable[[torch.Tensor], torch.Tensor], x_seq: torch.Tensor) -> torch.Tensor:
    """Apply ``fn`` to ``x_seq`` ``[T, B, ...]`` with time folded into the batch; returns ``[T, B, ...]``."""
    if x_seq.ndim < 2:
        raise ValueError(f"expected a time-major sequence [T, B, ...], got shape {tuple(x_seq.shape)}")
    steps, batch = x_seq.shape[:2]
    y = fn(x_seq.flatten(0, 1))
    return y.reshape(steps, batch, *y.shape[1:])


class SeqToANN(nn.Sequential):
    """Run any stack of stateless modules on ``[T, B, ...]`` by folding time into the batch."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """The stack applied to ``x_seq`` ``[T, B, ...]`` with time folded into the batch."""
        return seq_to_ann(super().forward, x_seq)


class _Folded:
    """Mixin for a torch layer class: its ``forward`` runs on the folded ``[T*B, ...]`` tensor."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return seq_to_ann(super().forward, x_seq)


class Linear(nn.Linear):
    """``nn.Linear`` over the last dimension of ``[T, B, ..., in_features]`` (no folding needed)."""


class Conv1d(_Folded, nn.Conv1d):
    """``nn.Conv1d`` on ``[T, B, C, L]``."""


class Conv2d(_Folded, nn.Conv2d):
    """``nn.Conv2d`` on ``[T, B, C, H, W]``; channels_last on CPU.

    On CPU the folded input is laid out channels_last (NHWC) before the convolution: oneDNN then
    computes in that layout without reordering to and from its blocked one, and the output
    (channels_last also for a one-channel input) stays so through batch norm, the neurons (whose
    kernels follow the memory order) and pooling, whose CPU kernels are faster in it too. The weight is kept channels_last on CPU
    (contiguous elsewhere), which spares a conversion in every forward and backward. Values are
    those of the contiguous layout.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._set_weight_layout()

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        self._set_weight_layout()  # after .to(device), .cuda(), .double(), ...
        return self

    def _set_weight_layout(self) -> None:
        layout = torch.channels_last if self.weight.device.type == "cpu" else torch.contiguous_format
        if not self.weight.is_contiguous(memory_format=layout):
            with torch.no_grad():
                self.weight.data = self.weight.data.contiguous(memory_format=layout)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """The convolution of every step of ``x_seq`` ``[T, B, C, H, W]``."""
        return seq_to_ann(self._forward_folded, x_seq)

    def _forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return nn.Conv2d.forward(self, x)
        # a one-channel input is contiguous and channels_last at once, and oneDNN then answers in
        # the contiguous layout: the (small) output is converted so that the layers after it get channels_last
        y = nn.Conv2d.forward(self, x.contiguous(memory_format=torch.channels_last))
        return y.contiguous(memory_format=torch.channels_last)


class BatchNorm1d(_Folded, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` on ``[T, B, C]`` or ``[T, B, C, L]``; statistics over time and batch."""


class BatchNorm2d(_Folded, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` on ``[T, B, C, H, W]``; statistics over time, batch and space."""


class _ThresholdDependent:
    """tdBN (Zheng et al. 2021): BN over (T, B, ...) whose scale starts at ``alpha * v_threshold``.

    ``y = lambda * alpha * V_th * (x - mean) / sqrt(var + eps) + beta`` with ``lambda`` learnable
    from 1, implemented as SpikingJelly does: the affine weight is initialised to ``alpha * V_th``.
    """

    def __init__(self, num_features: int, v_threshold: float = 1.0, alpha: float = 1.0, **kwargs) -> None:
        if kwargs.get("affine", True) is False:
            raise ValueError("threshold-dependent batch norm needs affine=True")
        super().__init__(num_features, **kwargs)
        self.v_threshold, self.alpha = float(v_threshold), float(alpha)
        nn.init.constant_(self.weight, self.alpha * self.v_threshold)


class TdBatchNorm1d(_ThresholdDependent, BatchNorm1d):
    """Threshold-dependent batch norm for ``[T, B, C]`` / ``[T, B, C, L]``."""


class TdBatchNorm2d(_ThresholdDependent, BatchNorm2d):
    """Threshold-dependent batch norm for ``[T, B, C, H, W]``."""


class MaxPool1d(_Folded, nn.MaxPool1d):
    """``nn.MaxPool1d`` on ``[T, B, C, L]``."""


class MaxPool2d(_Folded, nn.MaxPool2d):
    """``nn.MaxPool2d`` on ``[T, B, C, H, W]``."""


class AvgPool1d(_Folded, nn.AvgPool1d):
    """``nn.AvgPool1d`` on ``[T, B, C, L]``."""


class AvgPool2d(_Folded, nn.AvgPool2d):
    """``nn.AvgPool2d`` on ``[T, B, C, H, W]``."""


class AdaptiveAvgPool1d(_Folded, nn.AdaptiveAvgPool1d):
    """``nn.AdaptiveAvgPool1d`` on ``[T, B, C, L]``."""


class AdaptiveAvgPool2d(_Folded, nn.AdaptiveAvgPool2d):
    """``nn.AdaptiveAvgPool2d`` on ``[T, B, C, H, W]``."""


class _CumulativeMaxPool(nn.Module):
    """Max pooling for spike trains: each window outputs, at every step, the increase of its inputs' largest running sum.

    With ``C_i(t)`` the sum of input ``i`` over steps ``1..t``, the output at step ``t`` is
    ``max_i C_i(t) - max_i C_i(t-1)``, so the output's running sum is exactly the window's largest
    running sum: the spike count of the most active input so far. For binary spikes the output is
    binary (each running sum grows by at most 1 a step). Max-pooling spikes step by step (an OR of
    the window) fires more often than the most active input (Rueckauer et al. 2017); a gate passing
    the current leader's spikes loses spikes whenever the leader changes. For analog inputs the
    output's mean over ``T`` is the largest mean of the window. ``pool`` is the torch max-pool function.
    """

    pool: Callable[..., torch.Tensor]

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        if x_seq.ndim < 3:
            raise ValueError(f"expected a time-major sequence [T, B, C, ...], got shape {tuple(x_seq.shape)}")
        largest = seq_to_ann(
            lambda running: type(self).pool(
                running, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode
            ),
            x_seq.cumsum(0),
        )
        return torch.cat([largest[:1], largest.diff(dim=0)])

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class CumulativeMaxPool1d(_CumulativeMaxPool):
    """Spike max pooling on ``[T, B, C, L]`` (see :class:`_CumulativeMaxPool`); ``nn.MaxPool1d``'s arguments."""

    pool = staticmethod(nn.functional.max_pool1d)


class CumulativeMaxPool2d(_CumulativeMaxPool):
    """Spike max pooling on ``[T, B, C, H, W]`` (see :class:`_CumulativeMaxPool`); ``nn.MaxPool2d``'s arguments."""

    pool = staticmethod(nn.functional.max_pool2d)


class Flatten(nn.Module):
    """``[T, B, d1, d2, ...]`` to ``[T, B, d1 * d2 * ...]``: ``nn.Flatten(start_dim, end_dim)`` on each step.

    Args:
        start_dim: first flattened dimension of ``[B, ...]`` (>= 1: the batch stays), or negative from the end.
        end_dim: last flattened dimension, likewise.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        if start_dim == 0 or end_dim == 0:
            raise ValueError("Flatten must keep the batch dimension (start_dim and end_dim other than 0)")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)
        # the same dimensions of [T, B, ...]: positive ones move by one, negative ones stay
        self._first = self.start_dim + 1 if self.start_dim > 0 else self.start_dim
        self._last = self.end_dim + 1 if self.end_dim > 0 else self.end_dim

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq`` ``[T, B, ...]`` with the per-sample dimensions flattened."""
        if x_seq.ndim < 2:
            raise ValueError(f"expected a time-major sequence [T, B, ...], got shape {tuple(x_seq.shape)}")
        return x_seq.flatten(self._first, self._last) if x_seq.ndim > 2 else x_seq

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Reshape(nn.Module):
    """``[T, B, ...]`` to ``[T, B, *shape]``: a per-sample reshape (``view`` / ``reshape`` / ``flatten`` of an ANN)."""

    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = tuple(int(n) for n in shape)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq`` ``[T, B, ...]`` reshaped to ``[T, B, *shape]``."""
        if x_seq.ndim < 2:
            raise ValueError(f"expected a time-major sequence [T, B, ...], got shape {tuple(x_seq.shape)}")
        return x_seq.reshape(*x_seq.shape[:2], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Add(nn.Module):
    """The sum of its inputs (a residual connection's addition); any shapes that broadcast, any step mode."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The sum of ``inputs`` (at least one)."""
        if not inputs:
            raise ValueError("Add needs at least one input")
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total


class Dropout(nn.Module):
    """Dropout on ``[T, B, ...]`` with one mask per sample shared by all time steps (inverted scaling).

    Args:
        p: probability of dropping an element, in ``[0, 1)``.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq`` ``[T, B, ...]`` with dropped elements zeroed and the rest scaled by ``1 / (1 - p)``
        in training mode; unchanged in eval mode."""
        if not self.training or self.p == 0.0:
            return x_seq
        keep = torch.rand_like(x_seq[:1]) >= self.p
        return x_seq * keep.to(x_seq.dtype) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Voting(nn.Module):
    """Average consecutive groups of ``group_size`` output neurons: ``[..., C * group_size]`` to ``[..., C]``.

    Several neurons vote for each class (SpikingJelly's ``VotingLayer``); works for single- and
    multi-step input alike since only the last dimension is touched.
    """

    def __init__(self, group_size: int = 10) -> None:
        super().__init__()
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.group_size = int(group_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[..., C * group_size]`` averaged per group to ``[..., C]``."""
        if x.shape[-1] % self.group_size:
            raise ValueError(
                f"Voting: last dimension {x.shape[-1]} is not a multiple of group_size {self.group_size}"
            )
        return x.unflatten(-1, (-1, self.group_size)).mean(-1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


class Scale(nn.Module):
    """Multiply every time step by ``scale`` (a float, or a tensor broadcast against one sample, e.g. per neuron).

    NIR's ``Scale`` node, and the input gain of neurons imported from NIR (their ``r``).
    """

    def __init__(self, scale: float | torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32).detach().clone())

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq`` times ``scale``."""
        return x_seq * self.scale

    def extra_repr(self) -> str:
        return f"shape={tuple(self.scale.shape)}"


class SumPool2d(AvgPool2d):
    """Sum pooling on ``[T, B, C, H, W]``: average pooling with divisor 1 (NIR's ``SumPool2d``; padding adds zeros).

    Args:
        kernel_size: the pooling window, an int or ``(kh, kw)``.
        stride: the window's step; None: ``kernel_size``.
        padding: zeros added on each side.
    """

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__(kernel_size, stride, padding, divisor_override=1)


class Threshold(nn.Module):
    """Stateless spikes: 1 where the input is above ``threshold`` (``x > threshold``, NIR's ``Threshold``), else 0."""

    def __init__(self, threshold: float | torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(threshold, dtype=torch.float32).detach().clone())

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """1 where ``x_seq > threshold``, else 0, in ``x_seq``'s dtype."""
        return (x_seq > self.threshold).to(x_seq.dtype)


class Delay(nn.Module):
    """Delay every element of ``[T, B, ...]`` by a whole number of steps: ``y[t] = x[t - d]`` (0 before the start).

    Args:
        steps: the delay in steps, an int or an integer tensor broadcast against one sample (per neuron).
    """

    def __init__(self, steps: int | torch.Tensor) -> None:
        super().__init__()
        steps = torch.as_tensor(steps)
        if steps.is_floating_point() or bool((steps < 0).any()):
            raise ValueError(f"Delay steps must be non-negative integers, got {steps}")
        self.register_buffer("steps", steps.to(torch.int64).detach().clone())

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """``x_seq`` ``[T, B, ...]`` delayed by ``steps`` (zeros before the start)."""
        if x_seq.ndim < 2:
            raise ValueError(f"expected a time-major sequence [T, B, ...], got shape {tuple(x_seq.shape)}")
        padded = F.pad(x_seq.movedim(0, -1), (int(self.steps.max()), 0)).movedim(-1, 0)
        t = torch.arange(x_seq.shape[0], device=x_seq.device).reshape(-1, *([1] * (x_seq.ndim - 1)))
        index = (t + int(self.steps.max()) - self.steps).expand_as(x_seq)
        return padded.gather(0, index)

    def extra_repr(self) -> str:
        return f"steps={self.steps.tolist() if self.steps.numel() <= 8 else tuple(self.steps.shape)}"
