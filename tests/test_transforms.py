"""Transforms: Tonic agreement on the N-MNIST fixture, kernels vs numpy references, hand cases for
the Tonic bugs we fix, and seeded randomness (reproducible, picklable, distinct per worker)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import neurodata as nd
import neurodata.transforms as T
from neurodata.events import EVENT_DTYPE, make_events
from neurodata.transforms import functional as F
from neurodata.transforms import kernels, reference

DATA = Path(__file__).parent / "data"
S = (34, 34, 2)


@pytest.fixture(scope="module")
def tonic():
    with np.load(DATA / "tonic_expected.npz", allow_pickle=False) as npz:
        return dict(npz)


@pytest.fixture(scope="module")
def nmnist(fixtures):
    return nd.read(fixtures / "nmnist" / "sample_nmnist.bin")


def columns(events):
    return np.stack([events[name].astype(np.int64) for name in "txyp"], axis=1)


@pytest.mark.parametrize(
    ("key", "transform"),
    [
        ("denoise", T.Denoise(filter_time=500)),
        ("refractory", T.RefractoryPeriod(delta=1000)),
        ("hot_pixels", T.DropPixel(hot_pixel_frequency=100)),
        ("drop_pixel", T.DropPixel(coordinates=[(10, 10), (20, 15), (5, 30)])),
        ("crop_time", T.CropTime(min=1000, max=200000)),
        ("merge_polarities", T.MergePolarities()),
        ("downsample", T.Downsample(time_factor=0.001, spatial_factor=0.5)),
        ("downsample_target", T.Downsample(sensor_size=S, target_size=(17, 10))),
        ("center_crop", T.CenterCrop(S, 20)),
        ("center_crop_pad", T.CenterCrop(S, (40, 30))),
        ("flip_lr", T.RandomFlipLR(S, p=1.0)),
        ("flip_ud", T.RandomFlipUD(S, p=1.0)),
        ("flip_polarity", T.RandomFlipPolarity(p=1.0)),
        ("time_reversal", T.RandomTimeReversal(p=1.0)),
    ],
)
def test_matches_tonic_on_fixture(nmnist, tonic, key, transform):
    out = transform(nmnist)
    assert out.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(columns(out), tonic[f"{key}/events"])


def test_filters_actually_filter(nmnist, tonic):
    assert 0 < len(tonic["denoise/events"]) < len(nmnist)
    assert 0 < len(tonic["refractory/events"]) < len(nmnist)
    assert 0 < len(tonic["hot_pixels/events"]) < len(nmnist)


def random_events(draw, n_max=80):
    n = draw(st.integers(0, n_max))
    t = np.sort(np.array(draw(st.lists(st.integers(0, 3000), min_size=n, max_size=n)), dtype=np.int64))
    x = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    y = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    return make_events(t, x, y, np.zeros(n))


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(1, 1500))
def test_filter_kernels_match_references(data, window):
    events = random_events(data.draw)
    w, h = (int(events["x"].max()) + 1, int(events["y"].max()) + 1) if len(events) else (1, 1)
    np.testing.assert_array_equal(
        kernels.denoise_mask(events, window, w, h),
        reference.denoise_reference(events, window),
    )
    np.testing.assert_array_equal(
        kernels.refractory_mask(events, window, w, h),
        reference.refractory_reference(events, window),
    )


def test_denoise_by_hand_without_tonics_initial_memory():
    # A lone event at t=0 and its neighbour at t=50: only the second has a recent neighbour.
    events = make_events([0, 50, 5000], [3, 4, 0], [3, 3, 0], [1, 1, 1])
    np.testing.assert_array_equal(T.Denoise(filter_time=100)(events)["t"], [50])
    # Tonic seeds every pixel's memory with filter_time, so any event before t = filter_time passes
    # (here all three events would pass with filter_time=10000); we require a real neighbour event.
    np.testing.assert_array_equal(T.Denoise(filter_time=10000)(events)["t"], [50])


@pytest.mark.parametrize("dx, dy", [(-1, 0), (1, 0), (0, -1), (0, 1)], ids=["left", "right", "above", "below"])
def test_denoise_neighbour_exactly_filter_time_before_does_not_count(dx, dy):
    """The window is open at its far end: a neighbour 99 us earlier keeps an event, 100 us does not."""
    for gap, kept in ((99, [99]), (100, [])):
        events = make_events([0, gap], [3 + dx, 3], [3 + dy, 3], [1, 1])
        np.testing.assert_array_equal(T.Denoise(filter_time=100)(events)["t"], kept)


def test_refractory_by_hand_keeps_first_event_at_time_zero():
    events = make_events([0, 500, 1000, 1600, 1700], [1, 1, 1, 1, 2], [0, 0, 0, 0, 0], [1, 0, 1, 1, 1])
    # previous event at the same pixel (kept or not) must be more than 500 us earlier
    np.testing.assert_array_equal(T.RefractoryPeriod(delta=500)(events)["t"], [0, 1600, 1700])


@pytest.mark.parametrize(
    "make", [lambda: T.Denoise(filter_time=3000), lambda: T.RefractoryPeriod(delta=100_000)], ids=["denoise", "refractory"]
)
def test_filters_judge_shuffled_events_in_time_order(nmnist, make):
    """The filters look back in time: shuffled events keep the same events as the sorted recording,
    in the caller's order (the masks were taken in array order, keeping events with no past)."""
    columns = {name: nmnist[name] for name in "txyp"} | {"index": np.arange(len(nmnist))}
    expected = make()(columns)["index"]  # the events kept from the sorted recording
    assert 0 < len(expected) < len(nmnist)
    order = np.random.default_rng(0).permutation(len(nmnist))
    kept = make()({name: column[order] for name, column in columns.items()})["index"]
    assert np.all(np.diff(np.argsort(order)[kept]) > 0)  # in the caller's order
    # the same events (two at one pixel and time may swap places)
    np.testing.assert_array_equal(np.sort(nmnist[kept]), np.sort(nmnist[expected]))


@pytest.mark.parametrize(
    "transform, message",
    [
        (lambda: T.Denoise(filter_time=-1), "filter_time must be >= 0, got -1"),
        (lambda: T.Denoise(filter_time=float("nan")), "filter_time must be finite, got nan"),
        (lambda: T.RefractoryPeriod(delta=-5), "delta must be >= 0, got -5"),
        (lambda: T.Downsample(time_factor=-1), "time_factor must be positive, got -1"),
        (lambda: T.TimeJitter(std=-100, seed=0), "std must be >= 0, got -100"),
        (lambda: T.SpatialJitter((34, 34, 2), var_x=-1, seed=0), "var_x must be >= 0, got -1"),
        (
            lambda: T.SpatialJitter((34, 34, 2), var_x=1, var_y=1, sigma_xy=2, seed=0),
            re.escape("sigma_xy**2 must not exceed var_x * var_y (a covariance), got 2"),
        ),
        (lambda: T.UniformNoise(sensor_size=(34, 34, 2), n=-1, seed=0), "n must be >= 0, got -1"),
        (lambda: T.UniformNoise(sensor_size=(34, 34, 2), n=2.5, seed=0), "n must be a whole number, got 2.5"),
        (
            lambda: T.ToFrame(sensor_size=(34.5, 34, 2), n_time_bins=2),
            re.escape("sensor_size must be (width, height, polarities), whole numbers, got (34.5, 34, 2)"),
        ),
    ],
)
def test_transform_arguments_are_checked_by_name(nmnist, transform, message):
    with pytest.raises(ValueError, match=message):
        transform()(nmnist)


def test_crop_time_does_not_reuse_the_first_samples_max(tonic):
    crop = T.CropTime(min=0)
    crop(make_events([0, 10], [0, 0], [0, 0], [0, 0]))
    second = make_events([5, 50], [0, 0], [0, 0], [0, 0])
    np.testing.assert_array_equal(crop(second)["t"], [5, 50])
    np.testing.assert_array_equal(tonic["bug/crop_time_reuse/events"][:, 0], [5])  # Tonic drops t=50


def test_compose_runs_every_transform_even_on_empty():
    frames = T.Compose([T.DropEvent(p=1.0, seed=0), T.ToFrame((4, 3, 2), n_time_bins=2)])(
        make_events([1, 2], [0, 1], [0, 0], [0, 1])
    )
    assert frames.shape == (2, 2, 3, 4) and not frames.any()


def test_hand_cases_for_geometry_transforms():
    events = make_events([0, 1, 2], [0, 5, 9], [0, 2, 3], [1, 0, 1])
    np.testing.assert_array_equal(T.SpatialCrop((4, 1), (3, 3))(events)[["x", "y"]].tolist(), [(1, 1)])
    np.testing.assert_array_equal(T.RandomFlipLR((10, 4, 2), p=1)(events)["x"], [9, 4, 0])
    np.testing.assert_array_equal(T.RandomFlipUD((10, 4, 2), p=1)(events)["y"], [3, 1, 0])
    np.testing.assert_array_equal(T.RandomFlipLR((10, 4, 2), p=0)(events)["x"], [0, 5, 9])
    rev = T.RandomTimeReversal(p=1)(events)
    np.testing.assert_array_equal(rev["t"], [0, 1, 2])
    np.testing.assert_array_equal(rev["x"], [9, 5, 0])
    np.testing.assert_array_equal(rev["p"], [0, 1, 0])
    with pytest.raises(ValueError, match="outside the sensor"):
        T.RandomFlipLR((5, 4, 2), p=1)(events)


def test_spatial_jitter_never_wraps_coordinates():
    events = make_events(np.arange(2000), np.zeros(2000), np.full(2000, 3), np.ones(2000))
    clamped = T.SpatialJitter((4, 4, 2), var_x=4, var_y=4, seed=3)(events)
    assert len(clamped) == 2000 and clamped["x"].max() <= 3 and clamped["y"].max() <= 3
    clipped = T.SpatialJitter((4, 4, 2), var_x=4, var_y=4, clip_outliers=True, seed=3)(events)
    assert 0 < len(clipped) < 2000 and clipped["x"].max() <= 3


def test_random_drops_by_hand(nmnist):
    assert len(T.DropEvent(p=0.25, seed=1)(nmnist)) == len(nmnist) - round(0.25 * len(nmnist))
    by_area = T.DropEventByArea(S, area_ratio=0.5, seed=1)(nmnist)
    removed = np.setdiff1d(columns(nmnist).view("i8,i8,i8,i8"), columns(by_area).view("i8,i8,i8,i8"))
    removed = removed.view(np.int64).reshape(-1, 4)
    assert (
        len(removed)
        and removed[:, 1].max() - removed[:, 1].min() < 17
        and removed[:, 2].max() - removed[:, 2].min() < 17
    )
    late = nmnist.copy()
    late["t"] += 10**12  # Tonic measures the drop interval from t=0: it would drop nothing useful here
    by_time = T.DropEventByTime(duration_ratio=0.3, seed=2)(late)
    gap = np.diff(by_time["t"]).max()
    assert gap >= 0.3 * (late["t"][-1] - late["t"][0]) * 0.9


def test_uniform_noise_and_time_transforms(nmnist):
    noisy = T.UniformNoise(S, n=500, seed=4)(nmnist)
    assert len(noisy) == len(nmnist) + 500 and np.all(np.diff(noisy["t"]) >= 0)
    assert noisy["t"].min() >= nmnist["t"].min() and noisy["t"].max() <= nmnist["t"].max()
    assert T.UniformNoise(S, n=5, seed=4)(nmnist[:0]).size == 0
    skewed = T.TimeSkew(coefficient=2.0, offset=10)(nmnist)
    np.testing.assert_array_equal(skewed["t"], nmnist["t"] * 2 + 10)
    jittered = T.TimeJitter(std=1000, sort_timestamps=True, seed=5)(nmnist)
    assert np.all(np.diff(jittered["t"]) >= 0) and jittered["t"].min() >= 0


RANDOM = [
    lambda s: T.RandomCrop(S, (20, 20), seed=s),
    lambda s: T.RandomFlipLR(S, seed=s),
    lambda s: T.RandomFlipUD(S, seed=s),
    lambda s: T.RandomFlipPolarity(seed=s),
    lambda s: T.RandomTimeReversal(seed=s),
    lambda s: T.SpatialJitter(S, seed=s),
    lambda s: T.TimeJitter(std=100, seed=s),
    lambda s: T.TimeSkew(coefficient=(0.8, 1.2), offset=(0, 100), seed=s),
    lambda s: T.UniformNoise(S, n=(10, 100), seed=s),
    lambda s: T.DropEvent(p=(0.1, 0.5), seed=s),
    lambda s: T.DropEventByTime(duration_ratio=(0.1, 0.5), seed=s),
    lambda s: T.DropEventByArea(S, area_ratio=(0.1, 0.5), seed=s),
    lambda s: T.RandomDropPixel(p=0.1, sensor_size=S, seed=s),
    lambda s: T.RefractoryPeriod(delta=(100, 5000), seed=s),
]


def draws(transform, events, n=6):
    return [columns(transform(events)) for _ in range(n)]


@pytest.mark.parametrize("make", RANDOM)
def test_random_transforms_are_deterministic_under_a_seed(nmnist, make):
    first, again, other = draws(make(7), nmnist), draws(make(7), nmnist), draws(make(8), nmnist)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(first, other))
    copy = pickle.loads(pickle.dumps(make(7)))  # an unpickled copy starts again from the seed
    for a, b in zip(first, draws(copy, nmnist)):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from(range(len(RANDOM))))
def test_any_seed_reproduces(seed, which):
    events = make_events(
        np.arange(0, 20000, 40), np.arange(500) % 34, np.arange(500) // 15, np.arange(500) % 2
    )
    a, b = RANDOM[which](seed), RANDOM[which](seed)
    for _ in range(3):
        np.testing.assert_array_equal(a(events), b(events))


def test_generator_seed_is_used_as_given(nmnist):
    a = T.DropEvent(p=0.5, seed=np.random.default_rng(3))(nmnist)
    b = T.DropEvent(p=0.5, seed=np.random.default_rng(3))(nmnist)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="seed"):
        _ = T.DropEvent(p=0.5, seed=-1).rng


class _Samples(torch.utils.data.Dataset):
    def __init__(self, events, transform):
        self.events, self.transform = events, transform

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.from_numpy(self.transform(self.events).astype(np.float32))


def test_dataloader_workers_draw_differently_and_reproducibly(nmnist):
    dataset = _Samples(
        nmnist[:500], T.Compose([T.DropEvent(p=0.5, seed=11), T.ToFrame((34, 34, 2), n_time_bins=2)])
    )

    def run():
        torch.manual_seed(0)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=1, num_workers=2, multiprocessing_context="fork"
        )
        return [batch[0] for batch in loader]

    first, second = run(), run()
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b)
    assert not torch.equal(first[0], first[1])  # samples 0 and 1 come from different workers


def test_functional_rejects_plain_arrays():
    with pytest.raises(TypeError, match="structured"):
        F.denoise(np.zeros((3, 4)), 10)
