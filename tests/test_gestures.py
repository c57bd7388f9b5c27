"""The synthetic DVS128-Gesture-layout generator: layout, labels, and that prepare reads it."""

from __future__ import annotations

import tarfile

import numpy as np

import neurodata as nd
from neurodata.datasets.prepare import prepare
from neurodata.sim.gestures import trial_recording, write_archive


def test_trial_has_every_class_once_in_time_order():
    events, rows = trial_recording(1, "led", seed=3, gesture_us=300_000, rest_us=100_000)
    assert sorted(c for c, _, _ in rows) == list(range(1, 12))
    assert all(e - s == 300_000 for _, s, e in rows)
    assert all(rows[i][2] < rows[i + 1][1] for i in range(len(rows) - 1))
    assert (np.diff(events["t"]) >= 0).all()
    assert events["x"].max() < 128 and events["y"].max() < 128
    for _, start, end in rows:  # every gesture window holds motion events of both polarities
        window = events[(events["t"] >= start) & (events["t"] < end)]
        assert len(window) > 1000 and 0.2 < window["p"].mean() < 0.8


def test_same_seed_same_trial_other_seed_differs():
    a, rows_a = trial_recording(2, "natural", seed=5, gesture_us=200_000)
    b, rows_b = trial_recording(2, "natural", seed=5, gesture_us=200_000)
    c, rows_c = trial_recording(2, "natural", seed=6, gesture_us=200_000)
    np.testing.assert_array_equal(a, b)
    assert rows_a == rows_b and rows_a != rows_c


def test_archive_has_the_real_layout_and_prepares(tmp_path):
    archive = write_archive(
        tmp_path / "synthetic.tar.gz", n_users=3, n_test_users=1, lightings=("led",), gesture_us=200_000
    )
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    for name in (
        "DvsGesture/trials_to_train.txt",
        "DvsGesture/trials_to_test.txt",
        "DvsGesture/user01_led.aedat",
        "DvsGesture/user01_led_labels.csv",
        "DvsGesture/user03_led.aedat",
    ):
        assert name in names
    summary = prepare("dvs128", source=str(archive), root=tmp_path / "root", progress=False)
    assert summary["splits"]["train"]["n_samples"] == 22 and summary["splits"]["test"]["n_samples"] == 11
    assert summary["splits"]["test"]["label_counts"] == {str(k): 1 for k in range(11)}
    with tarfile.open(archive) as tar:
        trial = nd.read_buffer(tar.extractfile("DvsGesture/user03_led.aedat").read(), "user03_led.aedat")
    assert len(trial) > 0 and trial["t"][-1] > 11 * 200_000
