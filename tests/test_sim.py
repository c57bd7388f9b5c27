"""The DVS simulator: the Numba kernel against its reference, threshold physics, noise and leak."""

from __future__ import annotations

import numpy as np
import pytest

from neurodata.sim import DvsParams, simulate_frames
from neurodata.sim.dvs import DvsPixelArray
from neurodata.sim.kernels import step_reference


def moving_blob(n=12, size=16):
    yy, xx = np.mgrid[0:size, 0:size]
    return [0.2 + np.exp(-((xx - 3 - 0.7 * k) ** 2 + (yy - 8) ** 2) / 8) for k in range(n)], np.arange(
        n
    ) * 1000


def test_kernel_matches_reference_on_a_moving_blob():
    frames, times = moving_blob()
    params = DvsParams(threshold_sigma=0.05, refractory_us=300, seed=3)
    sensor = DvsPixelArray(frames[0], times[0], params)
    ref_state = (sensor.ref.copy(), sensor.last_t.copy())
    prev_log = sensor.log.copy()
    for frame, t in zip(frames[1:], times[1:]):
        t_before = sensor.t
        got = sensor.step(frame, t)
        new_log = np.log(frame + params.log_eps)
        expected = step_reference(
            prev_log,
            new_log,
            t_before,
            t,
            *ref_state[:1],
            sensor.c_on,
            sensor.c_off,
            ref_state[1],
            params.refractory_us,
        )
        assert sorted(got.tolist()) == sorted(expected)
        np.testing.assert_allclose(sensor.ref, ref_state[0])
        prev_log = new_log


def test_step_change_fires_one_event_per_threshold_at_interpolated_times():
    c = 0.25
    before = np.full((2, 3), 1.0)
    after = before * np.exp(3 * c + 1e-9)  # log intensity rises by exactly three thresholds
    params = DvsParams(c_on=c, c_off=c, threshold_sigma=0.0, refractory_us=0, log_eps=0.0)
    events = simulate_frames([before, after], [0, 3000], params)
    assert len(events) == 6 * 3 and (events["p"] == 1).all()
    per_pixel = {
        (x, y): sorted(t for t, xx, yy, _ in events.tolist() if (xx, yy) == (x, y))
        for x in range(3)
        for y in range(2)
    }
    for times in per_pixel.values():
        np.testing.assert_allclose(times, [1000, 2000, 3000], atol=1)
    darker = simulate_frames([after, before], [0, 3000], params)
    assert len(darker) == 18 and (darker["p"] == 0).all()


def test_refractory_period_suppresses_close_events():
    frames = [np.full((1, 1), 1.0), np.full((1, 1), np.exp(2.0))]
    fast = simulate_frames(
        frames, [0, 1000], DvsParams(c_on=0.2, threshold_sigma=0, refractory_us=0, log_eps=0)
    )
    slow = simulate_frames(
        frames, [0, 1000], DvsParams(c_on=0.2, threshold_sigma=0, refractory_us=300, log_eps=0)
    )
    assert len(fast) == 10
    assert len(slow) < len(fast) and (np.diff(slow["t"]) >= 300).all()


def test_leak_makes_static_pixels_fire_on_and_noise_is_seeded():
    static = [np.full((8, 8), 0.5)] * 11
    times = np.arange(11) * 100_000  # one second
    quiet = simulate_frames(static, times, DvsParams())
    assert len(quiet) == 0
    leaky = simulate_frames(static, times, DvsParams(leak_hz=5.5, threshold_sigma=0))
    assert len(leaky) == 64 * 5 and (leaky["p"] == 1).all()  # the memory drifts 5.5 thresholds in 1 s
    noisy_a = simulate_frames(static, times, DvsParams(shot_noise_hz=10.0, seed=1))
    noisy_b = simulate_frames(static, times, DvsParams(shot_noise_hz=10.0, seed=1))
    np.testing.assert_array_equal(noisy_a, noisy_b)
    assert len(noisy_a) == pytest.approx(640, rel=0.25)
    assert (np.diff(noisy_a["t"]) >= 0).all()


def test_frame_times_must_increase():
    with pytest.raises(ValueError, match="must increase"):
        simulate_frames([np.ones((2, 2))] * 2, [5, 5])


@pytest.mark.parametrize("second", [(2, 8), (2, 2), (4, 5)])
def test_a_frame_of_another_shape_is_refused(second):
    """The kernel reads the new frame at the first frame's indices: (2, 2) after (8, 8) read past the
    array (378 events from other memory), (2, 8) after (4, 4) gave 88 events; both without an error."""
    first = np.full((8, 8) if second == (2, 2) else (4, 4), 0.1)
    with pytest.raises(ValueError, match=rf"the frame at t = 1000 us has shape \({second[0]}, {second[1]}\)"):
        simulate_frames([first, np.full(second, 0.9)], [0, 1000], DvsParams(threshold_sigma=0))
    with pytest.raises(ValueError, match="frames must be \\[H, W\\] intensities"):
        DvsPixelArray(np.zeros((2, 3, 4)), 0)


def test_hot_pixels_fire_on_at_their_rate_whatever_they_see():
    static = [np.full((16, 16), 0.5)] * 11
    times = np.arange(11) * 100_000  # one second
    params = DvsParams(hot_pixels=3, hot_pixel_hz=200.0, seed=4)
    events = simulate_frames(static, times, params)
    pixels = {(int(x), int(y)) for x, y in zip(events["x"], events["y"])}
    assert len(pixels) == 3 and (events["p"] == 1).all()
    assert len(events) == pytest.approx(600, rel=0.2)
    assert (np.diff(events["t"]) >= 0).all()
    np.testing.assert_array_equal(events, simulate_frames(static, times, params))
    assert len(simulate_frames(static, times, DvsParams(hot_pixels=3, seed=4))) == 0  # a rate of 0 Hz
