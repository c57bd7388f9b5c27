"""Tonic's whole-stream event transforms: Decimation, TimeAlignment, EventDownsampling, EventDrop.

Like the others they return the form that came in (see :mod:`.functional`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import downsampling
from . import functional as F
from ._random import RandomMixin, Seed
from .transforms import Size


@dataclass(frozen=True)
class Decimation:
    """Keep every ``n``-th event of each pixel."""

    n: int

    def __call__(self, events):
        return F.decimate(events, self.n)


@dataclass(frozen=True)
class TimeAlignment:
    """Shift timestamps so the first event is at t = 0."""

    def __call__(self, events):
        return F.time_alignment(events)


@dataclass(frozen=True)
class EventDownsampling:
    """Spatio-temporal downsampling onto ``target_size`` with windows of ``dt`` ms, by the
    ``'integrator'`` or ``'differentiator'`` method (see :mod:`.downsampling`).

    Attributes:
        sensor_size: ``(width, height, polarities)`` of the input.
        target_size: ``(width, height)`` of the output grid.
        downsampling_method: ``'integrator'`` or ``'differentiator'``.
        dt: Window length in milliseconds (required).
        noise_threshold: Net events a target pixel needs before it emits (None: 0).
        differentiator_time_bins: Integrator windows per ``dt`` for the differentiator (None: 2).
    """

    sensor_size: Size
    target_size: tuple[int, int]
    downsampling_method: str
    dt: float | None = None
    noise_threshold: int | None = None
    differentiator_time_bins: int | None = None

    def __call__(self, events):
        if self.dt is None:
            raise ValueError("EventDownsampling needs dt (the window length in ms)")
        threshold = 0 if self.noise_threshold is None else self.noise_threshold
        if self.downsampling_method == "integrator":
            return downsampling.integrator_downsample(
                events, self.sensor_size, self.target_size, self.dt, threshold
            )
        if self.downsampling_method == "differentiator":
            bins = 2 if self.differentiator_time_bins is None else self.differentiator_time_bins
            return downsampling.differentiator_downsample(
                events, self.sensor_size, self.target_size, self.dt, bins, threshold
            )
        raise ValueError(
            f"downsampling_method must be 'integrator' or 'differentiator', got {self.downsampling_method!r}"
        )


@dataclass
class EventDrop(RandomMixin):
    """EventDrop (Gu et al. 2021): per call, one of four equally likely choices: keep all events,
    drop a random time interval (ratio 0.1..0.9), drop a random box (ratio 0.05..0.25) or drop
    events at random (ratio 0.1..0.9).

    Attributes:
        sensor_size: ``(width, height, polarities)`` of the sensor (for the box).
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (see :mod:`._random`).
    """

    sensor_size: Size
    seed: Seed = field(default=None, repr=False)

    def __call__(self, events):
        choice = int(self.rng.integers(0, 4))
        if choice == 0:
            return F.copy(events)
        if choice == 1:
            return F.drop_by_time(events, int(self.rng.integers(1, 10)) / 10, self.rng)
        if choice == 2:
            return F.drop_by_area(events, self.sensor_size, int(self.rng.integers(1, 6)) / 20, self.rng)
        return F.drop_event(events, int(self.rng.integers(1, 10)) / 10, self.rng)
