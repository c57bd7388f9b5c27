"""Seeing the data: events, frames and voxel grids as pictures (:mod:`.render`, pure numpy), the clips
``neurodata view`` shows (:mod:`.clips`), a cache's overview (:mod:`.overview`) and the writers to PNG,
GIF, MP4 or a window (:mod:`.writers`; matplotlib/Pillow from the ``plot`` extra, PyAV from ``video``)."""

from .clips import Clip, TimeSpan, cache_clip, recording_clip, represented, stored_keys
from .overview import CacheOverview, cache_overview, overview_figure
from .render import (
    DEFAULT_PALETTE,
    Geometry,
    Palette,
    event_frames,
    event_image,
    frame_pictures,
    geometry_of,
    iter_event_frames,
    montage,
    voxel_pictures,
    window_count,
)
from .writers import has_display, show, write_gif, write_mp4, write_png

__all__ = [
    "DEFAULT_PALETTE",
    "CacheOverview",
    "Clip",
    "Geometry",
    "Palette",
    "TimeSpan",
    "cache_clip",
    "cache_overview",
    "event_frames",
    "event_image",
    "frame_pictures",
    "geometry_of",
    "has_display",
    "iter_event_frames",
    "montage",
    "overview_figure",
    "recording_clip",
    "represented",
    "show",
    "stored_keys",
    "voxel_pictures",
    "window_count",
    "write_gif",
    "write_mp4",
    "write_png",
]
