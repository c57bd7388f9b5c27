"""Pure functions over event arrays behind the transform classes.

Every event-to-event function takes events in any form :mod:`neurodata.representations._layout`
reads (our records, Tonic's ``x, y, t, p`` int64 arrays, audio events without ``y``, SpikingJelly's
dict of columns) and returns a new array in that same form: same dtype and field order, or a dict
with the same columns. Randomness comes only from the ``rng`` (a ``numpy.random.Generator``) passed
in. The ``*_numpy`` functions at the end carry Tonic's functional names and parameters.
"""

from __future__ import annotations

import functools

import numpy as np

from ..arguments import finite_number, whole_number
from ..events import make_events
from ..representations._checks import sensor_geometry
from ..representations._layout import EventLayout, as_records
from . import kernels
from ._random import make_generator

to_events = as_records


def keeps_layout(function):
    """Run ``function`` on EVENT_DTYPE records and hand its result back in the caller's form."""

    @functools.wraps(function)
    def wrapper(events, *args, **kwargs):
        layout = EventLayout.of(events)
        return layout.restore(function(layout.records(events), *args, **kwargs))

    return wrapper


def row_and_column_edits(function):
    """For functions that only select rows and rewrite columns with values the input's own types
    hold (flips, crops, drops): a structured array with t, x, y, p fields of any dtype is edited
    directly (no conversion, other fields kept); any other form goes through :func:`keeps_layout`.

    Args:
        function: Takes the events first (a structured array with ``t, x, y, p`` fields) and returns
            a selection of its rows or a copy with some of those columns rewritten.
    """
    through_records = keeps_layout(function)

    @functools.wraps(function)
    def wrapper(events, *args, **kwargs):
        names = getattr(getattr(events, "dtype", None), "names", None) or ()
        if isinstance(events, np.ndarray) and all(f in names for f in "txyp"):
            return function(events, *args, **kwargs)
        return through_records(events, *args, **kwargs)

    return wrapper


def _with(events: np.ndarray, **columns) -> np.ndarray:
    """A copy of ``events`` with some columns replaced (values already in range)."""
    out = events.copy()
    for name, values in columns.items():
        out[name] = values
    return out


def _check_inside(events: np.ndarray, width: int, height: int, what: str) -> None:
    if len(events) and (int(events["x"].max()) >= width or int(events["y"].max()) >= height):
        raise ValueError(
            f"{what}: events reach x={int(events['x'].max())}, y={int(events['y'].max())}, "
            f"outside the sensor {width}x{height}"
        )


def _check_two_channels(events: np.ndarray, what: str) -> None:
    if len(events) and int(events["p"].max()) > 1:
        raise ValueError(f"{what}: polarity {int(events['p'].max())} found; ON/OFF swaps need polarities 0/1")


def pixel_grid(events: np.ndarray) -> tuple[int, int]:
    """(width, height) of the events' bounding box from the origin (non-empty input)."""
    return int(events["x"].max()) + 1, int(events["y"].max()) + 1


# --- filters -------------------------------------------------------------------------------------


def _kept(events, mask_kernel, threshold: float):
    """The events that ``mask_kernel(records, threshold, width, height)`` keeps, selected from the
    caller's own array or dict (so its form and any extra fields survive). The kernels look back in
    time, so events out of time order are judged in time order (stably sorted) and returned in the
    caller's order."""
    records = to_events(events)
    if len(records) == 0:
        return copy(events)
    width, height = pixel_grid(records)
    ordered = np.ones(1, dtype=np.bool_)
    keep = mask_kernel(records, threshold, width, height, ordered)  # finds the order in the same pass
    if not ordered[0]:
        order = np.argsort(records["t"], kind="stable")
        keep[order] = mask_kernel(records[order], threshold, width, height)
    if isinstance(events, np.ndarray):
        return events[keep]
    return {name: np.asarray(column)[keep] for name, column in events.items()}


def denoise(events: np.ndarray, filter_time: float) -> np.ndarray:
    """Drop events with no event at a 4-neighbour pixel within the previous ``filter_time`` us.

    Args:
        events: Events in any form the module docstring lists, in any order (judged in time order).
        filter_time: Microseconds, finite and >= 0.
    """
    finite_number("filter_time", filter_time, minimum=0)
    return _kept(events, kernels.denoise_mask, filter_time)


def refractory_period(events: np.ndarray, delta: float) -> np.ndarray:
    """Drop events that follow the previous event at the same pixel by ``delta`` us or less.

    Args:
        events: Events in any form the module docstring lists, in any order (judged in time order).
        delta: Microseconds, finite and >= 0.
    """
    finite_number("delta", delta, minimum=0)
    return _kept(events, kernels.refractory_mask, delta)


_refractory = refractory_period  # Tonic's parameter of the same name shadows the function below


def hot_pixels(events: np.ndarray, hot_pixel_frequency: float) -> np.ndarray:
    """``[k, 2]`` (x, y) of pixels firing more than ``hot_pixel_frequency`` Hz over the recording.

    Args:
        events: Time-sorted events in any form the module docstring lists (the recording's length
            is the last time minus the first, in microseconds).
        hot_pixel_frequency: Events per second above which a pixel counts as hot.
    """
    events = to_events(events)
    if len(events) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    width, height = pixel_grid(events)
    counts = np.bincount(events["y"].astype(np.int64) * width + events["x"], minlength=width * height)
    limit = hot_pixel_frequency * (int(events["t"][-1]) - int(events["t"][0])) * 1e-6
    hot = np.flatnonzero(counts > limit)
    return np.stack([hot % width, hot // width], axis=1)


@row_and_column_edits
def drop_pixels(events: np.ndarray, coordinates) -> np.ndarray:
    """Drop every event at the given (x, y) pixels.

    Args:
        events: Events in any form the module docstring lists.
        coordinates: The pixels, ``[k, 2]`` (x, y) integers (as :func:`hot_pixels` returns);
            pixels outside the events' bounding box are ignored.
    """
    coords = np.asarray(coordinates, dtype=np.int64).reshape(-1, 2)
    if len(events) == 0 or len(coords) == 0:
        return events
    width, height = pixel_grid(events)
    inside = (coords[:, 0] >= 0) & (coords[:, 0] < width) & (coords[:, 1] >= 0) & (coords[:, 1] < height)
    banned = np.zeros((height, width), dtype=bool)
    banned[coords[inside, 1], coords[inside, 0]] = True
    return events[~banned[events["y"], events["x"]]]


def drop_pixels_raster(frames: np.ndarray, coordinates) -> np.ndarray:
    """Zero the given (x, y) pixels of a ``[P, H, W]`` or ``[T, P, H, W]`` raster (a copy).

    Args:
        frames: The raster (any dtype).
        coordinates: The pixels, ``[k, 2]`` (x, y) integers inside the raster.

    Raises:
        ValueError: ``frames`` is neither 3-D nor 4-D.
    """
    if frames.ndim not in (3, 4):
        raise ValueError(f"a raster is [P, H, W] or [T, P, H, W]; got shape {frames.shape}")
    out = frames.copy()
    coords = np.asarray(coordinates, dtype=np.int64).reshape(-1, 2)
    out[..., coords[:, 1], coords[:, 0]] = 0
    return out


# --- time ----------------------------------------------------------------------------------------


@row_and_column_edits
def crop_time(events: np.ndarray, min: float = 0, max: float | None = None) -> np.ndarray:  # noqa: A002
    """Keep events with ``min <= t <= max`` (both ends included, as in Tonic); ``max=None``: no bound."""
    keep = events["t"] >= min
    if max is not None:
        keep &= events["t"] <= max
    return events[keep]


@keeps_layout
def temporal_downsample(events: np.ndarray, factor: float, offset: float = 0) -> np.ndarray:
    """``t' = floor(t * factor + offset)`` (e.g. ``factor=1e-3`` turns us into ms).

    Args:
        events: Events in any form the module docstring lists.
        factor: Multiplies the timestamps, > 0 (a negative factor would reverse time).
        offset: Added after the multiplication, in the new time unit.
    """
    finite_number("time_factor", factor, above=0)
    finite_number("offset", offset)
    return _with(events, t=np.floor(events["t"] * factor + offset).astype(np.int64))


@keeps_layout
def time_jitter(
    events: np.ndarray,
    std: float,
    rng: np.random.Generator,
    clip_negative: bool = True,
    sort_timestamps: bool = False,
) -> np.ndarray:
    """Add rounded Gaussian noise of ``std`` us to each timestamp; drop negative times if asked.

    Args:
        events: Events in any form the module docstring lists.
        std: Standard deviation of the noise in microseconds.
        rng: The generator all random draws come from.
        clip_negative: Drop events whose new time is negative.
        sort_timestamps: Sort the result by its new times (stable); else the input order stays.
    """
    finite_number("std", std, minimum=0)
    jittered = _with(events, t=np.rint(events["t"] + rng.normal(0, std, len(events))).astype(np.int64))
    if clip_negative:
        jittered = jittered[jittered["t"] >= 0]
    if sort_timestamps:
        jittered = jittered[np.argsort(jittered["t"], kind="stable")]
    return jittered


@keeps_layout
def time_reversal(events: np.ndarray, flip_polarities: bool = True) -> np.ndarray:
    """``t' = max(t) - t`` with the event order reversed (and ON/OFF swapped when asked).

    Args:
        events: Events in any form the module docstring lists.
        flip_polarities: Also swap ON and OFF (``p' = 1 - p``; two polarity channels only).

    Raises:
        ValueError: ``flip_polarities`` with a polarity above 1.
    """
    events = events[::-1]
    if len(events) == 0:
        return events.copy()
    out = _with(events, t=events["t"].max() - events["t"])
    if flip_polarities:
        _check_two_channels(events, "time_reversal(flip_polarities=True)")
        out["p"] = 1 - out["p"]
    return out


# --- space ---------------------------------------------------------------------------------------


@keeps_layout
def spatial_downsample(events: np.ndarray, factor_x: float, factor_y: float) -> np.ndarray:
    """``x' = floor(x * factor_x)``, ``y' = floor(y * factor_y)``; no event is dropped.

    Args:
        events: Events in any form the module docstring lists.
        factor_x: Multiplies x (< 1 downsamples), > 0.
        factor_y: Multiplies y, > 0.

    Raises:
        ValueError: A factor is not positive, or upsampling pushes a coordinate past 65535.
    """
    if factor_x <= 0 or factor_y <= 0:
        raise ValueError(f"spatial factors must be positive, got ({factor_x}, {factor_y})")
    x = np.floor(events["x"] * float(factor_x)).astype(np.int64)
    y = np.floor(events["y"] * float(factor_y)).astype(np.int64)
    if len(events) and max(int(x.max()), int(y.max())) > np.iinfo(np.uint16).max:
        raise ValueError("spatial upsampling pushes coordinates past 65535")
    return _with(events, x=x, y=y)


@keeps_layout
def spatial_crop(events: np.ndarray, origin: tuple[int, int], target_size: tuple[int, int]) -> np.ndarray:
    """Keep events in the box ``origin <= (x, y) < origin + target_size`` and move the origin to 0.

    ``origin`` may be negative (the box sticks out of the sensor, as in CenterCrop with padding).

    Args:
        events: Events in any form the module docstring lists.
        origin: ``(x, y)`` of the box's top-left pixel.
        target_size: ``(width, height)`` of the box in pixels.
    """
    x0, y0 = (int(v) for v in origin)
    w, h = (int(v) for v in target_size)
    x = events["x"].astype(np.int64) - x0
    y = events["y"].astype(np.int64) - y0
    keep = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    return make_events(events["t"][keep], x[keep], y[keep], events["p"][keep])


@row_and_column_edits
def flip_lr(events: np.ndarray, sensor_size) -> np.ndarray:
    """``x' = width - 1 - x``.

    Args:
        events: Events in any form the module docstring lists.
        sensor_size: ``(width, height, polarities)`` of the sensor.

    Raises:
        ValueError: An event lies outside the sensor.
    """
    width, height, _ = sensor_geometry(sensor_size)
    _check_inside(events, width, height, "flip_lr")
    return _with(events, x=width - 1 - events["x"].astype(np.int64))


@row_and_column_edits
def flip_ud(events: np.ndarray, sensor_size) -> np.ndarray:
    """``y' = height - 1 - y``.

    Args:
        events: Events in any form the module docstring lists.
        sensor_size: ``(width, height, polarities)`` of the sensor.

    Raises:
        ValueError: An event lies outside the sensor.
    """
    width, height, _ = sensor_geometry(sensor_size)
    _check_inside(events, width, height, "flip_ud")
    return _with(events, y=height - 1 - events["y"].astype(np.int64))


@keeps_layout
def flip_polarity(events: np.ndarray) -> np.ndarray:
    """Swap ON and OFF (two-channel polarities only).

    Args:
        events: Events in any form the module docstring lists.

    Raises:
        ValueError: A polarity is above 1.
    """
    _check_two_channels(events, "flip_polarity")
    return _with(events, p=1 - events["p"])


@row_and_column_edits
def merge_polarities(events: np.ndarray) -> np.ndarray:
    """Set every polarity to 0 (one channel).

    Args:
        events: Events in any form the module docstring lists.
    """
    return _with(events, p=0)


@keeps_layout
def spatial_jitter(
    events: np.ndarray,
    sensor_size,
    rng: np.random.Generator,
    var_x: float = 1,
    var_y: float = 1,
    sigma_xy: float = 0,
    clip_outliers: bool = False,
) -> np.ndarray:
    """Move each event by a rounded 2-D Gaussian draw with covariance ``[[var_x, sigma_xy], [sigma_xy, var_y]]``.

    Events pushed off the sensor are dropped when ``clip_outliers`` else clamped to its border
    (Tonic wraps them around uint16 instead).

    Args:
        events: Events in any form the module docstring lists.
        sensor_size: ``(width, height, polarities)`` of the sensor.
        rng: The generator all random draws come from.
        var_x: Variance of the x shift in pixels squared.
        var_y: Variance of the y shift in pixels squared.
        sigma_xy: Covariance of the x and y shifts.
        clip_outliers: Drop events that leave the sensor rather than clamping them.
    """
    width, height, _ = sensor_geometry(sensor_size)
    finite_number("var_x", var_x, minimum=0)
    finite_number("var_y", var_y, minimum=0)
    if finite_number("sigma_xy", sigma_xy) ** 2 > var_x * var_y:
        raise ValueError(f"sigma_xy**2 must not exceed var_x * var_y (a covariance), got {sigma_xy}")
    shift = rng.multivariate_normal([0, 0], [[var_x, sigma_xy], [sigma_xy, var_y]], len(events))
    x = np.rint(events["x"] + shift[:, 0]).astype(np.int64)
    y = np.rint(events["y"] + shift[:, 1]).astype(np.int64)
    if clip_outliers:
        keep = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        return make_events(events["t"][keep], x[keep], y[keep], events["p"][keep])
    return _with(events, x=np.clip(x, 0, width - 1), y=np.clip(y, 0, height - 1))


# --- random drops and noise ----------------------------------------------------------------------


@row_and_column_edits
def drop_event(events: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Drop ``round(p * N)`` events chosen uniformly without replacement (order kept).

    Args:
        events: Events in any form the module docstring lists.
        p: Fraction of the events to drop, in [0, 1].
        rng: The generator all random draws come from.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"drop probability must be in [0, 1], got {p}")
    n_drop = int(p * len(events) + 0.5)
    keep = np.ones(len(events), dtype=bool)
    keep[rng.choice(len(events), n_drop, replace=False)] = False
    return events[keep]


@row_and_column_edits
def drop_by_time(events: np.ndarray, duration_ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Drop the events in a random closed interval ``duration_ratio`` of the recording long.

    The interval lies within ``[t_first, t_last]`` (Tonic measures from t = 0 instead).

    Args:
        events: Events in any form the module docstring lists.
        duration_ratio: The interval's length as a fraction of the recording's, in [0, 1).
        rng: The generator all random draws come from.
    """
    if not 0 <= duration_ratio < 1:
        raise ValueError(f"duration_ratio must be in [0, 1), got {duration_ratio}")
    if len(events) == 0:
        return events
    t0, t1 = int(events["t"].min()), int(events["t"].max())
    length = (t1 - t0) * duration_ratio
    start = rng.uniform(t0, t1 - length)
    t = events["t"]
    return events[(t < start) | (t > start + length)]


@row_and_column_edits
def drop_by_area(events: np.ndarray, sensor_size, area_ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Drop events in a random box ``int(W * ratio) x int(H * ratio)`` pixels inside the sensor.

    Args:
        events: Events in any form the module docstring lists.
        sensor_size: ``(width, height, polarities)`` of the sensor.
        area_ratio: The box's side as a fraction of the sensor's width and height, in [0, 1).
        rng: The generator all random draws come from.
    """
    if not 0 <= area_ratio < 1:
        raise ValueError(f"area_ratio must be in [0, 1), got {area_ratio}")
    width, height, _ = sensor_geometry(sensor_size)
    cut_w, cut_h = int(width * area_ratio), int(height * area_ratio)
    x0 = int(rng.integers(0, width - cut_w + 1))
    y0 = int(rng.integers(0, height - cut_h + 1))
    x, y = events["x"], events["y"]
    inside = (x >= x0) & (x < x0 + cut_w) & (y >= y0) & (y < y0 + cut_h)
    return events[~inside]


@keeps_layout
def uniform_noise(events: np.ndarray, sensor_size, n: int, rng: np.random.Generator) -> np.ndarray:
    """Add ``n`` events uniform over the sensor, its polarities and ``[t_first, t_last]``; time-sorted.

    Args:
        events: Events in any form the module docstring lists.
        sensor_size: ``(width, height, polarities)`` of the sensor.
        n: Number of noise events (none are added to empty input).
        rng: The generator all random draws come from.
    """
    whole_number("n", n, minimum=0)
    if len(events) == 0 or n == 0:
        return events.copy()
    width, height, n_pol = sensor_geometry(sensor_size)
    noise = make_events(
        rng.integers(int(events["t"].min()), int(events["t"].max()) + 1, n),
        rng.integers(0, width, n),
        rng.integers(0, height, n),
        rng.integers(0, n_pol, n),
    )
    merged = np.concatenate([events, noise])
    return merged[np.argsort(merged["t"], kind="stable")]


# --- whole-stream edits --------------------------------------------------------------------------


@row_and_column_edits
def copy(events: np.ndarray) -> np.ndarray:
    """An unchanged copy, in the caller's form (what a random transform returns when it does nothing).

    Args:
        events: Events in any form the module docstring lists.
    """
    return events.copy()


@keeps_layout
def decimate(events: np.ndarray, n: int) -> np.ndarray:
    """Keep every ``n``-th event of each pixel (the ``n``-th, ``2n``-th, ... in time order).

    Args:
        events: Events in any form the module docstring lists.
        n: The decimation factor, a positive integer.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    if len(events) == 0:
        return events.copy()
    width, _ = pixel_grid(events)
    pixel = events["y"].astype(np.int64) * width + events["x"]
    order = np.argsort(pixel, kind="stable")
    grouped = pixel[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    keep = np.zeros(len(events), dtype=bool)
    keep[order] = (rank + 1) % int(n) == 0
    return events[keep]


@row_and_column_edits
def time_alignment(events: np.ndarray) -> np.ndarray:
    """``t' = t - min(t)``: the first event at time 0.

    Args:
        events: Events in any form the module docstring lists.
    """
    if len(events) == 0:
        return events.copy()
    return _with(events, t=events["t"] - events["t"].min())


# --- Tonic's functional names (tonic.functional.*_numpy), for code written against them ----------


def drop_event_numpy(events: np.ndarray, drop_probability: float, rng=None) -> np.ndarray:
    """Tonic's name for :func:`drop_event`; ``rng`` (int seed, Generator or None) replaces its global state.

    Args:
        events: Events in any form the module docstring lists.
        drop_probability: Fraction of the events to drop, in [0, 1].
        rng: Seed or generator of the draw; None draws fresh entropy.
    """
    return drop_event(events, drop_probability, make_generator(rng))


def refractory_period_numpy(events: np.ndarray, refractory_period: float) -> np.ndarray:
    """Tonic's name for :func:`refractory_period`.

    Args:
        events: Events in any form the module docstring lists.
        refractory_period: Events that follow the previous one at the same pixel by this many
            microseconds or less are dropped.
    """
    return _refractory(events, refractory_period)


def uniform_noise_numpy(events: np.ndarray, sensor_size, n: int, rng=None) -> np.ndarray:
    """Tonic's name for :func:`uniform_noise`; ``rng`` (int seed, Generator or None) replaces its global state.

    Args:
        events: Events in any form the module docstring lists.
        sensor_size: ``(width, height, polarities)`` of the sensor.
        n: Number of noise events.
        rng: Seed or generator of the draw; None draws fresh entropy.
    """
    return uniform_noise(events, sensor_size, n, make_generator(rng))
