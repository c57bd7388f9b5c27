"""The synthetic gesture generator: rendering, and archives independent of the number of worker processes."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

from neurodata.datasets import dvs128
from neurodata.sim import gestures
from neurodata.sim.gestures import SCENES, SIZE, User, dress, gesture_events, render, write_archive


def test_simulated_classes_are_dvs128_gestures_classes():
    assert gestures.CLASS_NAMES == dvs128.CLASS_NAMES


def test_separable_render_matches_the_direct_gaussian_formula():
    user = User(scale=1.1, speed=1.0, dx=0.03, dy=-0.02, phase=0.0)
    blobs = [(0.3, 0.6, 0.05), (0.7, 0.4, 0.08), (0.5, 0.5, 0.02, 0.7)]
    grid = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    yy, xx = grid
    expected = np.full(xx.shape, 0.5)  # "led": background 0.5, contrast 0.45
    for cx, cy, radius, *weight in blobs:
        r = radius * user.scale
        gauss = np.exp(-((xx - cx - user.dx) ** 2 + (yy - cy - user.dy) ** 2) / (2 * r * r))
        expected += 0.45 * (weight[0] if weight else 1.0) * gauss
    np.testing.assert_allclose(render(blobs, user, "led", grid), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(render([], user, "led", grid), np.full(xx.shape, 0.5))


def test_people_scene_dresses_each_hand_with_an_arm_and_fingers():
    user = User(scale=1.0, speed=1.0, dx=0.0, dy=0.0, phase=0.0)
    hands = [(0.3, 0.5, 0.06), (0.7, 0.5, 0.06)]
    assert dress(hands, SCENES["blobs"], 0.3, user) == hands
    blobs = dress(hands, SCENES["people"], 0.3, user)
    assert len(blobs) > 2 * (1 + SCENES["people"].fingers) + 2  # hands, fingers, torso and head, limbs
    frame = render(blobs, user, "led", np.mgrid[0:SIZE, 0:SIZE] / SIZE)
    forearm = frame[int(0.68 * SIZE), int(0.3 * SIZE) : int(0.4 * SIZE)]  # between elbow and left hand
    assert forearm.max() > 0.5 + 0.2


@pytest.mark.parametrize("cls", [0, 3, 9])
def test_people_scene_event_rates_are_in_the_documented_range(cls):
    """20-110 k events/s while the hands move, as in real DVS128 Gesture recordings; "blobs" fewer."""
    user = User(scale=1.0, speed=1.0, dx=0.0, dy=0.0, phase=0.5)

    def rate(scene):
        events, _ = gesture_events(cls, user, "led", 0, 1_000_000, seed=7, scene=SCENES[scene])
        return len(events) / 1.0

    people = rate("people")
    assert 20_000 <= people <= 110_000
    assert rate("blobs") < people


def test_unknown_scene_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown scene 'cartoon'"):
        write_archive(tmp_path / "a.tar.gz", scene="cartoon")


def test_archive_does_not_depend_on_worker_count(tmp_path):
    """Same events and labels with 1 or 2 processes (the AEDAT headers hold the wall-clock start time)."""
    import neurodata as nd

    def contents(name, workers):
        archive = write_archive(
            tmp_path / f"{name}.tar.gz",
            n_users=2,
            n_test_users=1,
            lightings=("led",),
            gesture_us=100_000,
            frame_us=10_000,
            workers=workers,
        )
        with tarfile.open(archive) as tar:
            tar.extractall(tmp_path / name, filter="data")
        folder = tmp_path / name / "DvsGesture"
        texts = {p.name: p.read_text() for p in folder.iterdir() if p.suffix != ".aedat"}
        events = {p.name: nd.read(p, format="aedat31") for p in sorted(folder.glob("*.aedat"))}
        return texts, events

    (texts_one, events_one), (texts_two, events_two) = contents("one", 1), contents("two", 2)
    assert texts_one == texts_two and texts_one["trials_to_test.txt"] == "user02_led.aedat\n"
    assert sorted(events_one) == ["user01_led.aedat", "user02_led.aedat"]
    for name, events in events_one.items():
        assert len(events) > 1000
        np.testing.assert_array_equal(events, events_two[name])
