"""The synthetic gesture generator: rendering, and archives independent of the number of worker processes."""

from __future__ import annotations

import tarfile

import numpy as np

from neurodata.sim.gestures import SIZE, User, render


def test_separable_render_matches_the_direct_gaussian_formula():
    user = User(scale=1.1, speed=1.0, dx=0.03, dy=-0.02, phase=0.0)
    blobs = [(0.3, 0.6, 0.05), (0.7, 0.4, 0.08)]
    grid = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    yy, xx = grid
    expected = np.full(xx.shape, 0.5)  # "led": background 0.5, contrast 0.45
    for cx, cy, radius in blobs:
        r = radius * user.scale
        expected += 0.45 * np.exp(-((xx - cx - user.dx) ** 2 + (yy - cy - user.dy) ** 2) / (2 * r * r))
    np.testing.assert_allclose(render(blobs, user, "led", grid), expected, rtol=1e-12, atol=1e-15)


def test_archive_does_not_depend_on_worker_count(tmp_path):
    """Same events and labels with 1 or 2 processes (the AEDAT headers hold the wall-clock start time)."""
    import neurodata as nd
    from neurodata.sim.gestures import write_archive

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
