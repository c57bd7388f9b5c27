"""Input checks shared by every representation: sensor geometry and event arrays.

Numba does not bounds-check, so every coordinate is validated here before a kernel runs.
"""

from __future__ import annotations

import numpy as np

from ..arguments import whole_number
from . import kernels
from ._layout import as_records


def sensor_geometry(sensor_size) -> tuple[int, int, int]:
    """Validate a Tonic-style ``(width, height, polarities)`` and return it as three ints."""
    try:
        width, height, polarities = (whole_number("sensor_size", v) for v in sensor_size)
    except (TypeError, ValueError):
        raise ValueError(
            f"sensor_size must be (width, height, polarities), whole numbers, got {sensor_size!r}"
        ) from None
    if width <= 0 or height <= 0:
        raise ValueError(f"sensor_size width and height must be positive, got {sensor_size!r}")
    if not 1 <= polarities <= 255:
        raise ValueError(f"sensor_size polarities must be 1 (merged) to 255 channels, got {polarities}")
    return width, height, polarities


def infer_sensor_size(events: np.ndarray) -> tuple[int, int, int]:
    """Tonic's fallback when no sensor size is given: the bounding box of the events, 2 polarities."""
    if len(events) == 0:
        raise ValueError("sensor_size is required for an empty event array (it cannot be inferred)")
    return int(events["x"].max()) + 1, int(events["y"].max()) + 1, 2


def records_and_geometry(events, sensor_size) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The events as EVENT_DTYPE records and the validated ``(width, height, polarities)``; the
    events themselves are not checked (:func:`prepare_events` does that)."""
    events = as_records(events)
    return events, sensor_geometry(infer_sensor_size(events) if sensor_size is None else sensor_size)


def prepare_events(events: np.ndarray, sensor_size) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Convert to EVENT_DTYPE, sort by time (stably) when needed and check coordinates fit the sensor.

    Accepts every form :mod:`._layout` reads (Tonic's arrays, audio events without ``y``, dicts of
    columns). Polarities index the sensor's channels (``p < P``; any value when ``P = 1`` merges).
    Returns the events and the validated ``(width, height, polarities)``.
    """
    events, geometry = records_and_geometry(events, sensor_size)
    if len(events) == 0:
        return events, geometry
    width, height, _ = geometry
    max_x, max_y, max_p, ordered = kernels.scan_events(events)
    p_limit = 256 if geometry[2] == 1 else geometry[2]
    for name, top, limit in (("x", max_x, width), ("y", max_y, height), ("p", max_p, p_limit)):
        if top >= limit:
            index = int(np.argmax(events[name]))
            raise ValueError(
                f"event {index} has {name}={top}, outside sensor_size {tuple(sensor_size or geometry)} "
                f"({name} must be < {limit}; polarity is a channel: 0 = OFF, 1 = ON)"
            )
    if not ordered:
        events = events[np.argsort(events["t"], kind="stable")]
    return events, geometry
