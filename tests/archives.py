"""Miniature dataset archives in each dataset's real layout, built from fixture events with our writers."""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

import neurodata as nd
from neurodata.formats.aedat31 import Traps, write_aedat31

OVERFLOW_SHIFT = (1 << 31) + 12_345  # moves a trial past the AEDAT 3.1 31-bit timestamp epoch


def ground_truth(fixtures: Path) -> np.ndarray:
    with np.load(fixtures / "synthetic_ground_truth.npz", allow_pickle=False) as z:
        return nd.make_events(z["t"], z["x"], z["y"], z["p"])


def dvs128_trials(fixtures: Path) -> dict[str, tuple[np.ndarray, list[tuple[int, int, int]]]]:
    """Trial name -> (events, label rows): repeats, overlaps, empty windows and overflowing times."""
    events = ground_truth(fixtures)
    shifted = events.copy()
    shifted["t"] += OVERFLOW_SHIFT
    rows = [(1, 100_000, 300_000), (2, 250_000, 400_000), (1, 100_000, 300_000), (3, 400_000, 589_319)]
    shifted_rows = [(c, s + OVERFLOW_SHIFT, e + OVERFLOW_SHIFT) for c, s, e in rows[:2]] + [(11, 1, 2)]
    return {
        "user01_fluorescent": (events, rows),
        "user02_led": (shifted, shifted_rows),
        "user24_natural": (events, [(5, 0, 200_000), (6, 200_000, 600_000)]),
    }


def write_dvs128_folder(fixtures: Path, folder: Path) -> Path:
    """A ``DvsGesture/`` folder: AEDAT 3.1 trials with special packets and invalid events, label CSVs, lists."""
    root = folder / "DvsGesture"
    root.mkdir(parents=True)
    for name, (events, rows) in dvs128_trials(fixtures).items():
        write_aedat31(
            root / f"{name}.aedat", events, packet_events=300, traps=Traps(special_every=2, invalid_every=7)
        )
        lines = "".join(f"{c},{s},{e}\n" for c, s, e in rows)
        (root / f"{name}_labels.csv").write_text("class,startTime_usec,endTime_usec\n" + lines)
    (root / "trials_to_train.txt").write_text("user01_fluorescent.aedat\nuser02_led.aedat\n\n")
    (root / "trials_to_test.txt").write_text("user24_natural.aedat\n")
    return root


def tar_gz_bytes(folder: Path, arcname: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return buf.getvalue()


def expected_dvs128_samples(fixtures: Path) -> dict[str, list[tuple[np.ndarray, int]]]:
    """What the DVS128 sample rule should produce from :func:`dvs128_trials` (exact repeats once)."""
    out: dict[str, list] = {"train": [], "test": []}
    for name, (events, rows) in dvs128_trials(fixtures).items():
        split = "test" if name.startswith("user24") else "train"
        seen = []
        for row in rows:
            if row in seen:
                continue
            seen.append(row)
            cls, start, end = row
            keep = (events["t"] >= start) & (events["t"] < end)
            out[split].append((events[keep], cls - 1))
    return out


def nmnist_zip_bytes(fixtures: Path, split_folder: str, per_digit: int = 2) -> bytes:
    """``Train.zip``/``Test.zip`` layout: ``<Split>/<digit>/<id>.bin`` from the fixture, time-shifted per file."""
    events = nd.read(fixtures / "nmnist" / "sample_nmnist.bin")
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(buf, "w") as zf:
        for digit in range(10):
            for i in range(per_digit):
                path = Path(tmp) / f"{digit}-{i}.bin"
                nd.write(path, events[: 500 + 100 * digit + i], format="nmnist")
                zf.write(path, f"{split_folder}/{digit}/{i:05d}.bin")
    return buf.getvalue()


def add_long_trials(fixtures: Path, folder: Path, trials: int, repeats: int) -> None:
    """Replace the train list of a :func:`write_dvs128_folder` folder by ``trials`` long trials (users
    03, 04, ...): the fixture ``repeats`` times over, 0.6 s apart, one label row each, so that a build
    takes long enough to be interrupted."""
    truth = ground_truth(fixtures)
    long_trial = np.concatenate([truth] * repeats)
    long_trial["t"] += np.repeat(np.arange(repeats) * 600_000, len(truth))
    write_aedat31(folder / "user03_led.aedat", long_trial, packet_events=4096)
    rows = "".join(f"{k % 11 + 1},{k * 600_000},{k * 600_000 + 500_000}\n" for k in range(repeats))
    users = range(3, 3 + trials)
    for k in users:
        if k > 3:
            shutil.copyfile(folder / "user03_led.aedat", folder / f"user{k:02d}_led.aedat")
        (folder / f"user{k:02d}_led_labels.csv").write_text("class,startTime_usec,endTime_usec\n" + rows)
    (folder / "trials_to_train.txt").write_text("".join(f"user{k:02d}_led.aedat\n" for k in users))


def cifar10dvs_zip_bytes(fixtures: Path, class_name: str, recordings: int = 2) -> bytes:
    """``<class>.zip`` as published: a ``<class>/`` folder of ``cifar10_<class>_<n>.aedat`` recordings
    (the AEDAT 2.0 fixture, cut to a different length per file, written by our AEDAT 2.0 writer)."""
    events = nd.read(fixtures / "aedat2" / "synthetic_cifar10dvs_dvs128.aedat", format="aedat2")
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(buf, "w") as zf:
        for n in range(recordings):
            path = Path(tmp) / f"{n}.aedat"
            nd.write(path, events[: len(events) // (n + 1)], format="aedat2")
            zf.write(path, f"{class_name}/cifar10_{class_name}_{n}.aedat")
    return buf.getvalue()
