"""Batched frames and voxel grids in torch, on whatever device the event tensors live on.

A batch is *packed*: the samples' events concatenated into 1-D tensors ``t, x, y, p`` (each sample
sorted by time) plus ``lengths`` (events per sample). Only rules with a fixed number of bins batch
(``n_time_bins``, ``n_event_bins``, no overlap); results equal the numpy functions' per sample.
"""

from __future__ import annotations

import numpy as np
import torch

from ..events import as_events
from ._checks import sensor_geometry
from .kernels import is_sorted


def pack_events(
    samples: list[np.ndarray], device: torch.device | str | None = None
) -> dict[str, torch.Tensor]:
    """Concatenate event arrays (any t/x/y/p dtype, each sorted by time) into packed int64 tensors
    ``t, x, y, p`` and ``lengths``.

    Args:
        samples: One event array per sample.
        device: Where the tensors go (None: the CPU).
    """
    prepared = [as_events(s) for s in samples]
    for i, s in enumerate(prepared):
        if not is_sorted(s["t"]):
            raise ValueError(f"sample {i} is not sorted by time; sort it before packing")
    out = {
        name: torch.from_numpy(
            np.concatenate([s[name].astype(np.int64) for s in prepared])
            if prepared
            else np.zeros(0, np.int64)
        )
        for name in ("t", "x", "y", "p")
    }
    out["lengths"] = torch.tensor([len(s) for s in prepared], dtype=torch.int64)
    return {name: value.to(device) for name, value in out.items()}


def _layout(t, x, y, p, lengths, width, height):
    """Sample index of each event, each sample's first index, and coordinate checks."""
    lengths = torch.as_tensor(lengths, dtype=torch.int64, device=t.device)
    if int(lengths.sum()) != len(t):
        raise ValueError(f"lengths sum to {int(lengths.sum())} but there are {len(t)} events")
    if len(t) and (int(x.max()) >= width or int(y.max()) >= height or int(x.min()) < 0 or int(y.min()) < 0):
        raise ValueError(f"event coordinates fall outside the sensor ({width}x{height})")
    if len(t) and (int(p.min()) < 0 or int(p.max()) > 1):
        raise ValueError("polarities must be 0 (OFF) or 1 (ON); pack_events converts other conventions")
    sample = torch.repeat_interleave(torch.arange(len(lengths), device=t.device), lengths)
    first = torch.cumsum(lengths, 0) - lengths
    return lengths, sample, first


def _time_position(t, lengths, sample, first):
    """Each event's offset from its sample's first event, and its sample's span ``t_last - t_first``."""
    last = (first + lengths - 1).clamp(min=0)
    safe_first = first.clamp(max=max(len(t) - 1, 0))
    if len(t) == 0:
        return t, t
    t0 = t[safe_first]
    span = t[last] - t0
    return t - t0[sample], span[sample]


def to_frame_batch(
    t: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    p: torch.Tensor,
    lengths,
    sensor_size: tuple[int, int, int],
    *,
    n_time_bins: int | None = None,
    n_event_bins: int | None = None,
    dtype: torch.dtype = torch.int32,
) -> torch.Tensor:
    """Frames ``[B, T, P, H, W]`` for a packed batch, matching :func:`to_frame` per sample.

    Args:
        t: Packed timestamps in microseconds (int64), each sample sorted.
        x: Packed x coordinates (int64).
        y: Packed y coordinates (int64).
        p: Packed polarities, 0 (OFF) or 1 (ON).
        lengths: Events per sample (sums to ``len(t)``).
        sensor_size: ``(width, height, polarities)`` of the sensor.
        n_time_bins: ``T`` bins of equal duration per sample (exclusive with ``n_event_bins``).
        n_event_bins: ``T`` bins of equal event counts per sample.
        dtype: The frames' torch dtype.
    """
    if (n_time_bins is None) == (n_event_bins is None):
        raise ValueError("give exactly one of n_time_bins or n_event_bins")
    width, height, n_pol = sensor_geometry(sensor_size)
    lengths, sample, first = _layout(t, x, y, p, lengths, width, height)
    n_bins = int(n_time_bins or n_event_bins)
    if n_time_bins is not None:
        offset, span = _time_position(t, lengths, sample, first)
        bins = torch.where(span > 0, offset * n_bins // span.clamp(min=1), n_bins - 1)
    else:
        local = torch.arange(len(t), device=t.device) - first[sample]
        per_bin = (lengths // n_bins)[sample]
        bins = torch.where(per_bin > 0, local // per_bin.clamp(min=1), n_bins - 1)
    bins = bins.clamp(max=n_bins - 1)
    channel = torch.zeros_like(p) if n_pol == 1 else p.long()
    flat = (((sample * n_bins + bins) * n_pol + channel) * height + y.long()) * width + x.long()
    size = len(lengths) * n_bins * n_pol * height * width
    counts = torch.bincount(flat, minlength=size)
    return counts.to(dtype).view(len(lengths), n_bins, n_pol, height, width)


def to_voxel_grid_batch(
    t: torch.Tensor, x: torch.Tensor, y: torch.Tensor, p: torch.Tensor, lengths, sensor_size, n_time_bins: int
) -> torch.Tensor:
    """Voxel grids ``[B, T, 1, H, W]`` (float32) for a packed batch, matching :func:`to_voxel_grid`.

    The packed batch (t, x, y, p, lengths) and sensor_size are as in :func:`to_frame_batch`.

    Args:
        n_time_bins: ``T``, the bins per sample.
    """
    width, height, _ = sensor_geometry(sensor_size)
    lengths, sample, first = _layout(t, x, y, p, lengths, width, height)
    offset, span = _time_position(t, lengths, sample, first)
    scale = torch.where(
        span > 0, (n_time_bins - 1) / span.clamp(min=1).double(), torch.zeros_like(span, dtype=torch.float64)
    )
    position = offset.double() * scale
    left = position.floor().long().clamp(max=n_time_bins - 1)
    frac = position - left
    value = torch.where(p > 0, 1.0, -1.0).double()
    pixel = y.long() * width + x.long()
    base = sample * n_time_bins
    grid = torch.zeros(len(lengths) * n_time_bins * height * width, dtype=torch.float64, device=t.device)
    grid.index_add_(0, (base + left) * height * width + pixel, value * (1 - frac))
    upper = left + 1 < n_time_bins
    grid.index_add_(0, ((base + left + 1) * height * width + pixel)[upper], (value * frac)[upper])
    return grid.float().view(len(lengths), n_time_bins, 1, height, width)
