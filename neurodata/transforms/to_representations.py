"""Tonic's representation transforms (ToFrame, ToImage, ToVoxelGrid, time surfaces, Bina-Rep):
frozen dataclasses that configure the functions of :mod:`neurodata.representations`."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .. import representations as rep
from .transforms import Size


class _Representation:
    """Representation transforms describe themselves for :func:`representation_key`.

    ``execution`` names the fields that say how the result is computed, not what it is (a thread
    count): the spec, and so the key of a precomputed representation, leaves them out.
    """

    kind = ""
    execution: tuple[str, ...] = ()

    def spec(self) -> dict:
        """``{"type": ..., parameters...}``: feed to :func:`neurodata.representations.representation_key`."""
        fields = asdict(self).items()
        return {"type": self.kind, **{k: v for k, v in fields if v is not None and k not in self.execution}}

    def options(self) -> dict:
        """The fields other than ``sensor_size``, as keywords of the representation function."""
        return {k: v for k, v in asdict(self).items() if k != "sensor_size"}


@dataclass(frozen=True)
class ToFrame(_Representation):
    """Frames ``[T, P, H, W]`` (int32) by exactly one of ``time_window``, ``event_count``,
    ``n_time_bins``, ``n_event_bins`` (Tonic), ``frames_number`` + ``split_by`` (SpikingJelly) or
    ``duration``. See :func:`neurodata.representations.to_frame` for the binning rules.

    Attributes:
        sensor_size: ``(width, height, polarities)``; None infers it from each sample's events.
        time_window: Frames of this many microseconds.
        event_count: Frames of this many events.
        n_time_bins: This many frames of equal duration.
        n_event_bins: This many frames of equal event counts.
        overlap: Microseconds (``time_window``), events (``event_count``) or a fraction of a bin.
        include_incomplete: Keep a trailing frame that ``time_window``/``event_count`` does not fill.
        start_time: Start of the span to slice in microseconds; None: the first event's time.
        end_time: End of the span in microseconds; None: the last event's time.
        frames_number: This many frames, split by ``split_by`` (SpikingJelly).
        split_by: ``'number'`` or ``'time'``.
        duration: Frames of this many microseconds, the last one kept even if incomplete.
        dtype: The frames' numpy dtype name.
        threads: Threads counting runs of frames side by side (the frames are the same for any
            number); None: :func:`~neurodata.representations.to_frame`'s default. Not part of the spec.
    """

    sensor_size: Size | None
    time_window: float | None = None
    event_count: int | None = None
    n_time_bins: int | None = None
    n_event_bins: int | None = None
    overlap: float = 0
    include_incomplete: bool = False
    start_time: float | None = None
    end_time: float | None = None
    frames_number: int | None = None
    split_by: str | None = None
    duration: float | None = None
    dtype: str = "int32"
    threads: int | None = None
    kind = "frame"
    execution = ("threads",)

    def __call__(self, events):
        return rep.to_frame(events, self.sensor_size, **self.options())


@dataclass(frozen=True)
class ToSparseTensor(_Representation):
    """The frames of :class:`ToFrame` as a coalesced torch sparse COO tensor ``[T, P, H, W]``.

    Its fields (sensor_size, time_window, event_count, n_time_bins, n_event_bins, overlap,
    include_incomplete) mean what :class:`ToFrame`'s of the same names do.
    """

    sensor_size: Size | None
    time_window: float | None = None
    event_count: int | None = None
    n_time_bins: int | None = None
    n_event_bins: int | None = None
    overlap: float = 0
    include_incomplete: bool = False
    kind = "sparse_frame"

    def __call__(self, events):
        return rep.to_sparse_frame(events, self.sensor_size, **self.options())


@dataclass(frozen=True)
class ToImage(_Representation):
    """All events counted into one ``[P, H, W]`` int32 image.

    Attributes:
        sensor_size: ``(width, height, polarities)`` of the sensor.
    """

    sensor_size: Size
    kind = "image"

    def __call__(self, events):
        return rep.to_image(events, self.sensor_size)


@dataclass(frozen=True)
class ToVoxelGrid(_Representation):
    """Voxel grid ``[n_time_bins, 1, H, W]`` (float32), bilinear in time, signed polarity.

    Attributes:
        sensor_size: ``(width, height, polarities)`` of the sensor.
        n_time_bins: Time bins per grid.
    """

    sensor_size: Size
    n_time_bins: int
    kind = "voxel_grid"

    def __call__(self, events):
        return rep.to_voxel_grid(events, self.sensor_size, self.n_time_bins)


@dataclass(frozen=True)
class ToTimesurface(_Representation):
    """Global time surfaces every ``dt`` us ``[T, P, H, W]`` (float32), decay time constant ``tau``.

    Attributes:
        sensor_size: ``(width, height, polarities)`` of the sensor.
        dt: Window length in microseconds.
        tau: Decay time constant in microseconds.
        decay: ``'exp'`` or ``'lin'``.
        include_incomplete: Keep a trailing window that ``dt`` does not fill.
    """

    sensor_size: Size
    dt: float
    tau: float
    decay: str = "exp"
    include_incomplete: bool = False
    kind = "time_surface"

    def __call__(self, events):
        return rep.to_time_surface(
            events, self.sensor_size, self.dt, self.tau, self.decay, self.include_incomplete
        )


@dataclass(frozen=True)
class ToAveragedTimesurface(_Representation):
    """HATS histograms ``[n_cells, P, surface_size, surface_size]`` (float32).

    Attributes:
        sensor_size: ``(width, height, polarities)`` of the sensor.
        surface_size: Side of each histogram, odd, at most ``cell_size``.
        cell_size: Side of the square cells in pixels.
        time_window: How far back in microseconds earlier events count.
        tau: Decay time constant in microseconds.
        decay: ``'exp'`` or ``'lin'``.
    """

    sensor_size: Size
    surface_size: int = 5
    cell_size: int = 10
    time_window: float = 1e3
    tau: float = 100
    decay: str = "exp"
    kind = "averaged_time_surface"

    def __call__(self, events):
        return rep.to_averaged_time_surface(
            events,
            self.sensor_size,
            self.cell_size,
            self.surface_size,
            self.time_window,
            self.tau,
            self.decay,
        )


@dataclass(frozen=True)
class ToBinaRep:
    """Frames ``[n_frames * n_bits, P, H, W]`` (e.g. from ``ToFrame(n_time_bins=n_frames * n_bits)``)
    -> Bina-Rep frames ``[n_frames, P, H, W]`` (float32); see :func:`neurodata.representations.to_bina_rep`."""

    n_frames: int = 1
    n_bits: int = 8

    def __call__(self, frames):
        return rep.to_bina_rep(frames, self.n_frames, self.n_bits)
