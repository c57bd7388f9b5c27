"""Representations: hand-computed cases for every rule, Tonic/SpikingJelly agreement where they are
right, their documented bugs, properties (nothing dropped, kernels == references) and torch batches."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import neurodata as nd
from neurodata.events import make_events
from neurodata.representations import frames as frames_module
from neurodata.representations import (
    kernels,
    reference,
    slice_events,
    to_averaged_time_surface,
    to_frame,
    to_image,
    to_local_time_surfaces,
    to_sparse_frame,
    to_time_surface,
    to_voxel_grid,
)
from neurodata.representations.torch_ops import pack_events, to_frame_batch, to_voxel_grid_batch

DATA = Path(__file__).parent / "data"
NMNIST = (34, 34, 2)


@pytest.fixture(scope="module")
def tonic():
    with np.load(DATA / "tonic_expected.npz", allow_pickle=False) as npz:
        return dict(npz)


@pytest.fixture(scope="module")
def spikingjelly():
    with np.load(DATA / "spikingjelly_expected.npz", allow_pickle=False) as npz:
        return dict(npz)


@pytest.fixture(scope="module")
def nmnist(fixtures):
    return nd.read(fixtures / "nmnist" / "sample_nmnist.bin")


def line(t, x=None, p=0):
    """Events on a 1-pixel-high strip: x defaults to 0, 1, 2, ..."""
    t = np.asarray(t)
    x = np.arange(len(t)) if x is None else np.asarray(x)
    return make_events(t, x, np.zeros(len(t)), np.broadcast_to(p, len(t)))


def xs_per_frame(frames):
    """For a strip of single-pixel events, which x positions each frame counts (with repeats)."""
    return [
        sorted(np.repeat(np.nonzero(f.sum(axis=(0, 1)))[0], f.sum(axis=(0, 1))[f.sum(axis=(0, 1)) > 0]))
        for f in frames
    ]


FOUR = line([0, 100, 200, 300])
STRIP = (4, 1, 2)


# --- hand-computed slicing rules ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"time_window": 100}, [[0], [1], [2, 3]]),  # last window [200, 300] is closed at t_last
        ({"time_window": 100, "include_incomplete": True}, [[0], [1], [2, 3]]),
        ({"time_window": 150}, [[0, 1], [2, 3]]),  # [150, 300] ends at t_last: complete, closed
        ({"time_window": 150, "include_incomplete": True}, [[0, 1], [2, 3]]),
        ({"time_window": 200, "overlap": 100}, [[0, 1], [1, 2, 3]]),
        (
            {"time_window": 100, "start_time": -100, "end_time": 500, "include_incomplete": True},
            [[], [0], [1], [2], [3], []],
        ),
        # a trailing window past an explicit end_time ends where it ends, as in Tonic (it stopped at 250)
        ({"time_window": 200, "end_time": 250, "include_incomplete": True}, [[0, 1], [2, 3]]),
        ({"event_count": 3}, [[0, 1, 2]]),
        ({"event_count": 3, "include_incomplete": True}, [[0, 1, 2], [3]]),
        ({"event_count": 2, "overlap": 1}, [[0, 1], [1, 2], [2, 3]]),
        ({"event_count": 10}, [[0, 1, 2, 3]]),
        ({"n_time_bins": 3}, [[0], [1], [2, 3]]),
        ({"n_time_bins": 2, "overlap": 0.5}, [[0, 1, 2], [2, 3]]),  # bins [0, 225) and [112.5, 300]
        # bins of 112.5 every 56.25: Tonic's last, [168.75, 281.25), leaves t = 300 out; ours reaches it
        ({"n_time_bins": 4, "overlap": 0.5}, [[0, 1], [1], [2], [2, 3]]),
        ({"n_time_bins": 6}, [[0], [], [1], [], [2], [3]]),
        ({"n_event_bins": 3}, [[0], [1], [2, 3]]),  # the remainder joins the last bin
        ({"n_event_bins": 2, "overlap": 0.5}, [[0, 1, 2], [1, 2, 3]]),  # 3 events, stride 1, last to the end
        ({"duration": 100}, [[0], [1], [2, 3]]),
        ({"duration": 120}, [[0, 1], [2], [3]]),  # [0, 120), [120, 240), [240, 360)
    ],
)
def test_hand_computed_slicing(spec, expected):
    assert xs_per_frame(to_frame(FOUR, STRIP, **spec)) == expected


def test_frames_number_follows_spikingjelly_rules_by_hand():
    events = line([0, 10, 20, 35])
    # 'time': dt = 35 // 3 = 11, frames start at 0, 11, 22 and the last runs to the end.
    assert xs_per_frame(to_frame(events, STRIP, frames_number=3, split_by="time")) == [[0, 1], [2], [3]]
    # 'number': 4 // 3 = 1 event per frame, the remainder in the last.
    assert xs_per_frame(to_frame(events, STRIP, frames_number=3, split_by="number")) == [[0], [1], [2, 3]]
    # SpikingJelly raises IndexError on an empty 'time' frame; we return it empty.
    assert xs_per_frame(to_frame(line([0, 1, 2, 90]), STRIP, frames_number=3, split_by="time")) == [
        [0, 1, 2],
        [],
        [3],
    ]


def test_single_timestamp_goes_to_the_last_time_bin():
    events = line([5, 5, 5])
    assert xs_per_frame(to_frame(events, STRIP, n_time_bins=3)) == [[], [], [0, 1, 2]]
    assert xs_per_frame(to_frame(events, STRIP, time_window=10)) == [[0, 1, 2]]


def test_polarity_channels_and_merge():
    events = make_events([0, 1, 2], [0, 0, 1], [0, 0, 0], [1, 0, 1])
    two = to_image(events, (2, 1, 2))
    np.testing.assert_array_equal(two, [[[1, 0]], [[1, 1]]])
    np.testing.assert_array_equal(to_image(events, (2, 1, 1)), [[[2, 1]]])


@pytest.mark.parametrize(
    "spec",
    [{"time_window": 10}, {"event_count": 5}, {"n_time_bins": 4}, {"n_event_bins": 3}, {"duration": 7}],
)
def test_empty_input_gives_zeros_of_the_normal_shape(spec):
    frames = to_frame(make_events([], [], [], []), (5, 3, 2), **spec)
    n = spec.get("n_time_bins") or spec.get("n_event_bins") or 1
    assert frames.shape == (n, 2, 3, 5) and frames.dtype == np.int32 and not frames.any()


def test_counts_do_not_wrap_and_narrow_dtypes_refuse(tonic):
    events = make_events(np.arange(40000), np.zeros(40000), np.zeros(40000), np.zeros(40000))
    frames = to_frame(events, (2, 2, 2), n_event_bins=1)
    assert frames[0, 0, 0, 0] == 40000 and frames.sum() == 40000
    assert tonic["bug/int16_wrap"][0, 0, 0, 0] == 40000 - 65536  # Tonic's int16 wraps negative
    with pytest.raises(ValueError, match="int16"):
        to_frame(events, (2, 2, 2), n_event_bins=1, dtype=np.int16)
    assert to_frame(events, (2, 2, 2), n_event_bins=1, dtype=np.float32)[0, 0, 0, 0] == 40000.0


@pytest.mark.parametrize(
    "size, cache_bytes",
    [((5, 3, 2), None), ((1280, 720, 2), None), ((1280, 720, 2), 0)],  # small, large plain, large bucketed
)
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64, np.bool_])
def test_narrow_dtypes_count_directly_and_equal_int32(size, cache_bytes, dtype, monkeypatch):
    """Counted straight in ``dtype``: the same frames as int32 cast, for slices far longer than the
    dtype's range as long as no cell passes it; one cell past it refuses, also in the bucketed kernel."""
    if cache_bytes is not None:
        monkeypatch.setattr(frames_module, "CACHE_BYTES", cache_bytes)
    rng = np.random.default_rng(3)
    n = 3000
    events = make_events(np.arange(n), rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n))
    wide = to_frame(events, size, n_event_bins=2)
    frames = to_frame(events, size, n_event_bins=2, dtype=dtype)
    assert frames.dtype == dtype
    np.testing.assert_array_equal(frames, wide.astype(dtype))
    hot = make_events(np.arange(n, n + 300), np.zeros(300), np.zeros(300), np.ones(300))
    with pytest.raises(ValueError, match="more than 255 events, more than dtype uint8 holds; use int32"):
        to_frame(np.concatenate([events, hot]), size, n_event_bins=1, dtype=np.uint8)
    assert to_frame(hot, size, n_event_bins=1, dtype=np.int16)[0, 1, 0, 0] == 300


def test_tonic_bugs_differ_from_our_hand_computed_answers(tonic):
    # n_time_bins=3 over t = 0..300: Tonic loses the event at t_last, we keep it in the last bin.
    assert tonic["bug/n_time_bins_drop"].sum() == 3
    assert to_frame(FOUR, STRIP, n_time_bins=3).sum() == 4
    # time_window=100 with include_incomplete: Tonic still drops t_last.
    assert tonic["bug/time_window_drop"].sum() == 3
    assert to_frame(FOUR, STRIP, time_window=100, include_incomplete=True).sum() == 4
    # Empty input: Tonic swaps width and height.
    assert tuple(tonic["bug/empty_shape"]) == (4, 2, 5, 3)
    assert to_frame(make_events([], [], [], []), (5, 3, 2), n_time_bins=4).shape == (4, 2, 3, 5)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"event 1 has x=7.*x must be < 4"):
        to_frame(line([0, 1], [0, 7]), STRIP, n_time_bins=2)
    with pytest.raises(ValueError, match="exactly one"):
        to_frame(FOUR, STRIP, n_time_bins=2, time_window=10)
    with pytest.raises(ValueError, match="overlap"):
        to_frame(FOUR, STRIP, n_time_bins=2, overlap=1.0)
    with pytest.raises(ValueError, match="polarities"):
        to_frame(FOUR, (4, 1, 0), n_time_bins=2)  # 3 channels are allowed (Tonic)
    with pytest.raises(TypeError, match="structured"):
        to_frame(np.zeros((4, 4)), STRIP, n_time_bins=2)
    bad_p = line([0, 1])
    bad_p["p"] = [1, 3]
    with pytest.raises(ValueError, match="event 1 has p=3"):
        to_time_surface(bad_p, STRIP, dt=1, tau=1)
    with pytest.raises(ValueError, match="overlap applies"):
        to_frame(FOUR, STRIP, duration=10, overlap=2)
    with pytest.raises(ValueError, match="required for an empty"):
        to_frame(FOUR[:0], None, n_time_bins=2)


def test_sensor_size_none_is_inferred_like_tonic():
    frames = to_frame(FOUR, None, n_time_bins=1)
    assert frames.shape == (1, 2, 1, 4) and frames.sum() == 4
    # Tonic counts the polarities present (1 here); ours keeps 2 channels for every sample
    on_only = make_events([0, 1], [0, 1], [0, 0], [1, 1])
    assert to_frame(on_only, None, n_time_bins=1).shape == (1, 2, 1, 2)


def test_events_outside_every_slice_are_still_checked_and_sorted():
    """The one-pass count checks events no slice holds: a bad one is named, a late one re-sorts."""
    outside = line([0, 100, 200, 300], [7, 0, 1, 2])  # event 0 lies before the window and off the strip
    with pytest.raises(ValueError, match=r"event 0 has x=7.*x must be < 4"):
        to_frame(outside, STRIP, time_window=100, start_time=100)
    late = line([0, 100, 200, 300, 50], [0, 1, 2, 3, 3])  # the out-of-order event is the dropped remainder
    expected = to_frame(late[[0, 4, 1, 2, 3]], STRIP, event_count=2)
    np.testing.assert_array_equal(to_frame(late, STRIP, event_count=2), expected)
    assert expected[0, 0, 0].tolist() == [1, 0, 0, 1]  # the late event counts in the first frame


def test_unsorted_input_is_sorted_first():
    shuffled = FOUR[[2, 0, 3, 1]]
    np.testing.assert_array_equal(
        to_frame(shuffled, STRIP, n_time_bins=3), to_frame(FOUR, STRIP, n_time_bins=3)
    )


def test_strided_views_give_the_same_frames(nmnist):
    view = nmnist[::3]
    np.testing.assert_array_equal(
        to_frame(view, NMNIST, n_time_bins=4), to_frame(view.copy(), NMNIST, n_time_bins=4)
    )
    np.testing.assert_allclose(to_voxel_grid(view, NMNIST, 4), to_voxel_grid(view.copy(), NMNIST, 4))


def test_tonic_style_arrays_are_accepted():
    tonic_dtype = np.dtype([("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<i8")])
    arr = np.zeros(4, dtype=tonic_dtype)
    arr["t"], arr["x"], arr["p"] = FOUR["t"], FOUR["x"], [-1, 1, -1, 1]
    frames = to_frame(arr, STRIP, n_time_bins=3)
    np.testing.assert_array_equal(frames[:, 1].sum(axis=(1, 2)), [0, 1, 1])  # +1 polarities are ON


def test_big_endian_columns_give_the_native_answer(nmnist):
    """Big-endian fields (Tonic takes them) raised a Numba TypingError from deep inside ToFrame and
    Denoise (the polarity scan read them as they were)."""
    from neurodata import transforms as T

    little = np.zeros(len(nmnist), dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    for name in "xytp":
        little[name] = nmnist[name]
    little["p"] = little["p"] * 2 - 1
    big = little.astype([("x", ">i8"), ("y", ">i8"), ("t", ">i8"), ("p", ">i8")])
    to_frames = T.ToFrame(NMNIST, n_time_bins=3)
    np.testing.assert_array_equal(to_frames(big), to_frames(little))
    np.testing.assert_array_equal(to_frames({k: big[k] for k in "txyp"}), to_frames(little))
    denoised = T.Denoise(1000)(big)
    assert denoised.dtype == big.dtype
    np.testing.assert_array_equal(denoised.astype(little.dtype), T.Denoise(1000)(little))


@pytest.mark.parametrize("t, spec", [([-(2**62), 0, 2**62], {"time_window": 2**62}), ([-(2**63), 0, 2**63 - 1], {"n_time_bins": 2})])
def test_a_time_span_int64_cannot_hold_is_refused(t, spec):
    """A span of 2**63 us or more wrapped in int64 arithmetic: [-2**62, 0, 2**62] in windows of 2**62
    gave one frame of 3 events, with only a RuntimeWarning."""
    with pytest.raises(ValueError, match=r"time span .* is 2\*\*63 us or more"):
        to_frame(make_events(t, [0, 1, 2], [0, 0, 0], [1, 1, 1]), STRIP, **spec)


# --- agreement with Tonic where it is right (N-MNIST fixture) -------------------------------------


@pytest.mark.parametrize(
    ("key", "spec"),
    [
        ("frame/time_window", {"time_window": 10000}),
        ("frame/time_window_incomplete", {"time_window": 10000, "include_incomplete": True}),
        ("frame/time_window_overlap", {"time_window": 10000, "overlap": 2000, "include_incomplete": True}),
        ("frame/event_count", {"event_count": 1000}),
        ("frame/event_count_overlap", {"event_count": 1000, "overlap": 100, "include_incomplete": True}),
        ("frame/n_time_bins_overlap", {"n_time_bins": 3, "overlap": 0.1}),
    ],
)
def test_frames_match_tonic(nmnist, tonic, key, spec):
    ours = to_frame(nmnist, NMNIST, **spec)
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(ours, tonic[key])


def test_n_event_bins_match_tonic_except_the_remainder_tonic_drops(nmnist, tonic):
    np.testing.assert_array_equal(
        to_frame(nmnist, NMNIST, n_event_bins=5), tonic["frame/n_event_bins"]
    )  # 4325 % 5 == 0
    ours, theirs = to_frame(nmnist, NMNIST, n_event_bins=6), tonic["frame/n_event_bins_6"]
    np.testing.assert_array_equal(ours[:-1], theirs[:-1])
    np.testing.assert_array_equal(
        ours[-1] - theirs[-1], to_image(nmnist[6 * 720 :], NMNIST)
    )  # the 4325 % 6 = 5 tail


def test_n_time_bins_match_tonic_except_the_last_event_tonic_drops(nmnist, tonic):
    # (t_last - t_first) = 310521 is divisible by 3, so Tonic's floored bin width is exact.
    ours, theirs = to_frame(nmnist, NMNIST, n_time_bins=3), tonic["frame/n_time_bins"]
    np.testing.assert_array_equal(ours[:-1], theirs[:-1])
    at_end = nmnist[nmnist["t"] == nmnist["t"][-1]]
    np.testing.assert_array_equal(ours[-1] - theirs[-1], to_image(at_end, NMNIST))
    assert ours.sum() == len(nmnist)


def test_image_matches_tonic(nmnist, tonic):
    np.testing.assert_array_equal(to_image(nmnist, NMNIST), tonic["image"])


# --- agreement with SpikingJelly ------------------------------------------------------------------


@pytest.mark.parametrize("split_by", ["number", "time"])
@pytest.mark.parametrize("frames", [1, 7, 8, 10, 16])  # 8, 16: a frame length rounded up would differ
def test_frames_number_matches_spikingjelly(nmnist, spikingjelly, split_by, frames):
    ours = to_frame(nmnist, NMNIST, frames_number=frames, split_by=split_by)
    np.testing.assert_array_equal(ours, spikingjelly[f"frames_number/{split_by}/{frames}"])


@pytest.mark.parametrize("duration", [10000, 50000])
def test_duration_matches_spikingjelly(nmnist, spikingjelly, duration):
    np.testing.assert_array_equal(
        to_frame(nmnist, NMNIST, duration=duration), spikingjelly[f"duration/{duration}"]
    )


# --- voxel grid -----------------------------------------------------------------------------------


def test_voxel_grid_by_hand_and_tonic_bool_bug(tonic):
    events = make_events([0, 50, 100], [0, 1, 1], [0, 0, 0], [0, 1, 1])
    grid = to_voxel_grid(events, (2, 1, 2), n_time_bins=2)
    # positions 0, 0.5, 1: OFF event -1 in bin 0; ON +0.5/+0.5; last event wholly in bin 1.
    np.testing.assert_allclose(grid[:, 0, 0], [[-1.0, 0.5], [0.0, 1.5]])
    # Tonic with boolean polarity: the OFF event counts +1 and the last event weighs nothing.
    np.testing.assert_allclose(tonic["bug/voxel_bool"][:, 0, 0], [[1.0, 0.0], [0.0, 1.0]])


def test_voxel_grid_matches_tonic_where_tonic_keeps_weight(nmnist, tonic):
    # Tonic places events at B * (t - t0) / span and discards weight landing on bin B; our grid with
    # B + 1 bins uses the same positions, so its first B bins must equal Tonic's.
    ours = to_voxel_grid(nmnist, NMNIST, n_time_bins=6)
    np.testing.assert_allclose(ours[:5], tonic["voxel/5"], atol=1e-5)


def test_voxel_grid_keeps_every_events_weight(nmnist):
    grid = to_voxel_grid(nmnist, NMNIST, n_time_bins=5)
    assert grid.shape == (5, 1, 34, 34) and grid.dtype == np.float32
    assert grid.sum() == pytest.approx(float((2 * nmnist["p"].astype(int) - 1).sum()), abs=1e-2)
    np.testing.assert_allclose(grid[:, 0], reference.voxel_reference(nmnist, 5, 34, 34), atol=1e-5)
    assert not to_voxel_grid(make_events([], [], [], []), NMNIST, 3).any()


# --- time surfaces --------------------------------------------------------------------------------


def test_time_surface_by_hand():
    events = make_events([0, 50, 120], [0, 0, 1], [0, 0, 0], [1, 1, 1])
    one = to_time_surface(events, (2, 1, 2), dt=100, tau=100)
    np.testing.assert_allclose(one[:, 1, 0], [[np.exp(-0.5), 0.0]], rtol=1e-6)
    assert not one[:, 0].any()
    two = to_time_surface(events, (2, 1, 2), dt=100, tau=100, include_incomplete=True)
    np.testing.assert_allclose(two[1, 1, 0], [np.exp(-1.5), np.exp(-0.8)], rtol=1e-6)
    lin = to_time_surface(events, (2, 1, 2), dt=100, tau=100, decay="lin", include_incomplete=True)
    np.testing.assert_allclose(lin[1, 1, 0], [0.5, 1 - 80 / 300], rtol=1e-6)


def test_time_surface_matches_tonic_and_reference(nmnist, tonic):
    ours = to_time_surface(nmnist, NMNIST, dt=10000, tau=5000)
    np.testing.assert_allclose(ours, tonic["time_surface"], rtol=1e-5, atol=1e-7)
    starts, ends = slice_events(nmnist["t"], time_window=10000)
    refs = nmnist["t"][0] + 10000 * np.arange(1, len(starts) + 1)
    np.testing.assert_allclose(
        ours, reference.time_surface_reference(nmnist, starts, ends, refs, 5000, 2, 34, 34), rtol=1e-5
    )


@pytest.mark.parametrize("decay", ["exp", "lin"])
def test_time_surfaces_do_not_move_with_the_clock(nmnist, decay):
    """The same surfaces for a recording in Unix-time microseconds (float64 keeps only quarter
    microseconds there: ages are taken from the first event's time)."""
    late = nmnist.copy()
    late["t"] += 1_600_000_000_000_000
    np.testing.assert_array_equal(
        to_time_surface(late, NMNIST, dt=3333.3, tau=5000, decay=decay),
        to_time_surface(nmnist, NMNIST, dt=3333.3, tau=5000, decay=decay),
    )


def test_local_time_surfaces_by_hand():
    events = make_events([0, 10, 20], [1, 2, 1], [1, 1, 1], [1, 1, 0])
    surfaces = to_local_time_surfaces(events, (3, 3, 2), radius=1, tau=10)
    assert surfaces.shape == (3, 3, 3)
    expected = np.zeros((3, 3, 3))
    expected[:, 1, 1] = 1
    expected[1, 1, 0] = np.exp(-1)  # event 1 sees event 0 one pixel to its left, 10 us earlier
    np.testing.assert_allclose(surfaces, expected, rtol=1e-6)  # event 2 is OFF: it sees only itself


def test_averaged_time_surface_by_hand():
    events = make_events([0, 10, 30], [1, 2, 1], [1, 1, 1], [0, 0, 0])
    hist = to_averaged_time_surface(events, (4, 4, 1), cell_size=4, surface_size=3, time_window=25, tau=10)
    expected = np.zeros((3, 3))
    expected[1, 1] = 3
    expected[1, 0] = np.exp(-1)  # event 1 <- event 0 (age 10, dx -1)
    expected[1, 2] = np.exp(-2)  # event 2 <- event 1 (age 20, dx +1); event 0 is 30 us old > 25
    np.testing.assert_allclose(hist, (expected / 3)[None, None], rtol=1e-6)


@pytest.mark.parametrize("key", ["averaged_time_surface", "averaged_time_surface_lin"])
def test_averaged_time_surface_matches_tonic(nmnist, tonic, key):
    spec = (
        {"surface_size": 5, "cell_size": 10, "time_window": 20000, "tau": 5000}
        if key == "averaged_time_surface"
        else {"surface_size": 3, "cell_size": 10, "time_window": 3000, "tau": 1000, "decay": "lin"}
    )
    np.testing.assert_allclose(
        to_averaged_time_surface(nmnist, NMNIST, **spec), tonic[key], rtol=1e-4, atol=1e-6
    )


def test_tonic_hats_loses_negative_offsets_on_uint16_coordinates(nmnist, tonic):
    ours = to_averaged_time_surface(nmnist, NMNIST, surface_size=5, cell_size=10, time_window=20000, tau=5000)
    theirs = tonic["bug/hats_uint16"]
    assert not theirs[:, :, :2, :].any() and not theirs[:, :, :, :2].any()  # rows/cols above/left of centre
    assert ours[:, :, :2, :].any() and ours[:, :, :, :2].any()
    np.testing.assert_allclose(ours, tonic["averaged_time_surface"], rtol=1e-4, atol=1e-6)


# --- sparse, torch batches ------------------------------------------------------------------------


def test_sparse_frames_equal_dense_with_overlap(nmnist):
    spec = {"event_count": 1000, "overlap": 300, "include_incomplete": True}
    sparse = to_sparse_frame(nmnist, NMNIST, **spec)
    assert sparse.is_sparse and sparse.is_coalesced()
    np.testing.assert_array_equal(sparse.to_dense().numpy(), to_frame(nmnist, NMNIST, **spec))


def test_torch_batches_equal_numpy_per_sample(nmnist):
    samples = [nmnist[:1500], nmnist[1500:1501], nmnist[1501:1501], nmnist[1501:], line([7, 7, 7], [3, 4, 5])]
    packed = pack_events(samples)
    args = (packed["t"], packed["x"], packed["y"], packed["p"], packed["lengths"], NMNIST)
    for spec in ({"n_time_bins": 7}, {"n_event_bins": 4}):
        batch = to_frame_batch(*args, **spec)
        for i, s in enumerate(samples):
            np.testing.assert_array_equal(batch[i].numpy(), to_frame(s, NMNIST, **spec))
    grids = to_voxel_grid_batch(*args, n_time_bins=5)
    for i, s in enumerate(samples):
        np.testing.assert_allclose(grids[i].numpy(), to_voxel_grid(s, NMNIST, 5), atol=1e-5)


def test_torch_batch_checks_input():
    packed = pack_events([line([0, 1], [0, 50])])
    with pytest.raises(ValueError, match="outside the sensor"):
        to_frame_batch(
            packed["t"], packed["x"], packed["y"], packed["p"], packed["lengths"], NMNIST, n_time_bins=2
        )
    with pytest.raises(ValueError, match="not sorted"):
        pack_events([line([5, 1])])


# --- properties -----------------------------------------------------------------------------------


@st.composite
def event_arrays(draw, max_size=60):
    n = draw(st.integers(0, max_size))
    t = np.sort(np.array(draw(st.lists(st.integers(0, 500), min_size=n, max_size=n)), dtype=np.int64))
    x = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    y = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    p = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    return make_events(t, x, y, p)


NO_DROP_SPECS = st.one_of(
    st.builds(dict, n_time_bins=st.integers(1, 9)),
    st.builds(dict, n_event_bins=st.integers(1, 9)),
    st.builds(dict, frames_number=st.integers(1, 9), split_by=st.sampled_from(["number", "time"])),
    st.builds(dict, duration=st.integers(1, 200)),
    st.builds(dict, duration=st.floats(0.05, 200)),
    st.builds(dict, time_window=st.integers(1, 200), include_incomplete=st.just(True)),
    st.builds(dict, time_window=st.floats(0.05, 200), include_incomplete=st.just(True)),
    st.builds(dict, event_count=st.integers(1, 30), include_incomplete=st.just(True)),
)
SENSOR = (5, 3, 2)


@settings(max_examples=150, deadline=None)
@given(event_arrays(), NO_DROP_SPECS)
# a last window whose exact end passes t_last while its float edge equals it lost the event at t_last
@example(make_events([0, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0]), {"duration": 0.05})
def test_no_event_is_dropped(events, spec):
    frames = to_frame(events, SENSOR, **spec)
    assert frames.sum() == len(events)
    np.testing.assert_array_equal(frames.sum(axis=0), to_image(events, SENSOR))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=60),
    st.sampled_from([0, 1_600_000_000_000_000, 2**62]),
    st.one_of(
        st.builds(dict, time_window=st.floats(0.01, 5e5), include_incomplete=st.booleans()),
        st.builds(dict, time_window=st.floats(1, 5e5), overlap=st.floats(0, 0.99), include_incomplete=st.booleans()),
        st.builds(dict, n_time_bins=st.integers(1, 40), overlap=st.sampled_from([0, 0.25, 0.5])),
        st.builds(dict, duration=st.floats(0.01, 5e5)),
    ),
)
@example([0, 1], 0, {"time_window": 0.01, "include_incomplete": True})
def test_time_slices_partition_the_events_and_do_not_move_with_the_clock(times, origin, spec):
    """Fractional windows: without overlap, each window ends where the next starts (no event in two
    windows or in none), and the slices are the same whatever the recording's time origin (Unix-time
    microseconds keep only quarter microseconds in float64)."""
    t = np.sort(np.array(times, dtype=np.int64))
    starts, ends = slice_events(t, **spec)
    shifted = slice_events(t + origin, **spec)
    np.testing.assert_array_equal(starts, shifted[0])
    np.testing.assert_array_equal(ends, shifted[1])
    if not spec.get("overlap"):
        np.testing.assert_array_equal(starts[1:], ends[:-1])
        if "n_time_bins" in spec or "duration" in spec or spec.get("include_incomplete"):
            assert starts[0] == 0 and ends[-1] == len(t)


def test_a_fractional_window_over_a_long_recording_slices_all_of_it():
    """100 s at 30 frames per second: 2999 whole windows of 1e6/30 us (the count computed with Python
    integers; a numpy integer inside a Fraction overflowed and gave one window)."""
    t = np.arange(0, 100_000_001, 1000, dtype=np.int64)
    events = make_events(t, np.zeros(len(t)), np.zeros(len(t)), np.ones(len(t)))
    frames = to_frame(events, (4, 4, 2), time_window=1e6 / 30)
    assert len(frames) == 2999
    assert frames.sum() == np.count_nonzero(t < 2999 * 1e6 / 30)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"event_count": 2.5}, "event_count must be a whole number, got 2.5"),
        ({"event_count": 10, "overlap": 1.5}, "overlap must be a whole number, got 1.5"),
        ({"time_window": float("nan")}, "time_window must be finite, got nan"),
        ({"time_window": float("inf")}, "time_window must be finite, got inf"),
        ({"time_window": 10, "overlap": float("nan")}, "overlap must be finite, got nan"),
        ({"time_window": "10"}, "time_window must be a number, got '10'"),
        ({"n_time_bins": float("nan")}, "n_time_bins must be a whole number, got nan"),
        ({"n_event_bins": 2.5}, "n_event_bins must be a whole number, got 2.5"),
        ({"frames_number": 0, "split_by": "time"}, "frames_number must be a positive integer, got 0"),
        ({"time_window": 10, "start_time": float("nan")}, "start_time must be finite, got nan"),
        ({"n_time_bins": 3, "end_time": float("inf")}, "end_time must be finite, got inf"),
    ],
)
def test_slicing_arguments_are_checked_by_name(nmnist, spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        to_frame(nmnist, (34, 34, 2), **spec)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e: to_averaged_time_surface(e, NMNIST, time_window=-1), "time_window must be positive, got -1"),
        (lambda e: to_averaged_time_surface(e, NMNIST, tau=float("nan")), "tau must be finite, got nan"),
        (lambda e: to_time_surface(e, NMNIST, dt=float("nan"), tau=100), "dt must be finite, got nan"),
        (lambda e: to_time_surface(e, NMNIST, dt=0, tau=100), "dt must be positive, got 0"),
    ],
)
def test_surface_arguments_are_checked_by_name(nmnist, call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call(nmnist)


def test_a_whole_float_event_count_counts_like_the_int(nmnist):
    np.testing.assert_array_equal(
        to_frame(nmnist, (34, 34, 2), event_count=200.0, overlap=50.0), to_frame(nmnist, (34, 34, 2), event_count=200, overlap=50)
    )


@settings(max_examples=150, deadline=None)
@given(
    event_arrays(),
    st.one_of(
        st.builds(dict, n_time_bins=st.integers(1, 6), overlap=st.floats(0, 0.9)),
        st.builds(dict, n_event_bins=st.integers(1, 6), overlap=st.floats(0, 0.9)),
        st.builds(
            dict, time_window=st.integers(2, 200), overlap=st.integers(0, 1), include_incomplete=st.booleans()
        ),
        st.builds(
            dict, event_count=st.integers(2, 30), overlap=st.integers(0, 1), include_incomplete=st.booleans()
        ),
    ),
)
def test_kernel_matches_reference_and_slices_are_sound(events, spec):
    starts, ends = slice_events(events["t"], **spec)
    assert np.all(starts <= ends) and np.all(np.diff(starts) >= 0) and np.all(np.diff(ends) >= 0)
    frames = to_frame(events, SENSOR, **spec)
    np.testing.assert_array_equal(frames, reference.frames_reference(events, starts, ends, 2, 3, 5))
    covered = np.zeros(len(events), dtype=bool)
    for a, b in zip(starts, ends):
        covered[a:b] = True
    if "n_time_bins" in spec or "n_event_bins" in spec or spec.get("include_incomplete"):
        assert covered.all()  # fixed bins and include_incomplete never leave an event out
    else:
        assert not covered[ends[-1] :].any() and covered[: ends[-1]].all()  # only the trailing remainder


@settings(max_examples=100, deadline=None)
@given(event_arrays(), st.integers(2, 30), st.integers(0, 1), st.integers(0, 5))
def test_bucketed_kernel_matches_reference(events, event_count, overlap, shift):
    starts, ends = slice_events(
        events["t"], event_count=event_count, overlap=overlap, include_incomplete=True
    )
    for merge, n_pol in ((False, 2), (True, 1)):
        frames = np.zeros((len(starts), n_pol, 3, 5), dtype=np.int32)
        assert kernels.accumulate_frames_bucketed(events, starts, ends, merge, frames, 0, False, shift)
        np.testing.assert_array_equal(frames, reference.frames_reference(events, starts, ends, n_pol, 3, 5))


@settings(max_examples=200, deadline=None)
@given(
    event_arrays(),
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=6),
    st.sampled_from(["none", "x", "y", "p", "order"]),
    st.integers(0, 59),
    st.sampled_from([0, 1, 2, 7]),
)
def test_validating_kernel_counts_like_the_reference_or_names_the_first_misplaced_event(
    events, bounds, fault, where, ahead
):
    """Any slices (gaps before, between and after them, overlaps, any order); one event may be moved
    off the sensor or back in time: the kernel returns the first such index, held by a slice or not.
    Any prefetch distance (``ahead``: 0 counts each event in turn; others stage events that far
    ahead, even past a short slice's end)."""
    events = events.copy()
    n = len(events)
    if fault != "none" and n:
        k = where % n
        if fault == "order":
            assume(k > 0 and events["t"][k - 1] > 0)
            events["t"][k] = events["t"][k - 1] - 1
        else:
            events[fault][k] = {"x": 5, "y": 3, "p": 2}[fault]
    starts = np.array([min(a, b, n) for a, b in bounds], dtype=np.int64)
    ends = np.array([min(max(a, b), n) for a, b in bounds], dtype=np.int64)
    t = events["t"].astype(np.int64)
    for merge, n_pol in ((False, 2), (True, 1)):
        bad = (events["x"] >= 5) | (events["y"] >= 3) | ((events["p"] >= n_pol) & (not merge))
        bad[1:] |= t[1:] < t[:-1]
        frames = np.zeros((len(starts), n_pol, 3, 5), dtype=np.int32)
        status = kernels.accumulate_frames_validating(
            events, starts, ends, merge, frames, 0, False, 0, len(events), ahead
        )
        assert status == (int(np.argmax(bad)) if bad.any() else -1)
        if status == -1:
            np.testing.assert_array_equal(frames, reference.frames_reference(events, starts, ends, n_pol, 3, 5))


@pytest.mark.parametrize("bucketed", [False, True])
def test_large_frames_count_correctly_with_either_kernel(bucketed, monkeypatch):
    if bucketed:  # 1280x720 frames are below the size where the bucketed kernel takes over
        monkeypatch.setattr(frames_module, "CACHE_BYTES", 1 << 20)
    rng = np.random.default_rng(5)
    n = 200_000
    events = make_events(
        np.sort(rng.integers(0, 10**6, n)),
        rng.integers(0, 1280, n),
        rng.integers(0, 720, n),
        rng.integers(0, 2, n),
    )
    frames = to_frame(events, (1280, 720, 2), n_time_bins=3)
    assert (frames[0].nbytes > frames_module.CACHE_BYTES) == bucketed
    starts, ends = slice_events(events["t"], n_time_bins=3)
    np.testing.assert_array_equal(frames, reference.frames_reference(events, starts, ends, 2, 720, 1280))


@settings(max_examples=100, deadline=None)
@given(event_arrays(), st.integers(1, 8))
def test_voxel_kernel_matches_reference(events, n_bins):
    grid = to_voxel_grid(events, SENSOR, n_bins, dtype=np.float64)
    np.testing.assert_allclose(grid[:, 0], reference.voxel_reference(events, n_bins, 3, 5), atol=1e-9)
    assert grid.sum() == pytest.approx(float((2 * events["p"].astype(int) - 1).sum()), abs=1e-9)


def test_cuda_batch_matches_cpu_when_available(nmnist):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine; the device check runs where one is lent")
    packed = pack_events([nmnist[:2000], nmnist[2000:]], device="cuda")
    args = (packed["t"], packed["x"], packed["y"], packed["p"], packed["lengths"], NMNIST)
    np.testing.assert_array_equal(
        to_frame_batch(*args, n_time_bins=5).cpu()[1].numpy(), to_frame(nmnist[2000:], NMNIST, n_time_bins=5)
    )
    np.testing.assert_allclose(
        to_voxel_grid_batch(*args, n_time_bins=5).cpu()[0].numpy(),
        to_voxel_grid(nmnist[:2000], NMNIST, 5),
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda e: to_frame(e, STRIP, time_window=1e-3), r"slicing into 9999999 windows of 0.001"),
        (lambda e: to_frame(e, STRIP, n_time_bins=10**6), r"n_time_bins=1000000 bins would take"),
        (lambda e: to_frame(e, (400, 400, 2), n_time_bins=3), r"frames \(3, 2, 400, 400\) of int32 would take"),
        (lambda e: to_voxel_grid(e, (400, 400, 2), 3), r"a voxel grid \(3, 400, 400\) of float64"),
    ],
    ids=["time_window", "n_time_bins", "frames", "voxel grid"],
)
def test_an_output_bigger_than_memory_is_refused_before_it_is_made(monkeypatch, make, message):
    """A time surface of 10**9 windows was granted lazily, then filled until the system killed the
    process with no message; outputs and window counts are now checked against the machine's memory
    (here made 2 MB, so that the test needs none)."""
    from neurodata.representations import _memory

    monkeypatch.setattr(_memory, "physical_memory", lambda: 2_000_000)
    events = make_events([0, 10_000], [0, 1], [0, 0], [1, 1])
    with pytest.raises(ValueError, match=message + r".*more than this machine's 1.9 MiB of memory"):
        make(events)
    assert to_frame(events, STRIP, n_time_bins=3).sum() == 2  # small outputs pass


@pytest.mark.parametrize(
    "keywords, message",
    [
        ({"surface_size": 3.5}, "surface_size must be a whole number, got 3.5"),  # was a bare TypeError
        ({"cell_size": 2.5}, "cell_size must be a whole number, got 2.5"),  # gave float cell indices
        ({"cell_size": 0}, "cell_size must be positive, got 0"),
    ],
)
def test_averaged_time_surface_sizes_are_whole_numbers(keywords, message):
    events = make_events([0, 10], [0, 1], [0, 0], [0, 1])
    with pytest.raises(ValueError, match=message):
        to_averaged_time_surface(events, (4, 4, 2), **keywords)
    assert to_averaged_time_surface(events, (4, 4, 2), surface_size=3.0).shape == (1, 2, 3, 3)
