"""Calibration: the activation scale of every ReLU, measured on the ANN over calibration data.

One forward pass over the calibration batches (an ``fx.Interpreter`` that watches the graph)
records, for each ReLU node, the statistic ``mode`` asks for, over every value of the calibration
set (per layer, or per channel: dimension 1), exactly, not as a moving average:

* ``"max"``: the largest activation;
* ``"P%"`` (e.g. ``"99.9%"``): the P-th percentile, numpy's linear interpolation; computed from the
  top ``N - floor(P/100 (N - 1))`` values, kept merged batch by batch, so no pass stores all values;
* ``"robust"``: ``"99.99%"``;
* a float ``f`` in (0, 1]: ``f`` times the max (SpikingJelly's meaning of a float mode).

It also records each node's per-sample output shape (``node.meta["sample_shape"]``) and checks
that the data and every activation are finite.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx

from .errors import ConversionError
from .tracing import Kind, node_path

__all__ = ["Mode", "parse_mode", "calibration_batches", "calibrate"]


@dataclass(frozen=True)
class Mode:
    """A parsed ``mode``: the percentile to take (100 for the max) and a factor on the result."""

    percentile: float = 100.0
    factor: float = 1.0


def parse_mode(mode: str | float) -> Mode:
    """``mode`` as :class:`Mode`; ConversionError naming ``mode`` when it is none of the accepted forms."""
    if isinstance(mode, (int, float)) and not isinstance(mode, bool):
        if 0.0 < float(mode) <= 1.0:
            return Mode(factor=float(mode))
    elif mode == "max":
        return Mode()
    elif mode == "robust":
        return Mode(percentile=99.99)
    elif isinstance(mode, str) and mode.endswith("%"):
        try:
            percentile = float(mode[:-1])
        except ValueError:
            percentile = math.nan
        if 0.0 < percentile <= 100.0:
            return Mode(percentile=percentile)
    raise ConversionError(
        f"mode: expected 'max', 'robust', a percentile such as '99.9%' or a float in (0, 1], got {mode!r}"
    )


def calibration_batches(calibration: Any) -> list[torch.Tensor]:
    """The input tensors of ``calibration``: a tensor batch, or an iterable of tensors or ``(x, y, ...)`` batches.

    Raises ConversionError naming ``calibration`` when it is empty, holds something else, or its
    batches differ in per-sample shape.
    """
    if isinstance(calibration, torch.Tensor):
        items: Iterable[Any] = [calibration]
    elif isinstance(calibration, Iterable) and not isinstance(calibration, (str, bytes)):
        items = calibration
    else:
        raise ConversionError(
            f"calibration: expected a tensor, an iterable of tensors or (x, y) batches, or a DataLoader, "
            f"got {type(calibration).__name__}"
        )
    batches = []
    for i, item in enumerate(items):
        x = item[0] if isinstance(item, (tuple, list)) and item else item
        if not isinstance(x, torch.Tensor):
            raise ConversionError(f"calibration: batch {i} is a {type(x).__name__}, expected a tensor")
        if x.ndim < 1 or x.shape[0] == 0:
            continue
        if batches and x.shape[1:] != batches[0].shape[1:]:
            raise ConversionError(
                f"calibration: batch {i} has per-sample shape {tuple(x.shape[1:])}, batch 0 has "
                f"{tuple(batches[0].shape[1:])}"
            )
        batches.append(x)
    if not batches:
        raise ConversionError("calibration: no samples (an empty tensor, iterable or DataLoader)")
    return batches


class _TopValues:
    """The largest ``keep`` values of each channel seen so far (``[C, keep]``), merged batch by batch."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.values: torch.Tensor | None = None

    def add(self, rows: torch.Tensor) -> torch.Tensor:
        """Merge ``rows`` (``[C, n]``) in; returns their largest values (at most ``keep`` per channel)."""
        largest = self._largest(rows)
        self.values = largest if self.values is None else self._largest(torch.cat([self.values, largest], dim=1))
        return largest

    def _largest(self, rows: torch.Tensor) -> torch.Tensor:
        if self.keep >= rows.shape[1]:
            return rows
        if self.keep == 1:
            return rows.amax(dim=1, keepdim=True)
        return rows.topk(self.keep, dim=1, sorted=False).values


class _Statistic:
    """One activation's statistic over the calibration set (see the module docstring)."""

    def __init__(self, mode: Mode, per_channel: bool, n_samples: int) -> None:
        self.mode, self.per_channel, self.n_samples = mode, per_channel, n_samples
        self.count = 0  # values per channel (row), known after the first batch
        self.top: _TopValues | None = None
        self.sample_ndim = 0

    def _rows(self, y: torch.Tensor) -> torch.Tensor:
        if not self.per_channel:
            return y.reshape(1, -1)
        if y.ndim < 2:
            raise ValueError("per_channel needs activations with a channel dimension [B, C, ...]")
        return y.transpose(0, 1).reshape(y.shape[1], -1)

    def add(self, y: torch.Tensor) -> torch.Tensor:
        """Take in one batch's activations ``y``; returns the largest values kept of it."""
        rows = self._rows(y.detach().float())
        if self.top is None:
            self.sample_ndim = y.ndim - 1
            per_row = rows.shape[1] // y.shape[0]
            self.count = per_row * self.n_samples
            low_rank = math.floor(self.mode.percentile / 100.0 * (self.count - 1))
            self.top = _TopValues(self.count - low_rank)
        return self.top.add(rows)

    def value(self) -> torch.Tensor:
        """The scale: per layer a 0-d tensor, per channel ``[C, 1, ...]`` (broadcasting against a sample)."""
        assert self.top is not None and self.top.values is not None
        ranked = self.top.values.sort(dim=1, descending=True).values
        position = self.mode.percentile / 100.0 * (self.count - 1)
        low_rank = math.floor(position)
        low = ranked[:, self.count - 1 - low_rank]
        high = ranked[:, max(self.count - 2 - low_rank, 0)]
        scale = (low + (position - low_rank) * (high - low)) * self.mode.factor
        if not self.per_channel:
            return scale.reshape(())
        return scale.reshape(-1, *([1] * (self.sample_ndim - 1)))


class _Recorder(fx.Interpreter):
    """Runs the ANN graph, feeding ReLU outputs to their statistics and checking values are finite."""

    def __init__(self, gm: fx.GraphModule, kinds: dict[fx.Node, Kind], stats: dict[fx.Node, _Statistic]):
        super().__init__(gm)
        self.extra_traceback = False  # the errors raised here are one line; fx would add the graph node's text
        self.kinds, self.stats = kinds, stats
        self.batch = 0

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except ConversionError:
            raise
        except Exception as exc:  # a shape mismatch, mostly: name the batch and the layer
            raise ConversionError(
                f"calibration: batch {self.batch} fails at {node_path(n)} ({type(exc).__name__}: {exc})"
            ) from exc
        if isinstance(result, torch.Tensor) and n.op != "output":
            n.meta["sample_shape"] = tuple(result.shape[1:])
            # NaN and infinities survive min / max (a ReLU would hide -inf, so its input is checked)
            if self.kinds[n] in (Kind.INPUT, Kind.WEIGHTED) and result.numel():
                self._check_finite(n, torch.stack(result.detach().aminmax()))
            if n in self.stats:
                try:
                    self._check_finite(n, self.stats[n].add(result))
                except ValueError as exc:
                    raise ConversionError(f"{node_path(n)}: {exc}") from exc
        return result

    def _check_finite(self, n: fx.Node, extremes: torch.Tensor) -> None:
        if not bool(torch.isfinite(extremes).all()):
            where = "calibration" if self.kinds[n] is Kind.INPUT else node_path(n)
            raise ConversionError(f"{where}: NaN or infinite values in calibration batch {self.batch}")


def calibrate(
    gm: fx.GraphModule,
    kinds: dict[fx.Node, Kind],
    nodes: list[fx.Node],
    batches: list[torch.Tensor],
    mode: Mode,
    per_channel: bool,
) -> dict[fx.Node, torch.Tensor]:
    """The scale of each node of ``nodes`` (ReLU outputs) over ``batches`` run through ``gm`` (in eval mode).

    ``kinds`` says what each graph node becomes; ``mode`` is the statistic to take (a
    :func:`parse_mode` result); ``per_channel`` measures one scale per channel instead of one per
    layer. Zero scales (a layer or channel that never activates on the calibration data) become 1: any
    threshold keeps such a neuron silent.
    """
    n_samples = sum(int(x.shape[0]) for x in batches)
    stats = {node: _Statistic(mode, per_channel, n_samples) for node in nodes}
    recorder = _Recorder(gm, kinds, stats)
    device = next((p.device for p in gm.parameters()), torch.device("cpu"))
    with torch.no_grad():
        for i, x in enumerate(batches):
            recorder.batch = i
            recorder.run(x.to(device))
    scales = {}
    for node, stat in stats.items():
        scale = stat.value()
        scales[node] = torch.where(scale > 0, scale, torch.ones_like(scale))
    return scales
