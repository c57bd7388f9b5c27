"""Video files, image folders and ``.npy`` frame stacks in, DVS events out: ``neurodata simulate``.

Frames are decoded with PyAV (FFmpeg's decoders: any container and codec FFmpeg reads, and still
images for a folder of frames) and converted to luma ``[H, W]`` floats in ``[0, 1]``. Each frame's
time is its presentation timestamp (``pts * time_base``, exact for variable frame rates), or
``i / fps`` when ``fps`` is given or the source has no timestamps (``.npy``, image folders). The
frames then stream through :class:`~neurodata.sim.dvs.DvsPixelArray` and the events stream into
:func:`neurodata.open_writer`, so a long video never sits in memory and the output file appears
only when complete.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import NeurodataError
from ..events import RecordingInfo
from ..writer import open_writer
from .dvs import DvsParams, DvsPixelArray

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")


@dataclass(frozen=True)
class SimulationSummary:
    """What :func:`simulate_video` read and wrote.

    Attributes:
        source: The input video, image folder or ``.npy`` stack.
        output: The event file written.
        frames: Frames read.
        width: Frame width in pixels.
        height: Frame height in pixels.
        duration_us: Time from the first to the last frame in microseconds.
        events: Events written.
        on_events: How many of them are ON events.
    """

    source: str
    output: str
    frames: int
    width: int
    height: int
    duration_us: int
    events: int
    on_events: int


def _pyav():
    try:
        import av
    except ImportError as err:
        raise NeurodataError(
            "reading video needs PyAV: pip install 'neurodata[video]' (or: pip install av)"
        ) from err
    return av


def _as_gray(frame: np.ndarray, source: str) -> np.ndarray:
    """An ``[H, W]`` or ``[H, W, 3|4]`` array of any numeric dtype -> luma floats (integers scaled to [0, 1])."""
    frame = np.asarray(frame)
    scale = np.iinfo(frame.dtype).max if np.issubdtype(frame.dtype, np.integer) else 1.0
    if frame.ndim == 3 and frame.shape[2] in (3, 4):
        frame = frame[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma
    elif frame.ndim != 2:
        raise NeurodataError(f"{source}: frames must be [H, W] or [H, W, 3], got shape {frame.shape}")
    return np.asarray(frame, np.float64) / scale


@contextlib.contextmanager
def _naming_frame(source, index: int) -> Iterator[None]:
    """The sensor's refusal of a frame (shape, intensities, time) as one line naming the source and frame."""
    try:
        yield
    except ValueError as err:
        raise NeurodataError(f"{source}: frame {index}: {err}") from None


def _decoded_frames(path: str, size: tuple[int, int] | None) -> Iterator[tuple[np.ndarray, Fraction | None]]:
    """Luma frames of a video or image file with their presentation times in seconds (None if unknown)."""
    av = _pyav()
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as err:
        raise NeurodataError(f"{path}: not a readable video or image ({err})") from err
    with container:
        if not container.streams.video:
            raise NeurodataError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        try:
            for frame in container.decode(stream):
                if size is not None:
                    frame = frame.reformat(width=size[0], height=size[1])
                seconds = None if frame.pts is None else frame.pts * stream.time_base
                yield frame.to_ndarray(format="gray").astype(np.float64) / 255.0, seconds
        except av.error.FFmpegError as err:
            raise NeurodataError(f"{path}: video decoding failed ({err})") from err


def _resized(frame: np.ndarray, size: tuple[int, int] | None, source: str) -> np.ndarray:
    """Block-average ``frame`` down to ``size`` = (width, height) when the factors are integers."""
    if size is None or (frame.shape[1], frame.shape[0]) == size:
        return frame
    fy, fx = frame.shape[0] / size[1], frame.shape[1] / size[0]
    if fy != int(fy) or fx != int(fx) or fy < 1 or fx < 1:
        raise NeurodataError(
            f"{source}: --size {size[0]}x{size[1]} must divide the {frame.shape[1]}x{frame.shape[0]} "
            "frames by whole factors for arrays (videos are resampled by FFmpeg)"
        )
    fy, fx = int(fy), int(fx)
    return frame.reshape(size[1], fy, size[0], fx).mean(axis=(1, 3))


def read_frames(
    source: str | os.PathLike, fps: float | None = None, size: tuple[int, int] | None = None
) -> Iterator[tuple[np.ndarray, int]]:
    """Luma frames ``[H, W]`` in ``[0, 1]`` with their times in microseconds, from a video file,
    a folder of images (sorted by name) or an ``.npy`` stack ``[N, H, W(, 3)]``.

    ``fps`` sets frame ``i``'s time to ``i / fps`` (required for ``.npy`` and image folders, which
    carry no timestamps); without it a video's own presentation times are used. ``size`` =
    (width, height) resamples (FFmpeg's scaler for decoded images, block averaging for arrays).

    Args:
        source: Path of the video file, image folder or ``.npy`` stack.
        fps: Frames per second, or None to use the video's timestamps.
        size: Output ``(width, height)`` in pixels, or None to keep the input's.

    Raises:
        NeurodataError: ``source`` is missing or unreadable, has a bad shape, or has no timestamps and no ``fps``.
    """
    source = os.fspath(source)
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise NeurodataError(f"fps must be a finite number > 0, got {fps}")
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise NeurodataError(f"{source}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        frames = ((list(_decoded_frames(str(f), size))[0][0], None) for f in files)
    elif path.suffix.lower() == ".npy":
        try:
            stack = np.load(source, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise NeurodataError(f"{source}: not a readable .npy array ({err})") from err
        if stack.ndim not in (3, 4):
            raise NeurodataError(
                f"{source}: expected frames [N, H, W] or [N, H, W, 3], got shape {stack.shape}"
            )
        frames = ((_resized(_as_gray(f, source), size, source), None) for f in stack)
    elif not path.exists():
        raise NeurodataError(f"{source}: no such file or folder")
    else:
        frames = _decoded_frames(source, size)
    for index, (frame, seconds) in enumerate(frames):
        if fps is not None:
            seconds = Fraction(index) / Fraction(fps)
        elif seconds is None:
            raise NeurodataError(f"{source}: frames without timestamps need --fps (frame {index})")
        yield frame, round(seconds * 1_000_000)


def simulate_video(
    source: str | os.PathLike,
    output: str | os.PathLike,
    params: DvsParams | None = None,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
    format: str | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> SimulationSummary:
    """Simulate a DVS watching ``source`` (see :func:`read_frames`) and write its events to ``output``.

    The output format follows the extension (``.npz``, ``.h5``, ``.raw``/``.dat``, ``.aedat4`` ...)
    or ``format``; it is written atomically. ``on_frame(i)`` is called after each frame (progress).

    Args:
        source: Video file, image folder or ``.npy`` stack (see :func:`read_frames`).
        output: The event file to write.
        params: The simulated sensor; None uses :class:`DvsParams` defaults.
        fps: Frames per second for sources without timestamps (see :func:`read_frames`).
        size: Resample frames to ``(width, height)`` pixels.
        format: Output format name, or None to follow ``output``'s extension.
        on_frame: Called after each frame with the number of frames read so far.
    """
    sensor: DvsPixelArray | None = None
    frames = events = on = t_first = t_last = 0
    with contextlib.ExitStack() as stack:  # the writer opens at the first frame, when the size is known
        for frame, t in read_frames(source, fps, size):
            if sensor is None:
                with _naming_frame(source, frames):
                    sensor, t_first = DvsPixelArray(frame, t, params or DvsParams()), t
                info = RecordingInfo(
                    format=format or Path(output).suffix.lstrip("."),
                    width=frame.shape[1],
                    height=frame.shape[0],
                    source=os.fspath(source),
                )
                writer = stack.enter_context(open_writer(output, info, format))
            else:
                with _naming_frame(source, frames):
                    chunk = sensor.step(frame, t)
                writer.write(chunk)
                events += len(chunk)
                on += int(np.count_nonzero(chunk["p"]))
            frames, t_last = frames + 1, t
            if on_frame is not None:
                on_frame(frames)
        if sensor is None:
            raise NeurodataError(f"{source}: no frames")
    height, width = sensor.log.shape
    return SimulationSummary(
        os.fspath(source), os.fspath(output), frames, width, height, t_last - t_first, events, on
    )
