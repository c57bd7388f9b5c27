"""What ``neurodata view`` shows: a :class:`Clip` read from a recording file or from one sample of a cache
(its events, or a representation stored beside them by ``neurodata frames``), and its pictures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..cache import open_cache
from ..errors import NeurodataError
from ..events import RecordingInfo, empty_events
from ..reader import open_recording, read
from .render import (
    DEFAULT_PALETTE,
    Geometry,
    Palette,
    frame_pictures,
    geometry_of,
    iter_event_frames,
    voxel_pictures,
)

EVENTS, FRAMES, VOXELS = "events", "frames", "voxel_grid"
# stored representation type -> how its array is shown (images [P, H, W] are one-bin frames)
SHOWN_TYPES = {"frame": FRAMES, "image": FRAMES, "voxel_grid": VOXELS}


@dataclass(frozen=True)
class Clip:
    """Something to show: ``events`` (structured, sorted by time), ``frames`` ``[T, P, H, W]`` or a
    ``voxel_grid`` ``[B, 1, H, W]``.

    Parameters:
        kind: :data:`EVENTS`, :data:`FRAMES` or :data:`VOXELS`.
        data: the array.
        geometry: the picture size.
        title: a line naming the source (file, or cache, split, index and label).
    """

    kind: str
    data: np.ndarray
    geometry: Geometry
    title: str

    def pictures(self, window_us: int, palette: Palette = DEFAULT_PALETTE) -> Iterator[np.ndarray]:
        """``[H, W, 3]`` uint8 pictures in playing order: one per ``window_us`` of events, or one per
        time bin of a representation (``window_us`` unused).

        Parameters:
            window_us: the time each picture of events covers.
            palette: the colours.
        """
        if self.kind == EVENTS:
            return iter_event_frames(self.data, self.geometry, window_us, palette)
        shown = (
            frame_pictures(self.data, palette) if self.kind == FRAMES else voxel_pictures(self.data, palette)
        )
        return iter(shown)

    @property
    def duration_us(self) -> int:
        """``t_last - t_first`` of the events (0 for representations and empty clips)."""
        if self.kind != EVENTS or len(self.data) == 0:
            return 0
        return int(self.data["t"][-1]) - int(self.data["t"][0])


def recording_clip(path: str, format: str | None = None, span: TimeSpan | None = None) -> Clip:
    """The events of a recording file (all, or those of ``span``), sized by its header (else by the
    events' bounding box). A span streams the file and keeps only its events.

    Parameters:
        path: a recording (any format :func:`neurodata.read` reads).
        format: force the format instead of detecting it.
        span: the part to show, counted from the first event; None for all.
    """
    if span is None:
        events, info = read(path, format, return_info=True)
    else:
        events, info = span_events(path, format, span)
    if len(events) and np.any(np.diff(events["t"]) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    try:
        geometry = geometry_of(events, info.width, info.height)
    except ValueError as err:
        raise NeurodataError(f"{path}: {err}") from None
    return Clip(EVENTS, events, geometry, f"{path}: {len(events):,} events")


@dataclass(frozen=True)
class TimeSpan:
    """A part of a recording, in microseconds after its first event.

    Parameters:
        start_us: where the part starts.
        duration_us: how long it lasts (None: to the end).
    """

    start_us: int = 0
    duration_us: int | None = None


def span_events(path: str, format: str | None, span: TimeSpan) -> tuple[np.ndarray, RecordingInfo]:
    """The events of the recording ``path`` (``format``: None guesses it) with ``t_first + start_us <=
    t < t_first + start_us + duration_us`` (the ``span``), streamed: memory holds the span, not the
    file. Reading stops at the first block that starts after the span."""
    kept = []
    with open_recording(path, format) as rec:
        begin = end = last = None
        for block in rec.chunks():
            if not len(block):
                continue
            if begin is None:
                begin = int(block["t"][0]) + span.start_us
                end = None if span.duration_us is None else begin + span.duration_us
            if end is not None and int(block["t"].min()) >= end:
                break
            last = int(block["t"].max()) if last is None else max(last, int(block["t"].max()))
            inside = block["t"] >= begin
            if end is not None:
                inside &= block["t"] < end
            kept.append(block[inside])
        info = rec.info
    events = np.concatenate(kept) if kept else empty_events()
    if begin is not None and last < begin:  # a black picture and "0 events" said nothing of why
        first = begin - span.start_us
        raise NeurodataError(
            f"{path}: --start-us {span.start_us} is past the recording's last event, {last - first} us after its first"
        )
    return events, info


def stored_keys(url: str, split: str) -> list[str]:
    """The keys of the representations stored, complete and current, for ``split`` of cache ``url``.

    Parameters:
        url: the cache.
        split: the split.
    """
    from ..cache.store import Location
    from ..loaders.precomputed import REPRESENTATIONS_DIR, is_usable, read_marker, representation_location
    from ..loaders.source import SplitSource

    location = Location(url)
    try:
        keys = sorted(
            name.rstrip("/").rsplit("/", 1)[-1]
            for name in location.fs.ls(location.key(REPRESENTATIONS_DIR), detail=False)
        )
    except FileNotFoundError:
        return []
    source = SplitSource(url, split)
    return [key for key in keys if is_usable(read_marker(representation_location(url, key, split)), source)]


def cache_clip(url: str, split: str, index: int, stored: str | None = None) -> Clip:
    """One sample of a cache: its events, or with ``stored`` a representation stored beside them.

    Parameters:
        url: the cache (path or fsspec URL).
        split: the split (e.g. ``train``).
        index: the sample (negative counts from the end).
        stored: a stored representation's key, ``""`` for the only one stored for the split, or None
            for the events.
    """
    cache = open_cache(url)
    reader = cache[split]
    if not -len(reader) <= index < len(reader):
        raise NeurodataError(
            f"{url}: --index {index} out of range: split {split!r} has {len(reader)} samples"
        )
    index %= len(reader)
    label = int(reader.labels[index])
    names = cache.class_names or []
    name = f" ({names[label]})" if 0 <= label < len(names) else ""
    size = cache.attrs.get("sensor_size")
    width, height = (int(size[0]), int(size[1])) if size else (None, None)
    title = f"{cache.name} {split}[{index}], label {label}{name}"
    if stored is None:
        events, _ = reader.sample(index)
        try:
            geometry = geometry_of(events, width, height)
        except ValueError as err:
            raise NeurodataError(f"{url}: split {split!r} sample {index}: {err}") from None
        return Clip(EVENTS, events, geometry, f"{title}: {len(events):,} events")
    return stored_clip(url, split, index, stored, title)


def stored_clip(url: str, split: str, index: int, key: str, title: str) -> Clip:
    """Sample ``index`` of the representation ``key`` stored for ``split`` (``""``: the only one) in
    the cache at ``url``; ``title`` names the sample in the clip's title."""
    from ..loaders.precomputed import PrecomputedSource, read_marker, representation_location
    from ..loaders.source import SplitSource

    keys = stored_keys(url, split)
    if not key:
        if len(keys) != 1:
            found = f"the stored ones are {keys}" if keys else "none is stored (see neurodata frames)"
            raise NeurodataError(
                f"{url}: split {split!r}: name one stored representation (--stored KEY); {found}"
            )
        key = keys[0]
    elif key not in keys:
        raise NeurodataError(
            f"{url}: split {split!r}: no stored representation {key!r}; stored: {keys or 'none'}"
        )
    spec = read_marker(representation_location(url, key, split))["spec"]
    kind = SHOWN_TYPES.get(spec.get("type"))
    if kind is None:
        raise NeurodataError(
            f"{url}: stored representation {key!r} is a {spec.get('type')!r}; view shows {sorted(SHOWN_TYPES)}"
        )
    data = PrecomputedSource(SplitSource(url, split), key).read(index, index + 1)[0]
    if spec.get("type") == "image":
        data = data[None]
    return Clip(
        kind, data, Geometry(int(data.shape[-1]), int(data.shape[-2])), f"{title}: {spec.get('type')} {key}"
    )


def represented(clip: Clip, spec: dict) -> Clip:
    """``clip``'s events turned into the representation ``spec`` (a ``frame``, ``image`` or
    ``voxel_grid`` spec dict, as ``neurodata frames --spec`` takes), sized by the clip.

    Parameters:
        clip: a clip of events.
        spec: the representation, e.g. ``{"type": "voxel_grid", "n_time_bins": 5}``.
    """
    from ..loaders.representation import resolve_representation

    kind = SHOWN_TYPES.get(spec.get("type"))
    if clip.kind != EVENTS or kind is None:
        raise NeurodataError(
            f"--spec: view computes {sorted(SHOWN_TYPES)} from events, not {spec.get('type')!r}"
        )
    sensor = (clip.geometry.width, clip.geometry.height, 2)
    try:
        data = np.asarray(resolve_representation(spec, sensor)(clip.data))
    except (TypeError, ValueError) as err:
        raise NeurodataError(f"--spec {spec}: {err}") from None
    if spec["type"] == "image":
        data = data[None]
    return Clip(kind, data, clip.geometry, f"{clip.title}, as {spec['type']}")
