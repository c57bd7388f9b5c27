"""Precomputed representations stored in the narrowest exact integer dtype and widened back on read:
real recordings round-trip exactly, the choice is right at the dtype edges (including a wide sample
after a narrow first one), float representations are untouched, caches stored as int32 still read,
and ``verify`` still accepts the cache."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from zarr.codecs import BloscCodec

import neurodata
from neurodata import representations
from neurodata.cache import CacheBuilder, PartData, build_cache, verify_cache
from neurodata.events import make_events
from neurodata.loaders import load, stack_dense, stack_time_major
from neurodata.loaders.collate import PooledStack
from neurodata.loaders.pending import PendingFrames
from neurodata.loaders.precompute import precompute, stored_dtype
from neurodata.loaders.precomputed import ATTRS_KEY, representation_location
from neurodata.transforms import ToFrame


def samples_part(samples: list[np.ndarray], split: str, part: int) -> PartData:
    return PartData.from_samples((events, i, f"{split}/{i}") for i, events in enumerate(samples))


def build(url: Path, samples: list[np.ndarray], sensor: tuple[int, int, int]) -> str:
    builder = CacheBuilder(
        str(url), "dtypes", {"sensor_size": list(sensor), "class_names": None}, {"train": 1}
    )
    return build_cache(builder, partial(samples_part, samples))


def key_of(url: str, spec: dict) -> str:
    full = load(url, representation=spec, precomputed=False).pipeline.representation.spec()
    return representations.representation_key(full)


def stored(url: str, spec: dict) -> tuple[dict, np.dtype]:
    """The marker and the on-disk dtype of the stored split ``train`` of ``spec``."""
    group = representation_location(url, key_of(url, spec), "train").open_group("r")
    return dict(group.attrs[ATTRS_KEY]), group["data"].dtype


def downscaled(events: np.ndarray, size: tuple[int, int], to: tuple[int, int]) -> np.ndarray:
    x = events["x"].astype(np.int64) * to[0] // size[0]
    y = events["y"].astype(np.int64) * to[1] // size[1]
    return make_events(events["t"], x, y, events["p"])


@pytest.fixture(scope="module")
def recordings(fixtures) -> tuple[list[np.ndarray], tuple[int, int, int]]:
    """Slices of a real N-MNIST recording and of a real EVT 2.0 recording scaled to 34x34."""
    nmnist = neurodata.read(fixtures / "nmnist" / "sample_nmnist.bin")
    evt2 = downscaled(neurodata.read(fixtures / "evt2" / "evt2_sample.raw"), (640, 480), (34, 34))
    return [nmnist[:1000], nmnist, evt2[:5000], evt2[:200_000], nmnist[2000:2001]], (34, 34, 2)


@pytest.mark.parametrize(("n", "bins", "dtype"), [(3, 8, "uint8"), (5, 8, "uint16"), (5, 1, "uint16")])
def test_real_frames_round_trip_exactly_in_the_narrowest_dtype(tmp_path, recordings, n, bins, dtype):
    samples, sensor = recordings
    samples = samples[:n]  # the 4th (200 k events) counts thousands in one cell
    url = build(tmp_path / "real.zarr", samples, sensor)
    spec = {"type": "frame", "n_time_bins": bins}
    direct = [representations.to_frame(events, sensor, n_time_bins=bins) for events in samples]
    top = max(int(frames.max()) for frames in direct)
    assert (top <= 255) == (dtype == "uint8")
    precompute(url, spec, workers=2, progress=False)

    marker, on_disk = stored(url, spec)
    assert on_disk == np.dtype(dtype) and marker["stored_dtype"] == np.dtype(dtype).str
    assert marker["dtype"] == np.dtype(np.int32).str
    ds = load(url, representation=spec)
    assert ds.precomputed
    for i, frames in enumerate(direct):
        got = ds[i][0]
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, frames)


@pytest.mark.parametrize(
    ("count", "dtype"), [(255, "uint8"), (256, "uint16"), (65535, "uint16"), (65536, "int32")]
)
def test_dtype_edges_and_a_wide_sample_after_a_narrow_first_one(tmp_path, count, dtype):
    """One pixel gets ``count`` events; the first sample (which seeds the guess) has 3."""
    hot = make_events(np.arange(count), np.zeros(count, int), np.zeros(count, int), np.ones(count, int))
    few = make_events(np.arange(3), np.arange(3), np.zeros(3, int), np.zeros(3, int))
    url = build(tmp_path / "edge.zarr", [few, hot, few], (4, 2, 2))
    spec = {"type": "frame", "n_time_bins": 1}
    precompute(url, spec, progress=False)
    assert stored(url, spec)[1] == np.dtype(dtype)
    ds = load(url, representation=spec)
    assert ds[1][0].dtype == np.int32 and int(ds[1][0][0, 1, 0, 0]) == count
    assert int(ds[1][0].sum()) == count and int(ds[0][0].sum()) == 3


def test_stored_dtype_choice():
    assert stored_dtype(np.int32, (0, 255)) == np.uint8
    assert stored_dtype(np.int32, (-3, 127)) == np.int8
    assert stored_dtype(np.int32, (-3, 128)) == np.int16
    assert stored_dtype(np.int32, (-40_000, 5)) == np.int32
    assert stored_dtype(np.int16, (0, 40_000)) == np.int16  # never wider than the representation
    assert stored_dtype(np.int32, None) == np.uint8  # no values at all
    assert stored_dtype(np.float32, (0, 1)) == np.float32


def test_float_representations_are_stored_as_they_are(tmp_path, recordings):
    samples, sensor = recordings
    url = build(tmp_path / "float.zarr", samples[:3], sensor)
    spec = {"type": "voxel_grid", "n_time_bins": 3}
    precompute(url, spec, progress=False)
    assert stored(url, spec)[1] == np.float32
    ds = load(url, representation=spec)
    for i, events in enumerate(samples[:3]):
        np.testing.assert_array_equal(ds[i][0], representations.to_voxel_grid(events, sensor, 3))


def test_caches_stored_as_int32_still_read(tmp_path, recordings):
    """A split written before narrowing: int32 on disk, bit-shuffled LZ4, no ``stored_dtype``."""
    samples, sensor = recordings
    url = build(tmp_path / "old.zarr", samples[:3], sensor)
    spec = {"type": "frame", "n_time_bins": 4}
    precompute(url, spec, progress=False)
    group = representation_location(url, key_of(url, spec), "train").open_group("r+")
    data, marker = group["data"][:], dict(group.attrs[ATTRS_KEY])
    old = group.create_array(
        "data",
        shape=data.shape,
        chunks=(1, *data.shape[1:]),
        shards=data.shape,
        dtype="int32",
        fill_value=0,
        compressors=BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle", typesize=4),
        overwrite=True,
    )
    old[:] = data.astype(np.int32)
    del marker["stored_dtype"]
    group.attrs.update({ATTRS_KEY: marker})
    ds = load(url, representation=spec)
    assert ds.precomputed
    for i, events in enumerate(samples[:3]):
        np.testing.assert_array_equal(ds[i][0], representations.to_frame(events, sensor, n_time_bins=4))


def test_verify_accepts_narrow_precomputed_frames(tmp_path, recordings):
    samples, sensor = recordings
    url = build(tmp_path / "verify.zarr", samples[:2], sensor)
    spec = {"type": "frame", "n_time_bins": 8}
    precompute(url, spec, progress=False)
    assert stored(url, spec)[1] == np.uint8
    report = verify_cache(url)
    assert report.ok, report.problems


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("stored_as", ["narrow", "int32"])
def test_a_batch_of_stored_frames_is_stacked_straight_from_the_cache(
    tmp_path, recordings, threads, stored_as
):
    """``__getitems__`` hands stack_dense the frames still in the cache; decoded into the batch
    (batch-major and time-major, on 1 or 3 threads, widened from uint16 or stored int32, or as
    int16) they equal stacking the samples, which equal the frames computed from the events."""
    samples, sensor = recordings
    url = build(tmp_path / "batch.zarr", samples, sensor)
    spec = {"type": "frame", "n_time_bins": 6}
    precompute(url, spec, progress=False)
    precompute(url, ToFrame(sensor, n_time_bins=6, dtype="int16"), progress=False)
    if stored_as == "int32":
        group = representation_location(url, key_of(url, spec), "train").open_group("r+")
        data = group["data"][:]
        wide = group.create_array(
            "data", shape=data.shape, chunks=(1, *data.shape[1:]), shards=data.shape, dtype="int32",
            fill_value=0, compressors=BloscCodec(cname="lz4", clevel=5, typesize=4), overwrite=True,
        )  # fmt: skip
        wide[:] = data.astype(np.int32)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for dtype in ("int32", "int16"):
            ds = load(url, representation=ToFrame(sensor, n_time_bins=6, dtype=dtype))
            order = [3, 0, 4, 1]
            pending = ds.__getitems__(order)
            assert isinstance(pending, PendingFrames)
            expected = [representations.to_frame(samples[i], sensor, n_time_bins=6) for i in order]
            for collate in (stack_dense, stack_time_major):
                frames, labels = collate(pending)
                reference, reference_labels = collate([ds[i] for i in order])
                assert frames.dtype == reference.dtype == getattr(torch, dtype)
                assert torch.equal(frames, reference) and torch.equal(labels, reference_labels)
                batch_major = frames if collate is stack_dense else frames.transpose(0, 1)
                for row, want in enumerate(expected):
                    np.testing.assert_array_equal(batch_major[row].numpy(), want)
            assert [int(label) for label in labels] == order
    finally:
        torch.set_num_threads(previous)


def _stack_checking_shared(batch):
    assert isinstance(batch, PendingFrames)
    out = stack_time_major(batch)
    assert isinstance(out, PooledStack), "the worker stacked the frames outside its reusable shared memory"
    return out


def test_worker_batches_of_stored_frames_are_decoded_into_shared_memory(tmp_path, recordings):
    samples, sensor = recordings
    url = build(tmp_path / "workers.zarr", samples, sensor)
    spec = {"type": "frame", "n_time_bins": 3}
    precompute(url, spec, progress=False)
    ds = load(url, representation=spec)
    loader = DataLoader(
        ds, batch_size=2, num_workers=2, multiprocessing_context="fork", collate_fn=_stack_checking_shared
    )
    got = torch.cat([frames for frames, _ in loader], dim=1)
    expected = np.stack(
        [representations.to_frame(events, sensor, n_time_bins=3) for events in samples], axis=1
    )
    np.testing.assert_array_equal(got.numpy(), expected)
