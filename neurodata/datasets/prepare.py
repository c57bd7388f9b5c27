"""``prepare``: from a dataset's published archives to a verified Zarr cache, resumably.

Steps: obtain the archives (download with verification, or take the user's copies; see
:mod:`neurodata.datasets.sources`), extract them (each atomically), locate the dataset inside,
plan independent work units, decode them in parallel into cache parts, commit. Every step can be
interrupted; running ``prepare`` again continues where it stopped.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from ..cache import CacheBuilder, PartData, build_cache, cache_info
from ..cache.layout import DEFAULT_CODEC
from ..cache.plan import read_marker
from ..cache.store import Location
from ..errors import NeurodataError
from ..localfs import cache_name, default_root, file_lock
from ..network import DEFAULT_RETRY, RetryPolicy
from .progress import DecodeProgress, emit_stage, show_bar
from .registry import Unit, get_dataset
from .resource import Callback
from .sources import Sources, obtain_folder


def decode_part(
    name: str, folder: str, units: dict[str, list[Unit]], options: dict, split: str, index: int
) -> PartData:
    """Decode unit ``units[split][index]`` of dataset ``name``, extracted in ``folder``, with the
    dataset's ``options``, into cache part data (module-level so worker processes can run it)."""
    spec = get_dataset(name)
    samples = spec.decode(Path(folder), units[split][index], options)
    return PartData.from_samples((s.events, s.label, s.source) for s in samples)


def finished_codec(store: str, storage_options: dict[str, Any] | None) -> str | None:
    """The event codec of the finished cache at ``store``, opened with fsspec ``storage_options``
    (None: no finished cache there)."""
    marker = read_marker(Location(store, storage_options))
    return marker.get("codec") if marker and marker.get("complete") else None


def prepare(
    name: str,
    source: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    root: str | os.PathLike | None = None,
    workers: int = 1,
    options: dict[str, str] | None = None,
    progress: bool | None = None,
    callback: Callback | None = None,
    executor: Executor | None = None,
    cache_url: str | None = None,
    storage_options: dict[str, Any] | None = None,
    codec: str | None = None,
    *,
    mirror: str | None = None,
    verify: bool = True,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> dict[str, Any]:
    """Prepare dataset ``name`` into ``<root>/<name>.zarr`` and return the cache's summary.

    ``source`` takes the dataset from your own copies instead of its mirrors: a local archive or any
    fsspec URL, a local folder holding the downloaded archives (under their published names), or an
    extracted folder; a list gives several (N-MNIST's ``Train.zip`` and ``Test.zip``). ``mirror`` is
    a base URL serving the published files under their names (``<mirror>/Train.zip``). ``verify``
    False accepts an archive whose checksum differs from the published one (recorded in the cache's
    ``source_checksums`` as unverified, with its sha256). ``retry`` times network reads (timeouts,
    back-off; a host unreachable on the first request fails at once).
    ``root`` is a local folder: archives are downloaded and extracted below ``<root>/raw/<name>``.
    ``cache_url`` puts the cache elsewhere, e.g. ``s3://bucket/prefix`` (the cache is then
    ``<cache_url>/<name>.zarr``), with fsspec ``storage_options``. ``executor`` (e.g. dask's
    ``client.get_executor()``) runs the decode and commit tasks instead of ``workers`` local
    processes; its workers must see the extracted folder at the same path (shared disk) and reach
    the cache. ``progress`` shows bars on stderr (None: only on a terminal); ``callback`` gets one
    JSON-ready dict per step and per decoded part (see :mod:`neurodata.datasets.progress`).
    ``codec`` compresses the cache's events: ``"zstd"`` (smaller) or ``"lz4"`` (faster to read);
    None keeps the codec of a finished cache already at the store (so a cache prepared with
    another codec, or before zstd became the default, is reused, not rebuilt), else ``"zstd"``.
    Concurrent runs for the same cache from one machine take turns (a lock file in ``root``).
    ``options`` picks the dataset's variants (its ``options``, e.g. CIFAR10-DVS's ``{"split":
    "seeded"}``; omitted ones take their defaults); non-default ones are part of the cache's name.
    """
    spec = get_dataset(name)
    options = spec.resolve_options(options)
    if root is not None and "://" in os.fspath(root):
        raise NeurodataError(
            f"root {os.fspath(root)!r}: must be a local folder (archives are extracted there); "
            "put the cache on a remote store with cache_url (--cache-url)"
        )
    root = Path(root) if root else default_root()
    store_name = cache_name(name, options, {k: v[0] for k, v in spec.options.items()})
    store = f"{cache_url.rstrip('/')}/{store_name}" if cache_url else str(root / store_name)
    start = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    sources = Sources.of(source, mirror=mirror, verify=verify, retry=retry)
    waiting = functools.partial(emit_stage, callback, "wait", reason="another prepare of this cache is running")
    with file_lock(root / f".{store_name}.prepare.lock", on_wait=waiting, remove=True):
        folder, checksums = obtain_folder(spec, sources, root / "raw" / name, show_bar(progress), callback)
        units: dict[str, list[Unit]] = {}
        for unit in spec.plan(folder, options):
            units.setdefault(unit.split, []).append(unit)
        attrs = {
            "dataset": spec.title,
            "rules_version": spec.rules_version,
            "options": options,
            "sensor_size": list(spec.geometry(options)),
            "class_names": list(spec.class_names),
            "source_checksums": checksums,
            "notes": spec.notes,
        }
        parts = {split: len(u) for split, u in units.items()}
        codec = codec or finished_codec(store, storage_options) or DEFAULT_CODEC
        builder = CacheBuilder(store, name, attrs, parts, storage_options=storage_options, codec=codec)
        make_part = functools.partial(decode_part, name, str(folder), units, options)
        emit_stage(
            callback,
            "decode",
            parts=sum(parts.values()),
            workers=workers if executor is None else type(executor).__name__,
        )
        tracker = DecodeProgress(callback, show_bar(progress))
        try:
            build_cache(builder, make_part, workers=workers, executor=executor, on_part_done=tracker)
        finally:
            tracker.close()
    summary = cache_info(store, storage_options)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    emit_stage(callback, "done", store=store)
    return summary
