"""Event frames ``[T, P, H, W]``, a single count image ``[P, H, W]`` and sparse COO frames."""

from __future__ import annotations

import numpy as np

from . import kernels
from ._checks import prepare_events
from ._layout import lacks_y
from .slicing import Slices, slice_events

DEFAULT_DTYPE = np.int32
# frames with more cells than this (4 MiB of int32) use the bucketed kernel; smaller ones (VGA:
# 640x480x2) stay in the last-level cache, where the plain scatter is faster
CACHE_CELLS = 1 << 20
BUCKET_SHIFT = 17  # 2**17 cells = 512 KiB buckets, a core's L2 share


def accumulate(events: np.ndarray, slices: Slices, merge: bool, frames: np.ndarray, limit: int) -> bool:
    """Count each slice's events into ``frames`` (in their dtype) with the kernel suited to the frame
    size; False when a cell would pass ``limit`` (then the frames are partly counted). Cells are
    checked only when a slice holds more than ``limit`` events.

    Args:
        events: Records of :data:`~neurodata.events.EVENT_DTYPE`, time-sorted, inside the frames.
        slices: ``(starts, ends)`` event index ranges, one per frame.
        merge: Count every polarity into channel 0 (frames with one polarity channel).
        frames: ``[T, P, H, W]`` zeros to count into (updated).
        limit: The largest count a cell may hold.
    """
    checked = bool(np.any(slices[1] - slices[0] > limit))
    if frames[0].size > CACHE_CELLS:
        return kernels.accumulate_frames_bucketed(
            events, slices[0], slices[1], merge, frames, limit, checked, BUCKET_SHIFT
        )
    return kernels.accumulate_frames(events, slices[0], slices[1], merge, frames, limit, checked)


def count_frames(events: np.ndarray, slices: Slices, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Frames of ``shape`` counting each slice's events, accumulated straight in ``dtype``.

    An integer ``dtype`` too narrow for a count raises ValueError rather than wrap; a float
    ``dtype`` is counted in directly when it holds the longest slice's count exactly, else the
    counts are taken in int64 and converted (other dtypes, e.g. bool, likewise).

    Args:
        events: Records of :data:`~neurodata.events.EVENT_DTYPE`, time-sorted, inside the frames.
        slices: ``(starts, ends)`` event index ranges, one per frame.
        shape: ``(T, P, H, W)`` with ``T`` the number of slices (``P = 1`` merges polarities).
        dtype: The frames' numpy dtype.
    """
    dtype = np.dtype(dtype)
    longest = int(np.max(slices[1] - slices[0])) if len(slices[0]) else 0
    if dtype.kind in "iu":
        limit = int(np.iinfo(dtype).max)
    elif dtype.kind == "f" and longest <= 2 ** (np.finfo(dtype).nmant + 1):
        limit = longest  # no slice holds more: never checked
    else:
        return count_frames(events, slices, shape, np.int64).astype(dtype)
    frames = np.zeros(shape, dtype=dtype)
    if len(frames) and not accumulate(events, slices, shape[1] == 1, frames, limit):
        wider = "int64" if dtype.itemsize >= 4 else "int32 or wider"
        raise ValueError(f"a frame cell counts more than {limit} events, more than dtype {dtype} holds; use {wider}")
    return frames


def to_frame(
    events: np.ndarray,
    sensor_size: tuple[int, int, int] | None,
    *,
    time_window: float | None = None,
    event_count: int | None = None,
    n_time_bins: int | None = None,
    n_event_bins: int | None = None,
    frames_number: int | None = None,
    split_by: str | None = None,
    duration: float | None = None,
    overlap: float = 0,
    include_incomplete: bool = False,
    start_time: float | None = None,
    end_time: float | None = None,
    dtype=DEFAULT_DTYPE,
) -> np.ndarray:
    """Count events per frame, polarity and pixel: ``[T, P, H, W]`` (P = 1 merges polarities).

    Exactly one slicing rule: ``time_window`` (us, ``overlap`` in us), ``event_count`` (``overlap`` in
    events), ``n_time_bins``/``n_event_bins`` (``overlap`` a fraction of a bin), ``frames_number`` with
    ``split_by='number'|'time'`` (SpikingJelly) or a fixed ``duration`` (us). Counts are int32 by
    default (an integer ``dtype`` too small for the counts raises; a float dtype converts).
    Audio events without ``y`` (``x, t, p``, sensor height 1) give ``[T, P, W]``, as in Tonic.

    Args:
        events: Time-sorted events in any form :mod:`neurodata.transforms` accepts.
        sensor_size: ``(width, height, polarities)``; None infers it from the events (Tonic's fallback).
        time_window: See :func:`~neurodata.representations.slicing.slice_events` for this and the
            other slicing keywords (``event_count``, ``n_time_bins``, ``n_event_bins``,
            ``frames_number``, ``split_by``, ``duration``, ``overlap``).
        include_incomplete: Keep a trailing window that ``time_window``/``event_count`` does not fill.
        start_time: Start of the span to slice in microseconds; None: the first event's time.
        end_time: End of the span in microseconds (closed); None: the last event's time.
        dtype: The frames' numpy dtype.
    """
    audio = lacks_y(events)
    events, (width, height, n_pol) = prepare_events(events, sensor_size)
    if audio and height != 1:
        raise ValueError(f"events without a y field need a sensor height of 1; sensor_size is {sensor_size}")
    slices = slice_events(
        events["t"],
        time_window=time_window,
        event_count=event_count,
        n_time_bins=n_time_bins,
        n_event_bins=n_event_bins,
        frames_number=frames_number,
        split_by=split_by,
        duration=duration,
        overlap=overlap,
        include_incomplete=include_incomplete,
        start_time=start_time,
        end_time=end_time,
    )
    frames = count_frames(events, slices, (len(slices[0]), n_pol, height, width), dtype)
    return frames[:, :, 0] if audio else frames


def to_image(events: np.ndarray, sensor_size: tuple[int, int, int] | None, dtype=DEFAULT_DTYPE) -> np.ndarray:
    """All events counted into one ``[P, H, W]`` image (Tonic's ToImage, without its int16 wrap).

    Args:
        events: Events in any form :mod:`neurodata.transforms` accepts.
        sensor_size: ``(width, height, polarities)``; None infers it from the events.
        dtype: The image's numpy dtype.
    """
    return to_frame(events, sensor_size, n_event_bins=1, dtype=dtype)[0]


def to_sparse_frame(events: np.ndarray, sensor_size: tuple[int, int, int] | None, **slicing):
    """The frames of :func:`to_frame` as a coalesced ``torch.sparse_coo_tensor`` ``[T, P, H, W]``.

    Built from event indices directly, so a long 1280x720 recording never needs its dense frames.
    ``slicing`` takes the same keywords as :func:`to_frame` (``dtype`` sets the values' torch dtype).

    Args:
        events: Time-sorted events in any form :mod:`neurodata.transforms` accepts.
        sensor_size: ``(width, height, polarities)``; None infers it from the events.
    """
    import torch

    values_dtype = slicing.pop("dtype", torch.int32)
    events, (width, height, n_pol) = prepare_events(events, sensor_size)
    starts, ends = slice_events(events["t"], **slicing)
    lengths = ends - starts
    frame = np.repeat(np.arange(len(starts), dtype=np.int64), lengths)
    offsets = np.cumsum(lengths) - lengths
    index = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(offsets - starts, lengths)
    channel = np.zeros(len(index), dtype=np.int64) if n_pol == 1 else events["p"][index].astype(np.int64)
    coords = np.stack(
        [frame, channel, events["y"][index].astype(np.int64), events["x"][index].astype(np.int64)]
    )
    values = torch.ones(len(index), dtype=values_dtype)
    size = (len(starts), n_pol, height, width)
    tensor = torch.sparse_coo_tensor(
        torch.from_numpy(coords), values, size, check_invariants=False
    )  # coords checked
    return tensor.coalesce()
