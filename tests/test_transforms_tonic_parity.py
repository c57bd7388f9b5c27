"""Tonic drop-in behaviour of neurodata.transforms: the caller's event form comes back (Tonic's
dtype, dicts, audio events, -1/+1 polarities), more than two polarity channels, rasters, Tonic's
``get_params`` and functional names, and the transforms Tonic users reach for (NumpyAsType,
ToOneHotEncoding, Repeat, Decimation, EventDrop, EventDownsampling, TimeAlignment, ToBinaRep,
PadTensors). Where Tonic is installed (the peer environment), outputs are compared with Tonic's on
the same input."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import peer_missing

import neurodata.transforms as T
from neurodata.events import EVENT_DTYPE, as_events
from neurodata.transforms import downsampling
from neurodata.transforms import functional as F

SENSOR = (24, 16, 2)
TONIC_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])


def tonic_events(n: int = 3000, seed: int = 0, sensor=SENSOR, dtype=TONIC_DTYPE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events = np.zeros(n, dtype=dtype)
    events["x"] = rng.integers(0, sensor[0], n)
    if "y" in dtype.names:
        events["y"] = rng.integers(0, sensor[1], n)
    events["t"] = np.sort(rng.integers(0, 200_000, n))
    events["p"] = rng.integers(0, sensor[2], n)
    return events


def tonic():
    try:
        import tonic.transforms as tonic_transforms
    except ImportError:
        peer_missing("tonic is not installed (see docs/testing.md for the peer environment)")
    return tonic_transforms


# Every event-to-event transform, seeded where random: (name, transform).
EVENT_TRANSFORMS = [
    ("CropTime", T.CropTime(min=1000, max=150_000)),
    ("Denoise", T.Denoise(filter_time=5000)),
    ("RefractoryPeriod", T.RefractoryPeriod(delta=2000)),
    ("Downsample", T.Downsample(time_factor=0.5, spatial_factor=0.5)),
    ("SpatialCrop", T.SpatialCrop(origin=(2, 3), target_size=(10, 8))),
    ("CenterCrop", T.CenterCrop(sensor_size=SENSOR, size=10)),
    ("DropPixel", T.DropPixel(coordinates=[(1, 1), (5, 7)])),
    ("MergePolarities", T.MergePolarities()),
    ("Decimation", T.Decimation(n=3)),
    ("TimeAlignment", T.TimeAlignment()),
    ("EventDownsampling", T.EventDownsampling(SENSOR, (6, 4), "integrator", dt=2, noise_threshold=2)),
    ("RandomCrop", T.RandomCrop(SENSOR, (12, 8), seed=1)),
    ("RandomFlipLR", T.RandomFlipLR(SENSOR, p=1.0, seed=1)),
    ("RandomFlipUD", T.RandomFlipUD(SENSOR, p=1.0, seed=1)),
    ("RandomFlipPolarity", T.RandomFlipPolarity(p=1.0, seed=1)),
    ("RandomTimeReversal", T.RandomTimeReversal(p=1.0, seed=1)),
    ("SpatialJitter", T.SpatialJitter(SENSOR, var_x=2, var_y=2, clip_outliers=True, seed=1)),
    ("TimeJitter", T.TimeJitter(std=50, seed=1)),
    ("TimeSkew", T.TimeSkew(coefficient=(0.9, 1.1), offset=(0, 10), seed=1)),
    ("UniformNoise", T.UniformNoise(SENSOR, n=(10, 50), seed=1)),
    ("DropEvent", T.DropEvent(p=0.3, seed=1)),
    ("DropEventByTime", T.DropEventByTime(duration_ratio=0.3, seed=1)),
    ("DropEventByArea", T.DropEventByArea(SENSOR, area_ratio=0.4, seed=1)),
    ("RandomDropPixel", T.RandomDropPixel(p=0.2, sensor_size=SENSOR, seed=1)),
    ("EventDrop", T.EventDrop(SENSOR, seed=3)),
]


def fresh(transform):
    """A copy of ``transform`` whose generator starts again from its seed."""
    return copy.deepcopy(transform)


@pytest.mark.parametrize("name, transform", EVENT_TRANSFORMS, ids=[n for n, _ in EVENT_TRANSFORMS])
def test_event_transforms_return_the_callers_dtype_and_our_values(name, transform):
    events = tonic_events()
    out = fresh(transform)(events)
    assert out.dtype == events.dtype and out is not events, name
    # the values are those computed on our own records
    ours = fresh(transform)(as_events(events))
    assert np.array_equal(as_events(out), ours), name


@pytest.mark.parametrize("name, transform", EVENT_TRANSFORMS, ids=[n for n, _ in EVENT_TRANSFORMS])
def test_event_transforms_take_spikingjelly_dicts(name, transform):
    events = tonic_events()
    columns = {"t": events["t"], "x": events["x"].astype(np.int32), "y": events["y"], "p": events["p"]}
    out = fresh(transform)(columns)
    assert isinstance(out, dict) and list(out) == list(columns), name
    assert all(out[k].dtype == columns[k].dtype for k in columns), name
    expected = fresh(transform)(as_events(events))
    assert all(np.array_equal(out[k], expected[k]) for k in "txyp"), name


def test_other_fields_survive_row_and_column_edits_and_filters():
    dtype = np.dtype([("t", "<f8"), ("x", "<i4"), ("y", "<i4"), ("p", "?"), ("id", "<i4")])
    events = tonic_events(dtype=dtype)
    events["id"] = np.arange(len(events))
    flipped = T.RandomFlipLR(SENSOR, p=1.0, seed=0)(events)
    assert flipped.dtype == dtype and np.array_equal(flipped["id"], events["id"])
    assert np.array_equal(flipped["x"], SENSOR[0] - 1 - events["x"])
    kept = T.Denoise(filter_time=5000)(events)
    assert kept.dtype == dtype and np.array_equal(kept, events[np.isin(events["id"], kept["id"])])


def test_audio_events_without_y():
    events = tonic_events(sensor=(40, 1, 2), dtype=np.dtype([("x", "<i8"), ("t", "<i8"), ("p", "<i8")]))
    for transform in (T.Decimation(n=2), T.TimeAlignment(), T.DropEvent(p=0.5, seed=0), T.CropTime(max=10**5)):
        out = transform(events)
        assert out.dtype == events.dtype
    frames = T.ToFrame(sensor_size=(40, 1, 2), time_window=20_000)(events)
    with_y = np.zeros(len(events), dtype=TONIC_DTYPE)
    for k in "xtp":
        with_y[k] = events[k]
    assert np.array_equal(frames, T.ToFrame(sensor_size=(40, 1, 2), time_window=20_000)(with_y)[:, :, 0])
    with pytest.raises(ValueError, match="height of 1"):
        T.ToFrame(sensor_size=(40, 2, 2), time_window=20_000)(events)


def test_signed_polarities_come_back_signed():
    events = tonic_events()
    events["p"] = np.where(events["p"] > 0, 1, -1)
    flipped = T.RandomFlipPolarity(p=1.0, seed=0)(events)
    assert np.array_equal(flipped["p"], -events["p"])
    assert np.array_equal(T.DropEvent(p=0.0, seed=0)(events), events)


def test_more_than_two_polarity_channels():
    events = tonic_events(sensor=(24, 16, 3))
    frames = T.ToFrame(sensor_size=(24, 16, 3), n_event_bins=1)(events)
    assert frames.shape == (1, 3, 16, 24)
    for channel in range(3):
        assert frames[0, channel].sum() == np.sum(events["p"] == channel)
    assert np.array_equal(T.Decimation(n=1)(events), events)
    with pytest.raises(ValueError, match="polarities 0/1"):
        T.RandomFlipPolarity(p=1.0)(events)
    with pytest.raises(ValueError, match="p=2"):
        T.ToFrame(sensor_size=(24, 16, 2), n_event_bins=1)(events)


def test_a_value_the_callers_type_cannot_hold_is_refused():
    events = tonic_events(dtype=np.dtype([("x", "i1"), ("y", "i1"), ("t", "<i8"), ("p", "i1")]))
    with pytest.raises(ValueError, match="field 'x'.*int8"):
        T.Downsample(time_factor=0.5, spatial_factor=8)(events)


def test_rasters():
    rng = np.random.default_rng(0)
    raster = rng.integers(1, 10, (5, 2, 16, 24))
    reversed_ = T.RandomTimeReversal(p=1.0, seed=0)(raster)
    assert np.array_equal(reversed_, raster[::-1, ::-1])
    assert np.array_equal(T.RandomTimeReversal(p=1.0, flip_polarities=False, seed=0)(raster), raster[::-1])
    kept = T.RandomTimeReversal(p=0.0, seed=0)(raster)
    assert np.array_equal(kept, raster) and kept is not raster
    dropped = T.RandomDropPixel(p=0.3, seed=0)(raster)
    zero = (dropped == 0).all(axis=(0, 1))
    assert np.array_equal(dropped[..., ~zero], raster[..., ~zero]) and 0.15 < zero.mean() < 0.45
    expected_zero = np.random.default_rng(0).random((16, 24)) < 0.3  # the transform's own draw
    assert np.array_equal(zero, expected_zero)
    assert np.array_equal(T.RandomDropPixel(p=0.3, seed=0)(raster[0]), dropped[0])


def test_get_params_are_tonics_draws_from_a_seedable_generator():
    assert T.DropEvent.get_params(0.25) == 0.25
    draws = [T.DropEvent.get_params((0.1, 0.6), rng=seed) for seed in range(50)]
    assert all(0.1 <= d < 0.6 for d in draws) and len(set(draws)) > 40
    assert T.DropEvent.get_params((0.1, 0.6), rng=7) == T.DropEvent.get_params((0.1, 0.6), rng=7)
    for cls, arg in ((T.RefractoryPeriod, (2000, 5000)), (T.UniformNoise, (10, 100))):
        values = [cls.get_params(arg, rng=seed) for seed in range(50)]
        assert all(isinstance(v, int) and arg[0] <= v < arg[1] for v in values)
    assert T.Downsample.get_params(0.5) == (0.5, 0.5) and T.Downsample.get_params((1, 2)) == (1, 2)


def test_tonic_functional_names():
    events = tonic_events()
    assert np.array_equal(
        F.drop_event_numpy(events, 0.4, rng=3), F.drop_event(events, 0.4, np.random.default_rng(3))
    )
    assert np.array_equal(F.refractory_period_numpy(events, refractory_period=2000), T.RefractoryPeriod(2000)(events))
    noisy = F.uniform_noise_numpy(events, SENSOR, n=40, rng=0)
    assert len(noisy) == len(events) + 40 and np.isin(events, noisy).all()


def test_numpy_as_type():
    events = tonic_events()
    plain = T.NumpyAsType(int)(events)
    assert plain.shape == (len(events), 4) and plain.dtype == int
    assert np.array_equal(plain[:, 2], events["t"])  # Tonic's field order x, y, t, p kept
    assert np.array_equal(T.NumpyAsType(TONIC_DTYPE)(plain), events)
    assert T.NumpyAsType(np.float32)(plain).dtype == np.float32
    with pytest.raises(ValueError, match="structured to structured"):
        T.NumpyAsType(EVENT_DTYPE)(events)


def test_one_hot_and_repeat():
    assert np.array_equal(T.ToOneHotEncoding(4)(2), [0, 0, 1, 0])
    assert np.array_equal(T.ToOneHotEncoding(3)(np.array([0, 2])), [[1, 0, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match="outside 0..3"):
        T.ToOneHotEncoding(4)(4)
    assert np.array_equal(T.Repeat(3)(np.array([1, 2])), [[1, 2]] * 3)
    assert T.Repeat(5)(7).shape == (5, 1)


def decimate_loop(events: np.ndarray, n: int) -> np.ndarray:
    """Readable reference: a counter per pixel, the n-th event passes and resets it."""
    count: dict = {}
    keep = []
    for i, e in enumerate(events):
        key = (int(e["x"]), int(e["y"]))
        count[key] = count.get(key, 0) + 1
        if count[key] == n:
            count[key] = 0
            keep.append(i)
    return events[keep]


@pytest.mark.parametrize("n", [1, 2, 5])
def test_decimation_matches_a_per_pixel_counter(n):
    events = tonic_events(n=2000, sensor=(6, 5, 2))
    assert np.array_equal(T.Decimation(n)(events), decimate_loop(events, n))
    with pytest.raises(ValueError, match="positive integer"):
        T.Decimation(0)(events)


def test_time_alignment():
    events = tonic_events()
    events["t"] += 12_345
    out = T.TimeAlignment()(events)
    assert out["t"].min() == 0 and np.array_equal(out["t"], events["t"] - events["t"].min())
    assert len(T.TimeAlignment()(events[:0])) == 0


def test_event_drop_takes_each_of_its_four_paths():
    events = tonic_events()
    lengths = {len(T.EventDrop(SENSOR, seed=seed)(events)) for seed in range(40)}
    assert len(events) in lengths and len(lengths) > 10
    out = T.EventDrop(SENSOR, seed=5)(events)
    assert out.dtype == events.dtype and np.isin(out, events).all()


def test_integrator_by_hand():
    """Pixel (0, 0): 3 ON events in window 0 reach the threshold 2 -> one ON event at t = 0 and the
    pixel restarts; 2 OFF events in window 1 (the last, closed at t = 2 ms) -> one OFF event at
    t = 1 ms. Windows are Tonic's: only whole windows from the first event."""
    events = np.zeros(5, dtype=TONIC_DTYPE)
    events["t"] = [0, 100, 200, 1100, 2000]
    events["p"] = [1, 1, 1, 0, 0]
    out = downsampling.integrator_downsample(events, (4, 4, 2), (2, 2), dt=1, noise_threshold=2)
    assert out.dtype == TONIC_DTYPE
    assert out.tolist() == [(0, 0, 0, 1), (0, 0, 1000, 0)]


@pytest.mark.parametrize("threshold", [0, 1, 3])
def test_integrate_and_fire_kernel_matches_its_numpy_reference(threshold):
    from neurodata.representations.slicing import slice_events
    from neurodata.transforms.reference import integrate_and_fire_reference

    events = as_events(tonic_events(n=3000, sensor=(5, 4, 2)))
    starts, ends = slice_events(events["t"], time_window=7000)
    kernel = downsampling.integrate_and_fire(events, starts, ends, threshold, 5, 4)
    assert len(kernel) > 0
    assert np.array_equal(kernel, integrate_and_fire_reference(events, starts, ends, threshold, 5, 4))


def test_differentiator_emits_where_the_spike_count_rises():
    events = tonic_events(n=4000)
    out = T.EventDownsampling(SENSOR, (6, 4), "differentiator", dt=5, noise_threshold=1, differentiator_time_bins=2)(
        events
    )
    assert len(out) and out.dtype == events.dtype
    assert (out["x"] < 6).all() and (out["y"] < 4).all() and (out["t"] % 5000 == 0).all()
    with pytest.raises(ValueError, match="downsampling_method"):
        T.EventDownsampling(SENSOR, (6, 4), "naive", dt=5)(events)


def test_bina_rep_by_hand():
    frames = np.zeros((4, 1, 1, 3), dtype=np.int32)
    frames[0, 0, 0] = [1, 0, 5]  # most significant bit of the first Bina-Rep frame
    frames[1, 0, 0] = [1, 1, 0]
    frames[3, 0, 0] = [0, 2, 0]
    out = T.ToBinaRep(n_frames=2, n_bits=2)(frames)
    assert out.dtype == np.float32 and out.shape == (2, 1, 1, 3)
    assert np.allclose(out[:, 0, 0], [[1, 1 / 3, 2 / 3], [0, 1 / 3, 0]])
    with pytest.raises(ValueError, match="n_frames \\* n_bits = 6"):
        T.ToBinaRep(n_frames=3, n_bits=2)(frames)


def test_pad_tensors():
    short, long = np.ones((2, 2, 3, 3)), np.full((4, 2, 3, 3), 2.0)
    frames, targets = T.PadTensors()([(short, 1), (long, 0)])
    assert frames.shape == (2, 4, 2, 3, 3) and targets.tolist() == [1, 0]
    assert frames[0, 2:].abs().sum() == 0 and torch.equal(frames[1], torch.as_tensor(long))
    time_major, _ = T.PadTensors(batch_first=False)([(short, 1), (long, 0)])
    assert time_major.shape == (4, 2, 2, 3, 3)
    sparse = T.ToSparseTensor(SENSOR, n_event_bins=3)(tonic_events())
    dense = T.ToFrame(SENSOR, n_event_bins=5)(tonic_events(seed=1))
    mixed, _ = T.PadTensors()([(sparse, 0), (torch.as_tensor(dense).to_sparse(), 1)])
    assert mixed.shape == (2, 5, 2, 16, 24) and torch.equal(mixed[0].to_dense()[:3], sparse.to_dense())
    with pytest.raises(TypeError, match="pad_events"):
        T.PadTensors()([(tonic_events(), 0)])


# --- against Tonic itself ------------------------------------------------------------------------


def test_new_transforms_equal_tonics():
    tt = tonic()
    events = tonic_events()
    for ours, theirs in (
        (T.Decimation(4), tt.Decimation(4)),
        (T.TimeAlignment(), tt.TimeAlignment()),
        (T.NumpyAsType(int), tt.NumpyAsType(int)),
    ):
        assert np.array_equal(ours(events.copy()), theirs(events.copy())), ours
    assert np.array_equal(T.ToOneHotEncoding(5)(3), tt.ToOneHotEncoding(5)(3))
    assert np.array_equal(T.Repeat(4)(np.arange(3)), tt.Repeat(4)(np.arange(3)))
    frames = np.random.default_rng(0).integers(0, 2, (16, 2, 8, 8))
    assert np.allclose(T.ToBinaRep(2, 8)(frames), tt.ToBinaRep(2, 8)(frames))


@pytest.mark.parametrize(
    "method, threshold, bins", [("integrator", 1, None), ("integrator", 3, None), ("differentiator", 1, 2), ("differentiator", 2, 3)]
)
def test_event_downsampling_equals_tonics(method, threshold, bins):
    tt = tonic()
    events = tonic_events(n=5000)
    kwargs = dict(sensor_size=SENSOR, target_size=(6, 4), dt=2.5, downsampling_method=method, noise_threshold=threshold)
    ours = T.EventDownsampling(**kwargs, differentiator_time_bins=bins)(events)
    theirs = tt.EventDownsampling(**kwargs, differentiator_time_bins=bins)(events.copy())
    assert len(ours) > 0
    for name in "xytp":
        assert np.array_equal(ours[name], theirs[name]), name


def test_rasters_and_dtypes_as_tonic():
    tt = tonic()
    raster = np.random.default_rng(0).integers(0, 5, (6, 2, 8, 8))
    assert np.array_equal(T.RandomTimeReversal(p=1.0)(raster), tt.RandomTimeReversal(p=1.0)(raster))
    coords = [(1, 2), (7, 7)]
    assert np.array_equal(T.DropPixel(coordinates=coords)(raster), tt.DropPixel(coordinates=coords)(raster.copy()))
    events = tonic_events()
    for ours, theirs in (
        (T.RandomFlipLR(SENSOR, p=1.0), tt.RandomFlipLR(SENSOR, p=1.0)),
        (T.MergePolarities(), tt.MergePolarities()),
        (T.TimeSkew(coefficient=1.5, offset=3), tt.TimeSkew(coefficient=1.5, offset=3)),
    ):
        out, expected = ours(events), theirs(events.copy())
        assert out.dtype == expected.dtype and np.array_equal(out, expected), ours


def test_pad_tensors_equal_tonics():
    tonic()
    from tonic.collation import PadTensors as TonicPad

    batch = [(np.ones((2, 2, 3, 3), dtype=np.float32), 1), (np.full((4, 2, 3, 3), 2.0, dtype=np.float32), 0)]
    for batch_first in (True, False):
        ours, theirs = T.PadTensors(batch_first)(batch), TonicPad(batch_first)(batch)
        assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
