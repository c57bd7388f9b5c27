"""Event frames ``[T, P, H, W]``, a single count image ``[P, H, W]`` and sparse COO frames."""

from __future__ import annotations

import numpy as np

from . import kernels
from ._checks import prepare_events, records_and_geometry
from ._layout import lacks_y
from ._memory import zeros
from ._parallel import FrameRun, count_runs, frame_runs, frame_threads
from .slicing import Slices, slice_events

DEFAULT_DTYPE = np.int32
# Frames larger than this use the bucketed kernel. Below it (1280x720 in int32 is 7 MiB) the plain
# scatter is faster in spite of its cache misses: the bucketed kernel's three passes over the events
# cost more than the misses they save (docs/sections/representations.md#performance).
CACHE_BYTES = 8 << 20
BUCKET_SHIFT = 17  # 2**17 cells = 512 KiB buckets of int32, a core's L2 share
# Frames larger than this have the plain kernels prefetch each event's cell PREFETCH_AHEAD events
# early; smaller ones stay in a core's cache, where the prefetch is only extra work.
PREFETCH_BYTES = 1 << 20
PREFETCH_AHEAD = 128


def accumulate(
    events: np.ndarray, slices: Slices, merge: bool, frames: np.ndarray, limit: int, threads: int | None = None
) -> bool:
    """Count each slice's events into ``frames`` (in their dtype) with the kernel suited to the frame
    size; False when a cell would pass ``limit`` (then the frames are partly counted). Cells are
    checked only when a slice holds more than ``limit`` events.

    Args:
        events: Records of :data:`~neurodata.events.EVENT_DTYPE`, time-sorted, inside the frames.
        slices: ``(starts, ends)`` event index ranges, one per frame.
        merge: Count every polarity into channel 0 (frames with one polarity channel).
        frames: ``[T, P, H, W]`` zeros to count into (updated).
        limit: The largest count a cell may hold.
        threads: Threads counting runs of frames side by side (see :func:`to_frame`).
    """
    checked = _needs_check(slices, limit)
    starts, ends = slices
    bucketed = frames[0].nbytes > CACHE_BYTES
    ahead = _ahead(frames)

    def count(run: FrameRun) -> bool:
        part = slice(run.first, run.stop)
        if bucketed:
            return kernels.accumulate_frames_bucketed(
                events, starts[part], ends[part], merge, frames[part], limit, checked, BUCKET_SHIFT
            )
        return kernels.accumulate_frames(
            events, starts[part], ends[part], merge, frames[part], limit, checked, ahead
        )

    return all(count_runs(count, _runs(slices, threads, frames.nbytes), frames))


def _ahead(frames: np.ndarray) -> int:
    return PREFETCH_AHEAD if frames[0].nbytes > PREFETCH_BYTES else 0


def _runs(slices: Slices, threads: int | None, nbytes: int) -> list[FrameRun]:
    lengths = slices[1] - slices[0]
    return frame_runs(lengths, frame_threads(threads, int(lengths.sum()), len(lengths), nbytes))


def _needs_check(slices: Slices, limit: int) -> bool:
    return bool(np.any(slices[1] - slices[0] > limit))


def _count_limit(slices: Slices, dtype: np.dtype) -> int | None:
    """The largest count ``dtype`` holds exactly, or None when counting must go through int64: an
    integer dtype's maximum; for a float dtype, the longest slice when the dtype holds it exactly."""
    longest = int(np.max(slices[1] - slices[0])) if len(slices[0]) else 0
    if dtype.kind in "iu":
        return int(np.iinfo(dtype).max)
    if dtype.kind == "f" and longest <= 2 ** (np.finfo(dtype).nmant + 1):
        return longest  # no slice holds more: never checked
    return None


def count_frames(
    events: np.ndarray, slices: Slices, shape: tuple[int, ...], dtype, threads: int | None = None
) -> np.ndarray:
    """Frames of ``shape`` counting each slice's events, accumulated straight in ``dtype``.

    An integer ``dtype`` too narrow for a count raises ValueError rather than wrap; a float
    ``dtype`` is counted in directly when it holds the longest slice's count exactly, else the
    counts are taken in int64 and converted (other dtypes, e.g. bool, likewise).

    Args:
        events: Records of :data:`~neurodata.events.EVENT_DTYPE`, time-sorted, inside the frames.
        slices: ``(starts, ends)`` event index ranges, one per frame.
        shape: ``(T, P, H, W)`` with ``T`` the number of slices (``P = 1`` merges polarities).
        dtype: The frames' numpy dtype.
        threads: Threads counting runs of frames side by side (see :func:`to_frame`).
    """
    dtype = np.dtype(dtype)
    limit = _count_limit(slices, dtype)
    if limit is None:
        return count_frames(events, slices, shape, np.int64, threads).astype(dtype)
    frames = zeros(shape, dtype, "frames")
    if len(frames) and not accumulate(events, slices, shape[1] == 1, frames, limit, threads):
        wider = "int64" if dtype.itemsize >= 4 else "int32 or wider"
        raise ValueError(f"a frame cell counts more than {limit} events, more than dtype {dtype} holds; use {wider}")
    return frames


def count_unchecked_frames(
    records: np.ndarray, geometry: tuple[int, int, int], slicing: dict, dtype, threads: int | None = None
) -> np.ndarray | None:
    """:func:`to_frame` in one pass over events not yet checked against the sensor or for time order.

    Slices the times as they are, then counts with a kernel that checks each event as it goes
    (the separate check of :func:`prepare_events` is a second pass over the whole array). Returns
    None, to take the checked path instead, wherever the answer could differ from it: when an event
    fails a check (the checked path names it or sorts), when slicing the unsorted times fails, when
    a cell reaches the dtype's limit, and for frames big enough for the bucketed kernel.

    Args:
        records: The events as records of :data:`~neurodata.events.EVENT_DTYPE`, not yet checked.
        geometry: ``(width, height, polarities)`` of the frames.
        slicing: :func:`to_frame`'s slicing keywords, as given.
        dtype: The frames' numpy dtype.
        threads: Threads counting runs of frames side by side (see :func:`to_frame`).
    """
    dtype = np.dtype(dtype)
    width, height, n_pol = geometry
    if not len(records) or n_pol * height * width * dtype.itemsize > CACHE_BYTES:
        return None
    try:
        slices = slice_events(records["t"], **slicing)
    except (TypeError, ValueError):
        return None  # a rule the sorted times may pass (e.g. the last time before the first)
    limit = _count_limit(slices, dtype)
    if limit is None or not len(slices[0]):
        return None
    starts, ends = slices
    frames = zeros((len(starts), n_pol, height, width), dtype, "frames")
    checked = _needs_check(slices, limit)
    ahead = _ahead(frames)

    def count(run: FrameRun) -> int:
        part = slice(run.first, run.stop)
        return kernels.accumulate_frames_validating(
            records, starts[part], ends[part], n_pol == 1, frames[part], limit, checked,
            *run.checked_events(ends, len(records)), ahead,
        )

    statuses = count_runs(count, _runs(slices, threads, frames.nbytes), frames)
    return frames if all(status == -1 for status in statuses) else None


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
    threads: int | None = None,
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
        threads: Threads that count runs of consecutive frames side by side (the counts are the
            same for any number). None: the cores this process may use, but 1 in a worker process
            (a torch DataLoader's, a process pool's) and on inputs too small to share.
    """
    slicing = {
        "time_window": time_window,
        "event_count": event_count,
        "n_time_bins": n_time_bins,
        "n_event_bins": n_event_bins,
        "frames_number": frames_number,
        "split_by": split_by,
        "duration": duration,
        "overlap": overlap,
        "include_incomplete": include_incomplete,
        "start_time": start_time,
        "end_time": end_time,
    }
    audio = lacks_y(events)
    if not audio:
        frames = count_unchecked_frames(*records_and_geometry(events, sensor_size), slicing, dtype, threads)
        if frames is not None:
            return frames
    events, (width, height, n_pol) = prepare_events(events, sensor_size)
    if audio and height != 1:
        raise ValueError(f"events without a y field need a sensor height of 1; sensor_size is {sensor_size}")
    slices = slice_events(events["t"], **slicing)
    frames = count_frames(events, slices, (len(slices[0]), n_pol, height, width), dtype, threads)
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
