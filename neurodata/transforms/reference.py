"""Vectorised numpy versions of the Numba kernels, written from the definitions, for tests.

The two filters find, for each event, the latest *earlier* event at a given pixel: sort the keys
``pixel * N + index`` once, then binary-search ``(pixel, index)`` pairs.
"""

from __future__ import annotations

import numpy as np


def _previous_at(keys_sorted: np.ndarray, pixel: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Index of the latest event before each event ``i`` at ``pixel[i]``, and whether one exists."""
    i = np.arange(n, dtype=np.int64)
    pos = np.searchsorted(keys_sorted, pixel * n + i) - 1
    found = keys_sorted[np.maximum(pos, 0)]
    exists = (pos >= 0) & (found // n == pixel)
    return found % n, exists


def _padded_pixels(events: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """Pixel ids on a grid with a one-pixel border, so neighbour ids never wrap to another row; the
    grid's row stride; the events sorted by pixel, then by position (``pixel * n + index``)."""
    n = len(events)
    stride = int(events["x"].max()) + 3
    pixel = (events["y"].astype(np.int64) + 1) * stride + events["x"].astype(np.int64) + 1
    return pixel, stride, np.sort(pixel * n + np.arange(n))


def denoise_reference(events: np.ndarray, filter_time: float) -> np.ndarray:
    """The keep-mask of :func:`~neurodata.transforms.kernels.denoise_mask`, vectorised.

    Args:
        events: EVENT_DTYPE records, time-sorted.
        filter_time: An event is kept when a 4-neighbour fired less than this many microseconds before.
    """
    n = len(events)
    if n == 0:
        return np.zeros(0, dtype=bool)
    pixel, stride, keys = _padded_pixels(events)
    t = events["t"]
    keep = np.zeros(n, dtype=bool)
    for offset in (-1, 1, -stride, stride):
        j, exists = _previous_at(keys, pixel + offset, n)
        keep |= exists & (t - t[j] < filter_time)
    return keep


def refractory_reference(events: np.ndarray, delta: float) -> np.ndarray:
    """The keep-mask of :func:`~neurodata.transforms.kernels.refractory_mask`, vectorised.

    Args:
        events: EVENT_DTYPE records, time-sorted.
        delta: The refractory period in microseconds.
    """
    n = len(events)
    if n == 0:
        return np.zeros(0, dtype=bool)
    pixel, _, keys = _padded_pixels(events)
    j, exists = _previous_at(keys, pixel, n)
    return ~exists | (events["t"] - events["t"][j] > delta)


def integrate_and_fire_reference(
    events: np.ndarray, starts: np.ndarray, ends: np.ndarray, threshold: int, width: int, height: int
) -> np.ndarray:
    """:func:`~neurodata.transforms.downsampling.integrate_and_fire` window by window in numpy.

    Args:
        events: EVENT_DTYPE records, time-sorted.
        starts: First event index of each window.
        ends: One past each window's last event.
        threshold: Net events at which a pixel emits and restarts from zero.
        width: Grid width in pixels.
        height: Grid height in pixels.
    """
    state = np.zeros((height, width), dtype=np.int64)
    spikes = []
    for window, (start, end) in enumerate(zip(starts, ends)):
        chunk = events[start:end]
        np.add.at(state, (chunk["y"], chunk["x"]), np.where(chunk["p"] > 0, 1, -1))
        on, off = state >= threshold, -state >= threshold
        for polarity, fired in ((1, on), (0, off)):
            y, x = np.nonzero(fired)
            spikes.append(np.stack([np.full(len(y), window), y, x, np.full(len(y), polarity)], axis=1))
        state[on | off] = 0
    return np.concatenate(spikes) if spikes else np.zeros((0, 4), dtype=np.int64)
