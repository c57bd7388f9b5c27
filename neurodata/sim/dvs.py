"""Intensity frames to DVS events, the way a dynamic vision sensor pixel array produces them.

Per-pixel log-intensity memory, ON/OFF contrast thresholds with per-pixel mismatch, timestamps
interpolated between frames, a refractory period, shot noise (random events at a per-pixel rate),
leak events (the pixel's memory drifts down, so static pixels fire ON now and then) and hot pixels
(a few pixels that fire ON at a high rate whatever they see), after the models of ESIM (Rebecq et
al. 2018) and v2e (Hu et al. 2021), simplified.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..arguments import finite_number
from ..events import concatenate, make_events
from .kernels import step_numba


@dataclass(frozen=True)
class DvsParams:
    """Sensor parameters. Thresholds are in natural-log intensity units; rates per pixel per second.

    Attributes:
        c_on: Mean ON contrast threshold (log-intensity rise that fires an ON event), > 0.
        c_off: Mean OFF contrast threshold (log-intensity fall that fires an OFF event), > 0.
        threshold_sigma: Standard deviation of the per-pixel threshold mismatch (thresholds stay >= 0.01).
        refractory_us: Microseconds after a pixel's event during which its next event is suppressed.
        shot_noise_hz: Random events (either polarity) per pixel per second.
        leak_hz: Rate per pixel per second at which the pixel's memory drifts down by one ON threshold
            (static pixels then fire ON now and then).
        hot_pixels: Number of pixels, drawn at random, that fire ON whatever they see.
        hot_pixel_hz: The hot pixels' ON event rate per second.
        log_eps: Added to the intensity before the logarithm (keeps black pixels finite).
        seed: Seeds the threshold mismatch, the noise and the choice of hot pixels.
    """

    c_on: float = 0.2
    c_off: float = 0.2
    threshold_sigma: float = 0.03
    refractory_us: int = 100
    shot_noise_hz: float = 0.0
    leak_hz: float = 0.0
    hot_pixels: int = 0
    hot_pixel_hz: float = 0.0
    log_eps: float = 1e-3
    seed: int = 0

    def __post_init__(self) -> None:
        for name in dataclasses.fields(self):
            finite_number(name.name, getattr(self, name.name))  # an infinite rate never ends a frame
        if not (self.c_on > 0 and self.c_off > 0):
            raise ValueError(f"contrast thresholds must be > 0, got c_on={self.c_on}, c_off={self.c_off}")
        for name in (
            "threshold_sigma",
            "refractory_us",
            "shot_noise_hz",
            "leak_hz",
            "hot_pixels",
            "hot_pixel_hz",
            "log_eps",
        ):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


class DvsPixelArray:
    """The sensor's state across frames: feed frames one at a time with :meth:`step` (streaming).

    Args:
        first_frame: Intensity frame ``[H, W]`` (any positive scale) that sets each pixel's memory.
        t0: Time of ``first_frame`` in microseconds; the next frame must be later.
        params: The sensor's thresholds, noise and seed.
    """

    def __init__(self, first_frame: np.ndarray, t0: int, params: DvsParams = DvsParams()):
        self.params = params
        self.rng = np.random.default_rng(params.seed)
        self.shape = np.shape(first_frame)
        if len(self.shape) != 2:
            raise ValueError(f"frames must be [H, W] intensities, got shape {self.shape}")
        shape = self.shape
        self.c_on = np.maximum(0.01, self.rng.normal(params.c_on, params.threshold_sigma, shape))
        self.c_off = np.maximum(0.01, self.rng.normal(params.c_off, params.threshold_sigma, shape))
        self.log = self._log(first_frame, t0)
        self.ref = self.log.copy()
        self.last_t = np.full(shape, np.iinfo(np.int64).min // 2, dtype=np.int64)
        self.t = int(t0)
        self.capacity = max(1024, first_frame.size // 4)
        # drawn only when asked for, so that sensors without hot pixels keep their seeded events
        self.hot = (
            self.rng.choice(first_frame.size, params.hot_pixels, replace=False) if params.hot_pixels else None
        )

    def _log(self, frame: np.ndarray, t: int) -> np.ndarray:
        """The log intensity of ``frame`` (the frame at time ``t``), after checking that it has the
        sensor's shape (the kernel reads it unchecked) and holds finite intensities >= 0."""
        frame = np.asarray(frame, dtype=np.float64)
        if frame.shape != self.shape:
            raise ValueError(f"the frame at t = {t} us has shape {frame.shape}; the first frame's was {self.shape}")
        if frame.size and not (np.isfinite(frame).all() and frame.min() >= 0):
            raise ValueError(f"the frame at t = {t} us holds a negative or non-finite intensity (NaN, inf)")
        return np.log(frame + self.params.log_eps)

    def step(self, frame: np.ndarray, t: int) -> np.ndarray:
        """Events produced while the scene changes from the previous frame to ``frame`` at time ``t``."""
        t = int(t)
        if t <= self.t:
            raise ValueError(f"frame times must increase: got {t} after {self.t}")
        p = self.params
        new_log = self._log(frame, t)
        if p.leak_hz:
            self.ref -= self.c_on * p.leak_hz * (t - self.t) / 1e6
        while True:
            ref, last_t = self.ref.copy(), self.last_t.copy()
            cols = (
                np.empty(self.capacity, np.int64),
                np.empty(self.capacity, np.uint16),
                np.empty(self.capacity, np.uint16),
                np.empty(self.capacity, np.uint8),
            )
            n = step_numba(
                self.log, new_log, self.t, t, ref, self.c_on, self.c_off, last_t, p.refractory_us, *cols, 0
            )
            if n >= 0:
                break
            self.capacity *= 2
        self.ref, self.last_t = ref, last_t
        events = make_events(*(c[:n] for c in cols))
        noise = [self._shot_noise(self.t, t, frame.shape), self._hot_pixel_events(self.t, t, frame.shape)]
        self.log, self.t = new_log, t
        merged = concatenate([events, *noise])
        return merged[np.argsort(merged["t"], kind="stable")]

    def _shot_noise(self, t0: int, t1: int, shape: tuple[int, int]) -> np.ndarray:
        rate = self.params.shot_noise_hz
        if not rate:
            return make_events([], [], [], [])
        n = self.rng.poisson(rate * shape[0] * shape[1] * (t1 - t0) / 1e6)
        return make_events(
            self.rng.integers(t0, t1, n),
            self.rng.integers(0, shape[1], n),
            self.rng.integers(0, shape[0], n),
            self.rng.integers(0, 2, n),
        )

    def _hot_pixel_events(self, t0: int, t1: int, shape: tuple[int, int]) -> np.ndarray:
        """ON events of the hot pixels, each a Poisson process at ``hot_pixel_hz``."""
        if self.hot is None or not self.params.hot_pixel_hz:
            return make_events([], [], [], [])
        counts = self.rng.poisson(self.params.hot_pixel_hz * (t1 - t0) / 1e6, len(self.hot))
        where = np.repeat(self.hot, counts)
        return make_events(
            self.rng.integers(t0, t1, len(where)), where % shape[1], where // shape[1], np.ones(len(where))
        )


def simulate_frames(
    frames: Iterable[np.ndarray], timestamps_us: Iterable[int], params: DvsParams = DvsParams()
) -> np.ndarray:
    """Events for a sequence of intensity frames ``[H, W]`` (any positive scale) at increasing times.

    Args:
        frames: The intensity frames; the first sets the sensor's state and produces no events.
        timestamps_us: Each frame's time in microseconds, strictly increasing.
        params: The sensor's thresholds, noise and seed.

    Returns:
        Events of :data:`~neurodata.events.EVENT_DTYPE`, sorted by time within each frame interval.
    """
    sensor = None
    chunks = []
    for frame, t in zip(frames, timestamps_us):
        if sensor is None:
            sensor = DvsPixelArray(frame, t, params)
        else:
            chunks.append(sensor.step(frame, t))
    return concatenate(chunks) if chunks else make_events([], [], [], [])
