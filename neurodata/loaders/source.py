"""Where a loader's samples come from: a cache split, opened lazily and once per process.

A :class:`SplitSource` holds only the store URL, storage options and split name. The open
:class:`~neurodata.cache.SplitReader` (zarr arrays, fsspec sessions, an event-loop binding) is
created on first use in each process and dropped when pickled, and a pid check reopens it after a
fork, so DataLoader workers never share a parent's handles under either start method. A forked
worker keeps the plain data its parent had read (per-sample arrays, shard indexes) instead of reading
them again every epoch (the cost is in docs/sections/loaders.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import CacheError, CacheReader, SplitReader, open_cache
from ..cache.codecs import TIME_CODINGS
from ..cache.event_chunks import fusable
from ..cache.fetch import fetcher_for
from ..cache.shard_reader import open_rows
from ..localfs import default_root
from .collate import FIELD_DTYPES, numpy_dtype
from .event_columns import EventColumns


def resolve_store(name_or_store: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """``name_or_store`` as a URL: a dataset name (``"dvs128"``) -> ``<root or NEURODATA_HOME>/dvs128.zarr``; URLs and paths pass through.

    A bare name (no ``/``, no ``://``, no ``.zarr`` suffix) that is not an existing path is a dataset name;
    one that has not been prepared there is a CacheError saying how to prepare it.
    """
    text = os.fspath(name_or_store)
    if "://" in text or "/" in text or text.endswith(".zarr") or os.path.exists(text):
        return text
    url = str((Path(root) if root is not None else default_root()) / f"{text}.zarr")
    if not os.path.exists(os.path.join(url, "zarr.json")):
        raise CacheError(
            f"{text}: not prepared (no cache at {url}); run `neurodata prepare {text}` first, or point "
            "root= (--root) or NEURODATA_HOME at the folder where it was prepared"
        )
    return url


@contextmanager
def naming_samples(start: int, stop: int) -> Iterator[None]:
    """A CacheError raised inside (a damaged chunk, say) also names samples ``start:stop``, being read."""
    try:
        yield
    except CacheError as error:
        which = f"sample {start}" if stop - start == 1 else f"samples {start}-{stop - 1}"
        raise CacheError(f"{error} (reading {which})") from error


def is_remote(url: str) -> bool:
    """True when ``url`` is an fsspec URL other than a local file (``s3://``, ``http://``, ``gs://`` ...)."""
    scheme = url.split("://", 1)[0] if "://" in url else "file"
    return scheme not in ("file", "local")


class SplitSource:
    """One split of one cache, reopened per process (see the module docstring): split ``split`` of
    the cache at ``url``, opened with fsspec ``storage_options``."""

    def __init__(self, url: str, split: str, storage_options: dict[str, Any] | None = None):
        self.url = url
        self.split = split
        self.storage_options = dict(storage_options or {})
        self._opened: tuple[int, CacheReader, EventColumns | None] | None = None
        cache = self.cache  # fail early, in the caller's process, on a missing cache or split
        cache[split]
        self.attrs = dict(cache.attrs)
        self.n_samples = len(cache[split])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_opened": None}

    def _open(self) -> tuple[int, CacheReader, EventColumns | None]:
        opened = self._opened
        if opened is None or opened[0] != os.getpid():
            cache = open_cache(self.url, self.storage_options)
            columns = event_columns(cache, self.split)
            if opened is not None:  # forked: keep what the parent read already (plain data, no handles)
                cache[self.split].inherit(opened[1][self.split])
                if columns is not None and opened[2] is not None:
                    columns.inherit(opened[2])
            opened = (os.getpid(), cache, columns)
            self._opened = opened
        return opened

    @property
    def cache(self) -> CacheReader:
        """The open cache for this process (reopened after a fork)."""
        return self._open()[1]

    def events(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Events of samples ``start:stop`` and their local offsets (as :meth:`SplitReader.events`),
        read directly from the shards (see :mod:`.event_columns`) when the layout allows, else through zarr."""
        _, cache, columns = self._open()
        reader = cache[self.split]
        if columns is None:
            return reader.events(start, stop)
        start, stop, local = reader.sample_range(start, stop)
        span = reader.row_span(start, stop)
        if span is not None:
            return columns.read(*span, local), local
        events = np.concatenate(columns.read_spans(reader.sample_spans(range(start, stop))))
        return events, local

    def samples(self, start: int, stop: int) -> list[np.ndarray]:
        """Events of each sample ``start:stop``, one array per sample. Several consecutive samples
        (a streaming block) are read together: sample-aligned ones by
        :meth:`EventColumns.read_spans` (one fetch round), back-to-back ones (layout 1) by
        :meth:`EventColumns.read_samples`, decompressing the chunks two samples share once; a
        single sample, or a cache the fused reader does not handle, is read by :meth:`events`
        (views of its array)."""
        _, cache, columns = self._open()
        reader = cache[self.split]
        start, stop, local = reader.sample_range(start, stop)
        if columns is None or stop - start < 2:
            events, local = self.events(start, stop)
            return [events[local[j] : local[j + 1]] for j in range(len(local) - 1)]
        span = reader.row_span(start, stop)
        if span is None:
            return columns.read_spans(reader.sample_spans(range(start, stop)))
        return columns.read_samples(*span, local)

    def warm(self, events: bool = True) -> None:
        """Load here, before DataLoader workers fork, what each worker would otherwise load again
        every epoch (without persistent workers): the per-sample arrays and, where ``events`` will
        be decoded, the event kernels (see :meth:`EventColumns.warm`) and, for local stores where it
        is a few hundred small reads, every shard index of the event columns."""
        reader = self.reader
        reader.preload()
        columns = self.columns
        if events and columns is not None:
            columns.warm([numpy_dtype(dtype) for dtype in FIELD_DTYPES.values()])
            if not is_remote(self.url):
                columns.read_indexes(reader.n_rows)

    @property
    def columns(self) -> EventColumns | None:
        """The fused reader of the split's event columns in this process (None: zarr reads them)."""
        return self._open()[2]

    @property
    def reader(self) -> SplitReader:
        """This process's reader of the split."""
        return self.cache[self.split]

    @property
    def sensor_size(self) -> tuple[int, int, int] | None:
        """Tonic-style ``(width, height, polarities)`` from the cache, or None when unknown."""
        size = self.attrs.get("sensor_size")
        return tuple(int(v) for v in size) if size is not None else None

    @property
    def lengths(self) -> np.ndarray:
        """Events per sample (int64), from the offsets alone."""
        return np.diff(self.reader.offsets)

    def __repr__(self) -> str:
        return f"SplitSource({self.url!r}, split={self.split!r}, n_samples={self.n_samples})"


def event_columns(cache: CacheReader, split: str) -> EventColumns | None:
    """The direct reader of the stored event columns of ``cache``'s ``split``, when their layout and
    time coding allow it."""
    if cache.attrs.get("time_coding") not in TIME_CODINGS:
        return None
    arrays = {
        name: open_rows(cache.location, split, name, what=f"split {split!r}, array {name!r}")
        for name in cache[split].fields
    }
    if any(rows is None for rows in arrays.values()) or not fusable(arrays):
        return None
    return EventColumns(fetcher_for(cache.location), arrays)
