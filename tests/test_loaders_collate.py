"""pad_events: the same EventBatch from our structured samples, SpikingJelly-style dicts and Tonic-style
records; int16 coordinates with a range check instead of wrapping; batches built in shared memory by
DataLoader workers (events and stacked frames) equal the ones built in the main process."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neurodata.loaders import EventBatch, load, pad_events, shm_pool, stack_time_major
from neurodata.loaders.collate import PooledEventBatch, PooledStack

sys.path.insert(0, str(Path(__file__).parent))
import loader_samples as ls  # noqa: E402

FIELDS = ("t", "x", "y", "p")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return ls.build_indexed_cache(str(tmp_path_factory.mktemp("collate") / "indexed.zarr"), 24)


def as_dict(events: np.ndarray) -> dict[str, np.ndarray]:
    """SpikingJelly's sample form: a dict of int64 columns."""
    return {name: events[name].astype(np.int64) for name in FIELDS}


def as_tonic(events: np.ndarray) -> np.ndarray:
    """Tonic's record layout: fields x, y, t, p, all int64."""
    records = np.zeros(len(events), dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    for name in FIELDS:
        records[name] = events[name]
    return records


def assert_batch_holds(batch, samples) -> None:
    lengths = [len(events) for events, _ in samples]
    assert batch.t.shape == (len(samples), max(lengths, default=0))
    assert batch.lengths.tolist() == lengths and batch.mask.sum(1).tolist() == lengths
    assert [batch.t.dtype, batch.x.dtype, batch.y.dtype, batch.p.dtype, batch.mask.dtype] == [
        torch.int64,
        torch.int16,
        torch.int16,
        torch.uint8,
        torch.bool,
    ]
    for row, (events, _) in enumerate(samples):
        n = len(events)
        for name in FIELDS:
            column = getattr(batch, name)[row].numpy()
            np.testing.assert_array_equal(column[:n], events[name])
            assert not column[n:].any()  # zero padding


@pytest.fixture(params=["1", "3"], ids=["inline", "3 threads"])
def pad_threads(request, monkeypatch):
    """Samples padded one after another, or side by side on 3 decode threads."""
    monkeypatch.setenv("NEURODATA_DECODE_THREADS", request.param)


def test_structured_dict_and_tonic_samples_collate_alike(store, pad_threads):
    ds = load(store)
    samples = [ds[i] for i in (3, 0, 17, 9, 5)]  # 0 and 9 are empty
    batch = pad_events(samples)
    assert_batch_holds(batch, samples)
    assert batch.labels.tolist() == [3, 0, 17, 9, 5]
    for convert in (as_dict, as_tonic):
        other = pad_events([(convert(events), label) for events, label in samples])
        for mine, theirs in zip(batch, other):
            assert torch.equal(mine, theirs)


def test_signed_polarities_collate_as_off_and_on(store, pad_threads):
    """Tonic's -1/+1 polarities (records or columns) came out as 255/1, and 255 reads as ON; they
    now collate as the transforms read them, 0/1, and a polarity past 255 is refused."""
    samples = [load(store)[i] for i in (3, 17)]
    expected = pad_events(samples)
    for convert in (as_dict, as_tonic):
        signed = []
        for events, label in samples:
            other = convert(events)
            other["p"] = np.asarray(events["p"]).astype(np.int64) * 2 - 1
            signed.append((other, label))
        assert torch.equal(pad_events(signed).p, expected.p)
    wide = as_dict(samples[0][0])
    wide["p"] = np.asarray(wide["p"]).astype(np.int64) + 299
    with pytest.raises(ValueError, match="pad_events: polarity 300 is not a channel index"):
        pad_events([(wide, 0)])


def test_coordinates_outside_int16_are_an_error_not_a_wrap(store, pad_threads):
    events, label = load(store)[5]
    wide = events.copy()
    wide["x"][-1] = 40_000  # a legal uint16 coordinate that int16 cannot hold
    with pytest.raises(ValueError, match="sample 1 of the batch has a coordinate of 40000"):
        pad_events([(events, label), (wide, label)])
    with pytest.raises(ValueError, match="sample 2 of the batch has a coordinate of 40000"):
        pad_events([(events, label), (events[:3], label), (wide, label), (wide, label)])  # the first named
    negative = as_dict(events)
    negative["y"][0] = -40_000
    with pytest.raises(ValueError, match="coordinate of -40000"):
        pad_events([(negative, label)])
    assert pad_events([(events, label)]).x.max() < 32


def pad_in_shared_memory(samples):
    """pad_events, checking in the worker that the batch was built in shared memory (so sending it
    to the main process copies nothing): a segment of the worker's reusable pool, or torch's."""
    batch = pad_events(samples)
    if shm_pool.worker_pool() is not None:
        assert isinstance(batch, PooledEventBatch), "the worker built the batch outside its pool"
    else:
        assert all(tensor.is_shared() for tensor in batch[:5]), "the worker built the batch in private memory"
    return batch


def _refuse_memfd(*args):
    raise OSError(38, "Function not implemented")  # ENOSYS, as a sandbox answers


@pytest.fixture(params=["pool", "torch", "no memfd", "memfd refused", "pool off"])
def worker_memory(request, monkeypatch):
    """Worker batches in the reusable memfd pool, or in torch's shared memory: where the pool is
    bypassed, where the system has no memfd (not Linux), where the kernel refuses it, where the
    pool is switched off ($NEURODATA_SHM_POOL=0). Forked workers inherit every patch."""
    monkeypatch.setattr(shm_pool, "_memfd_works", None)  # probed again under this patch
    if request.param == "torch":
        monkeypatch.setattr(shm_pool, "worker_pool", lambda: None)
    elif request.param == "no memfd":
        monkeypatch.delattr(shm_pool.os, "memfd_create", raising=False)
    elif request.param == "memfd refused":
        monkeypatch.setattr(shm_pool.os, "memfd_create", _refuse_memfd, raising=False)
    elif request.param == "pool off":
        monkeypatch.setenv("NEURODATA_SHM_POOL", "0")
    assert shm_pool.memfd_available() == (request.param not in ("no memfd", "memfd refused"))
    assert shm_pool.settings().enabled == (request.param != "pool off")
    return request.param


@pytest.mark.parametrize("indices", [[[1, 2, 3, 4], [5, 6, 7, 8]], [[0, 9], [18]]])  # the second: all empty
def test_worker_batches_are_built_in_shared_memory(store, indices, worker_memory):
    ds = load(store)
    loader = DataLoader(
        ds,
        batch_sampler=indices,
        num_workers=2,
        multiprocessing_context="fork",
        collate_fn=pad_in_shared_memory,
    )
    for batch, wanted in zip(loader, indices):
        assert type(batch) is EventBatch  # a plain batch in the main process
        samples = [ds[i] for i in wanted]
        assert_batch_holds(batch, samples)
        for mine, theirs in zip(batch, pad_events(samples)):
            assert torch.equal(mine, theirs)
    assert not pad_events([ds[1]]).t.is_shared()  # outside workers: ordinary memory


def stack_in_shared_memory(samples):
    """stack_time_major, checking in the worker that the batch was built in shared memory."""
    out = stack_time_major(samples)
    if shm_pool.worker_pool() is not None:
        assert isinstance(out, PooledStack), "the worker stacked the frames outside its pool"
    else:
        assert out[0].is_shared(), "the worker stacked the frames in private memory"
    return out


def test_worker_frame_batches_are_stacked_in_shared_memory(worker_memory):
    frames = [(np.arange(4 * 2 * 3 * 5, dtype=np.int32).reshape(4, 2, 3, 5) * i, i) for i in range(6)]
    loader = DataLoader(
        frames, batch_size=3, num_workers=2, multiprocessing_context="fork", collate_fn=stack_in_shared_memory
    )
    batches = list(loader)
    for k, (x, labels) in enumerate(batches):
        expected, expected_labels = stack_time_major(frames[3 * k : 3 * k + 3])
        assert x.shape == (4, 3, 2, 3, 5) and x.dtype == torch.int32
        assert torch.equal(x, expected) and torch.equal(labels, expected_labels)
