"""Readable numpy versions of the representation kernels, written from the definitions; tests
check the Numba kernels against them. Clear rather than fast: not for production use."""

from __future__ import annotations

import numpy as np


def frames_reference(events: np.ndarray, starts, ends, n_pol: int, height: int, width: int) -> np.ndarray:
    """``frames[i]`` counts events ``starts[i]:ends[i]`` per (polarity, y, x) with ``np.add.at``.

    Args:
        events: EVENT_DTYPE records, time-sorted.
        starts: First event index of each frame.
        ends: One past each frame's last event.
        n_pol: Polarity channels (1 merges them).
        height: Sensor height in pixels.
        width: Sensor width in pixels.
    """
    frames = np.zeros((len(starts), n_pol, height, width), dtype=np.int64)
    for i, (a, b) in enumerate(zip(starts, ends)):
        part = events[a:b]
        channel = np.zeros(len(part), dtype=np.int64) if n_pol == 1 else part["p"].astype(np.int64)
        np.add.at(frames[i], (channel, part["y"].astype(np.int64), part["x"].astype(np.int64)), 1)
    return frames


def voxel_reference(events: np.ndarray, n_bins: int, height: int, width: int) -> np.ndarray:
    """rpg_e2vid's ``events_to_voxel_grid``: positions ``(B-1)(t-t0)/(t_last-t0)``, weights 1-frac/frac.

    Args:
        events: EVENT_DTYPE records, time-sorted.
        n_bins: Number of time bins ``B``.
        height: Sensor height in pixels.
        width: Sensor width in pixels.
    """
    grid = np.zeros((n_bins, height, width), dtype=np.float64)
    if len(events) == 0:
        return grid
    t = events["t"].astype(np.float64)
    span = t[-1] - t[0] if t[-1] > t[0] else 1.0
    position = (n_bins - 1) * (t - t[0]) / span
    left = np.floor(position).astype(np.int64)
    frac = position - left
    value = np.where(events["p"] > 0, 1.0, -1.0)
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    np.add.at(grid, (left, y, x), value * (1 - frac))
    upper = left + 1 < n_bins
    np.add.at(grid, (left[upper] + 1, y[upper], x[upper]), (value * frac)[upper])
    return grid


def time_surface_reference(events, starts, ends, ref_times, tau, n_pol, height, width) -> np.ndarray:
    """Latest timestamp per pixel after each window (``np.maximum.at``), decayed exponentially.

    Args:
        events: EVENT_DTYPE records, time-sorted.
        starts: First event index of each window (only ``starts[0]`` is used: surfaces accumulate).
        ends: One past each window's last event.
        ref_times: Time in microseconds each surface is read at.
        tau: Decay time constant in microseconds.
        n_pol: Polarity channels (1 merges them).
        height: Sensor height in pixels.
        width: Sensor width in pixels.
    """
    out = np.zeros((len(starts), n_pol, height, width))
    last = np.full((n_pol, height, width), -np.inf)
    for i, end in enumerate(ends):
        part = events[starts[0] : end]
        channel = np.zeros(len(part), dtype=np.int64) if n_pol == 1 else part["p"].astype(np.int64)
        np.maximum.at(last, (channel, part["y"].astype(np.int64), part["x"].astype(np.int64)), part["t"])
        out[i] = np.exp(-(ref_times[i] - last) / tau)
    return out
