"""Build a dataset cache from independent parts, in parallel, resumably, and commit it atomically.

A build has two phases, both split into independent tasks that any ``concurrent.futures``
executor runs (a ``ProcessPoolExecutor`` on one machine, ``dask.distributed``'s
``client.get_executor()`` across machines; see :mod:`.tasks`):

1. **Parts** (:mod:`.staging`). The caller plans each split as ``n`` parts (groups of samples). Each
   part is decoded by the caller's ``make_part(split, index)`` and written by
   :meth:`CacheBuilder.write_part` into a staging area ``<root>.build/parts/<split>/<index>/``.
   :meth:`CacheBuilder.start` lists the parts not staged yet, so a killed build resumes where it
   stopped.
2. **Commit.** :meth:`CacheBuilder.commit` picks each event column's stored dtype from the parts'
   value ranges (:mod:`.time_coding`) and its codec and filter (:mod:`.arrays`), then one task per
   shard (4 Mi events; the longest first) copies its event range out of the parts into the final
   sharded, compressed arrays (:mod:`.shard_tasks`) while this process lays out the arrays'
   metadata and the per-sample arrays. ``manifest.json`` and finally the root
   ``zarr.json`` carrying the ``complete`` marker follow. On local disk the final tree is assembled
   in ``<root>.build/final`` and renamed to ``<root>``; on object stores it is written in place and
   the marker comes last.

What a build is, and the fingerprint that tells its parts and caches from others, is :mod:`.plan`.
Concurrent builders of the same cache are safe: parts are staged idempotently and commits are
serialised by an ``flock`` on ``<root>.lock`` (local disk).

A full disk raises one :class:`~neurodata.diskspace.DiskFullError` naming the cache and the space
needed. Staged parts stay (a rerun with space resumes from them); the part being written and a
half-assembled final tree are removed. On local disk the commit first checks that the staged parts'
size is free: the final tree takes at most that (its codecs compress at least as well as the parts'
LZ4), so a commit that cannot fit fails before writing.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ..diskspace import disk_full_as_error, require_space
from ..localfs import replace_tree
from ..workers import process_pool
from .arrays import PROBE_CHUNKS, EventFormat, choose_codings, create_splits, split_totals
from .errors import CacheError
from .layout import (
    ATTRS_KEY,
    DEFAULT_CHUNK_EVENTS,
    DEFAULT_CODEC,
    DEFAULT_SHARD_EVENTS,
    EVENT_FIELDS,
    MANIFEST_KEY,
    manifest_bytes,
    root_attrs,
)
from .parts import read_span
from .plan import PLAN_NAME, BuildPlan, read_marker
from .rows import Placement, place_samples
from .shard_tasks import PartSpan, SplitTarget, plan_shards, write_shard
from .staging import PartData, part_is_done, read_records, stage_part
from .store import Location, checksum_files, commit_lock, crc32c_hex
from .tasks import run_tasks
from .time_coding import stored_dtypes

Records = dict[str, list[dict[str, Any]]]  # split -> the done.json of each of its staged parts
# Staged frames per shard: a part straddling two shards is read by both, and each reads only the
# frames it needs (whole frames decode straight into the shard's arrays); smaller frames save
# little more and make more files.
FRAMES_PER_SHARD = 8


@dataclass(frozen=True)
class PartDone:
    """Progress of a build: part ``index`` of ``split`` (``n_events`` events) is staged; ``done`` of the
    ``pending`` parts this build writes are staged so far."""

    split: str
    index: int
    n_events: int
    done: int
    pending: int


class CacheBuilder:
    """Writes one dataset cache: a plan of parts per split, then parts (any order, any process), then commit.

    ``parts`` maps each split to its number of parts (0 makes an empty split). ``attrs`` are the
    caller's JSON-serialisable dataset attributes (e.g. ``rules_version``, ``sensor_size``,
    ``class_names``, ``source_checksums``). With ``name``, ``parts``, the chunking (``chunk_events``
    per compressed chunk, ``shard_events`` per stored shard) and the ``codec`` (``"lz4"`` or
    ``"zstd"``, see :func:`~neurodata.cache.arrays.event_compressor`) they form the fingerprint:
    staged parts or a finished cache with another fingerprint are stale, and a finished cache with
    another fingerprint is replaced only with ``overwrite=True``. So do ``align_samples`` (False:
    samples back to back, see :mod:`.rows`) and ``pack_polarities`` (False: a ``p`` column even
    where the polarities could ride in the times, see :mod:`.codecs`). The builder holds no open
    handles, so it pickles into worker processes. ``store_url`` is the cache's local path or fsspec
    URL, opened with ``storage_options``.
    """

    def __init__(
        self,
        store_url: str | os.PathLike,
        name: str,
        attrs: dict[str, Any],
        parts: dict[str, int],
        *,
        storage_options: dict[str, Any] | None = None,
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
        shard_events: int = DEFAULT_SHARD_EVENTS,
        codec: str = DEFAULT_CODEC,
        align_samples: bool = True,
        pack_polarities: bool = True,
        overwrite: bool = False,
    ):
        plan = BuildPlan(
            name=name,
            attrs=attrs,
            parts=parts,
            chunk_events=chunk_events,
            shard_events=shard_events,
            codec=codec,
            align_samples=align_samples,
            pack_polarities=pack_polarities,
        )
        self.plan = plan.checked(f"{store_url}")  # the settings, as ``self.plan.<name>``
        self.root = Location(store_url, storage_options)
        self.staging = self.root.sibling(".build")
        self.overwrite = overwrite
        self.fingerprint = self.plan.fingerprint
        self.finished_fingerprints = self.plan.finished_fingerprints(overwrite)

    # ---- state -------------------------------------------------------------------------------
    def is_complete(self) -> bool:
        """True when a finished cache of this build is at the store URL (this builder's fingerprint,
        or without ``overwrite`` the same build in layout 1, 2 or 3)."""
        marker = read_marker(self.root)
        return bool(
            marker and marker.get("complete") and marker.get("fingerprint") in self.finished_fingerprints
        )

    def _part_location(self, split: str, index: int) -> Location:
        parts = self.plan.parts
        if split not in parts or not 0 <= index < parts[split]:
            raise CacheError(f"{self.root.url}: no part {index} in split {split!r} (plan: {parts})")
        return self.staging.child("parts", split, f"{index:06d}")

    def part_done(self, split: str, index: int, verify: bool = True) -> bool:
        """Whether part ``index`` of ``split`` is staged completely (``verify``: and its files still match their checksums)."""
        return part_is_done(self._part_location(split, index), verify)

    def _part_verified(self, part: tuple[str, int]) -> bool:
        return self.part_done(*part)

    def start(self, executor: Executor | None = None) -> list[tuple[str, int]]:
        """Prepare the staging area and return the parts still to write (none when the cache is finished).

        Parts staged by an earlier run of the same plan are re-verified (their files against their
        checksums), as ``executor`` tasks when one is given; a staging area begun now has none to
        check. Raises CacheError when a finished cache with another fingerprint is there and
        ``overwrite`` is false. Staged parts from a different plan are discarded.
        """
        with commit_lock(self.root):
            if self.is_complete():
                return []
            marker = read_marker(self.root)
            if marker and marker.get("complete") and not self.overwrite:
                raise CacheError(
                    f"{self.root.url}: holds a finished cache built with other rules or attributes "
                    "(fingerprint differs); delete it to rebuild it there (CacheBuilder: overwrite=True), or build under another root"
                )
            staged_for = self.staging.read_json(PLAN_NAME)
            if staged_for is not None and staged_for.get("fingerprint") != self.fingerprint:
                self.staging.remove()
            resuming = staged_for is not None and staged_for.get("fingerprint") == self.fingerprint
            if not resuming:
                self.staging.write_json(
                    {"fingerprint": self.fingerprint, "name": self.plan.name, "parts": self.plan.parts},
                    PLAN_NAME,
                )
        planned = self.plan.planned_parts()
        if not resuming:  # parts are staged only after their plan: a staging area begun now holds none
            return planned
        done = run_tasks(executor, self._part_verified, planned)
        return [part for part, is_done in zip(planned, done) if not is_done]

    # ---- phase 1: parts ----------------------------------------------------------------------
    def write_part(self, split: str, index: int, data: PartData) -> None:
        """Stage ``data`` as part ``index`` of ``split``; safe to call again or from several processes (identical results)."""
        target = self._part_location(split, index)
        data = data.validated(f"{self.root.url}: split {split!r} part {index}")
        stage_part(target, data, max(1, self.plan.shard_events // FRAMES_PER_SHARD))

    # ---- phase 2: commit ---------------------------------------------------------------------
    def commit(self, executor: Executor | None = None) -> str:
        """Assemble the staged parts into the final cache and mark it complete; returns the store URL.

        Shards are written by ``executor`` tasks when one is given. A no-op when the cache is
        already finished (e.g. by a concurrent builder); CacheError when parts are missing.
        """
        with commit_lock(self.root):
            if not self.is_complete():
                self._commit_checked(executor)
            self.staging.remove()
        return self.root.url

    def _commit_checked(self, executor: Executor | None) -> None:
        """Commit when the staged parts' size is free; a failed local commit removes its final tree."""
        locations = {
            split: [self._part_location(split, i) for i in range(n)] for split, n in self.plan.parts.items()
        }
        staged = read_records(locations, self.root.url)
        if not self.root.is_local:
            self._commit_locked(staged, executor)
            return
        needed = sum(entry[0] for done in staged.values() for d in done for entry in d["files"].values())
        require_space(self.root.path, needed)
        try:
            with disk_full_as_error(self.root.url, needed):
                self._commit_locked(staged, executor)
        except BaseException:
            from .zarr_compat import settle_writes

            settle_writes()  # zarr's sibling writes of a failed group land first
            self.staging.child("final").remove()  # scratch: frees its space; a rerun rebuilds it
            raise

    def _commit_locked(self, staged: Records, executor: Executor | None) -> None:
        from .zarr_compat import sync  # zarr: the commit phase only (parts are staged without it)

        marker = read_marker(self.root)
        if self.root.exists() and not (self.overwrite or (marker and not marker.get("complete"))):
            raise CacheError(
                f"{self.root.url}: exists and is not a finished cache of this build; pass overwrite=True"
            )
        target = self.staging.child("final") if self.root.is_local else self.root
        target.remove()
        placements = {
            split: place_samples(
                [c for d in done for c in d["counts"]], self.plan.chunk_events, self.plan.align_samples
            )
            for split, done in staged.items()
        }
        events = self._event_format(staged, placements)
        splits = {split: split_totals(p) for split, p in placements.items()}
        attrs = dict(
            fingerprint=self.fingerprint,
            chunk_events=self.plan.chunk_events,
            shard_events=self.plan.shard_events,
            codec=self.plan.codec,
            event_dtypes={f: d.str for f, d in events.dtypes.items()},
            time_coding=events.time_coding,
        )
        root = target.open_group("w")
        root.attrs[ATTRS_KEY] = root_attrs(
            self.plan.name, self.plan.attrs, splits, manifest_crc32c=None, complete=False, **attrs
        )
        tasks = []
        for split, records in staged.items():
            split_target = SplitTarget(
                url=target.url,
                storage_options=self.root.storage_options,
                split=split,
                chunk_events=placements[split].chunk_events,
                events=events,
            )
            tasks += plan_shards(split_target, placements[split], self._part_spans(split, records))
        tasks.sort(key=lambda task: task.stop - task.start, reverse=True)  # the longest first: workers end together
        checksums: dict[str, list] = {}
        # the splits' metadata and per-sample arrays are laid out while the workers write the shards
        # (zarr creates a node beside existing chunk files; the final tree is visible only at the end)
        for result in run_tasks(
            executor, write_shard, tasks, meanwhile=lambda: sync(create_splits(target, staged, placements, events))
        ):
            checksums.update(result)
        rest = sorted(k for k in target.files() if k not in checksums and k != "zarr.json")
        checksums.update(checksum_files(target, rest))
        manifest = manifest_bytes(checksums)
        target.write_bytes(manifest, MANIFEST_KEY)
        root.attrs[ATTRS_KEY] = root_attrs(
            self.plan.name,
            self.plan.attrs,
            splits,
            manifest_crc32c=crc32c_hex(manifest),
            complete=True,
            **attrs,
        )
        if self.root.is_local:
            aside = self.staging.child(f"old-{uuid.uuid4().hex[:8]}")
            replace_tree(target.path, self.root.path, aside.path)

    def _event_format(self, staged: Records, placements: dict[str, Placement]) -> EventFormat:
        """The time coding, stored dtypes and codings of the event columns, from the staged parts."""
        time_coding, dtypes = stored_dtypes(
            [d["ranges"] for done in staged.values() for d in done], self.plan.pack_polarities
        )
        first = next(
            ((split, i, d) for split, done in staged.items() for i, d in enumerate(done) if d["n_events"]),
            None,
        )
        probe, chunk_events = None, self.plan.chunk_events
        if first is not None:
            split, index, record = first
            chunk_events = placements[split].chunk_events
            stop = min(record["n_events"], PROBE_CHUNKS * chunk_events)
            location = self._part_location(split, index)
            columns = read_span(location, record["frame_events"], record["staged_dtypes"], 0, stop)
            probe = dict(zip(EVENT_FIELDS, columns))
        codings = choose_codings(probe, dtypes, time_coding, self.plan.codec, chunk_events, self.root.url)
        return EventFormat(
            time_coding=time_coding, dtypes=dtypes, codings=codings, shard_events=self.plan.shard_events
        )

    def _part_spans(self, split: str, records: list[dict[str, Any]]) -> list[PartSpan]:
        """Where each staged part of ``split`` is and which of the split's events it holds."""
        starts = np.concatenate([[0], np.cumsum([d["n_events"] for d in records], dtype=np.int64)])
        return [
            PartSpan(
                url=self._part_location(split, i).url,
                start=int(starts[i]),
                stop=int(starts[i + 1]),
                frame_events=d["frame_events"],
                dtypes=tuple(d["staged_dtypes"]),
            )
            for i, d in enumerate(records)
        ]


def _build_part(
    builder: CacheBuilder, make_part: Callable[[str, int], PartData], part: tuple[str, int]
) -> int:
    """Decode and stage one part; its number of events (0 when a concurrent builder finished first)."""
    if builder.is_complete():  # a concurrent builder finished meanwhile
        return 0
    data = make_part(*part)
    builder.write_part(*part, data)
    return len(data.events)


def build_cache(
    builder: CacheBuilder,
    make_part: Callable[[str, int], PartData],
    *,
    executor: Executor | None = None,
    workers: int = 1,
    on_part_done: Callable[[PartDone], None] | None = None,
    rounds: Callable[[list[tuple[str, int]]], Iterable[list[tuple[str, int]]]] | None = None,
) -> str:
    """Write every pending part of ``builder`` with ``make_part(split, index)`` and commit; returns the store URL.

    ``make_part`` must be picklable (a module-level function or a ``functools.partial`` of one) when
    it runs in other processes. Give an ``executor`` (e.g. dask's ``client.get_executor()``) or a
    number of local ``workers`` (:func:`neurodata.workers.process_pool`: they end if this process
    dies); both phases use it.
    ``on_part_done(PartDone)`` is called in this process as each pending part is staged (in completion
    order), e.g. to show progress; parts staged by an earlier run count in neither ``done`` nor ``pending``.
    ``rounds(pending)``, when given, yields the pending parts in groups that can be built one after
    the other (an archive streamed front to back brings its members in a memory budget at a time);
    each group is built before the next is asked for.
    """
    own = executor is None and workers > 1
    if own:
        executor = process_pool(workers)
    try:
        with disk_full_as_error(builder.root.url):
            return _build(builder, make_part, executor, on_part_done, rounds or (lambda pending: [pending]))
    finally:
        if own:
            executor.shutdown()


def _build(
    builder: CacheBuilder,
    make_part: Callable[[str, int], PartData],
    executor: Executor | None,
    on_part_done: Callable[[PartDone], None] | None,
    rounds: Callable[[list[tuple[str, int]]], Iterable[list[tuple[str, int]]]],
) -> str:
    """The two phases of :func:`build_cache` on a ready executor (or None: in this process)."""
    pending = builder.start(executor)
    if not pending and builder.is_complete():
        return builder.root.url
    finished = 0
    build = partial(_build_part, builder, make_part)
    for group in rounds(pending):

        def report(k: int, n_events: int, group: list[tuple[str, int]] = group) -> None:
            nonlocal finished
            finished += 1
            on_part_done(PartDone(*group[k], n_events, finished, len(pending)))

        # the commit's modules (zarr) load here while the workers stage the first group's parts
        meanwhile = _import_commit_modules if executor is not None else None
        run_tasks(executor, build, group, on_done=report if on_part_done else None, meanwhile=meanwhile)
    return builder.commit(executor)


def _import_commit_modules() -> None:
    """Import zarr (through :mod:`.zarr_compat`), which staging parts does not need."""
    importlib.import_module(".zarr_compat", __package__)
