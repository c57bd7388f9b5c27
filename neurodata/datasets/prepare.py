"""``prepare``: from a dataset's published archives to a verified Zarr cache, resumably.

Steps: obtain the archives (download with verification, or take ``source``: a local archive, an
extracted folder or any fsspec URL), extract them (each atomically), locate the dataset inside,
plan independent work units, decode them in parallel into cache parts, commit. Every step can be
interrupted; running ``prepare`` again continues where it stopped.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..cache import CacheBuilder, PartData, build_cache, cache_info
from ..errors import NeurodataError
from .download import download
from .extract import extract
from .paths import cache_name, default_root
from .registry import DatasetSpec, Unit, get_dataset
from .resource import Resource

Callback = Callable[[dict[str, Any]], None]


def _emit(callback: Callback | None, stage: str, **fields) -> None:
    if callback:
        callback({"stage": stage, **fields})


def obtain_folder(spec: DatasetSpec, source: str | None, raw: Path, progress: bool, callback: Callback | None):
    """The extracted dataset folder and the checksums of the archives it came from."""
    checksums: dict[str, dict[str, str]] = {}
    if source and "://" not in source and Path(source).is_dir():
        return spec.locate(Path(source)), checksums
    if source:
        name = os.path.basename(source.split("?")[0].rstrip("/")) or "archive"
        resources = [Resource(name, md5=spec.expected_md5(name), urls=(source,))]
    elif spec.manual_download:
        raise NeurodataError(spec.manual_download)
    else:
        resources = list(spec.resources)
    downloads = raw / "downloads"
    extracted = raw / "extracted"
    for resource in resources:
        _emit(callback, "download", file=resource.filename)
        fetched = download(resource, downloads, progress=progress, callback=callback)
        checksums[resource.filename] = {"md5": fetched.md5, "sha256": fetched.sha256}
        _emit(callback, "extract", file=resource.filename)
        extract(fetched.path, extracted / resource.filename.split(".")[0], progress=progress)
    if not extracted.is_dir():
        raise NeurodataError(f"{spec.name}: nothing was extracted from {', '.join(r.filename for r in resources)}")
    return spec.locate(extracted), checksums


def decode_part(name: str, folder: str, units: dict[str, list[Unit]], options: dict, split: str, index: int) -> PartData:
    """Decode one unit into cache part data (module-level so worker processes can run it)."""
    spec = get_dataset(name)
    samples = spec.decode(Path(folder), units[split][index], options)
    return PartData.from_samples((s.events, s.label, s.source) for s in samples)


def prepare(
    name: str,
    source: str | None = None,
    root: str | os.PathLike | None = None,
    workers: int = 1,
    options: dict[str, str] | None = None,
    progress: bool = True,
    callback: Callback | None = None,
    executor=None,
) -> dict[str, Any]:
    """Prepare dataset ``name`` into ``<root>/<name>.zarr`` and return the cache's summary."""
    spec = get_dataset(name)
    options = spec.resolve_options(options)
    root = Path(root) if root else default_root()
    store = root / cache_name(name, options, {k: v[0] for k, v in spec.options.items()})
    start = time.perf_counter()
    folder, checksums = obtain_folder(spec, source, root / "raw" / name, progress, callback)
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
        "neurodata_version": __version__,
        "notes": spec.notes,
    }
    builder = CacheBuilder(store, name, attrs, {split: len(u) for split, u in units.items()})
    make_part = functools.partial(decode_part, name, str(folder), units, options)
    _emit(callback, "decode", parts=sum(len(u) for u in units.values()), workers=workers)
    build_cache(builder, make_part, workers=workers, executor=executor)
    summary = cache_info(str(store))
    summary["seconds"] = round(time.perf_counter() - start, 2)
    _emit(callback, "done", store=str(store))
    return summary
