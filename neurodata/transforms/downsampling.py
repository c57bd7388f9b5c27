"""Spatio-temporal event downsampling (Ghosh et al. 2023), Tonic's ``EventDownsampling`` methods.

Both methods first map coordinates onto the target grid (``floor(x * target / sensor)``) and cut
time into windows of ``dt`` milliseconds from the first event.

* integrator: each target pixel integrates ON minus OFF events window by window; where the sum
  reaches ``+noise_threshold`` it emits an ON event, at ``-noise_threshold`` an OFF event, and the
  pixel restarts from zero. An event's time is its window's start, ``window * dt``.
* differentiator: the integrator runs on windows ``differentiator_time_bins`` times shorter; its
  spikes are counted per ``dt`` frame and polarity, and an event is emitted where a frame's count
  exceeds the previous frame's, at time ``previous frame * dt``.

Emission order follows Tonic's: by time, then ON before OFF (integrator) or polarity last
(differentiator), pixels row by row. Times are relative to the first event, as in Tonic.
"""

from __future__ import annotations

import numba
import numpy as np

from ..events import make_events
from ..representations._checks import sensor_geometry
from ..representations.slicing import slice_events
from .functional import keeps_layout, spatial_downsample


@numba.njit(cache=True, nogil=True)
def integrate_and_fire(events, starts, ends, threshold, width, height):
    """``[k, 4]`` spikes ``(window, y, x, p)`` of the integrate-and-fire pixels (see the module docstring).

    Args:
        events: EVENT_DTYPE records, time-sorted, inside the ``width`` x ``height`` grid.
        starts: First event index of each window.
        ends: One past each window's last event.
        threshold: Net events (ON minus OFF) at which a pixel emits and restarts from zero.
        width: Grid width in pixels.
        height: Grid height in pixels.
    """
    state = np.zeros((height, width), dtype=np.int64)
    out = np.empty((1024, 4), dtype=np.int64)
    n = 0
    for i in range(len(starts)):
        for j in range(starts[i], ends[i]):
            e = events[j]
            state[e.y, e.x] += 1 if e.p > 0 else -1
        first = n
        for polarity, sign in ((1, 1), (0, -1)):
            for y in range(height):
                for x in range(width):
                    if sign * state[y, x] >= threshold:
                        if n == len(out):
                            grown = np.empty((2 * len(out), 4), dtype=np.int64)
                            grown[:n] = out[:n]
                            out = grown
                        out[n, 0] = i
                        out[n, 1] = y
                        out[n, 2] = x
                        out[n, 3] = polarity
                        n += 1
        for k in range(first, n):
            state[out[k, 1], out[k, 2]] = 0
    return out[:n]


def _target_spikes(events: np.ndarray, sensor_size, target_size, window_us: float, threshold: int) -> np.ndarray:
    """The integrator's ``(window, y, x, p)`` spikes on the target grid, windows ``window_us`` long."""
    width, height, _ = sensor_geometry(sensor_size)
    target_w, target_h = (int(v) for v in target_size)
    scaled = spatial_downsample(events, target_w / width, target_h / height)
    if len(scaled) == 0:
        return np.zeros((0, 4), dtype=np.int64)
    scaled = scaled[np.argsort(scaled["t"], kind="stable")]
    starts, ends = slice_events(scaled["t"], time_window=window_us)
    return integrate_and_fire(scaled, starts, ends, int(threshold), target_w, target_h)


def _as_events(window: np.ndarray, y, x, p, dt_us: float) -> np.ndarray:
    return make_events((window * dt_us).astype(np.int64), x, y, p)


@keeps_layout
def integrator_downsample(
    events: np.ndarray, sensor_size, target_size: tuple[int, int], dt: float, noise_threshold: int = 0
) -> np.ndarray:
    """Integrator downsampling (see the module docstring).

    Parameters:
        events: the event array (any form the transforms accept; the result has the same form).
        sensor_size: ``(width, height, polarities)`` of the input.
        target_size: ``(width, height)`` of the output grid.
        dt: window length in milliseconds.
        noise_threshold: net events a target pixel needs before it emits.
    """
    spikes = _target_spikes(events, sensor_size, target_size, dt * 1000, noise_threshold)
    return _as_events(spikes[:, 0], spikes[:, 1], spikes[:, 2], spikes[:, 3], dt * 1000)


@keeps_layout
def differentiator_downsample(
    events: np.ndarray,
    sensor_size,
    target_size: tuple[int, int],
    dt: float,
    differentiator_time_bins: int = 2,
    noise_threshold: int = 0,
) -> np.ndarray:
    """Differentiator downsampling (see the module docstring).

    Args:
        events: The event array (any form the transforms accept; the result has the same form).
        sensor_size: ``(width, height, polarities)`` of the input.
        target_size: ``(width, height)`` of the output grid.
        dt: Frame length in milliseconds.
        differentiator_time_bins: Integrator windows per ``dt``, a positive integer.
        noise_threshold: Net events a target pixel needs in one integrator window before it emits.
    """
    if int(differentiator_time_bins) != differentiator_time_bins or differentiator_time_bins < 1:
        raise ValueError(f"differentiator_time_bins must be a positive integer, got {differentiator_time_bins}")
    window_us = dt / differentiator_time_bins * 1000  # Tonic's order of operations, for equal rounding
    spikes = _target_spikes(events, sensor_size, target_size, window_us, noise_threshold)
    if len(spikes) == 0:
        return make_events([], [], [], [])
    frame = ((spikes[:, 0] * window_us) // (dt * 1000)).astype(np.int64)
    target_w, target_h = (int(v) for v in target_size)
    counts = np.zeros((int(frame[-1]) + 1, target_h, target_w, 2), dtype=np.int64)
    np.add.at(counts, (frame, spikes[:, 1], spikes[:, 2], spikes[:, 3]), 1)
    window, y, x, p = np.nonzero(np.diff(counts, axis=0) > 0)
    return _as_events(window, y, x, p, dt * 1000)
