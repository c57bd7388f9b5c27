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
from typing import Any

import numpy as np
import zarr
import zarr.api.asynchronous as zarr_async
from zarr.core.sync import sync

from ..events import EVENT_DTYPE
from .codecs import decode_times
from .errors import CacheError
from .layout import ATTRS_KEY, EVENT_FIELDS, LAYOUT_VERSION
from .store import Location


def decode_range(columns: dict[str, np.ndarray], local_offsets: np.ndarray) -> np.ndarray:
    """Stored event columns of whole samples -> one EVENT_DTYPE array (times made absolute)."""
    events = np.empty(len(columns["t"]), dtype=EVENT_DTYPE)
    events["t"] = decode_times(columns["t"], local_offsets)
    for name in EVENT_FIELDS[1:]:
        events[name] = columns[name]
    return events


def check_marker(url: str, attrs: dict[str, Any] | None) -> dict[str, Any]:
    """The cache attributes, or CacheError when the completion marker or a known layout is missing."""
    if attrs is None:
        raise CacheError(f"{url}: not a neurodata cache (no '{ATTRS_KEY}' attribute in zarr.json)")
    if not attrs.get("complete"):
        raise CacheError(
            f"{url}: the cache is incomplete (a build is running or was interrupted); run prepare again"
        )
    if attrs.get("layout_version") != LAYOUT_VERSION:
        raise CacheError(
            f"{url}: cache layout version {attrs.get('layout_version')}, this neurodata reads {LAYOUT_VERSION}"
        )
    return attrs


async def _read_slices(arrays: list[zarr_async.AsyncArray], start: int, stop: int) -> list[np.ndarray]:
    return await asyncio.gather(*(array.getitem(slice(start, stop)) for array in arrays))


class SplitReader:
    """One split of a cache: ``n_samples``, ``labels``, ``offsets`` in memory; events read on demand."""

    def __init__(self, location: Location, name: str):
        self._location = location
        self.name = name
        group = zarr.open_group(location.zarr_store(read_only=True), mode="r", path=name)
        self.offsets = np.asarray(group["offsets"][...], dtype=np.int64)
        self.labels = np.asarray(group["labels"][...], dtype=np.int64)
        self.n_samples = len(self.labels)
        self.n_events = int(self.offsets[-1])
        self._group = group
        self._events: list[zarr_async.AsyncArray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_group"] = None
        state["_events"] = None
        return state

    def __len__(self) -> int:
        return self.n_samples

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.sample(index)

    def _event_arrays(self) -> list[zarr_async.AsyncArray]:
        if self._events is None:
            if self._group is None:
                self._group = zarr.open_group(
                    self._location.zarr_store(read_only=True), mode="r", path=self.name
                )
            self._events = [self._group[name]._async_array for name in EVENT_FIELDS]
        return self._events

    def column(self, name: str) -> np.ndarray:
        """A per-sample array: ``t_first``, ``t_last`` or ``source``."""
        if self._group is None:
            self._group = zarr.open_group(self._location.zarr_store(read_only=True), mode="r", path=self.name)
        return np.asarray(self._group[name][...])

    def events(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Events of samples ``start:stop`` in one read: ``(events, local_offsets)``.

        Sample ``start + j`` is ``events[local_offsets[j]:local_offsets[j + 1]]``.
        """
        start, stop, _ = slice(start, stop).indices(self.n_samples)
        stop = max(start, stop)
        first, last = int(self.offsets[start]), int(self.offsets[stop])
        local = self.offsets[start : stop + 1] - first
        if last == first:
            return np.empty(0, dtype=EVENT_DTYPE), local
        stored = sync(_read_slices(self._event_arrays(), first, last))
        return decode_range(dict(zip(EVENT_FIELDS, stored)), local), local

    def sample(self, index: int) -> tuple[np.ndarray, int]:
        """``(events, label)`` of one sample; negative indices count from the end."""
        if not -self.n_samples <= index < self.n_samples:
            raise IndexError(
                f"{self._location.url}: sample {index} out of range for split {self.name!r} of {self.n_samples}"
            )
        index %= self.n_samples
        events, _ = self.events(index, index + 1)
        return events, int(self.labels[index])

    def samples(self, selection: slice) -> list[tuple[np.ndarray, int]]:
        """``(events, label)`` for a contiguous slice of samples, fetched in one read."""
        start, stop, step = selection.indices(self.n_samples)
        if step != 1:
            raise ValueError("samples() reads contiguous ranges; use a slice with step 1")
        events, local = self.events(start, stop)
        return [(events[local[j] : local[j + 1]], int(self.labels[start + j])) for j in range(len(local) - 1)]


class CacheReader:
    """A finished cache: ``attrs`` (dataset and layout attributes) and ``splits`` (name -> SplitReader)."""

    def __init__(self, store_url: str | os.PathLike, storage_options: dict[str, Any] | None = None):
        self.location = Location(store_url, storage_options)
        self.url = self.location.url
        try:
            root = zarr.open_group(self.location.zarr_store(read_only=True), mode="r")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as err:
            raise CacheError(f"{self.url}: no cache here (no zarr group)") from err
        self.attrs = check_marker(self.url, root.attrs.get(ATTRS_KEY))
        self.splits = {name: SplitReader(self.location, name) for name in self.attrs["splits"]}

    @property
    def name(self) -> str:
        return self.attrs["name"]

    @property
    def class_names(self) -> list[str] | None:
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
    """Open a finished cache (local path or fsspec URL); CacheError when absent or incomplete."""
    return CacheReader(store_url, storage_options)
