"""Reading precomputed representations stored beside a cache's events.

Layout, inside the cache's Zarr store::

    <store>/representations/<key>/<split>/zarr.json   group; attributes ``neurodata_representation``:
                                                       spec, key, cache fingerprint, n_samples, shape,
                                                       dtype (returned), stored_dtype, complete
    <store>/representations/<key>/<split>/data        [n_samples, *shape] array, one chunk per sample,
                                                       in ``stored_dtype`` (narrower integers than
                                                       ``dtype`` are widened on read; stores written
                                                       before ``stored_dtype`` existed hold ``dtype``);
                                                       each chunk ends with its CRC32C, checked on
                                                       every read (stores written before that warn
                                                       once that they are unchecked)

``<key>`` is :func:`neurodata.representations.representation_key` of the spec. A split is used only
when its ``complete`` marker is set and its cache fingerprint equals the cache's, so frames computed
from an earlier build of the cache are never served. Sources reopen per process like
:class:`~neurodata.loaders.source.SplitSource`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import zarr

from ..cache.errors import warn_unchecked
from ..cache.fetch import Fetcher, fetcher_for
from ..cache.shard_reader import ShardedRows, open_rows, read_rows
from ..cache.store import Location
from .source import SplitSource

REPRESENTATIONS_DIR = "representations"
ATTRS_KEY = "neurodata_representation"


def representation_location(
    cache_url: str, key: str, split: str, storage_options: dict | None = None
) -> Location:
    """Where split ``split`` of the representation ``key`` is stored in the cache at ``cache_url``
    (opened with fsspec ``storage_options``)."""
    return Location(cache_url, storage_options).child(REPRESENTATIONS_DIR, key, split)


def read_marker(location: Location) -> dict[str, Any] | None:
    """The representation attributes of the stored split at ``location``, or None when absent."""
    return location.read_attrs(ATTRS_KEY)


def is_usable(marker: dict[str, Any] | None, source: SplitSource) -> bool:
    """Whether ``marker`` says the stored split is complete, computed from this very cache build
    (``source``'s fingerprint), for every sample of the split."""
    return bool(
        marker
        and marker.get("complete")
        and marker.get("cache_fingerprint") == source.attrs.get("fingerprint")
        and marker.get("n_samples") == source.n_samples
    )


class PrecomputedSource:
    """One stored representation split; ``read(start, stop)`` -> ``[stop - start, *shape]``.

    ``source`` is the cache split, ``key`` the representation's key; FileNotFoundError when no
    usable stored copy exists.
    """

    def __init__(self, source: SplitSource, key: str):
        self.location = representation_location(source.url, key, source.split, source.storage_options)
        self.key = key
        self.split = source.split
        marker = read_marker(self.location)
        if not is_usable(marker, source):
            raise FileNotFoundError(
                f"{self.location.url}: no complete precomputed representation for this cache"
            )
        self.shape = tuple(marker["shape"])
        self.dtype = np.dtype(marker["dtype"])
        stored = np.dtype(marker.get("stored_dtype", marker["dtype"]))
        if not np.can_cast(stored, self.dtype, "safe"):
            raise ValueError(f"{self.location.url}: stored dtype {stored} does not widen to {self.dtype}")
        self._opened: tuple[int, zarr.Array | tuple[Fetcher, ShardedRows]] | None = None

    @classmethod
    def find(cls, source: SplitSource, key: str) -> PrecomputedSource | None:
        """The stored representation ``key`` of ``source``'s split, or None when there is no usable one."""
        try:
            return cls(source, key)
        except FileNotFoundError:
            return None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_opened": None}

    @property
    def array(self) -> zarr.Array | tuple[Fetcher, ShardedRows]:
        """The ``data`` array: a direct shard reader and its fetcher (see
        :mod:`neurodata.cache.shard_reader`), else zarr's."""
        opened = self._opened
        if opened is None or opened[0] != os.getpid():
            location = Location(self.location.url, self.location.storage_options)  # a fresh fs after a fork
            rows = open_rows(location, "data", what=f"split {self.split!r}, {self.key} array 'data'")
            if rows is not None and not rows.checked:
                warn_unchecked(
                    location.url,
                    "this stored representation",
                    "recompute it: `neurodata frames ... --overwrite` or precompute(..., overwrite=True)",
                )
            array = (fetcher_for(location), rows) if rows is not None else location.open_group("r")["data"]
            opened = (os.getpid(), array)
            self._opened = opened
        return opened[1]

    @property
    def direct(self) -> bool:
        """Whether the data array is read from its shards directly (not through zarr)."""
        return isinstance(self.array, tuple)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` as ``[stop - start, *shape]`` in the stored dtype."""
        array = self.array
        if isinstance(array, tuple):
            fetcher, rows = array
            return read_rows(fetcher, [(rows, start, stop)], self.dtype)[0]
        return np.asarray(array[start:stop]).astype(self.dtype, copy=False)
