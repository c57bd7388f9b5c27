"""Time surfaces: global per time window (Tonic's ToTimesurface), local per event (HOTS) and the
averaged per-cell histogram of HATS (Tonic's ToAveragedTimesurface)."""

from __future__ import annotations

import math

import numpy as np

from ..arguments import finite_number, whole_number
from . import kernels
from ._checks import prepare_events
from ._memory import zeros
from .slicing import by_time_window

DECAYS = {"exp": kernels.DECAY_EXP, "lin": kernels.DECAY_LIN}


def _decay_code(decay: str, tau: float) -> int:
    if decay not in DECAYS:
        raise ValueError(f"decay must be 'exp' or 'lin', got {decay!r}")
    finite_number("tau", tau, above=0)
    return DECAYS[decay]


def to_time_surface(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    dt: float,
    tau: float,
    decay: str = "exp",
    include_incomplete: bool = False,
) -> np.ndarray:
    """One surface per ``dt``-long window ``[T, P, H, W]`` (float32).

    Each pixel holds ``exp(-(t_ref - t_pixel) / tau)`` (or ``max(0, 1 - age / (3 tau))`` for
    ``decay='lin'``) where ``t_pixel`` is its latest event up to the window end ``t_ref``; pixels
    that never fired hold 0. Windows follow the ``time_window`` rule of :func:`to_frame`.

    Args:
        events: Time-sorted events in any form :mod:`neurodata.transforms` accepts.
        sensor_size: ``(width, height, polarities)`` of the sensor (1 polarity merges them).
        dt: Window length in microseconds.
        tau: Decay time constant in microseconds, > 0.
        decay: ``'exp'`` or ``'lin'``.
        include_incomplete: Keep a trailing window that ``dt`` does not fill.
    """
    code = _decay_code(decay, tau)
    finite_number("dt", dt, above=0)
    events, (width, height, n_pol) = prepare_events(events, sensor_size)
    starts, ends = by_time_window(events["t"], dt, 0, include_incomplete)
    out = zeros((len(starts), n_pol, height, width), np.float32, "time surfaces")
    if len(events):
        ref_offsets = dt * np.arange(1, len(starts) + 1, dtype=np.float64)
        kernels.global_time_surfaces(
            events,
            starts,
            ends,
            events["t"][0],
            ref_offsets,
            tau,
            code,
            n_pol == 1,
            out,
        )
    return out


def to_local_time_surfaces(
    events: np.ndarray, sensor_size: tuple[int, int, int], radius: int, tau: float, decay: str = "exp"
) -> np.ndarray:
    """HOTS surfaces (Lagorce et al. 2016) ``[N, 2r+1, 2r+1]`` (float32), one per event, in time order.

    Cell ``(dy + r, dx + r)`` decays the latest timestamp of the event's own polarity at
    ``(x + dx, y + dy)`` as seen at the event's time; the centre is 1; off-sensor cells are 0.

    Args:
        events: Time-sorted events in any form :mod:`neurodata.transforms` accepts.
        sensor_size: ``(width, height, polarities)`` of the sensor (1 polarity merges them).
        radius: ``r`` in pixels, a non-negative integer.
        tau: Decay time constant in microseconds, > 0.
        decay: ``'exp'`` or ``'lin'``.
    """
    code = _decay_code(decay, tau)
    if int(radius) != radius or radius < 0:
        raise ValueError(f"radius must be a non-negative integer, got {radius}")
    events, (width, height, n_pol) = prepare_events(events, sensor_size)
    size = 2 * int(radius) + 1
    out = zeros((len(events), size, size), np.float32, "local time surfaces")
    kernels.local_time_surfaces(
        events,
        int(radius),
        tau,
        code,
        n_pol == 1,
        n_pol,
        height,
        width,
        out,
    )
    return out


def to_averaged_time_surface(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    cell_size: int = 10,
    surface_size: int = 5,
    time_window: float = 1e3,
    tau: float = 100,
    decay: str = "exp",
) -> np.ndarray:
    """HATS histograms (Sironi et al. 2018) ``[n_cells, P, S, S]`` (float32), cells row-major.

    The sensor is cut into ``cell_size`` squares. For each event, a local surface is built from the
    earlier events of the *same cell and polarity* within ``surface_size // 2`` pixels and
    ``time_window`` us (centre +1 for the event itself); each cell's surfaces are averaged.
    ``decay='lin'`` uses ``max(0, 1 - age / (3 tau))`` (Tonic lets it go negative).

    Args:
        events: Time-sorted events in any form :mod:`neurodata.transforms` accepts.
        sensor_size: ``(width, height, polarities)`` of the sensor (1 polarity merges them).
        cell_size: Side of the square cells in pixels.
        surface_size: ``S``, odd and at most ``cell_size``.
        time_window: How far back in microseconds earlier events count.
        tau: Decay time constant in microseconds, > 0.
        decay: ``'exp'`` or ``'lin'``.
    """
    code = _decay_code(decay, tau)
    finite_number("time_window", time_window, above=0)
    cell_size = whole_number("cell_size", cell_size, minimum=1)
    surface_size = whole_number("surface_size", surface_size, minimum=1)
    if surface_size % 2 == 0 or surface_size > cell_size:
        raise ValueError(
            f"surface_size must be odd and <= cell_size, got {surface_size} (cell_size {cell_size})"
        )
    events, (width, height, n_pol) = prepare_events(events, sensor_size)
    cells_x, cells_y = math.ceil(width / cell_size), math.ceil(height / cell_size)
    n_groups = cells_x * cells_y * n_pol
    cell = (events["y"] // cell_size).astype(np.int64) * cells_x + events["x"] // cell_size
    group = cell * n_pol + (0 if n_pol == 1 else events["p"])
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
    hist = np.zeros((n_groups, surface_size, surface_size), dtype=np.float64)
    kernels.averaged_time_surfaces(
        events,
        order,
        bounds,
        surface_size // 2,
        time_window,
        tau,
        code,
        hist,
    )
    return hist.reshape(cells_x * cells_y, n_pol, surface_size, surface_size).astype(np.float32)
