"""representation_key: stable across processes, sensitive to every parameter, blind to spelling."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from neurodata.representations import RULES_VERSION, representation_key
from neurodata.representations import key as key_module
from neurodata.synthetic import rotating_bar
from neurodata.transforms import ToFrame, ToVoxelGrid

BASE = {
    "type": "frame",
    "sensor_size": (34, 34, 2),
    "n_time_bins": 10,
    "overlap": 0.0,
    "include_incomplete": False,
}


def test_key_is_stable_across_processes_and_hash_seeds():
    code = f"from neurodata.representations import representation_key;print(representation_key({BASE!r}))"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == representation_key(BASE)
    assert (
        representation_key(BASE).startswith("frame-") and len(representation_key(BASE)) == len("frame-") + 24
    )


@pytest.mark.parametrize(
    "change",
    [
        {"type": "voxel_grid"},
        {"sensor_size": (34, 34, 1)},
        {"sensor_size": (34, 35, 2)},
        {"n_time_bins": 11},
        {"overlap": 0.1},
        {"include_incomplete": True},
        {"dtype": "float32"},
        {"time_window": 1000},
    ],
)
def test_any_change_changes_the_key(change):
    assert representation_key({**BASE, **change}) != representation_key(BASE)


def test_rules_version_is_part_of_the_key(monkeypatch):
    before = representation_key(BASE)
    monkeypatch.setattr(key_module, "RULES_VERSION", RULES_VERSION + 1)
    assert representation_key(BASE) != before


def test_equal_values_spelled_differently_share_a_key():
    spelled = {
        "include_incomplete": np.bool_(False),
        "overlap": 0,
        "n_time_bins": np.int64(10),
        "sensor_size": [34, 34, 2],
        "type": "frame",
        "time_window": None,
    }
    assert representation_key(spelled) == representation_key(BASE)


def test_transform_specs_feed_the_key():
    a = representation_key(ToFrame((34, 34, 2), n_time_bins=10).spec())
    b = representation_key(ToFrame((34, 34, 2), n_time_bins=10).spec())
    c = representation_key(ToFrame((34, 34, 2), n_time_bins=10, overlap=0.2).spec())
    d = representation_key(ToVoxelGrid((34, 34, 2), n_time_bins=10).spec())
    assert a == b and len({a, c, d}) == 3


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"sensor_size": (1, 1, 2)}, "type"),
        ({"type": "frame"}, "sensor_size"),
        ({**BASE, "tau": float("nan")}, "finite"),
    ],
)
def test_bad_specs_are_refused(spec, error):
    with pytest.raises(ValueError, match=error):
        representation_key(spec)


def test_a_thread_count_changes_neither_the_key_nor_the_frames():
    """ToFrame's ``threads`` says how the frames are counted, not what they are: the spec (and so a
    precomputed cache's key) leaves it out, the call passes it on, and the frames are equal."""
    plain = ToFrame((640, 480, 2), n_time_bins=4, dtype="int16")
    threaded = ToFrame((640, 480, 2), n_time_bins=4, dtype="int16", threads=2)
    assert threaded.spec() == plain.spec() and "threads" not in threaded.spec()
    assert representation_key(threaded.spec()) == representation_key(plain.spec())
    events = rotating_bar(640, 480, duration_us=200_000)
    np.testing.assert_array_equal(threaded(events), plain(events))
    with pytest.raises(ValueError, match="threads must be a whole number of at least 1"):
        ToFrame((640, 480, 2), n_time_bins=4, threads=0)(events)
