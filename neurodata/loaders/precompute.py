"""Compute a representation for every sample of a cache once and store it beside the events.

:func:`precompute` writes ``<store>/representations/<key>/<split>`` (layout in :mod:`.precomputed`)
in parallel: tasks cover whole shards of the ``data`` array, so no two tasks touch one stored
object. On local disk a split is written under a temporary name and renamed into place; on object
stores it is written in place and the ``complete`` marker is set last. Loaders then read the stored
arrays whenever the same spec is asked for (``neurodata.load(..., representation=...)``).

Integer representations are stored in the narrowest integer dtype that holds every value of the split
(:func:`stored_dtype`; DVS count frames fit uint8 or uint16, a quarter or half of int32's bytes) and
widened back to the representation's dtype on read. The dtype is guessed from the first sample; each
task checks every value of its shard against it and writes nothing that does not fit, and when any
shard did not fit the split is written again in the dtype that holds all ranges seen (never a wrap).

On local disk the temporary folder (``<split>.tmp-<pid>-<random>``) is locked while it is written, so a
run removes those of runs that died (:func:`neurodata.localfs.locked_temporary`); a full disk fails
at once when the first sample, compressed, times the samples exceeds the free space, and otherwise
where it strikes, with one :class:`~neurodata.diskspace.DiskFullError` and the temporary removed.
Value ranges, narrowing, the task runner and the publishing rename are the cache writer's
(:mod:`neurodata.cache.narrowing`, :mod:`neurodata.cache.tasks`, :func:`neurodata.localfs.replace_tree`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from numcodecs import Blosc
from zarr.codecs import BloscCodec

from ..cache.arrays import checksummed
from ..cache.narrowing import ValueRange, fits, merge_ranges, narrowest, value_range
from ..cache.store import Location
from ..cache.tasks import run_tasks
from ..diskspace import disk_full_as_error, require_space
from ..events import empty_events
from ..localfs import locked_temporary, remove_stale_temporaries, replace_tree
from ..workers import process_pool
from .precomputed import ATTRS_KEY, is_usable, read_marker, representation_location
from .representation import representation_spec, resolve_representation, spec_key
from .source import SplitSource, naming_samples, resolve_store

TARGET_SHARD_BYTES = 8 << 20
FRAMES_CNAME, FRAMES_CLEVEL = "lz4hc", 5  # Blosc's compressor of stored representations
# integer dtypes a stored representation may narrow to, narrowest first (none wider than its own)
NARROW_INTS = tuple(np.dtype(d) for d in ("uint8", "int8", "uint16", "int16", "uint32", "int32"))


def stored_dtype(dtype: np.dtype, values: ValueRange | tuple[int, int]) -> np.dtype:
    """The narrowest of :data:`NARROW_INTS` narrower than integer ``dtype`` holding ``values``, else
    ``dtype`` itself (float and bool representations, or values that need the full width)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        return dtype
    return narrowest([d for d in NARROW_INTS if d.itemsize < dtype.itemsize], values) or dtype


def shard_samples(sample_bytes: int) -> int:
    """Samples per stored shard (and per task) for samples of ``sample_bytes``: about
    :data:`TARGET_SHARD_BYTES` uncompressed."""
    return int(np.clip(TARGET_SHARD_BYTES // max(sample_bytes, 1), 1, 256))


def compute_range(source: SplitSource, representation: Callable, start: int, stop: int) -> np.ndarray:
    """The ``representation`` of samples ``start:stop`` of ``source``, stacked; ValueError when
    shapes differ."""
    with naming_samples(start, stop):
        samples = source.samples(start, stop)
    outputs = [np.asarray(representation(events)) for events in samples]
    shapes = {o.shape for o in outputs}
    if len(shapes) > 1:
        raise ValueError(
            f"{source.url}: samples {start}:{stop} of split {source.split!r} give shapes {sorted(shapes)}; "
            "only fixed-shape representations (n_time_bins, n_event_bins, images, voxel grids) can be stored"
        )
    return np.stack(outputs)


@dataclass(frozen=True)
class SplitJob:
    """What every task of one pass over a split shares: the samples (``source``), the
    ``representation``, and the stored split being written (``target_url`` and fsspec
    ``storage_options``)."""

    source: SplitSource
    representation: Callable
    target_url: str
    storage_options: dict[str, Any]


def _write_range(job: SplitJob, samples: tuple[int, int]) -> tuple[bool, ValueRange]:
    """Compute and store samples ``start:stop``; ``(written, value range)``: not written when a value
    does not fit the stored dtype (the caller then writes the split again, wider)."""
    source, (start, stop) = job.source, samples
    data = compute_range(source, job.representation, start, stop)
    array = Location(job.target_url, job.storage_options).open_group("r+")["data"]
    if data.shape[1:] != array.shape[1:]:
        raise ValueError(
            f"{source.url}: samples {start}:{stop} have shape {data.shape[1:]}, expected {array.shape[1:]}"
        )
    values = value_range(data)
    if not fits(values, array.dtype):
        return False, values
    array[start:stop] = data.astype(array.dtype, copy=False)
    return True, values


def frames_compressor(dtype: np.dtype) -> BloscCodec:
    """Blosc LZ4HC with byte shuffling for ``dtype`` (a no-op for uint8): on DVS128 count frames it decodes faster
    than bit shuffling, for a few more bytes (measured in docs/sections/loaders.md)."""
    return BloscCodec(
        cname=FRAMES_CNAME, clevel=FRAMES_CLEVEL, shuffle="shuffle", typesize=np.dtype(dtype).itemsize
    )


def estimated_bytes(probe: np.ndarray, dtype: np.dtype, n: int) -> int:
    """About what ``n`` samples like ``probe`` take stored in ``dtype``: the probe compressed as each
    stored sample is (one chunk per sample, :func:`frames_compressor`), ``n`` times."""
    sample = np.ascontiguousarray(probe.astype(dtype, copy=False))
    blosc = Blosc(cname=FRAMES_CNAME, clevel=FRAMES_CLEVEL, shuffle=Blosc.SHUFFLE, typesize=dtype.itemsize)
    return n * len(blosc.encode(sample))


def _create(target: Location, n: int, shape: tuple[int, ...], dtype: np.dtype, per_shard: int) -> None:
    group = target.open_group("w")
    group.create_array(
        "data",
        shape=(n, *shape),
        chunks=(1, *shape),
        shards=(per_shard, *shape),
        dtype=dtype,
        fill_value=0,
        compressors=checksummed(frames_compressor(dtype)),
    )


def precompute_split(
    store: str,
    split: str,
    representation: Any,
    *,
    storage_options: dict[str, Any] | None = None,
    executor: Executor | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> str:
    """Store ``representation`` of every sample of one split; returns the stored split's URL.

    A usable stored copy (same spec, same cache build) is kept unless ``overwrite``. ``store`` is
    a cache as :func:`neurodata.loaders.load` takes it, with fsspec ``storage_options``;
    ``executor`` computes shards in parallel (None: in this process); ``progress`` shows a bar.
    """
    from tqdm.auto import tqdm

    source = SplitSource(resolve_store(store), split, storage_options)
    rep = resolve_representation(representation, source.sensor_size)
    spec = representation_spec(rep)
    if spec is None:
        raise ValueError(
            "only representations with a spec (neurodata.transforms objects or spec dicts) can be stored"
        )
    key = spec_key(spec)
    final = representation_location(source.url, key, split, storage_options)
    if final.is_local:
        remove_stale_temporaries(final.path)
    if not overwrite and is_usable(read_marker(final), source):
        return final.url
    n = source.n_samples
    probe = compute_range(source, rep, 0, 1)[0] if n else np.asarray(rep(empty_events()))
    per_shard = shard_samples(probe.nbytes)
    ranges = [(start, min(start + per_shard, n)) for start in range(0, n, per_shard)]
    dtype = stored_dtype(probe.dtype, value_range(probe))
    marker = {
        "spec": spec,
        "key": key,
        "cache_fingerprint": source.attrs.get("fingerprint"),
        "n_samples": n,
        "shape": list(probe.shape),
        "dtype": probe.dtype.str,  # what reads return
    }
    pass_ = SplitPass(source, rep, probe, dtype, per_shard, ranges, marker, dict(storage_options or {}))
    desc = f"{source.attrs.get('name', '')} {split} {key}"
    with tqdm(total=n, unit="sample", desc=desc, disable=not progress) as bar:
        if final.is_local:
            _store_locally(final, pass_, executor, bar)
        else:
            _store_split(final, pass_, executor, bar)
    return final.url


def _store_locally(final: Location, split: SplitPass, executor: Executor | None, bar: Any) -> None:
    """Store ``split`` in a locked temporary folder beside ``final`` and move it into place; fail at
    once when the estimated size exceeds the free space."""
    os.makedirs(os.path.dirname(final.path), exist_ok=True)
    needed = estimated_bytes(split.probe, split.dtype, split.source.n_samples)
    require_space(final.path, needed)
    with disk_full_as_error(final.path, needed), locked_temporary(final.path) as tmp:
        _store_split(Location(tmp, split.storage_options), split, executor, bar)
        replace_tree(tmp, final.path, f"{tmp}.old")


@dataclass(frozen=True)
class SplitPass:
    """What storing one split needs beyond its target: the samples (``source``) and their
    ``representation``, the first sample's output (``probe``), the first ``dtype`` to try, samples
    per shard (``per_shard``), the task ranges, the marker (less ``stored_dtype`` and
    ``complete``) and the fsspec ``storage_options``."""

    source: SplitSource
    representation: Callable
    probe: np.ndarray
    dtype: np.dtype
    per_shard: int
    ranges: list[tuple[int, int]]
    marker: dict[str, Any]
    storage_options: dict[str, Any]


def _store_split(target: Location, split: SplitPass, executor: Executor | None, bar: Any) -> None:
    """Write every range of ``split`` to ``target``, again wider while a value does not fit, then its
    complete marker."""
    ranges, dtype, probe = split.ranges, split.dtype, split.probe
    job = SplitJob(split.source, split.representation, target.url, split.storage_options)

    def advance(k: int, _: tuple[bool, ValueRange]) -> None:
        bar.update(ranges[k][1] - ranges[k][0])

    while True:
        _create(target, split.source.n_samples, probe.shape, dtype, split.per_shard)
        results = run_tasks(executor, partial(_write_range, job), ranges, on_done=advance)
        if all(written for written, _ in results):
            break
        wider = stored_dtype(probe.dtype, merge_ranges([values for _, values in results]))
        if wider == dtype:  # only when samples change dtype (np.stack widened them)
            raise ValueError(f"{split.source.url}: split {split.source.split!r} has values outside {probe.dtype}")
        dtype = wider
        bar.reset()
    marker = {**split.marker, "stored_dtype": dtype.str, "complete": True}
    target.open_group("r+").attrs.update({ATTRS_KEY: marker})


def precompute(
    store: str | os.PathLike,
    representation: Any,
    splits: list[str] | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
    workers: int = 1,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, str]:
    """Store ``representation`` for ``splits`` (default: all) of a cache; split -> stored URL.

    ``store`` is a cache as :func:`neurodata.loaders.load` takes it, with fsspec
    ``storage_options``. ``workers > 1`` computes shards in a process pool
    (:func:`neurodata.workers.process_pool`). ``progress`` shows a bar per split; a usable stored
    copy is kept unless ``overwrite``.
    """
    from ..cache import open_cache

    url = resolve_store(store)
    names = splits or list(open_cache(url, storage_options).splits)
    pool = process_pool(workers) if workers > 1 else None
    try:
        return {
            split: precompute_split(
                url,
                split,
                representation,
                storage_options=storage_options,
                executor=pool,
                progress=progress,
                overwrite=overwrite,
            )
            for split in names
        }
    finally:
        if pool is not None:
            pool.shutdown()
