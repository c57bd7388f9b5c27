"""Voxel grid ``[B, 1, H, W]``: bilinear interpolation in time with signed polarity."""

from __future__ import annotations

import numpy as np

from . import kernels
from ._checks import prepare_events
from ._memory import zeros


def to_voxel_grid(
    events: np.ndarray, sensor_size: tuple[int, int, int], n_time_bins: int, dtype=np.float32
) -> np.ndarray:
    """The event volume of Zhu et al. 2019 as rpg_e2vid computes it.

    Each event sits at ``(B - 1) * (t - t_first) / (t_last - t_first)`` and splits its signed weight
    (+1 ON, -1 OFF, whatever the input polarity type) between the two nearest bins; every event's
    weights sum to one, the last event's included. A single-timestamp recording goes to bin 0.

    Args:
        events: Time-sorted events in any form :mod:`neurodata.transforms` accepts.
        sensor_size: ``(width, height, polarities)`` of the sensor.
        n_time_bins: ``B``, a positive integer.
        dtype: The grid's numpy dtype (accumulated in float64).
    """
    if int(n_time_bins) != n_time_bins or n_time_bins < 1:
        raise ValueError(f"n_time_bins must be a positive integer, got {n_time_bins}")
    events, (width, height, _) = prepare_events(events, sensor_size)
    grid = zeros((int(n_time_bins), height, width), np.float64, "a voxel grid")
    kernels.accumulate_voxels(events, int(n_time_bins), grid)
    return grid.astype(dtype, copy=False)[:, None]
