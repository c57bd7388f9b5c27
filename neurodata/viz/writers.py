"""Pictures to files (PNG, GIF, MP4) or to a window: the thin layer over Pillow, PyAV and matplotlib.

Each writer takes ``[H, W, 3]`` uint8 pictures from :mod:`.render` and only encodes them; files appear
atomically (:func:`neurodata.localfs.atomic_output`), so a failed or interrupted write leaves nothing.
Pillow comes with matplotlib (the ``plot`` extra), PyAV with the ``video`` extra; a missing one is a
:class:`~neurodata.errors.NeurodataError` saying what to install.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NeurodataError
from ..localfs import atomic_output

PLOT_EXTRA = "needs matplotlib: pip install 'neurodata[plot]' (or pip install matplotlib)"
VIDEO_EXTRA = "writing MP4 needs PyAV: pip install 'neurodata[video]' (or pip install av)"
SUFFIXES = (".png", ".gif", ".mp4")


def pillow() -> Any:
    """The ``PIL.Image`` module, or a NeurodataError naming the ``plot`` extra."""
    try:
        from PIL import Image
    except ImportError:
        raise NeurodataError(f"writing PNG and GIF {PLOT_EXTRA}") from None
    return Image


def pyplot() -> Any:
    """``matplotlib.pyplot``, or a NeurodataError naming the ``plot`` extra."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise NeurodataError(f"drawing {PLOT_EXTRA}") from None
    return plt


def has_display() -> bool:
    """Whether a window can open: always on macOS and Windows, elsewhere when ``DISPLAY`` or
    ``WAYLAND_DISPLAY`` is set."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def output_kind(path: str | os.PathLike) -> str:
    """``png``, ``gif`` or ``mp4`` from the file name; NeurodataError for anything else.

    Parameters:
        path: the output file.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise NeurodataError(
            f"{path}: --out must end in {', '.join(SUFFIXES)} (got {suffix or 'no suffix'!r})"
        )
    return suffix[1:]


def write_png(path: str | os.PathLike, picture: np.ndarray) -> None:
    """One ``[H, W, 3]`` uint8 picture to a PNG file, pixel for pixel.

    Parameters:
        path: the PNG file.
        picture: the picture.
    """
    image = pillow().fromarray(np.ascontiguousarray(picture), mode="RGB")
    with atomic_output(path, durable=False) as fileobj:
        image.save(fileobj, format="PNG")


GIF_LONGEST_MS = 655_350  # a GIF frame's delay: 16 bits of 10 ms steps


def write_gif(path: str | os.PathLike, pictures: Iterable[np.ndarray], period_ms: float) -> None:
    """Pictures to a looping GIF, ``period_ms`` each (GIF counts in 10 ms steps; Pillow merges
    consecutive identical pictures into one of their summed duration).

    Parameters:
        path: the GIF file.
        pictures: ``[H, W, 3]`` uint8 pictures in order (at least one).
        period_ms: display time of each picture.
    """
    if period_ms > GIF_LONGEST_MS:
        raise NeurodataError(
            f"{path}: a GIF shows a picture for at most {GIF_LONGEST_MS / 1000:g} s, not {period_ms / 1000:g} s "
            "(raise --speed)"
        )
    image = pillow()
    frames = iter(pictures)
    first = next(frames, None)
    if first is None:
        raise NeurodataError(f"{path}: nothing to write (no pictures)")
    rest = (image.fromarray(np.ascontiguousarray(p), mode="RGB") for p in frames)
    with atomic_output(path, durable=False) as fileobj:
        try:
            image.fromarray(np.ascontiguousarray(first), mode="RGB").save(
                fileobj,
                format="GIF",
                save_all=True,
                append_images=rest,
                duration=max(10, round(period_ms)),
                loop=0,
            )
        except OverflowError:  # Pillow's sum of a run of identical pictures passed the 16 bits
            raise NeurodataError(
                f"{path}: identical pictures in a row last more than {GIF_LONGEST_MS / 1000:g} s, "
                "the longest a GIF picture shows (raise --speed)"
            ) from None


def write_mp4(path: str | os.PathLike, pictures: Iterable[np.ndarray], period_ms: float) -> int:
    """Pictures to an H.264 MP4 (MPEG-4 part 2 where this PyAV lacks libx264) at ``1000 / period_ms``
    frames per second; odd sizes are padded with black on the right and bottom (yuv420p needs even
    ones). Returns the number of frames written.

    Parameters:
        path: the MP4 file.
        pictures: ``[H, W, 3]`` uint8 pictures in order.
        period_ms: display time of each picture.
    """
    try:
        import av
    except ImportError:
        raise NeurodataError(VIDEO_EXTRA) from None
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    rate = (Fraction(1000) / Fraction(period_ms)).limit_denominator(1001)
    if rate == 0:  # PyAV would play it at its default 24 frames per second
        raise NeurodataError(
            f"{path}: an MP4 frame lasts at most 1001 s here, not {period_ms / 1000:g} s (raise --speed)"
        )
    count = 0
    with atomic_output(path, durable=False) as fileobj, av.open(fileobj, mode="w", format="mp4") as container:
        stream = None
        for picture in pictures:
            if stream is None:
                height, width = (
                    picture.shape[0] + picture.shape[0] % 2,
                    picture.shape[1] + picture.shape[1] % 2,
                )
                stream = container.add_stream(codec, rate=rate)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            padded = np.zeros((height, width, 3), np.uint8)
            padded[: picture.shape[0], : picture.shape[1]] = picture
            container.mux(stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")))
            count += 1
        if stream is None:
            raise NeurodataError(f"{path}: nothing to write (no pictures)")
        container.mux(stream.encode())
    return count


def show(pictures: Sequence[np.ndarray], period_ms: float, title: str) -> None:
    """Play the pictures in a matplotlib window (looping) until it is closed.

    Parameters:
        pictures: ``[H, W, 3]`` uint8 pictures.
        period_ms: display time of each picture.
        title: the window's title line.
    """
    plt = pyplot()
    from matplotlib.animation import FuncAnimation

    fig, ax = plt.subplots()
    image = ax.imshow(pictures[0], interpolation="nearest")  # origin "upper": row 0 (y = 0) on top
    ax.set(title=title, xlabel="x", ylabel="y")

    def update(k: int) -> tuple:
        image.set_data(pictures[k])
        return (image,)

    animation = FuncAnimation(fig, update, frames=len(pictures), interval=period_ms, blit=True)  # noqa: F841
    plt.show()
