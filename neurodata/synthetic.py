"""Small synthetic recordings for demos and tests: a bar rotating in front of an event camera."""

from __future__ import annotations

import numpy as np

from .events import make_events


def rotating_bar(
    width: int = 128,
    height: int = 128,
    duration_us: int = 1_000_000,
    revolutions: float = 2.0,
    step_us: int = 500,
    noise_rate_hz: float = 0.2,
    seed: int = 0,
) -> np.ndarray:
    """Events of a bright bar rotating about the sensor centre, plus background-activity noise.

    Each ``step_us`` the bar's pixels that changed produce ON events on the leading edge and OFF
    events on the trailing edge (the bar is rasterised, so the result is exact, not sampled).
    Noise events are uniform in space and time at ``noise_rate_hz`` per pixel. Sorted by time.

    Args:
        width: Sensor width in pixels.
        height: Sensor height in pixels.
        duration_us: Length of the recording in microseconds (times lie in ``[0, duration_us)``).
        revolutions: Full turns of the bar over the recording.
        step_us: Interval between the bar's rasterised positions, in microseconds.
        noise_rate_hz: Background events per pixel per second.
        seed: Seeds the event times within each step and the noise.

    Returns:
        Events of :data:`~neurodata.events.EVENT_DTYPE`.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    cx, cy = (width - 1) / 2, (height - 1) / 2
    radius = min(width, height) / 2 - 1
    angle_of_pixel = np.arctan2(yy - cy, xx - cx)
    inside = np.hypot(yy - cy, xx - cx) <= radius
    columns = []
    previous = None
    steps = np.arange(0, duration_us, step_us)
    for t in steps:
        angle = 2 * np.pi * revolutions * t / duration_us
        delta = np.abs((angle_of_pixel - angle + np.pi) % (2 * np.pi) - np.pi)
        bar = inside & ((delta < 0.08) | (np.abs(delta - np.pi) < 0.08))
        if previous is not None:
            on_y, on_x = np.nonzero(bar & ~previous)
            off_y, off_x = np.nonzero(previous & ~bar)
            n_on, n_off = len(on_x), len(off_x)
            ts = np.full(n_on + n_off, t, dtype=np.int64) + rng.integers(0, step_us, n_on + n_off)
            columns.append(
                (ts, np.r_[on_x, off_x], np.r_[on_y, off_y], np.r_[np.ones(n_on), np.zeros(n_off)])
            )
        previous = bar
    n_noise = rng.poisson(noise_rate_hz * width * height * duration_us / 1e6)
    columns.append(
        (
            rng.integers(0, duration_us, n_noise),
            rng.integers(0, width, n_noise),
            rng.integers(0, height, n_noise),
            rng.integers(0, 2, n_noise),
        )
    )
    t, x, y, p = (np.concatenate(c) for c in zip(*columns))
    order = np.argsort(t, kind="stable")
    return make_events(t[order], x[order], y[order], p[order])
