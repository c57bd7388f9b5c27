"""Pictures of events, frames and voxel grids as RGB ``uint8`` arrays: pure numpy, no drawing library.

Every function here returns ``[N, H, W, 3]`` (or ``[H, W, 3]``) ``uint8`` images and nothing else, so
that tests check pixel statistics against the events and the writers (:mod:`.writers`) only encode.

Conventions, stated once:

* Row ``r`` of an image is sensor ``y = r`` and column ``c`` is ``x = c``: ``y = 0`` is the **top** row,
  as in the ``[T, P, H, W]`` frames of :mod:`neurodata.representations` and in ``imshow``'s default
  ``origin="upper"``. No flip is applied anywhere.
* Events: a pixel is coloured when it fired at least once in the window, however often: ``palette.on``
  when only ON events (``p > 0``) fell on it, ``palette.off`` when only OFF ones did, ``palette.both``
  when both did, else ``palette.background``. With the default palette ON is cyan ``(0, 255, 255)``,
  OFF red ``(255, 0, 0)`` and both white, so the red channel counts OFF pixels and the green channel
  ON pixels (``channel sum / 255``).
* Windows: events ``t`` fall in window ``(t - t_first) // window_us``; a clip of duration
  ``t_last - t_first`` has ``max(1, ceil(duration / window_us))`` windows, and the event at ``t_last``
  belongs to the last one (as the representations close their last bin).
* Frames ``[T, P, H, W]``: one picture per time bin, by the same rule (channel 1 is ON, channel 0 OFF;
  a merged ``P = 1`` frame shows its active pixels in ``palette.both``).
* Voxel grids ``[B, H, W]`` (or ``[B, 1, H, W]``): positive cells in ``palette.on``, negative in
  ``palette.off``, scaled by ``|v| / max |v|`` over the whole grid (so bins compare) and rounded up,
  so every non-zero cell is visible and zero cells stay background.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..events import as_events

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class Palette:
    """The colours of event pictures (RGB, 0-255).

    Parameters:
        on: pixels with ON events only.
        off: pixels with OFF events only.
        both: pixels with ON and OFF events in the same window (and active pixels of merged frames).
        background: pixels without events.
    """

    on: Colour = (0, 255, 255)
    off: Colour = (255, 0, 0)
    both: Colour = (255, 255, 255)
    background: Colour = (0, 0, 0)

    def lookup(self) -> np.ndarray:
        """``[4, 3]`` uint8 indexed by ``2 * has_on + has_off``."""
        return np.array([self.background, self.off, self.on, self.both], dtype=np.uint8)


DEFAULT_PALETTE = Palette()


@dataclass(frozen=True)
class Geometry:
    """The picture size: ``width`` columns (x) by ``height`` rows (y).

    Parameters:
        width: sensor width in pixels.
        height: sensor height in pixels.
    """

    width: int
    height: int


def geometry_of(events: np.ndarray, width: int | None = None, height: int | None = None) -> Geometry:
    """The sensor size when known, else the events' bounding box (``max + 1``); ValueError when an
    event lies outside a given size, naming the event.

    Parameters:
        events: structured events with fields ``x`` and ``y``.
        width, height: the sensor size, or None to take it from the events.
    """
    sizes = {}
    for name, given in (("x", width), ("y", height)):
        top = int(events[name].max()) + 1 if len(events) else 1
        if given is not None and top > given:
            index = int(np.argmax(events[name]))
            raise ValueError(
                f"event {index} has {name}={top - 1}, outside the sensor ({name} must be < {given})"
            )
        sizes[name] = int(given) if given is not None else top
    return Geometry(sizes["x"], sizes["y"])


def window_count(duration_us: int, window_us: int) -> int:
    """``max(1, ceil(duration_us / window_us))``: the pictures of a clip spanning ``duration_us``.

    Parameters:
        duration_us: ``t_last - t_first`` of the events.
        window_us: the time each picture covers (positive).
    """
    if window_us <= 0:
        raise ValueError(f"window_us must be positive, got {window_us}")
    return max(1, math.ceil(duration_us / window_us))


def event_image(events: np.ndarray, geometry: Geometry, palette: Palette = DEFAULT_PALETTE) -> np.ndarray:
    """One ``[H, W, 3]`` picture of all ``events`` (see the module docstring for the colours).

    Parameters:
        events: structured events (``x, y, p``) inside ``geometry``.
        geometry: the picture size.
        palette: the colours.
    """
    events = as_events(events)
    code = np.zeros(geometry.height * geometry.width, dtype=np.uint8)
    flat = events["y"].astype(np.int64) * geometry.width + events["x"]
    on = events["p"] > 0
    code[flat[on]] |= 2
    code[flat[~on]] |= 1
    return palette.lookup()[code].reshape(geometry.height, geometry.width, 3)


def iter_event_frames(
    events: np.ndarray, geometry: Geometry, window_us: int, palette: Palette = DEFAULT_PALETTE
) -> Iterator[np.ndarray]:
    """The pictures of consecutive ``window_us`` windows, one ``[H, W, 3]`` array at a time (a long
    recording never holds all its pictures in memory).

    Parameters:
        events: structured events sorted by time.
        geometry: the picture size.
        window_us: the time each picture covers.
        palette: the colours.
    """
    events = as_events(events)
    t = events["t"]
    if len(t) and np.any(np.diff(t) < 0):
        raise ValueError("events must be sorted by time")
    t0 = int(t[0]) if len(t) else 0
    n = window_count(int(t[-1]) - t0 if len(t) else 0, window_us)
    bounds = np.searchsorted(t, t0 + window_us * np.arange(1, n, dtype=np.int64), side="left")
    edges = np.concatenate(([0], bounds, [len(t)]))
    for k in range(n):
        yield event_image(events[edges[k] : edges[k + 1]], geometry, palette)


def event_frames(
    events: np.ndarray, geometry: Geometry, window_us: int, palette: Palette = DEFAULT_PALETTE
) -> np.ndarray:
    """``[N, H, W, 3]`` uint8: :func:`iter_event_frames` stacked.

    Parameters:
        events: structured events sorted by time.
        geometry: the picture size.
        window_us: the time each picture covers.
        palette: the colours.
    """
    return np.stack(list(iter_event_frames(events, geometry, window_us, palette)))


def frame_pictures(frames: np.ndarray, palette: Palette = DEFAULT_PALETTE) -> np.ndarray:
    """``[T, P, H, W]`` frames (counts; ``P`` is 1 or 2) -> ``[T, H, W, 3]`` uint8.

    Parameters:
        frames: a frame representation, e.g. :func:`neurodata.representations.to_frame`'s output.
        palette: the colours.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[1] not in (1, 2):
        raise ValueError(f"frames must be [T, P, H, W] with P = 1 or 2, got shape {frames.shape}")
    if frames.shape[1] == 1:
        code = (frames[:, 0] != 0).astype(np.uint8) * 3
    else:
        code = (frames[:, 1] != 0).astype(np.uint8) * 2 | (frames[:, 0] != 0).astype(np.uint8)
    return palette.lookup()[code]


def voxel_pictures(grid: np.ndarray, palette: Palette = DEFAULT_PALETTE) -> np.ndarray:
    """``[B, H, W]`` or ``[B, 1, H, W]`` signed voxel grid -> ``[B, H, W, 3]`` uint8.

    Parameters:
        grid: a voxel grid, e.g. :func:`neurodata.representations.to_voxel_grid`'s output.
        palette: the colours (``on`` for positive cells, ``off`` for negative, on ``background``).
    """
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim == 4 and grid.shape[1] == 1:
        grid = grid[:, 0]
    if grid.ndim != 3:
        raise ValueError(f"a voxel grid must be [B, H, W] or [B, 1, H, W], got shape {grid.shape}")
    peak = float(np.abs(grid).max()) if grid.size else 0.0
    scale = np.ceil(np.abs(grid) * (255.0 / peak)) / 255.0 if peak > 0 else np.zeros_like(grid)
    on, off, background = (
        np.asarray(c, dtype=np.float64) for c in (palette.on, palette.off, palette.background)
    )
    colour = np.where((grid > 0)[..., None], on, off)
    pictures = background + scale[..., None] * (colour - background)
    return np.clip(np.rint(pictures), 0, 255).astype(np.uint8)


def montage(pictures: np.ndarray, columns: int | None = None, gap: int = 1, fill: int = 64) -> np.ndarray:
    """``[N, H, W, 3]`` pictures tiled row by row into one ``[H', W', 3]`` image, ``gap`` pixels of
    grey ``fill`` between tiles; tile ``k`` starts at row ``(k // columns) * (H + gap)`` and column
    ``(k % columns) * (W + gap)``.

    Parameters:
        pictures: the pictures, in order.
        columns: tiles per row (default ``ceil(sqrt(N))``).
        gap: pixels between tiles.
        fill: the grey level of the gaps.
    """
    n, height, width, _ = pictures.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    sheet = np.full(
        (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3), fill, dtype=np.uint8
    )
    for k in range(n):
        r, c = (k // columns) * (height + gap), (k % columns) * (width + gap)
        sheet[r : r + height, c : c + width] = pictures[k]
    return sheet
