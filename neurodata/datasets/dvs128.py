"""DVS128 Gesture (IBM): 29 subjects x 3 lighting conditions, 11 gestures, AEDAT 3.1 trials.

Sample rule (rules version 1): every row of a trial's ``*_labels.csv`` is one sample, holding the
trial's events with ``start <= t < end``; rows repeated byte-for-byte within a file count once.
Overlapping rows and a class performed twice in one trial stay separate samples. On the published
archive this is the rule that gives 1176 train / 288 test samples (SpikingJelly's counts); Tonic's
preprocessed copy keeps one sample per class per trial (1077 / 264), and the paper's 1342 counts
before the authors' own cleaning. Labels are ``class - 1`` (0..10).
"""

from __future__ import annotations

import csv
import io
from pathlib import PurePosixPath

import numpy as np

from ..errors import NeurodataError
from .registry import DatasetSpec, Sample, Unit
from .trees import FileTree, find_marker, read_events, read_text

CLASS_NAMES = (
    "hand_clapping",
    "right_hand_wave",
    "left_hand_wave",
    "right_arm_clockwise",
    "right_arm_counter_clockwise",
    "left_arm_clockwise",
    "left_arm_counter_clockwise",
    "arm_roll",
    "air_drums",
    "air_guitar",
    "other_gestures",
)

MANUAL = (
    "DVS128 Gesture is distributed behind IBM's licence form and cannot be downloaded automatically. "
    "Download DvsGesture.tar.gz (md5 8a5c71fb11e24e5ca5b11866ca6c00a1) from the IBM Research DVS Gesture page, "
    "then run: neurodata prepare dvs128 --source /path/to/DvsGesture.tar.gz "
    "(the folder holding it, an extracted DvsGesture folder or an fsspec URL also works)."
)


def read_label_rows(text: str, where: str) -> list[tuple[int, int, int]]:
    """The (class, start, end) rows of a ``*_labels.csv``, exact repeats removed, order kept.

    Args:
        text: The file's content.
        where: The file's name in errors.
    """
    rows: list[tuple[int, int, int]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or [h.strip() for h in header[:3]] != ["class", "startTime_usec", "endTime_usec"]:
        raise NeurodataError(f"{where}: expected the header 'class,startTime_usec,endTime_usec', got {header}")
    for line_no, row in enumerate(reader, start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            cls, start, end = (int(v) for v in row[:3])
        except ValueError:
            raise NeurodataError(f"{where}: line {line_no}: expected three integers, got {row}") from None
        if not 1 <= cls <= len(CLASS_NAMES) or not 0 <= start <= end < 2**63:
            raise NeurodataError(
                f"{where}: line {line_no}: class must be 1..11 and 0 <= start <= end < 2**63 microseconds, got {row}"
            )
        if (cls, start, end) not in rows:
            rows.append((cls, start, end))
    return rows


def read_trial_list(text: str) -> list[str]:
    """Trial file names listed in a ``trials_to_train.txt`` / ``trials_to_test.txt`` of content ``text``."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def locate(tree: FileTree) -> str:
    """The folder of ``tree`` holding ``trials_to_train.txt`` (the spec's ``locate``)."""
    return find_marker(tree, "trials_to_train.txt", "dvs128")


def plan(tree: FileTree, base: str, options: dict) -> list[Unit]:
    """One unit per trial listed in the folder ``base`` of ``tree``, with its labels file (the spec's
    ``plan``; no ``options``)."""
    names = set(tree.names())
    units = []
    seen: dict[str, str] = {}
    for split, listing in (("train", "trials_to_train.txt"), ("test", "trials_to_test.txt")):
        if base + listing not in names:
            raise NeurodataError(f"dvs128: {tree.where(base + listing)} is missing (it lists the {split} trials)")
        for trial in read_trial_list(read_text(tree, base + listing)):
            if trial in seen:
                twice = "twice" if seen[trial] == listing else f"and {seen[trial]} too"
                raise NeurodataError(f"dvs128: {tree.where(base + listing)} lists {trial} {twice}")
            seen[trial] = listing
            labels = trial.replace(".aedat", "_labels.csv")
            for name in (trial, labels):
                if base + name not in names:
                    raise NeurodataError(f"dvs128: {listing} lists {trial} but {tree.where(base + name)} is missing")
            units.append(Unit(split, PurePosixPath(trial).stem, (base + trial, base + labels), (("base", base),)))
    return units


def decode(tree: FileTree, unit: Unit, options: dict) -> list[Sample]:
    """The labelled gesture windows of the trial in ``unit``, read from ``tree`` (the spec's ``decode``;
    no ``options``)."""
    trial, labels = unit.files
    name = trial[len(dict(unit.params)["base"]) :]  # samples name the trial as the dataset does
    events = read_events(tree, trial, "aedat31")
    rows = read_label_rows(read_text(tree, labels), tree.where(labels))
    cut = windows(events, [(start, end) for _, start, end in rows])
    return [
        Sample(events_of_row, cls - 1, f"{name}[{start}:{end}]")
        for events_of_row, (cls, start, end) in zip(cut, rows)
    ]


def windows(events: np.ndarray, bounds: list[tuple[int, int]]) -> list[np.ndarray]:
    """The events with ``start <= t < end`` for each ``(start, end)`` of ``bounds`` (microseconds).

    When the times are ordered (as recorded), slices found by one binary search over all bounds (a
    trial's 11+ full-array masks cost more than decoding it); else a mask per window.

    Args:
        events: A trial's events.
        bounds: The windows, one per label row.
    """
    t = np.ascontiguousarray(events["t"])  # one copy: a strided field would be copied per search
    if len(t) < 2 or bool((t[1:] >= t[:-1]).all()):
        edges = np.searchsorted(t, np.asarray(bounds, dtype=np.int64).reshape(-1), side="left").reshape(-1, 2)
        return [events[lo:hi] for lo, hi in edges]
    return [events[(t >= start) & (t < end)] for start, end in bounds]


SPEC = DatasetSpec(
    name="dvs128",
    title="DVS128 Gesture",
    rules_version="1",
    sensor_size=(128, 128, 2),
    class_names=CLASS_NAMES,
    resources=(),
    manual_md5={"DvsGesture.tar.gz": "8a5c71fb11e24e5ca5b11866ca6c00a1"},
    locate=locate,
    plan=plan,
    decode=decode,
    manual_download=MANUAL,
    notes=__doc__.split("\n\n", 1)[1].strip(),
    decodes=("aedat31",),
)
