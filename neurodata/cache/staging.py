"""Phase 1 of a build: parts, the independent work units, staged under ``<root>.build/parts/``.

A part is the events of consecutive samples of one split (:class:`PartData`). It is staged in
``<root>.build/parts/<split>/<index>/`` as Blosc frames per column (:mod:`.parts`) plus ``done.json``,
written last: the part's per-sample columns, the size and CRC32C of each file and each column's value
range. A part whose ``done.json`` matches its files is finished, so a killed build resumes where it
stopped. Locally a part appears by a directory rename (the loser of a race between builders discards
its copy); on object stores parts are deterministic, so a rewrite puts identical bytes. A part being
written locally sits in a locked temporary folder (:func:`~neurodata.localfs.locked_temporary`): a
full disk removes it and raises :class:`~neurodata.diskspace.DiskFullError` naming the part, and a
later build removes those of builders that died.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..diskspace import disk_full_as_error
from ..events import as_events, concatenate
from ..localfs import locked_temporary
from .codecs import encode_times
from .errors import CacheError
from .layout import EVENT_FIELDS, STORED_DTYPES
from .narrowing import narrowest, value_range
from .parts import PART_FORMAT, encode_columns
from .store import Location, checksum_files, file_entry

PART_DONE = "done.json"


@dataclass
class PartData:
    """One work unit: the events of consecutive samples, concatenated, with per-sample facts.

    Attributes:
        events: EVENT_DTYPE records, the samples one after the other.
        counts: Events per sample (int64).
        labels: Each sample's class (int64), -1 for "no class".
        sources: Each sample's source file (or ``file#segment``).
    """

    events: np.ndarray
    counts: np.ndarray
    labels: np.ndarray
    sources: list[str]

    @classmethod
    def from_samples(cls, samples: Iterable[tuple[np.ndarray, int, str]]) -> PartData:
        """Build a part from ``(events, label, source)`` triples.

        Args:
            samples: One ``(events, label, source)`` per sample, in order.
        """
        samples = list(samples)
        events = [as_events(np.asarray(e)) for e, _, _ in samples]
        return cls(
            events=concatenate(events),  # records copied as raw bytes: numpy copies them field by field
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


def sample_time_bounds(events: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``t_first`` and ``t_last`` of every sample (0 for an empty sample).

    Args:
        events: The part's events, samples back to back.
        counts: Events per sample.
    """
    ends = np.cumsum(counts)
    starts = ends - counts
    nonempty = counts > 0
    t_first = np.zeros(len(counts), dtype=np.int64)
    t_last = np.zeros(len(counts), dtype=np.int64)
    t_first[nonempty] = events["t"][starts[nonempty]]
    t_last[nonempty] = events["t"][ends[nonempty] - 1]
    return t_first, t_last


def part_record(
    data: PartData, files: dict[str, list], ranges: dict[str, list[int] | None]
) -> dict[str, Any]:
    """``done.json`` of a part: its per-sample columns (small), the checksums of its event files and
    the ``[min, max]`` of each stored (time coded) event column.

    Args:
        data: The part.
        files: Each staged file's key to ``[size, CRC32C hex]``.
        ranges: Each event column's ``[min, max]`` (None: no events).
    """
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


def part_is_done(location: Location, verify: bool) -> bool:
    """Whether the part at ``location`` is staged in this :data:`~.parts.PART_FORMAT` (``verify``:
    and its files still match the sizes and checksums its ``done.json`` records)."""
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


def write_done_marker(location: Location, done: dict[str, Any]) -> None:
    """The last write of a part: from here on the part counts as staged.

    Args:
        location: The part's folder.
        done: Its ``done.json`` (:func:`part_record` plus the part format).
    """
    location.write_json(done, PART_DONE)


def stage_part(target: Location, data: PartData, frame_events: int) -> None:
    """Stage validated ``data`` at ``target``; safe to repeat or to race with other builders (identical
    results). Locally it is written beside ``target`` and renamed into place.

    Args:
        target: The part's folder.
        data: The part, validated.
        frame_events: Events per staged frame.
    """
    if not target.is_local:
        _write_part(target, data, frame_events)
        return
    os.makedirs(os.path.dirname(target.path), exist_ok=True)
    with disk_full_as_error(target.url), locked_temporary(target.path) as tmp:
        _write_part(Location(tmp, target.storage_options), data, frame_events)
        try:
            os.rename(tmp, target.path)
            return
        except OSError:  # another builder staged it first (or a stale copy is there)
            pass
    if not part_is_done(target, verify=True):
        shutil.rmtree(target.path, ignore_errors=True)
        stage_part(target, data, frame_events)


def _write_part(location: Location, data: PartData, frame_events: int) -> None:
    # frames of the caller's size (a fraction of a shard): a commit task reads only those it needs
    offsets = np.concatenate([[0], np.cumsum(data.counts)])
    columns = {"t": encode_times(data.events["t"], offsets)}
    columns.update({f: data.events[f] for f in EVENT_FIELDS[1:]})
    ranges = {f: value_range(c) for f, c in columns.items()}
    dtypes = {f: narrowest(STORED_DTYPES[f], ranges[f]) for f in EVENT_FIELDS}
    files = encode_columns({f: c.astype(dtypes[f], copy=False) for f, c in columns.items()}, frame_events)
    with disk_full_as_error(location.url, sum(len(v) for v in files.values())):  # the bytes it needs
        location.write_files(files)
    checksums = {k: file_entry(v) for k, v in sorted(files.items())}
    record = part_record(data, checksums, ranges)
    write_done_marker(
        location,
        {
            **record,
            "part_format": PART_FORMAT,
            "frame_events": frame_events,
            "staged_dtypes": [dtypes[f].str for f in EVENT_FIELDS],
        },
    )


def read_records(parts: dict[str, list[Location]], where: str) -> dict[str, list[dict[str, Any]]]:
    """The ``done.json`` of every part (split -> parts in order), or CacheError naming ``where`` and
    the parts not staged."""
    staged, missing = {}, []
    for split, locations in parts.items():
        staged[split] = []
        for index, location in enumerate(locations):
            done = location.read_json(PART_DONE)
            if done is None:
                missing.append(f"{split}/{index}")
            staged[split].append(done)
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise CacheError(f"{where}: cannot commit, {len(missing)} part(s) not staged: {shown}")
    return staged
