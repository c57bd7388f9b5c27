"""``prepare``: from a dataset's published archives to a verified Zarr cache, resumably.

Steps: obtain the archives (download with verification, or verify the user's copies where they
are; see :mod:`neurodata.datasets.sources`), open them in place (:mod:`neurodata.datasets.trees`:
zip and tar members are read straight from the archive; RAR and 7z are extracted by a tool), locate
the dataset inside, plan independent work units, decode them in parallel into cache parts, commit.
Every step can be interrupted; running ``prepare`` again continues where it stopped.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import shutil
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

# the cache's names load on first use: the warm-up thread imports the writer while the archives are listed
from .. import cache
from ..cache.layout import DEFAULT_CODEC
from ..errors import NeurodataError
from ..localfs import cache_name, default_root, file_lock
from ..network import DEFAULT_RETRY, RetryPolicy
from .progress import DecodeProgress, emit_stage, show_bar
from .registry import Unit, get_dataset
from .resource import Callback
from .sources import Sources, obtain_tree

WARM_MODULES = ("neurodata.cache.writer", "neurodata.datasets.decoding")
"""What stages the cache's parts (Numba and the format decoders with them), imported by :func:`warm_up`;
zarr, which only the commit needs, is imported while the workers decode (see ``build_cache``)."""


def warm_up(formats: Sequence[str], imported: threading.Event) -> None:
    """Import :data:`WARM_MODULES`, set ``imported``, then load the Numba kernels that decode
    ``formats`` (:func:`~.decoding.warm_decoders`): run on a thread while the archives are hashed and
    listed. A failure is left for the build to meet and name.

    Args:
        formats: Event format names.
        imported: Set once the imports are over (failed or not): the caller waits for it before it
            imports any of those modules itself, so that two threads never import one module at once.
    """
    # Only a head start: a failed import leaves nothing in sys.modules, so the build's own import
    # (or kernel load) meets the same problem again and names it; here it is not reported twice.
    try:
        with contextlib.suppress(Exception):
            for module in WARM_MODULES:
                importlib.import_module(module)
    finally:
        imported.set()
    with contextlib.suppress(Exception):
        importlib.import_module(".decoding", __package__).warm_decoders(formats)


def finished_codec(store: str, storage_options: dict[str, Any] | None) -> str | None:
    """The event codec of the finished cache at ``store``, opened with fsspec ``storage_options``
    (None: no finished cache there)."""
    # small JSON reads (no zarr): the warm-up thread imported these modules while the archive was listed
    from ..cache.plan import read_marker
    from ..cache.store import Location

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
    keep_raw: bool = False,
) -> dict[str, Any]:
    """Prepare dataset ``name`` into ``<root>/<name>.zarr`` and return the cache's summary.

    ``source`` takes the dataset from your own copies instead of its mirrors: a local archive or any
    fsspec URL, a local folder holding the downloaded archives (under their published names), or an
    extracted folder; a list gives several (N-MNIST's ``Train.zip`` and ``Test.zip``). ``mirror`` is
    a base URL serving the published files under their names (``<mirror>/Train.zip``). ``verify``
    False accepts an archive whose checksum differs from the published one (recorded in the cache's
    ``source_checksums`` as unverified, with its sha256). ``retry`` times network reads (timeouts,
    back-off; a host unreachable on the first request fails at once).
    ``root`` is a local folder: archives are downloaded below ``<root>/raw/<name>/downloads``; a local
    archive is read where it is. Zip and tar members are decoded straight from the archive (no copy,
    no extracted tree); archives that need an external tool (RAR, 7z) are extracted below
    ``<root>/raw/<name>/extracted`` and that tree is removed once the cache is built, unless
    ``keep_raw``. ``cache_url`` puts the cache elsewhere, e.g. ``s3://bucket/prefix`` (the cache is then
    ``<cache_url>/<name>.zarr``), with fsspec ``storage_options``. ``executor`` (e.g. dask's
    ``client.get_executor()``) runs the decode and commit tasks instead of ``workers`` local
    processes; every archive is then extracted, as its workers must see the files at the same path
    (shared disk), and they must reach the cache. A compressed tar streams through this process;
    its workers are forked after each memory budget of members is read (threads where processes
    do not fork). ``progress`` shows bars on stderr (None: only on a terminal); ``callback`` gets one
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
    if workers < 1:
        raise NeurodataError(f"workers: {workers} is not a number of processes (give 1 or more)")
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
    local = spec.decodes if executor is None else ()  # an executor's workers load their own
    imported = threading.Event()
    warming = threading.Thread(target=warm_up, args=(local, imported), name="neurodata-warm", daemon=True)
    warming.start()
    waiting = functools.partial(emit_stage, callback, "wait", reason="another prepare of this cache is running")
    with file_lock(root / f".{store_name}.prepare.lock", on_wait=waiting, remove=True):
        obtained = obtain_tree(
            spec, sources, root / "raw" / name, show_bar(progress), callback, extract_all=executor is not None
        )
        imported.wait()  # the warm-up thread imported these while the archives were listed
        from .decoding import decode_part, streamed_executor, streamed_rounds

        tree = obtained.tree
        units: dict[str, list[Unit]] = {}
        for unit in spec.plan(tree, obtained.base, options):
            units.setdefault(unit.split, []).append(unit)
        attrs = {
            "dataset": spec.title,
            "rules_version": spec.rules_version,
            "options": options,
            "sensor_size": list(spec.geometry(options)),
            "class_names": list(spec.class_names),
            "source_checksums": obtained.checksums,
            "notes": spec.notes,
        }
        parts = {split: len(u) for split, u in units.items()}
        codec = codec or finished_codec(store, storage_options) or DEFAULT_CODEC
        builder = cache.CacheBuilder(store, name, attrs, parts, storage_options=storage_options, codec=codec)
        make_part = functools.partial(decode_part, name, tree, units, options)
        streamed = streamed_executor(tree, workers) if executor is None else None
        emit_stage(
            callback,
            "decode",
            parts=sum(parts.values()),
            workers=workers if executor is None else type(executor).__name__,
        )
        tracker = DecodeProgress(callback, show_bar(progress))
        warming.join()  # before workers fork, so that they inherit the loaded kernels
        try:
            with streamed or contextlib.nullcontext(executor) as run_on:
                refresh = getattr(run_on, "refresh", lambda: None)
                cache.build_cache(
                    builder,
                    make_part,
                    workers=workers,
                    executor=run_on,
                    on_part_done=tracker,
                    rounds=streamed_rounds(tree, units, refresh),
                )
        finally:
            tracker.close()
        if not keep_raw:
            for folder in obtained.scratch:
                shutil.rmtree(folder, ignore_errors=True)
    summary = cache.cache_info(store, storage_options)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    emit_stage(callback, "done", store=store)
    return summary
