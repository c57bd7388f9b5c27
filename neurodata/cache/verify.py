"""Check a cache's integrity (:func:`verify_cache`) and summarise it (:func:`cache_info`).

Verification recomputes the CRC32C of every stored file against ``manifest.json`` (whose own CRC
is in the root attributes), flags missing and unexpected files, then checks the structure: offsets
start at 0 and never decrease; each sample's rows (layout 2) lie inside the event arrays, after the
previous sample's; labels and per-sample arrays have one entry per sample; the counts agree with
the attributes. ``deep=True`` also decodes every
sample and compares its first and last times with ``t_first``/``t_last``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import zarr

from .codecs import DELTA, TIME_CODINGS, stored_fields
from .errors import CacheError
from .layout import (
    ATTRS_KEY,
    CHECKED_LAYOUT,
    EVENT_FIELDS,
    MANIFEST_KEY,
    READABLE_LAYOUTS,
    SAMPLE_FIELDS,
    STORED_DTYPES,
)
from .presence import read_manifest
from .reader import decode_range
from .rows import placement_problem, sample_columns
from .store import Location, file_entry


@dataclass
class VerifyReport:
    """What :func:`verify_cache` found; ``ok`` is true when ``problems`` is empty.

    Attributes:
        url: The cache checked.
        problems: One line per problem found.
        files_checked: Stored files whose checksum was recomputed.
        bytes_checked: Their total size.
    """

    url: str
    problems: list[str] = field(default_factory=list)
    files_checked: int = 0
    bytes_checked: int = 0

    @property
    def ok(self) -> bool:
        """Whether no problem was found."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict, ``ok`` included."""
        return {**asdict(self), "ok": self.ok}


DERIVED_PREFIX = "representations/"  # precomputed representations live here, outside the manifest


def check_manifest(location: Location, attrs: dict[str, Any], report: VerifyReport) -> None:
    """Compare every stored file of the cache at ``location`` with its manifest entry (size and
    CRC32C; the manifest's own CRC is in ``attrs``), adding problems and counts to ``report``."""
    try:
        expected = read_manifest(location, attrs.get("manifest_crc32c"))
    except CacheError as error:
        report.problems.append(str(error))
        return
    stored = location.files()
    for key in sorted(set(stored) - set(expected) - {"zarr.json", MANIFEST_KEY}):
        if key.startswith(DERIVED_PREFIX):
            continue  # precomputed representations, added after the build (neurodata.loaders.precompute)
        report.problems.append(f"{key}: unexpected file (not in the manifest)")
    for key, entry in sorted(expected.items()):
        if key not in stored:
            report.problems.append(f"{key}: missing")
            continue
        data = location.fs.cat_file(location.key(key))
        report.files_checked += 1
        report.bytes_checked += len(data)
        have = file_entry(data)
        if have[0] != entry[0]:
            report.problems.append(f"{key}: {have[0]} bytes, the manifest says {entry[0]}")
            continue
        for name, ours, recorded in zip(("CRC32C", "CRC-32"), have[1:], entry[1:]):  # older manifests: no CRC-32
            if ours != recorded:
                report.problems.append(f"{key}: {name} {ours} differs from the manifest's {recorded}")
                break


def check_dtypes(
    group: zarr.Group, split: str, recorded: dict[str, str] | None, fields: tuple[str, ...] = EVENT_FIELDS
) -> list[str]:
    """Event arrays (``fields``) of the split ``split`` (its ``group``) stored in a dtype the layout
    does not allow, or other than ``recorded`` (the ``event_dtypes`` attribute; caches written before
    that attribute existed record none)."""
    problems = []
    for name in fields:
        dtype = group[name].dtype
        if dtype not in STORED_DTYPES[name]:
            problems.append(
                f"{split}/{name}: stored as {dtype}, not one of {[str(d) for d in STORED_DTYPES[name]]}"
            )
        elif recorded is not None and dtype != np.dtype(recorded.get(name, "")):
            problems.append(f"{split}/{name}: stored as {dtype}, the attributes say {recorded.get(name)}")
    return problems


def check_split(
    group: zarr.Group,
    split: str,
    expected: dict[str, int],
    deep: bool,
    event_dtypes: dict[str, str] | None = None,
    has_rows: bool = True,
    fields: tuple[str, ...] = EVENT_FIELDS,
) -> list[str]:
    """Structural problems of the split ``split`` (empty list when consistent).

    Args:
        group: The split's group.
        split: Its name, for the messages.
        expected: Its counts in the root attributes.
        deep: Also decode every sample (:func:`check_times`).
        event_dtypes: The recorded dtypes of the event arrays, if any.
        has_rows: Layout 2 or later.
        fields: The event columns its time coding stores.
    """
    problems = check_dtypes(group, split, event_dtypes, fields)
    per_sample = ("offsets", "rows", *SAMPLE_FIELDS) if has_rows else ("offsets", *SAMPLE_FIELDS)
    lengths = {name: group[name].shape[0] for name in (*fields, *per_sample)}
    n_rows = lengths["t"]
    for name in fields[1:]:
        if lengths[name] != n_rows:
            problems.append(f"{split}/{name}: {lengths[name]} rows, but t has {n_rows}")
    n_samples = lengths["labels"]
    if lengths["offsets"] != n_samples + 1:
        problems.append(
            f"{split}/offsets: {lengths['offsets']} entries, expected n_samples + 1 = {n_samples + 1}"
        )
    for name in SAMPLE_FIELDS[1:]:
        if lengths[name] != n_samples:
            problems.append(f"{split}/{name}: {lengths[name]} entries, expected one per sample ({n_samples})")
    if has_rows and lengths["rows"] != n_samples:
        problems.append(f"{split}/rows: {lengths['rows']} entries, expected one per sample ({n_samples})")
    offsets = np.asarray(group["offsets"][...], dtype=np.int64)
    n_events = int(offsets[-1]) if offsets.size else 0
    expected_rows = expected.get("n_rows", expected.get("n_events"))
    if (n_samples, n_events, n_rows) != (expected.get("n_samples"), expected.get("n_events"), expected_rows):
        problems.append(
            f"{split}: {n_samples} samples, {n_events} events in {n_rows} rows, the attributes say {expected}"
        )
    if offsets.size == 0 or offsets[0] != 0:
        problems.append(f"{split}/offsets: does not start at 0")
    elif (np.diff(offsets) < 0).any():
        problems.append(f"{split}/offsets: decreases at sample {int(np.argmax(np.diff(offsets) < 0))}")
    if problems:
        return problems
    rows = np.asarray(group["rows"][...], dtype=np.int64) if has_rows else offsets[:-1]
    problem = placement_problem(offsets, rows, n_rows)
    if problem is not None:
        problems.append(f"{split}/rows: {problem}")
    if deep and not problems:
        problems += check_times(group, split, offsets, rows, fields)
    return problems


def check_times(
    group: zarr.Group,
    split: str,
    offsets: np.ndarray,
    rows: np.ndarray,
    fields: tuple[str, ...] = EVENT_FIELDS,
    batch_events: int = 1 << 22,
) -> list[str]:
    """Decode all samples in batches and compare their first/last times with ``t_first``/``t_last``.

    Args:
        group: The split's group.
        split: Its name, for the messages.
        offsets: The split's sample offsets.
        rows: Each sample's first row.
        fields: The event columns its time coding stores.
        batch_events: About how many events to decode at once.
    """
    t_first, t_last = group["t_first"][...], group["t_last"][...]
    n = len(offsets) - 1
    start = 0
    while start < n:
        stop = int(np.searchsorted(offsets, offsets[start] + batch_events, side="right")) - 1
        stop = min(n, max(stop, start + 1))
        local = offsets[start : stop + 1] - offsets[start]
        columns = sample_columns(
            lambda first, last: [group[f][first:last] for f in fields], offsets, rows, start, stop
        )
        events = decode_range(dict(zip(fields, columns)), local)
        counts = np.diff(local)
        nonempty = np.flatnonzero(counts)
        bad = nonempty[
            (events["t"][local[nonempty]] != t_first[start + nonempty])
            | (events["t"][local[nonempty + 1] - 1] != t_last[start + nonempty])
        ]
        if bad.size:
            return [f"{split}: sample {start + int(bad[0])} decodes to times that differ from t_first/t_last"]
        start = stop
    return []


def verify_cache(
    store_url: str | os.PathLike, storage_options: dict[str, Any] | None = None, deep: bool = False
) -> VerifyReport:
    """Re-check a cache: completion marker, per-file checksums, array structure; never raises on damage.

    Args:
        store_url: The cache's local path or fsspec URL.
        storage_options: Passed to fsspec.
        deep: Also decode every sample and compare its first and last times with ``t_first``/``t_last``.
    """
    location = Location(store_url, storage_options)
    report = VerifyReport(location.url)
    meta = location.read_json("zarr.json")
    attrs = meta.get("attributes", {}).get(ATTRS_KEY) if isinstance(meta, dict) else None
    if not isinstance(attrs, dict):
        report.problems.append("zarr.json is missing or has no neurodata_cache attribute (not a cache)")
        return report
    if not attrs.get("complete"):
        report.problems.append("completion marker missing: the build did not finish")
    if attrs.get("layout_version") not in READABLE_LAYOUTS:
        report.problems.append(
            f"layout version {attrs.get('layout_version')} is not one of {READABLE_LAYOUTS}"
        )
        return report
    time_coding = attrs.get("time_coding", DELTA)
    if time_coding not in TIME_CODINGS:
        report.problems.append(f"time coding {time_coding!r} is not one of {TIME_CODINGS}")
        return report
    check_manifest(location, attrs, report)
    root = location.open_group()
    for split, expected in attrs.get("splits", {}).items():
        try:
            report.problems += check_split(
                root[split],
                split,
                expected,
                deep,
                attrs.get("event_dtypes"),
                attrs["layout_version"] >= 2,
                stored_fields(time_coding),
            )
        except Exception as err:  # damaged metadata or chunks: report, keep checking the other splits
            report.problems.append(f"{split}: cannot be read ({type(err).__name__}: {err})")
    return report


def cache_info(store_url: str | os.PathLike, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-serialisable summary: splits, samples, classes, events, bytes on disk, bytes/event,
    whether every chunk carries a CRC32C checked on read (``chunk_checksums``).

    Args:
        store_url: The cache's local path or fsspec URL.
        storage_options: Passed to fsspec.

    Raises:
        CacheError: When there is no cache at ``store_url``.
    """
    location = Location(store_url, storage_options)
    meta = location.read_json("zarr.json")
    attrs = meta.get("attributes", {}).get(ATTRS_KEY) if isinstance(meta, dict) else None
    if not isinstance(attrs, dict):
        raise CacheError(f"{location.url}: not a neurodata cache (no '{ATTRS_KEY}' attribute in zarr.json)")
    files = location.files()
    root = location.open_group()
    splits = {}
    for split, counts in attrs.get("splits", {}).items():
        event_bytes = sum(
            size
            for key, size in files.items()
            if key.split("/")[:1] == [split] and key.split("/")[1] in EVENT_FIELDS
        )
        try:
            labels = np.asarray(root[split]["labels"][...]) if attrs.get("complete") else np.empty(0, np.int64)
        except (OSError, RuntimeError, ValueError, KeyError) as error:  # a damaged or missing labels array
            raise CacheError(f"{location.url}: split {split!r}: its labels cannot be read ({error}); run `neurodata verify`") from None
        classes, label_counts = np.unique(labels, return_counts=True)
        splits[split] = {
            **counts,
            "bytes": sum(size for key, size in files.items() if key.startswith(split + "/")),
            "event_bytes_per_event": event_bytes / counts["n_events"] if counts["n_events"] else None,
            "label_counts": {str(int(c)): int(k) for c, k in zip(classes, label_counts)},
        }
    n_events = sum(s["n_events"] for s in splits.values())
    total = sum(files.values())
    return {
        "url": location.url,
        "name": attrs.get("name"),
        "complete": bool(attrs.get("complete")),
        "layout_version": attrs.get("layout_version"),
        "chunk_checksums": (attrs.get("layout_version") or 0) >= CHECKED_LAYOUT,  # checked on every read
        "neurodata_version": attrs.get("neurodata_version"),
        "rules_version": attrs.get("rules_version"),
        "sensor_size": attrs.get("sensor_size"),
        "class_names": attrs.get("class_names"),
        "n_classes": len(attrs["class_names"]) if attrs.get("class_names") else None,
        "source_checksums": attrs.get("source_checksums"),
        "splits": splits,
        "n_samples": sum(s["n_samples"] for s in splits.values()),
        "n_events": n_events,
        "bytes_on_disk": total,
        "bytes_per_event": total / n_events if n_events else None,
    }
