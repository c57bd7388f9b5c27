"""Build a dataset cache from independent parts, in parallel, resumably, and commit it atomically.

A build has two phases, both split into independent tasks that any ``concurrent.futures``
executor runs (a ``ProcessPoolExecutor`` on one machine, ``dask.distributed``'s
``client.get_executor()`` across machines):

1. **Parts.** The caller plans each split as ``n`` parts (groups of samples). Each part is decoded
   by the caller's ``make_part(split, index)`` and written by :meth:`CacheBuilder.write_part` into a
   staging area ``<root>.build/parts/<split>/<index>/`` (Blosc frames per column, see ``parts.py``,
   plus ``done.json`` with the size and CRC32C of each file and each column's value range,
   written last). A part whose
   ``done.json`` matches its files is finished; :meth:`CacheBuilder.start` lists the others, so a
   killed build resumes where it stopped.
2. **Commit.** :meth:`CacheBuilder.commit` picks each event column's stored dtype from the parts'
   value ranges (:func:`~.layout.narrowest_dtypes`), lays out the final arrays, then one task per shard
   (4 Mi events) copies its event range out of the parts into the final sharded, compressed arrays
   (each shard encoded whole by ``shards.py``, the bytes zarr itself would store).
   The per-sample arrays, ``manifest.json`` and finally the root ``zarr.json`` carrying the
   ``complete`` marker follow. On local disk the final tree is assembled in ``<root>.build/final``
   and renamed to ``<root>``; on object stores it is written in place and the marker comes last.

Concurrent builders of the same cache are safe: local parts appear by directory rename (the loser
of a race discards its copy), parts are deterministic so object-store rewrites put identical bytes,
and commits are serialised by an ``flock`` on ``<root>.lock`` (local disk).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np
from zarr import AsyncGroup
from zarr.core.sync import sync

from ..events import EVENT_DTYPE, as_events
from .codecs import (
    DELTA,
    DELTA_POLARITY,
    encode_times,
    packed_range,
    polarity_packs,
    stored_columns,
    stored_fields,
)
from .errors import CacheError
from .layout import (
    ARRAY_CONFIG,
    ATTRS_KEY,
    DEFAULT_CHUNK_EVENTS,
    DEFAULT_CODEC,
    DEFAULT_SHARD_EVENTS,
    DEFAULT_SHUFFLE,
    EVENT_CODECS,
    EVENT_FIELDS,
    LAYOUT_VERSION,
    MANIFEST_GROUP,
    MANIFEST_KEY,
    RESERVED_ATTRS,
    SAMPLE_CHUNK,
    SAMPLE_DTYPES,
    SAMPLE_FIELDS,
    event_compressor,
    manifest_bytes,
    narrowest_dtypes,
    root_attrs,
    sample_compressor,
    shard_ranges,
    value_range,
)
from .parts import PART_FORMAT, encode_columns, read_span
from .rows import Placement, place_samples, row_pieces
from .shards import Coding, choose_coding, chunk_compressor, encode_shard
from .store import Location, checksum_files, commit_lock, crc32c_hex

PART_DONE = "done.json"
PLAN_NAME = "plan.json"
PROBE_CHUNKS = 4  # chunks of events compressed both ways to choose each column's Blosc filter


@dataclass
class PartData:
    """One work unit: the events of consecutive samples, concatenated, with per-sample facts."""

    events: np.ndarray  # EVENT_DTYPE, the samples one after the other
    counts: np.ndarray  # int64, events per sample
    labels: np.ndarray  # int64, -1 for "no class"
    sources: list[str]  # source file (or file#segment) per sample

    @classmethod
    def from_samples(cls, samples: Iterable[tuple[np.ndarray, int, str]]) -> PartData:
        """Build a part from ``(events, label, source)`` triples."""
        samples = list(samples)
        events = [as_events(np.asarray(e)) for e, _, _ in samples]
        return cls(
            events=np.concatenate(events) if events else np.empty(0, EVENT_DTYPE),
            counts=np.array([len(e) for e in events], dtype=np.int64),
            labels=np.array([int(label) for _, label, _ in samples], dtype=np.int64),
            sources=[str(source) for _, _, source in samples],
        )

    def validated(self, where: str) -> PartData:
        """This part with canonical dtypes, or a CacheError naming ``where`` if its arrays disagree."""
        events = as_events(np.asarray(self.events))
        counts = np.asarray(self.counts, dtype=np.int64).reshape(-1)
        labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if (counts < 0).any():
            raise CacheError(f"{where}: negative event count in 'counts'")
        if int(counts.sum()) != len(events):
            raise CacheError(
                f"{where}: 'counts' sum to {int(counts.sum())} but there are {len(events)} events"
            )
        if not (len(labels) == len(counts) == len(self.sources)):
            raise CacheError(
                f"{where}: {len(counts)} counts, {len(labels)} labels and {len(self.sources)} sources; expected equal"
            )
        return PartData(events, counts, labels, [str(s) for s in self.sources])


@dataclass(frozen=True)
class PartDone:
    """Progress of a build: part ``index`` of ``split`` (``n_events`` events) is staged; ``done`` of the
    ``pending`` parts this build writes are staged so far."""

    split: str
    index: int
    n_events: int
    done: int
    pending: int


def sample_time_bounds(events: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``t_first`` and ``t_last`` of every sample (0 for an empty sample)."""
    ends = np.cumsum(counts)
    starts = ends - counts
    nonempty = counts > 0
    t_first = np.zeros(len(counts), dtype=np.int64)
    t_last = np.zeros(len(counts), dtype=np.int64)
    t_first[nonempty] = events["t"][starts[nonempty]]
    t_last[nonempty] = events["t"][ends[nonempty] - 1]
    return t_first, t_last


def build_fingerprint(
    name: str,
    attrs: dict[str, Any],
    parts: dict[str, int],
    storage: dict[str, Any],
    layout_version: int = LAYOUT_VERSION,
) -> str:
    """A digest of everything that determines the cache's content, to detect stale parts and caches."""
    plan = {
        "layout_version": layout_version,
        "name": name,
        "attrs": attrs,
        "parts": parts,
        "storage": storage,
    }
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()


def read_marker(root: Location) -> dict[str, Any] | None:
    """The ``neurodata_cache`` attribute of the root ``zarr.json``, or None when there is none."""
    meta = root.read_json("zarr.json")
    if not isinstance(meta, dict):
        return None
    attrs = meta.get("attributes", {}).get(ATTRS_KEY)
    return attrs if isinstance(attrs, dict) else None


async def _write_array(group: AsyncGroup, name: str, data: np.ndarray, chunks: int, compressor) -> None:
    """Create one 1-D array and store ``data`` in it (a string array for ``source``)."""
    text = name == "source"
    array = await group.create_array(
        name,
        shape=data.shape,
        dtype=str if text else data.dtype,
        chunks=(chunks,),
        compressors=compressor,
        fill_value="" if text else 0,
        config=ARRAY_CONFIG,
    )
    if data.size:
        await array.setitem(slice(None), data)


def part_record(
    data: PartData, files: dict[str, list], ranges: dict[str, list[int] | None]
) -> dict[str, Any]:
    """``done.json`` of a part: its per-sample columns (small), the checksums of its event files and
    the ``[min, max]`` of each stored (time coded) event column."""
    t_first, t_last = sample_time_bounds(data.events, data.counts)
    return {
        "n_samples": len(data.counts),
        "n_events": len(data.events),
        "counts": data.counts.tolist(),
        "labels": data.labels.tolist(),
        "t_first": t_first.tolist(),
        "t_last": t_last.tolist(),
        "source": data.sources,
        "files": files,
        "ranges": ranges,
    }


def _part_is_done(location: Location, verify: bool) -> bool:
    done = location.read_json(PART_DONE)
    if not isinstance(done, dict) or not isinstance(done.get("files"), dict):
        return False
    if done.get("part_format") != PART_FORMAT:
        return False
    if not verify:
        return True
    files = location.files()
    expected = done["files"]
    if {k: v[0] for k, v in expected.items()} != {k: v for k, v in files.items() if k != PART_DONE}:
        return False
    return checksum_files(location, sorted(expected)) == expected


class CacheBuilder:
    """Writes one dataset cache: a plan of parts per split, then parts (any order, any process), then commit.

    ``parts`` maps each split to its number of parts (0 makes an empty split). ``attrs`` are the
    caller's JSON-serialisable dataset attributes (e.g. ``rules_version``, ``sensor_size``,
    ``class_names``, ``source_checksums``). With ``name``, ``parts``, the chunking (``chunk_events``
    per compressed chunk, ``shard_events`` per stored shard) and the ``codec`` (``"lz4"`` or
    ``"zstd"``, see :func:`~neurodata.cache.layout.event_compressor`) they form the fingerprint:
    staged parts or a finished cache with another fingerprint are stale, and a finished cache with
    another fingerprint is replaced only with ``overwrite=True``. So do ``align_samples`` (False:
    samples back to back, see :mod:`.rows`) and ``pack_polarities`` (False: a ``p`` column even
    where the polarities could ride in the times, see :mod:`.codecs`). The builder holds no open
    handles, so it pickles into worker processes.
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
        clash = RESERVED_ATTRS & set(attrs)
        if clash:
            raise CacheError(f"{store_url}: attribute(s) {sorted(clash)} are reserved by the cache layout")
        try:
            attrs = json.loads(json.dumps(attrs))
        except TypeError as err:
            raise CacheError(f"{store_url}: dataset attributes are not JSON-serialisable ({err})") from err
        bad = [
            s
            for s, n in parts.items()
            if not isinstance(n, int)
            or n < 0
            or not s
            or "/" in s
            or s.startswith(".")
            or s == MANIFEST_GROUP
        ]
        if bad:
            raise CacheError(f"{store_url}: invalid split name or part count for {bad}")
        if shard_events % chunk_events:
            raise CacheError(
                f"{store_url}: shard_events={shard_events} is not a multiple of chunk_events={chunk_events}"
            )
        if codec not in EVENT_CODECS:
            raise CacheError(f"{store_url}: unknown codec {codec!r}; choose one of {sorted(EVENT_CODECS)}")
        self.root = Location(store_url, storage_options)
        self.staging = self.root.sibling(".build")
        self.name = name
        self.attrs = attrs
        self.parts = dict(parts)
        self.chunk_events = chunk_events
        self.shard_events = shard_events
        self.codec = codec
        self.align_samples = align_samples
        self.pack_polarities = pack_polarities
        self.overwrite = overwrite
        storage = {
            "chunk_events": chunk_events,
            "shard_events": shard_events,
            "codec": codec,
            "align_samples": align_samples,
        }
        self.fingerprint = build_fingerprint(
            name, attrs, self.parts, {**storage, "pack_polarities": pack_polarities}
        )
        # the same build finished in layout 1 or 2 (still read) counts as finished too, unless asked
        # to overwrite: upgrading the layout alone does not rebuild a dataset
        layout_1 = {k: v for k, v in storage.items() if k != "align_samples"}
        self.finished_fingerprints = {self.fingerprint}
        if not overwrite:
            self.finished_fingerprints |= {
                build_fingerprint(name, attrs, self.parts, layout_1, layout_version=1),
                build_fingerprint(name, attrs, self.parts, storage, layout_version=2),
            }

    # ---- state -------------------------------------------------------------------------------
    def is_complete(self) -> bool:
        """True when a finished cache of this build is at the store URL (this builder's fingerprint,
        or without ``overwrite`` the same build in layout 1 or 2)."""
        marker = read_marker(self.root)
        return bool(
            marker and marker.get("complete") and marker.get("fingerprint") in self.finished_fingerprints
        )

    def _part_location(self, split: str, index: int) -> Location:
        if split not in self.parts or not 0 <= index < self.parts[split]:
            raise CacheError(f"{self.root.url}: no part {index} in split {split!r} (plan: {self.parts})")
        return self.staging.child("parts", split, f"{index:06d}")

    def part_done(self, split: str, index: int, verify: bool = True) -> bool:
        """Whether a part is staged completely (``verify``: and its files still match their checksums)."""
        return _part_is_done(self._part_location(split, index), verify)

    def start(self, executor: Executor | None = None) -> list[tuple[str, int]]:
        """Prepare the staging area and return the parts still to write (none when the cache is finished).

        Staged parts are re-verified (their files against their checksums), as ``executor`` tasks
        when one is given. Raises CacheError when a finished cache with another fingerprint is there and ``overwrite`` is
        false. Staged parts from a different plan are discarded.
        """
        with commit_lock(self.root):
            if self.is_complete():
                return []
            marker = read_marker(self.root)
            if marker and marker.get("complete") and not self.overwrite:
                raise CacheError(
                    f"{self.root.url}: holds a finished cache built with other rules or attributes "
                    "(fingerprint differs); pass overwrite=True to rebuild it"
                )
            plan = self.staging.read_json(PLAN_NAME)
            if plan is not None and plan.get("fingerprint") != self.fingerprint:
                self.staging.remove()
            if plan is None or plan.get("fingerprint") != self.fingerprint:
                self.staging.write_json(
                    {"fingerprint": self.fingerprint, "name": self.name, "parts": self.parts}, PLAN_NAME
                )
        planned = [(split, index) for split, n in self.parts.items() for index in range(n)]
        done = run_tasks(executor, self.part_done, planned)
        return [part for part, is_done in zip(planned, done) if not is_done]

    # ---- phase 1: parts ----------------------------------------------------------------------
    def write_part(self, split: str, index: int, data: PartData) -> None:
        """Stage one part; safe to call again or from several processes (identical results)."""
        target = self._part_location(split, index)
        data = data.validated(f"{self.root.url}: split {split!r} part {index}")
        if self.root.is_local:
            tmp = target.sibling(f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            self._write_part_into(tmp, data)
            try:
                os.rename(tmp.path, target.path)
            except OSError:  # another builder staged it first (or a stale copy is there)
                shutil.rmtree(tmp.path, ignore_errors=True)
                if not _part_is_done(target, verify=True):
                    shutil.rmtree(target.path, ignore_errors=True)
                    self.write_part(split, index, data)
        else:
            self._write_part_into(target, data)

    def _write_part_into(self, location: Location, data: PartData) -> None:
        # one frame per shard-sized range: few objects per part, and a commit task touches at most two
        offsets = np.concatenate([[0], np.cumsum(data.counts)])
        columns = {"t": encode_times(data.events["t"], offsets)}
        columns.update({f: data.events[f] for f in EVENT_FIELDS[1:]})
        files = encode_columns(columns, self.shard_events)
        location.write_files(files)
        checksums = {k: [len(v), crc32c_hex(v)] for k, v in sorted(files.items())}
        record = part_record(data, checksums, {f: value_range(c) for f, c in columns.items()})
        write_done_marker(location, {**record, "part_format": PART_FORMAT, "frame_events": self.shard_events})

    # ---- phase 2: commit ---------------------------------------------------------------------
    def commit(self, executor: Executor | None = None) -> str:
        """Assemble the staged parts into the final cache and mark it complete; returns the store URL.

        Shards are written by ``executor`` tasks when one is given. A no-op when the cache is
        already finished (e.g. by a concurrent builder); CacheError when parts are missing.
        """
        with commit_lock(self.root):
            if not self.is_complete():
                self._commit_locked(executor)
            self.staging.remove()
        return self.root.url

    def _staged_parts(self) -> dict[str, list[dict[str, Any]]]:
        staged, missing = {}, []
        for split, n in self.parts.items():
            staged[split] = []
            for index in range(n):
                done = self._part_location(split, index).read_json(PART_DONE)
                if done is None:
                    missing.append(f"{split}/{index}")
                staged[split].append(done)
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise CacheError(f"{self.root.url}: cannot commit, {len(missing)} part(s) not staged: {shown}")
        return staged

    def _commit_locked(self, executor: Executor | None) -> None:
        staged = self._staged_parts()
        marker = read_marker(self.root)
        if self.root.exists() and not (self.overwrite or (marker and not marker.get("complete"))):
            raise CacheError(
                f"{self.root.url}: exists and is not a finished cache of this build; pass overwrite=True"
            )
        target = self.staging.child("final") if self.root.is_local else self.root
        target.remove()
        placements = {
            split: place_samples(
                [c for d in done for c in d["counts"]], self.chunk_events, self.align_samples
            )
            for split, done in staged.items()
        }
        splits = {
            split: {
                "n_samples": len(p.rows),
                "n_events": int(p.offsets[-1]),
                "n_rows": p.n_rows,
                "chunk_events": p.chunk_events,
            }
            for split, p in placements.items()
        }
        time_coding, dtypes = stored_dtypes(
            [d["ranges"] for done in staged.values() for d in done], self.pack_polarities
        )
        codings = self._choose_codings(
            staged, dtypes, {s: p.chunk_events for s, p in placements.items()}, time_coding
        )
        attrs = dict(
            fingerprint=self.fingerprint,
            chunk_events=self.chunk_events,
            shard_events=self.shard_events,
            codec=self.codec,
            event_dtypes={f: d.str for f, d in dtypes.items()},
            time_coding=time_coding,
        )
        root = target.open_group("w")
        root.attrs[ATTRS_KEY] = root_attrs(
            self.name, self.attrs, splits, manifest_crc32c=None, complete=False, **attrs
        )
        tasks = []
        for split, done in staged.items():
            placement = placements[split]
            sync(self._layout_split(target, split, done, splits[split], placement, dtypes, codings))
            tasks += self._shard_tasks(target, split, done, placement, dtypes, codings, time_coding)
        checksums: dict[str, list] = {}
        for result in run_tasks(executor, write_shard, tasks):
            checksums.update(result)
        rest = sorted(k for k in target.files() if k not in checksums and k != "zarr.json")
        checksums.update(checksum_files(target, rest))
        manifest = manifest_bytes(checksums)
        target.write_bytes(manifest, MANIFEST_KEY)
        root.attrs[ATTRS_KEY] = root_attrs(
            self.name, self.attrs, splits, manifest_crc32c=crc32c_hex(manifest), complete=True, **attrs
        )
        if self.root.is_local:
            self._publish_local(target)

    def _choose_codings(
        self,
        staged: dict[str, list[dict]],
        dtypes: dict[str, np.dtype],
        chunks: dict[str, int],
        time_coding: str,
    ) -> dict[str, Coding]:
        """Each event column's codec and Blosc filter (:func:`.shards.choose_coding`), measured on
        the first events of the first non-empty part (up to :data:`PROBE_CHUNKS` chunks of its
        split): deterministic, so a resumed commit chooses alike."""
        first = next(
            ((split, i, d) for split, done in staged.items() for i, d in enumerate(done) if d["n_events"]),
            None,
        )
        if first is None:
            return {name: (self.codec, DEFAULT_SHUFFLE) for name in dtypes}
        split, index, record = first
        stop = min(record["n_events"], PROBE_CHUNKS * chunks[split])
        probe = read_span(self._part_location(split, index), record["frame_events"], 0, stop)
        return {
            name: choose_coding(
                narrowed(column, dtypes[name], self.root, name), name, self.codec, chunks[split]
            )
            for name, column in stored_columns(dict(zip(EVENT_FIELDS, probe)), time_coding).items()
        }

    async def _layout_split(
        self,
        target: Location,
        split: str,
        done: list[dict],
        totals: dict[str, int],
        placement: Placement,
        dtypes: dict[str, np.dtype],
        codings: dict[str, Coding],
    ) -> None:
        """Create one split's group and arrays and write its per-sample arrays (concurrently)."""
        root = await target.open_async_group("r+")
        group = await root.create_group(split, attributes=totals)
        merged = {
            name: np.array(
                [v for record in done for v in record[name]], dtype=SAMPLE_DTYPES.get(name, np.int64)
            )
            for name in SAMPLE_FIELDS
        }
        per_sample = {"offsets": placement.offsets, "rows": placement.rows, **merged}
        await asyncio.gather(
            *(
                group.create_array(
                    name,
                    shape=(placement.n_rows,),
                    dtype=dtypes[name],
                    chunks=(placement.chunk_events,),
                    shards=(self.shard_events,),
                    compressors=event_compressor(dtypes[name], *codings[name]),
                    fill_value=0,
                    config=ARRAY_CONFIG,
                )
                for name in dtypes
            ),
            *(
                _write_array(group, name, data, SAMPLE_CHUNK, sample_compressor())
                for name, data in per_sample.items()
            ),
        )

    def _shard_tasks(
        self,
        target: Location,
        split: str,
        done: list[dict],
        placement: Placement,
        dtypes: dict[str, np.dtype],
        codings: dict[str, Coding],
        time_coding: str,
    ) -> list[tuple]:
        """One :func:`write_shard` task per shard of the split: the runs of events it holds (at which
        rows) and the parts it reads them from."""
        part_starts = np.concatenate([[0], np.cumsum([d["n_events"] for d in done], dtype=np.int64)])
        tasks = []
        for start_row, stop_row in shard_ranges(placement.n_rows, self.shard_events):
            pieces = row_pieces(placement.offsets, placement.rows, start_row, stop_row)
            start = pieces[0][1] if pieces else 0
            stop = pieces[-1][1] + pieces[-1][2] if pieces else 0
            spans = [
                (
                    self._part_location(split, i).url,
                    int(part_starts[i]),
                    int(part_starts[i + 1]),
                    done[i]["frame_events"],
                )
                for i in range(len(done))
                if part_starts[i] < stop and part_starts[i + 1] > start
            ]
            tasks.append(
                (
                    target.url,
                    self.root.storage_options,
                    split,
                    start_row,
                    stop_row,
                    [(row - start_row, event - start, count) for row, event, count in pieces],
                    start,
                    stop,
                    spans,
                    placement.chunk_events,
                    self.shard_events,
                    {f: d.str for f, d in dtypes.items()},
                    codings,
                    time_coding,
                )
            )
        return tasks

    def _publish_local(self, final: Location) -> None:
        """Rename the assembled tree to the store path; an old tree (overwrite) is moved aside first."""
        old = None
        if os.path.exists(self.root.path):
            old = self.staging.child(f"old-{uuid.uuid4().hex[:8]}").path
            os.rename(self.root.path, old)
        os.rename(final.path, self.root.path)
        if old:
            shutil.rmtree(old, ignore_errors=True)


def write_done_marker(location: Location, done: dict[str, Any]) -> None:
    """The last write of a part: from here on the part counts as staged."""
    location.write_json(done, PART_DONE)


def write_shard(
    target_url: str,
    storage_options: dict[str, Any],
    split: str,
    start_row: int,
    stop_row: int,
    placement: Sequence[tuple[int, int, int]],
    start: int,
    stop: int,
    spans: Sequence[tuple],
    chunk_events: int,
    shard_events: int,
    dtypes: dict[str, str],
    codings: dict[str, Coding],
    time_coding: str,
) -> dict[str, list]:
    """Commit task: rows ``[start_row, stop_row)`` of a split's event arrays (one final shard),
    holding events ``[start, stop)`` copied out of the staged parts.

    ``placement`` says where the events go: ``(row, event, count)`` runs, both counted from the
    shard's and the range's start (see :func:`.rows.row_pieces`); the other rows hold 0. ``spans``
    lists ``(part_url, part_start, part_stop, frame_events)`` for the parts overlapping the event
    range. Times are already per-sample delta coded in the parts, so the copy is verbatim but for
    the polarities packed into them where ``time_coding`` says (:func:`stored_columns`) and the
    narrowing to ``dtypes`` (checked: a value that does not fit raises CacheError); each
    column's shard is encoded whole (:mod:`.shards`, the bytes zarr would write). Returns the size
    and CRC32C of each stored shard file, for the manifest.
    """
    target = Location(target_url, storage_options)
    pieces = [
        read_span(Location(url, storage_options), frame_events, max(start, p0) - p0, min(stop, p1) - p0)
        for url, p0, p1, frame_events in spans
    ]
    shard = start_row // shard_events
    read = {
        name: np.concatenate([piece[k] for piece in pieces]) if pieces else np.zeros(0, np.int64)
        for k, name in enumerate(EVENT_FIELDS)
    }
    files = {}
    for name, stored in stored_columns(read, time_coding).items():
        events = narrowed(stored, np.dtype(dtypes[name]), target, name)
        column = place_rows(events, placement, stop_row - start_row)
        compressor = chunk_compressor(column.dtype, *codings[name])
        data = encode_shard(column, chunk_events, shard_events, compressor)
        if data is not None:  # an all-zero shard is not stored, as zarr does
            files[f"{split}/{name}/c/{shard}"] = data
    target.write_files(files)
    return {key: [len(data), crc32c_hex(data)] for key, data in files.items()}


def stored_dtypes(
    ranges: list[dict[str, list[int] | None]], pack_polarities: bool = True
) -> tuple[str, dict[str, np.dtype]]:
    """The time coding of a cache whose parts hold the value ranges ``ranges`` (polarities in the
    times where asked and every part allows it, see :mod:`.codecs`) and the stored dtype of each
    column it stores."""
    packs = pack_polarities and all(polarity_packs(r["t"], r["p"]) for r in ranges)
    time_coding = DELTA_POLARITY if packs else DELTA
    if time_coding == DELTA_POLARITY:
        ranges = [{**r, "t": packed_range(r["t"])} for r in ranges]
    dtypes = narrowest_dtypes(ranges)
    return time_coding, {name: dtypes[name] for name in stored_fields(time_coding)}


def place_rows(events: np.ndarray, placement: Sequence[tuple[int, int, int]], n_rows: int) -> np.ndarray:
    """``n_rows`` rows holding runs of ``events`` where ``placement`` says (``(row, event, count)``), 0
    elsewhere; the events themselves when they fill the rows in order (the contiguous layout)."""
    if len(placement) == 1 and placement[0] == (0, 0, n_rows) and len(events) == n_rows:
        return events
    column = np.zeros(n_rows, dtype=events.dtype)
    for row, event, count in placement:
        column[row : row + count] = events[event : event + count]
    return column


def narrowed(column: np.ndarray, dtype: np.dtype, target: Location, name: str) -> np.ndarray:
    """``column`` as ``dtype``, or CacheError when a value does not fit (a ``done.json`` range was wrong)."""
    if column.dtype == dtype:
        return column
    info = np.iinfo(dtype)
    if len(column) and (column.min() < info.min or column.max() > info.max):
        raise CacheError(
            f"{target.url}: event column {name!r} has values outside {dtype} although the staged parts' "
            "ranges said they fit; delete the .build folder and prepare again"
        )
    return column.astype(dtype)


def run_tasks(
    executor: Executor | None,
    fn: Callable,
    tasks: Sequence[tuple],
    on_done: Callable[[int, Any], None] | None = None,
) -> list:
    """Run ``fn(*task)`` for every task, on ``executor`` or inline; results in task order.

    ``on_done(k, result)`` is called in this process as each task finishes (in completion order).
    """
    if executor is None:
        results = []
        for k, task in enumerate(tasks):
            results.append(fn(*task))
            if on_done:
                on_done(k, results[-1])
        return results
    futures = [executor.submit(fn, *task) for task in tasks]
    try:
        if on_done:
            index = {future: k for k, future in enumerate(futures)}
            for future in as_completed(futures):
                on_done(index[future], future.result())
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def _build_part(
    builder: CacheBuilder, make_part: Callable[[str, int], PartData], split: str, index: int
) -> int:
    """Decode and stage one part; its number of events (0 when a concurrent builder finished first)."""
    if builder.is_complete():  # a concurrent builder finished meanwhile
        return 0
    data = make_part(split, index)
    builder.write_part(split, index, data)
    return len(data.events)


def build_cache(
    builder: CacheBuilder,
    make_part: Callable[[str, int], PartData],
    *,
    executor: Executor | None = None,
    workers: int = 1,
    on_part_done: Callable[[PartDone], None] | None = None,
) -> str:
    """Write every pending part with ``make_part(split, index)`` and commit; returns the store URL.

    ``make_part`` must be picklable (a module-level function or a ``functools.partial`` of one) when
    it runs in other processes. Give an ``executor`` (e.g. dask's ``client.get_executor()``) or a
    number of local ``workers`` (a ``ProcessPoolExecutor``); both phases use it.
    ``on_part_done(PartDone)`` is called in this process as each pending part is staged (in completion
    order), e.g. to show progress; parts staged by an earlier run count in neither ``done`` nor ``pending``.
    """
    own = executor is None and workers > 1
    if own:
        executor = ProcessPoolExecutor(workers)
    try:
        pending = builder.start(executor)
        if not pending and builder.is_complete():
            return builder.root.url
        tasks = [(builder, make_part, split, index) for split, index in pending]
        finished = 0

        def report(k: int, n_events: int) -> None:
            nonlocal finished
            finished += 1
            on_part_done(PartDone(*pending[k], n_events, finished, len(pending)))

        run_tasks(executor, _build_part, tasks, on_done=report if on_part_done else None)
        return builder.commit(executor)
    finally:
        if own:
            executor.shutdown()
