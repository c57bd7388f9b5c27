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
from pathlib import Path

import numpy as np

from ..errors import NeurodataError
from ..reader import read
from .registry import DatasetSpec, Sample, Unit, find_marker

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


def read_label_rows(path: Path) -> list[tuple[int, int, int]]:
    """The (class, start, end) rows of the ``*_labels.csv`` at ``path``, exact repeats removed, order kept."""
    rows: list[tuple[int, int, int]] = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["class", "startTime_usec", "endTime_usec"]:
            raise NeurodataError(
                f"{path}: expected the header 'class,startTime_usec,endTime_usec', got {header}"
            )
        for line_no, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            try:
                cls, start, end = (int(v) for v in row[:3])
            except ValueError:
                raise NeurodataError(f"{path}: line {line_no}: expected three integers, got {row}") from None
            if not 1 <= cls <= len(CLASS_NAMES) or end < start:
                raise NeurodataError(
                    f"{path}: line {line_no}: class must be 1..11 and end >= start, got {row}"
                )
            if (cls, start, end) not in rows:
                rows.append((cls, start, end))
    return rows


def read_trial_list(path: Path) -> list[str]:
    """Trial file names listed in the file ``path`` (``trials_to_train.txt`` / ``trials_to_test.txt``)."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def locate(root: Path) -> Path:
    """The folder under ``root`` holding ``trials_to_train.txt`` (the spec's ``locate``)."""
    return find_marker(root, "trials_to_train.txt", "dvs128")


def plan(folder: Path, options: dict) -> list[Unit]:
    """One unit per trial listed under ``folder``, with its labels file (the spec's ``plan``; no ``options``)."""
    units = []
    for split, listing in (("train", "trials_to_train.txt"), ("test", "trials_to_test.txt")):
        for trial in read_trial_list(folder / listing):
            labels = trial.replace(".aedat", "_labels.csv")
            for name in (trial, labels):
                if not (folder / name).is_file():
                    raise NeurodataError(f"dvs128: {listing} lists {trial} but {folder / name} is missing")
            units.append(Unit(split, Path(trial).stem, (trial, labels)))
    return units


def decode(folder: Path, unit: Unit, options: dict) -> list[Sample]:
    """The labelled gesture windows of the trial in ``unit``, under ``folder`` (the spec's ``decode``; no ``options``)."""
    trial, labels = unit.files
    events = read(folder / trial, format="aedat31")
    t = events["t"]
    ordered = len(t) < 2 or bool((t[1:] >= t[:-1]).all())
    return [
        Sample(window(events, start, end, ordered), cls - 1, f"{trial}[{start}:{end}]")
        for cls, start, end in read_label_rows(folder / labels)
    ]


def window(events: np.ndarray, start: int, end: int, ordered: bool) -> np.ndarray:
    """The events with ``start <= t < end``: when times are ``ordered`` (as recorded), a slice found
    by binary search (a trial's 11+ full-array masks cost more than decoding it), else a mask."""
    t = events["t"]
    if ordered:
        lo, hi = np.searchsorted(t, [start, end], side="left")
        return events[lo:hi]
    return events[(t >= start) & (t < end)]


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
)
