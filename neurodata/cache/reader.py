"""Read a finished dataset cache: samples, contiguous ranges of samples, labels and attributes.

:func:`open_cache` checks the completion marker and returns a :class:`CacheReader`; each split is a
:class:`SplitReader`. Reading a range of samples is one slice per event array, fetched concurrently
through zarr's async API (which matters on object stores), then decoded by :func:`decode_range`.
Readers hold only the URL and options when pickled, so they travel into DataLoader workers and
reopen lazily there.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import zarr.api.asynchronous as zarr_async

from ..events import EVENT_DTYPE
from .codecs import DELTA, TIME_CODINGS, decoder_columns, stored_fields, time_coding_of
from .damage import damaged_chunks
from .errors import CacheError, warn_unchecked
from .kernels import scatter_chunk_numba
from .layout import (
    ATTRS_KEY,
    CHECKED_LAYOUT,
    EVENT_DTYPES,
    LAYOUT_VERSION,
    READABLE_LAYOUTS,
    STORED_DTYPES,
)
from .presence import split_files_problem
from .rows import contiguous_span, placement_problem, sample_columns, spans_of
from .store import Location
from .zarr_compat import sync


def check_local_offsets(local_offsets: np.ndarray, n: int) -> np.ndarray:
    """``local_offsets`` as int64 when they partition ``n`` events (from 0 to n, never decreasing), else CacheError."""
    offsets = np.asarray(local_offsets, dtype=np.int64)
    if offsets.size == 0 or offsets[0] != 0 or offsets[-1] != n or (np.diff(offsets) < 0).any():
        raise CacheError(f"sample offsets do not partition the {n} events read (damaged offsets array?)")
    return offsets


def decode_range(columns: dict[str, np.ndarray], local_offsets: np.ndarray) -> np.ndarray:
    """Stored event columns of whole samples -> one EVENT_DTYPE array (times made absolute).
    Without a ``p`` column the times carry the polarities (time coding ``per-sample-delta-polarity``,
    see :mod:`.codecs`).

    ``local_offsets`` start at 0 and end at the columns' length; they are checked here because the
    Numba kernel that does the work (the fused reader's, over all rows at once) does not bounds-check.
    """
    n = len(columns["t"])
    offsets = check_local_offsets(local_offsets, n)
    if any(len(column) != n for column in columns.values()):
        raise CacheError(f"event columns differ in length: { {k: len(v) for k, v in columns.items()} }")
    events = np.empty(n, dtype=EVENT_DTYPE)
    time_coding = time_coding_of(columns)
    stored = [stored_column(columns[name], name) for name in stored_fields(time_coding)]
    state = np.zeros(2, dtype=np.int64)
    scatter_chunk_numba(*decoder_columns(stored, time_coding), 0, n, 0, offsets, state, events)
    return events


def stored_column(column: np.ndarray, name: str) -> np.ndarray:
    """A stored event column as the kernel takes it: any of its :data:`STORED_DTYPES` as is (no copy;
    Numba compiles one variant per dtype combination), anything else converted to ``EVENT_DTYPES``.

    Args:
        column: The column's values.
        name: The field it stores (``t``, ``x``, ``y`` or ``p``), which picks the dtypes.
    """
    column = np.asarray(column)
    return column if column.dtype in STORED_DTYPES[name] else column.astype(EVENT_DTYPES[name])


def check_marker(url: str, attrs: dict[str, Any] | None) -> dict[str, Any]:
    """The cache attributes ``attrs`` (``None`` when absent), or CacheError naming ``url`` when the
    completion marker or a known layout is missing."""
    if attrs is None:
        raise CacheError(f"{url}: not a neurodata cache (no '{ATTRS_KEY}' attribute in zarr.json)")
    if not attrs.get("complete"):
        raise CacheError(
            f"{url}: the cache is incomplete (a build is running or was interrupted); run prepare again"
        )
    if attrs.get("layout_version") not in READABLE_LAYOUTS:
        raise CacheError(
            f"{url}: cache layout version {attrs.get('layout_version')}, this neurodata reads "
            f"{', '.join(map(str, READABLE_LAYOUTS))} (writes {LAYOUT_VERSION})"
        )
    if attrs.get("time_coding", DELTA) not in TIME_CODINGS:
        raise CacheError(
            f"{url}: unknown time coding {attrs.get('time_coding')!r}; this neurodata reads {TIME_CODINGS}"
        )
    return attrs


def warn_if_unchecked(url: str, attrs: dict[str, Any]) -> None:
    """Warn (once per process) when the cache at ``url``, whose attributes are ``attrs``, was written
    before :data:`CHECKED_LAYOUT`, saying how to rebuild it."""
    version = attrs["layout_version"]
    if version < CHECKED_LAYOUT:
        warn_unchecked(
            url,
            f"cache layout {version}",
            f"`neurodata verify {url}` checks the whole cache; rebuild it to layout {LAYOUT_VERSION}, "
            "checked on every read: delete it and run `neurodata prepare NAME` again (or build it "
            "with CacheBuilder(..., overwrite=True))",
        )


async def _open_arrays(location: Location, split: str, names: tuple[str, ...]) -> list[zarr_async.AsyncArray]:
    """Open several arrays of one split with concurrent metadata fetches (one round trip on object
    stores); CacheError naming the first one missing (a damaged cache, or a time coding that does
    not match its arrays)."""
    group = await location.open_async_group("r", split)
    arrays = await asyncio.gather(*(group.getitem(name) for name in names), return_exceptions=True)
    for name, array in zip(names, arrays):
        if isinstance(array, KeyError):
            raise CacheError(f"{location.url}: split {split!r} has no {name!r} array (damaged cache?)")
        if isinstance(array, BaseException):
            raise array
    return list(arrays)


async def _read_slices(arrays: list[zarr_async.AsyncArray], selection: slice) -> list[np.ndarray]:
    """The same slice of several arrays, fetched concurrently."""
    return await asyncio.gather(*(array.getitem(selection) for array in arrays))


def read_slices(
    location: Location, split: str, arrays: list[zarr_async.AsyncArray], selection: slice
) -> list[np.ndarray]:
    """:func:`_read_slices` through zarr, where a damaged shard (an index or a chunk failing its
    checksum, a chunk that does not decompress) is a CacheError naming the split and arrays, and
    the chunks that fail their CRC32C (:func:`.damage.damaged_chunks`).

    Args:
        location: The cache.
        split: The split the arrays belong to (named in errors).
        arrays: The open arrays.
        selection: The rows to read from each.
    """
    try:
        return sync(_read_slices(arrays, selection))
    except (OSError, RuntimeError, ValueError) as error:
        names = ", ".join(repr(array.basename) for array in arrays)
        start, stop, _ = selection.indices(max(array.shape[0] for array in arrays))
        damaged = [
            f"chunk {chunk} of {array.basename!r}"
            for array in arrays
            for chunk in damaged_chunks(location, split, array.basename, start, stop)
        ]
        verb = "fails its" if len(damaged) == 1 else "fail their"
        failing = f"{', '.join(damaged)} {verb} CRC32C; " if damaged else ""
        raise CacheError(
            f"{location.url}: split {split!r}: rows {start}-{stop} of {names} cannot be read "
            f"({failing}damaged cache?): {error}"
        ) from error


class SampleRange(NamedTuple):
    """Samples ``start:stop`` of a split and their ``local`` offsets: sample ``start + j`` is events
    ``local[j]:local[j + 1]`` of the range."""

    start: int
    stop: int
    local: np.ndarray


WINDOW_CHUNKS = 4  # reads spanning at most this many chunks keep the decoded chunks for the next read


class SplitReader:
    """One split of a cache. ``n_samples``/``n_events``/``n_rows`` come from the root attributes;
    ``offsets``, ``rows`` and ``labels`` are loaded (together, concurrently) on first use and kept in
    memory; events are read on demand.

    Zarr decompresses whole chunks, so a small read fetches its chunk-aligned window instead (same
    cost) and keeps it: consecutive small samples then come from memory, not from decompressing the
    same chunk again.

    Args:
        location: The cache.
        name: The split's name (its group in the store).
        counts: The split's entry of the root attributes' ``splits`` (``n_samples``, ``n_events``, ...).
        chunk_events: Rows per event chunk, when ``counts`` does not say.
        has_rows: Whether the split stores a ``rows`` array (layout 2 and later).
        time_coding: How times are stored (which event columns exist).
        n_classes: The number of classes (labels are checked to lie in ``0 .. n_classes - 1``, or be
            -1 for no class), or None where the cache names none.
        manifest_crc32c: The manifest's CRC32C (zarr.json's ``manifest_crc32c``): the split's files
            are checked against the manifest on first use; None (caches written before manifests):
            not checked.
    """

    def __init__(
        self,
        location: Location,
        name: str,
        counts: dict[str, int],
        chunk_events: int,
        has_rows: bool = True,
        time_coding: str = DELTA,
        n_classes: int | None = None,
        manifest_crc32c: str | None = None,
    ):
        self._location = location
        self.n_classes = n_classes
        self._manifest_crc32c = manifest_crc32c
        self.fields = stored_fields(time_coding)  # the event columns stored
        self.name = name
        self.n_samples = int(counts["n_samples"])
        self.n_events = int(counts["n_events"])
        self.n_rows = int(counts.get("n_rows", self.n_events))  # layout 1: no fill rows
        self._chunk_events = int(counts.get("chunk_events", chunk_events))
        self._has_rows = has_rows
        self._per_sample: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._events: list[zarr_async.AsyncArray] | None = None
        self._window: tuple[int, int, list[np.ndarray]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # zarr handles are reopened in the receiving process; the decoded window stays here
        return {**self.__dict__, "_events": None, "_window": None}

    def __len__(self) -> int:
        return self.n_samples

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.sample(index)

    def _load_per_sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._per_sample is None:
            names = ("offsets", "labels", "rows") if self._has_rows else ("offsets", "labels")
            arrays = sync(_open_arrays(self._location, self.name, names))
            read = read_slices(self._location, self.name, arrays, slice(None))
            offsets, labels, *rows = (np.asarray(a, dtype=np.int64) for a in read)
            rows = rows[0] if rows else offsets[:-1]
            missing = split_files_problem(self._location, self.name, self._manifest_crc32c)
            if missing is not None:
                raise CacheError(f"{self._location.url}: split {self.name!r}: {missing} (damaged cache?)")
            problem = self._count_problem(offsets, labels)
            if problem is None:
                problem = placement_problem(offsets, rows, self.n_rows)
            if problem is not None:
                raise CacheError(
                    f"{self._location.url}: split {self.name!r}: {problem} (damaged per-sample arrays?)"
                )
            self._per_sample = (offsets, labels, rows)
        return self._per_sample

    def _count_problem(self, offsets: np.ndarray, labels: np.ndarray) -> str | None:
        """What in ``offsets`` and ``labels`` disagrees with the sample and event counts of zarr.json
        (None: nothing): an edited count, or a chunk of them that is missing (read as zeros)."""
        if len(offsets) != self.n_samples + 1 or len(labels) != self.n_samples:
            return (
                f"offsets has {len(offsets)} entries and labels {len(labels)} for the {self.n_samples} samples "
                "that zarr.json counts"
            )
        if offsets[0] != 0 or offsets[-1] != self.n_events:
            return f"offsets run from {offsets[0]} to {offsets[-1]}, not from 0 to the {self.n_events} events that zarr.json counts"
        if self.n_classes is not None and len(labels) and not -1 <= labels.min() <= labels.max() < self.n_classes:
            bad = labels[(labels < -1) | (labels >= self.n_classes)][0]
            return f"label {bad} is neither one of the {self.n_classes} classes nor -1 (no class)"
        return None

    def preload(self) -> None:
        """Read the per-sample arrays now (they are otherwise read on first use), for example before
        forking processes that would each read them."""
        self._load_per_sample()

    def inherit(self, parent: SplitReader) -> None:
        """Take the per-sample arrays ``parent`` (this split, opened in the process this one was
        forked from) has loaded, instead of reading them again."""
        if self._per_sample is None and parent._per_sample is not None:
            self._per_sample = parent._per_sample

    @property
    def offsets(self) -> np.ndarray:
        """int64, ``n_samples + 1``: sample i holds ``offsets[i + 1] - offsets[i]`` events (and is
        events ``offsets[i]:offsets[i + 1]`` of the split, counted without fill rows)."""
        return self._load_per_sample()[0]

    @property
    def labels(self) -> np.ndarray:
        """int64, ``n_samples``: each sample's class index."""
        return self._load_per_sample()[1]

    @property
    def rows(self) -> np.ndarray:
        """int64, ``n_samples``: sample i is rows ``rows[i] : rows[i] + its events`` of the event
        arrays (see :mod:`.rows`)."""
        return self._load_per_sample()[2]

    def row_span(self, start: int, stop: int) -> tuple[int, int] | None:
        """The rows holding samples ``start:stop`` back to back, or None when fill rows lie between them."""
        return contiguous_span(self.offsets, self.rows, start, stop)

    def sample_spans(self, indices: Sequence[int] | np.ndarray) -> list[tuple[int, int]]:
        """The rows ``[first, last)`` of each sample of ``indices`` (a range, or a batch's)."""
        return spans_of(self.offsets, self.rows, indices)

    def _event_arrays(self) -> list[zarr_async.AsyncArray]:
        if self._events is None:
            self._events = sync(_open_arrays(self._location, self.name, self.fields))
        return self._events

    def column(self, name: str) -> np.ndarray:
        """The per-sample array called ``name``: ``t_first``, ``t_last`` or ``source``."""
        return np.asarray(self._location.open_group("r", self.name)[name][...])

    def events(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Events of samples ``start:stop`` in one read: ``(events, local_offsets)``.

        Sample ``start + j`` is ``events[local_offsets[j]:local_offsets[j + 1]]``.
        """
        start, stop, local = self.sample_range(start, stop)
        if local[-1] == 0:
            return np.empty(0, dtype=EVENT_DTYPE), local
        columns = sample_columns(self._stored, self.offsets, self.rows, start, stop)
        return decode_range(dict(zip(self.fields, columns)), local), local

    def sample_range(self, start: int, stop: int) -> SampleRange:
        """Samples ``start:stop`` clipped as a slice is (never ending before they start), with their
        local offsets."""
        start, stop, _ = slice(start, stop).indices(self.n_samples)
        stop = max(start, stop)
        return SampleRange(start, stop, self.offsets[start : stop + 1] - self.offsets[start])

    def _stored(self, first: int, last: int) -> list[np.ndarray]:
        """The stored (time delta coded) columns of events ``[first, last)``, through the window."""
        window = self._window
        if window is None or not window[0] <= first < last <= window[1]:
            chunk = self._chunk_events
            lo, hi = first // chunk * chunk, min(self.n_rows, -(-last // chunk) * chunk)
            if hi - lo > WINDOW_CHUNKS * chunk:
                return read_slices(self._location, self.name, self._event_arrays(), slice(first, last))
            window = (lo, hi, read_slices(self._location, self.name, self._event_arrays(), slice(lo, hi)))
            self._window = window
        lo = window[0]
        return [column[first - lo : last - lo] for column in window[2]]

    def sample(self, index: int) -> tuple[np.ndarray, int]:
        """``(events, label)`` of the sample at ``index``; negative indices count from the end."""
        if not -self.n_samples <= index < self.n_samples:
            raise IndexError(
                f"{self._location.url}: sample {index} out of range for split {self.name!r} of {self.n_samples}"
            )
        index %= self.n_samples
        events, _ = self.events(index, index + 1)
        return events, int(self.labels[index])

    def samples(self, selection: slice) -> list[tuple[np.ndarray, int]]:
        """``(events, label)`` for the samples of ``selection`` (a slice with step 1), fetched in one read."""
        start, stop, step = selection.indices(self.n_samples)
        if step != 1:
            raise ValueError("samples() reads contiguous ranges; use a slice with step 1")
        events, local = self.events(start, stop)
        return [(events[local[j] : local[j + 1]], int(self.labels[start + j])) for j in range(len(local) - 1)]


class CacheReader:
    """A finished cache: ``attrs`` (dataset and layout attributes) and ``splits`` (name -> SplitReader).

    Args:
        store_url: The cache's local path or fsspec URL.
        storage_options: Passed to fsspec (credentials, endpoints).

    Raises:
        CacheError: When there is no cache there, or it is incomplete or of an unknown layout.
    """

    def __init__(self, store_url: str | os.PathLike, storage_options: dict[str, Any] | None = None):
        self.location = Location(store_url, storage_options)
        self.url = self.location.url
        meta = self.location.read_json("zarr.json")
        if meta is None:
            raise CacheError(f"{self.url}: no cache here (no readable zarr.json)")
        self.attrs = check_marker(self.url, meta.get("attributes", {}).get(ATTRS_KEY))
        warn_if_unchecked(self.url, self.attrs)
        self.splits = {
            name: SplitReader(
                self.location,
                name,
                counts,
                self.attrs["chunk_events"],
                self.attrs["layout_version"] >= 2,
                self.attrs.get("time_coding", DELTA),
                len(self.attrs["class_names"]) if self.attrs.get("class_names") else None,
                self.attrs.get("manifest_crc32c"),
            )
            for name, counts in self.attrs["splits"].items()
        }

    @property
    def name(self) -> str:
        """The dataset's name, as the cache was built."""
        return self.attrs["name"]

    @property
    def class_names(self) -> list[str] | None:
        """The name of each label, by index, when the cache records them."""
        return self.attrs.get("class_names")

    def __getitem__(self, split: str) -> SplitReader:
        try:
            return self.splits[split]
        except KeyError:
            raise CacheError(f"{self.url}: no split {split!r}; splits are {sorted(self.splits)}") from None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={r.n_samples}" for s, r in self.splits.items())
        return f"CacheReader({self.url!r}, name={self.name!r}, {sizes})"


def open_cache(store_url: str | os.PathLike, storage_options: dict[str, Any] | None = None) -> CacheReader:
    """Open the finished cache at ``store_url`` (local path or fsspec URL, opened with
    ``storage_options``); CacheError when absent or incomplete."""
    return CacheReader(store_url, storage_options)
