"""Tonic-compatible event transform classes: same names and parameters, thin wrappers over
:mod:`.functional` (the representation transforms are in :mod:`.to_representations`).

Random transforms take one extra, last parameter ``seed`` (int, ``numpy.random.Generator`` or
None; see :mod:`._random`) and keep Tonic's static ``get_params`` (with an optional ``rng``). All
transforms are plain dataclasses, so they pickle into DataLoader workers. Event-to-event transforms
return the form that came in: the caller's dtype and field order (Tonic's ``x, y, t, p`` int64,
audio events without ``y``) or SpikingJelly's dict of columns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from . import functional as F
from ._random import RandomMixin, Seed, make_generator, sample

Size = tuple[int, int, int]


def is_raster(data) -> bool:
    """True for a plain (unstructured) numpy array: frames ``[P, H, W]`` or ``[T, P, H, W]``.

    Args:
        data: A transform's input: events (structured array or dict of columns) or a raster.
    """
    return isinstance(data, np.ndarray) and data.dtype.names is None


class Compose:
    """Apply transforms in order. Unlike Tonic's, it never stops early on an empty array, so a
    final ``ToFrame`` still returns frames (zeros) for a sample that lost all its events."""

    def __init__(self, transforms: Iterable[Callable]):
        self.transforms = list(transforms)

    def __call__(self, events):
        for transform in self.transforms:
            events = transform(events)
        return events

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({inner}\n)"


# --- deterministic event transforms ---------------------------------------------------------------


@dataclass(frozen=True)
class Denoise:
    """Drop events with no 4-neighbour event in the previous ``filter_time`` us."""

    filter_time: float

    def __call__(self, events):
        return F.denoise(events, self.filter_time)


@dataclass(frozen=True)
class Downsample:
    """Scale timestamps by ``time_factor`` and coordinates by ``spatial_factor`` (or by
    ``target_size / sensor_size[:2]``), flooring; no event is dropped."""

    time_factor: float = 1
    spatial_factor: float | tuple[float, float] = 1
    sensor_size: Size | None = None
    target_size: tuple[int, int] | None = None

    @staticmethod
    def get_params(spatial_factor: float | tuple[float, float]) -> tuple[float, float]:
        """Tonic's helper: ``(factor_x, factor_y)`` from one factor or a pair.

        Args:
            spatial_factor: One factor for both axes, or ``(factor_x, factor_y)``.
        """
        return tuple(spatial_factor) if isinstance(spatial_factor, (tuple, list)) else (spatial_factor,) * 2

    def __call__(self, events):
        if self.target_size is not None:
            if self.sensor_size is None:
                raise ValueError("Downsample(target_size=...) needs sensor_size too")
            fx, fy = (self.target_size[i] / self.sensor_size[i] for i in range(2))
        else:
            fx, fy = self.get_params(self.spatial_factor)
        scaled = self.time_factor != 1
        if scaled:
            events = F.temporal_downsample(events, self.time_factor)
        return F.spatial_downsample(events, fx, fy) if (fx, fy) != (1, 1) or not scaled else events


@dataclass(frozen=True)
class CropTime:
    """Keep events with ``min <= t <= max``; ``max=None`` means no upper bound on every call
    (Tonic's remembers the first sample's maximum)."""

    min: float = 0
    max: float | None = None

    def __call__(self, events):
        return F.crop_time(events, self.min, self.max)


@dataclass(frozen=True)
class SpatialCrop:
    """Keep the box ``origin <= (x, y) < origin + target_size``, shifted to start at 0."""

    origin: tuple[int, int]
    target_size: tuple[int, int]

    def __call__(self, events):
        return F.spatial_crop(events, self.origin, self.target_size)


@dataclass(frozen=True)
class CenterCrop:
    """Crop ``size`` (int or (w, h)) around the sensor centre; a size larger than the sensor pads.

    Attributes:
        sensor_size: ``(width, height, polarities)`` of the sensor.
        size: Side of a square crop, or ``(width, height)``, in pixels.
    """

    sensor_size: Size
    size: int | tuple[int, int]

    def __call__(self, events):
        w, h = (self.size, self.size) if isinstance(self.size, int) else self.size
        origin = ((self.sensor_size[0] - w) // 2, (self.sensor_size[1] - h) // 2)
        return F.spatial_crop(events, origin, (w, h))


@dataclass(frozen=True)
class DropPixel:
    """Drop events at ``coordinates`` [(x, y), ...] and/or at pixels firing above
    ``hot_pixel_frequency`` Hz. Rasters ``[P, H, W]``/``[T, P, H, W]`` get those pixels zeroed
    (there the hot-pixel threshold is a total count, as in Tonic)."""

    coordinates: list[tuple[int, int]] | None = None
    hot_pixel_frequency: float | None = None

    def __call__(self, events):
        coords = [] if self.coordinates is None else list(self.coordinates)
        if is_raster(events):
            if self.hot_pixel_frequency is not None:
                total = events.sum(axis=tuple(range(events.ndim - 2)))
                ys, xs = np.nonzero(total > self.hot_pixel_frequency)
                coords += list(zip(xs, ys))
            return F.drop_pixels_raster(events, coords)
        if self.hot_pixel_frequency is not None:
            coords += [tuple(c) for c in F.hot_pixels(events, self.hot_pixel_frequency)]
        return F.drop_pixels(events, coords)


@dataclass(frozen=True)
class MergePolarities:
    """Set every polarity to 0."""

    def __call__(self, events):
        return F.merge_polarities(events)


# --- random transforms ----------------------------------------------------------------------------


@dataclass
class RefractoryPeriod(RandomMixin):
    """Drop events within ``delta`` us of the previous event at the same pixel; a
    ``(low, high)`` delta is drawn per call.

    Attributes:
        delta: Microseconds, or a ``(low, high)`` range an integer is drawn from per call.
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    delta: float | tuple[float, float]
    seed: Seed = field(default=None, repr=False)

    @staticmethod
    def get_params(delta: float | tuple[int, int], rng: Seed = None) -> float:
        """Tonic's helper: ``delta`` as is, or an integer drawn from ``[low, high)``.

        Args:
            delta: Microseconds, or a ``(low, high)`` range.
            rng: Seed or generator of the draw (None: fresh entropy).
        """
        return sample(delta, make_generator(rng), integer=True)

    def __call__(self, events):
        return F.refractory_period(events, self.get_params(self.delta, self.rng))


@dataclass
class RandomCrop(RandomMixin):
    """Crop a random ``target_size`` box (every position equally likely) out of the sensor.

    Attributes:
        sensor_size: ``(width, height, polarities)`` of the sensor.
        target_size: ``(width, height)`` of the box in pixels, at most the sensor's.
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    sensor_size: Size
    target_size: tuple[int, int]
    seed: Seed = field(default=None, repr=False)

    def __call__(self, events):
        (width, height), (w, h) = self.sensor_size[:2], self.target_size
        if w > width or h > height:
            raise ValueError(f"target_size {self.target_size} is larger than the sensor {width}x{height}")
        origin = (int(self.rng.integers(0, width - w + 1)), int(self.rng.integers(0, height - h + 1)))
        return F.spatial_crop(events, origin, (w, h))


@dataclass
class _Flip(RandomMixin, ABC):
    """With probability ``p``, ``_apply`` (a deterministic flip); otherwise an unchanged copy."""

    @abstractmethod
    def _apply(self, events):
        """The flipped events."""

    def __call__(self, events):
        if not 0 <= self.p <= 1:
            raise ValueError(f"p must be in [0, 1], got {self.p}")
        if self.rng.random() < self.p:
            return self._apply(events)
        return events.copy() if is_raster(events) else F.copy(events)


@dataclass
class RandomFlipLR(_Flip):
    """With probability ``p``: ``x' = width - 1 - x``.

    Attributes:
        sensor_size: ``(width, height, polarities)`` of the sensor.
        p: Probability of flipping a sample.
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    sensor_size: Size
    p: float = 0.5
    seed: Seed = field(default=None, repr=False)

    def _apply(self, events):
        return F.flip_lr(events, self.sensor_size)


@dataclass
class RandomFlipUD(_Flip):
    """With probability ``p``: ``y' = height - 1 - y``.

    Attributes:
        sensor_size: ``(width, height, polarities)`` of the sensor.
        p: Probability of flipping a sample.
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    sensor_size: Size
    p: float = 0.5
    seed: Seed = field(default=None, repr=False)

    def _apply(self, events):
        return F.flip_ud(events, self.sensor_size)


@dataclass
class RandomFlipPolarity(_Flip):
    """With probability ``p``: swap ON and OFF for the whole sample (as Tonic does).

    Attributes:
        p: Probability of flipping a sample.
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    p: float = 0.5
    seed: Seed = field(default=None, repr=False)

    def _apply(self, events):
        return F.flip_polarity(events)


@dataclass
class RandomTimeReversal(_Flip):
    """With probability ``p``: ``t' = max(t) - t``, order reversed, polarities flipped if asked.
    Rasters ``[T, P, ...]`` get their time axis (and polarity axis, if asked) reversed, as in Tonic.

    Attributes:
        p: Probability of reversing a sample.
        flip_polarities: Also swap ON and OFF (reverse a raster's polarity axis).
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    p: float = 0.5
    flip_polarities: bool = True
    seed: Seed = field(default=None, repr=False)

    def _apply(self, events):
        if is_raster(events):
            return np.ascontiguousarray(events[::-1, ::-1] if self.flip_polarities else events[::-1])
        return F.time_reversal(events, self.flip_polarities)


@dataclass
class SpatialJitter(RandomMixin):
    """Gaussian jitter of x/y (rounded); off-sensor events dropped (``clip_outliers``) or clamped.

    Attributes:
        sensor_size: ``(width, height, polarities)`` of the sensor.
        var_x: Variance of the x shift in pixels squared.
        var_y: Variance of the y shift in pixels squared.
        sigma_xy: Covariance of the x and y shifts.
        clip_outliers: Drop events that leave the sensor rather than clamping them.
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    sensor_size: Size
    var_x: float = 1
    var_y: float = 1
    sigma_xy: float = 0
    clip_outliers: bool = False
    seed: Seed = field(default=None, repr=False)

    def __call__(self, events):
        return F.spatial_jitter(
            events, self.sensor_size, self.rng, self.var_x, self.var_y, self.sigma_xy, self.clip_outliers
        )


@dataclass
class TimeJitter(RandomMixin):
    """Gaussian jitter of timestamps (``std`` us, rounded).

    Attributes:
        std: Standard deviation in microseconds.
        clip_negative: Drop events whose new time is negative.
        sort_timestamps: Sort the result by the new times.
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    std: float
    clip_negative: bool = True
    sort_timestamps: bool = False
    seed: Seed = field(default=None, repr=False)

    def __call__(self, events):
        return F.time_jitter(events, self.std, self.rng, self.clip_negative, self.sort_timestamps)


@dataclass
class TimeSkew(RandomMixin):
    """``t' = floor(t * coefficient + offset)``; either may be a ``(low, high)`` range drawn per call.

    Attributes:
        coefficient: Multiplies the timestamps.
        offset: Added afterwards, in microseconds.
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    coefficient: float | tuple[float, float]
    offset: float | tuple[float, float] = 0
    seed: Seed = field(default=None, repr=False)

    def __call__(self, events):
        return F.temporal_downsample(
            events, sample(self.coefficient, self.rng), sample(self.offset, self.rng)
        )


@dataclass
class UniformNoise(RandomMixin):
    """Add ``n`` (or a draw from ``(low, high)``) uniform noise events; empty input stays empty.

    Attributes:
        sensor_size: ``(width, height, polarities)`` of the sensor.
        n: Number of noise events, or a ``(low, high)`` range an integer is drawn from per call.
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    sensor_size: Size
    n: int | tuple[int, int]
    seed: Seed = field(default=None, repr=False)

    @staticmethod
    def get_params(n: int | tuple[int, int], rng: Seed = None) -> int:
        """Tonic's helper: ``n`` as is, or an integer drawn from ``[low, high)``.

        Args:
            n: A count, or a ``(low, high)`` range.
            rng: Seed or generator of the draw (None: fresh entropy).
        """
        return sample(n, make_generator(rng), integer=True)

    def __call__(self, events):
        return F.uniform_noise(events, self.sensor_size, self.get_params(self.n, self.rng), self.rng)


@dataclass
class DropEvent(RandomMixin):
    """Drop a fraction ``p`` (or a draw from ``(low, high)``) of the events at random.

    Attributes:
        p: Fraction in [0, 1], or a ``(low, high)`` range drawn from per call.
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    p: float | tuple[float, float]
    seed: Seed = field(default=None, repr=False)

    @staticmethod
    def get_params(p: float | tuple[float, float], rng: Seed = None) -> float:
        """Tonic's helper: ``p`` as is, or a draw from ``[low, high)``.

        Args:
            p: A fraction, or a ``(low, high)`` range.
            rng: Seed or generator of the draw (None: fresh entropy).
        """
        return sample(p, make_generator(rng))

    def __call__(self, events):
        return F.drop_event(events, self.get_params(self.p, self.rng), self.rng)


@dataclass
class DropEventByTime(RandomMixin):
    """Drop the events of a random interval ``duration_ratio`` of the recording long.

    Attributes:
        duration_ratio: Fraction of the recording's duration in [0, 1), or a ``(low, high)`` range drawn from per call.
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    duration_ratio: float | tuple[float, float] = 0.2
    seed: Seed = field(default=None, repr=False)

    def __call__(self, events):
        return F.drop_by_time(events, sample(self.duration_ratio, self.rng), self.rng)


@dataclass
class DropEventByArea(RandomMixin):
    """Drop the events of a random box ``area_ratio`` of the sensor's width and height.

    Attributes:
        sensor_size: ``(width, height, polarities)`` of the sensor.
        area_ratio: Fraction of the width and height in [0, 1), or a ``(low, high)`` range drawn from per call.
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    sensor_size: Size
    area_ratio: float | tuple[float, float] = 0.2
    seed: Seed = field(default=None, repr=False)

    def __call__(self, events):
        return F.drop_by_area(events, self.sensor_size, sample(self.area_ratio, self.rng), self.rng)


@dataclass
class RandomDropPixel(RandomMixin):
    """Drop every event of each pixel with probability ``p`` (pixels drawn per call). Rasters
    ``[P, H, W]``/``[T, P, H, W]`` get the drawn pixels zeroed.

    Attributes:
        p: Probability that a pixel is dropped.
        sensor_size: ``(width, height, polarities)``; None takes the events' bounding box (a raster's own shape).
        seed: Seeds the draws: int, ``numpy.random.Generator`` or None (fresh entropy; see :mod:`._random`).
    """

    p: float
    sensor_size: Size | None = None
    seed: Seed = field(default=None, repr=False)

    def __call__(self, events):
        if is_raster(events):
            height, width = events.shape[-2:]
        elif self.sensor_size is not None:
            width, height = self.sensor_size[:2]
        else:
            records = F.to_events(events)
            if len(records) == 0:
                return F.copy(events)
            width, height = F.pixel_grid(records)
        ys, xs = np.nonzero(self.rng.random((height, width)) < self.p)
        coordinates = np.stack([xs, ys], axis=1)
        return F.drop_pixels_raster(events, coordinates) if is_raster(events) else F.drop_pixels(events, coordinates)
