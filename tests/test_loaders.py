"""neurodata.load and its datasets on local caches: exact coverage per epoch across ranks and workers,
seeded order, fork and spawn workers, dead workers, collate functions, representations."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from neurodata._threads import prefetched
from neurodata.loaders import (
    LengthBucketBatchSampler,
    load,
    pad_events,
    stack_dense,
    stack_time_major,
)
from neurodata.loaders.sharding import shuffle_buffer

sys.path.insert(0, str(Path(__file__).parent))
import loader_samples as ls  # noqa: E402

N = 40


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return ls.build_indexed_cache(str(tmp_path_factory.mktemp("loaders") / "indexed.zarr"), N)


def labels_of(loader) -> list[int]:
    """Labels in the order a DataLoader with ``collate_fn=pad_events`` delivers them."""
    return [int(label) for batch in loader for label in batch.labels]


def check_identity(events: np.ndarray, label: int) -> None:
    """The events are the ones written for sample ``label``."""
    np.testing.assert_array_equal(events, ls.sample_events(label))


def test_map_dataset_returns_the_written_samples(store):
    ds = load(store, "train")
    assert len(ds) == N and ds.sensor_size == ls.SENSOR
    for i in (0, 1, 2, 9, N - 1, -1):
        events, label = ds[i]
        assert label == i % N
        check_identity(events, label)
    with pytest.raises(IndexError, match="sample 40 out of range"):
        ds[N]
    # a batch of indices, consecutive runs read together, keeps the asked order
    batch = ds.__getitems__([5, 6, 7, 2, 30])
    assert [label for _, label in batch] == [5, 6, 7, 2, 30]
    for events, label in batch:
        check_identity(events, label)


def test_name_resolves_under_neurodata_home(store, monkeypatch):
    monkeypatch.setenv("NEURODATA_HOME", str(Path(store).parent))
    assert len(load("indexed", split="train")) == N
    with pytest.raises(Exception, match="no split 'test'"):
        load("indexed", split="test")


@pytest.mark.parametrize("streaming", [True, False])
def test_each_sample_once_per_epoch_across_two_ranks_of_two_workers(store, streaming):
    for epoch in (0, 1):
        seen = []
        for rank in (0, 1):
            if streaming:
                ds = load(store, streaming=True, seed=3, block_samples=3, rank=rank, world_size=2)
                ds.set_epoch(epoch)
                sampler = None
            else:
                ds = load(store)
                sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=3)
                sampler.set_epoch(epoch)
            loader = DataLoader(
                ds,
                batch_size=4,
                sampler=sampler,
                num_workers=2,
                multiprocessing_context="fork",
                collate_fn=pad_events,
            )
            labels = labels_of(loader)
            assert len(labels) == len(ds if streaming else sampler)
            seen += labels
        assert sorted(seen) == list(range(N))


def test_streaming_takes_rank_and_world_size_from_a_real_process_group(store, tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(ls.ddp_rank, args=(2, store, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    seen = [np.load(tmp_path / f"{rank}.npy", allow_pickle=False) for rank in (0, 1)]
    assert len(seen[0]) and len(seen[1])
    assert sorted(np.concatenate(seen).tolist()) == list(range(N))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned host memory needs a CUDA device")
def test_pin_memory_pins_event_batches(store):
    loader = DataLoader(load(store), batch_size=4, num_workers=2, pin_memory=True, collate_fn=pad_events)
    batch = next(iter(loader))
    assert all(tensor.is_pinned() for tensor in batch)


def streamed_order(store, seed, epoch, **kwargs) -> list[int]:
    ds = load(store, streaming=True, seed=seed, block_samples=4, **kwargs)
    ds.set_epoch(epoch)
    return [label for _, label in ds]


def stream_loader(ds, **kwargs) -> DataLoader:
    return DataLoader(
        ds, batch_size=5, num_workers=2, multiprocessing_context="fork", collate_fn=pad_events, **kwargs
    )


def test_streaming_order_is_a_function_of_seed_and_epoch(store):
    a = streamed_order(store, seed=1, epoch=0)
    assert a == streamed_order(store, seed=1, epoch=0)
    assert a == streamed_order(store, seed=1, epoch=0, prefetch=3)  # reading ahead changes nothing
    assert a != streamed_order(store, seed=2, epoch=0)
    assert a != streamed_order(store, seed=1, epoch=1)
    assert sorted(a) == list(range(N))
    assert streamed_order(store, seed=1, epoch=0, shuffle=False) == list(range(N))


def test_set_epoch_reaches_persistent_workers(store):
    ds = load(store, streaming=True, seed=5, block_samples=3)
    loader = stream_loader(ds, persistent_workers=True)
    orders = []
    for epoch in (0, 1, 0):
        ds.set_epoch(epoch)
        orders.append(labels_of(loader))
    assert orders[0] == orders[2] != orders[1]
    fresh = load(store, streaming=True, seed=5, block_samples=3)
    fresh.set_epoch(1)
    assert labels_of(stream_loader(fresh)) == orders[1]


def test_prefetched_keeps_order_and_raises_where_the_failed_read_is_reached():
    def read(i):
        if i == 5:
            raise ValueError("block 5 unreadable")
        return i * 10

    assert list(prefetched(read, range(5), depth=2)) == [0, 10, 20, 30, 40]
    got = []
    with pytest.raises(ValueError, match="block 5 unreadable"):
        for value in prefetched(read, range(8), depth=2):
            got.append(value)
    assert got == [0, 10, 20, 30, 40]


def test_shuffle_buffer_permutes_everything():
    out = list(shuffle_buffer(range(100), 10, np.random.default_rng(0)))
    assert sorted(out) == list(range(100)) and out != list(range(100))


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_workers_under_fork_and_spawn(store, context):
    ds = load(store)
    ds[0]  # the parent has opened the cache: forked workers must not reuse its handles
    loader = DataLoader(
        ds, batch_size=8, num_workers=2, multiprocessing_context=context, collate_fn=pad_events
    )
    batches = list(loader)
    assert torch.cat([b.labels for b in batches]).tolist() == list(range(N))
    for batch in batches:
        for row, label in enumerate(batch.labels.tolist()):
            expected = ls.sample_events(label)
            n = int(batch.lengths[row])
            assert n == len(expected)
            np.testing.assert_array_equal(batch.t[row, :n].numpy(), expected["t"])
    stream = load(store, streaming=True, seed=0, block_samples=5)
    list(stream)
    loader = DataLoader(
        stream, batch_size=8, num_workers=2, multiprocessing_context=context, collate_fn=pad_events
    )
    got = labels_of(loader)
    assert sorted(got) == list(range(N))


@pytest.mark.parametrize(("how", "mode"), [("exit", "map"), ("kill", "stream")])
def test_a_dead_worker_raises_in_the_main_process(store, how, mode):
    """A worker that calls os._exit or is SIGKILLed mid-epoch: the main process gets a RuntimeError naming it."""
    script = Path(__file__).parent / "dead_worker.py"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(script), store, how, mode], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(
        r"CAUGHT RuntimeError: DataLoader worker \(pid(\(s\))? \d+\) (exited unexpectedly|is killed by signal)",
        done.stdout,
    ), done.stdout + done.stderr


def test_pad_events_pads_with_a_mask_and_pins(store):
    ds = load(store)
    batch = pad_events([ds[i] for i in (0, 1, 2)])
    lengths = [len(ls.sample_events(i)) for i in (0, 1, 2)]
    assert batch.t.shape == (3, max(lengths)) and batch.lengths.tolist() == lengths
    assert batch.mask.sum(1).tolist() == lengths
    assert (batch.x[~batch.mask] == 0).all() and batch.labels.tolist() == [0, 1, 2]
    assert batch.x.dtype == torch.int16 and batch.p.dtype == torch.uint8 and batch.t.dtype == torch.int64
    np.testing.assert_array_equal(batch.y[2, : lengths[2]].numpy(), ls.sample_events(2)["y"])
    empty = pad_events([ds[0], ds[9]])
    assert empty.t.shape == (2, 0)


def test_stack_dense_batch_and_time_major():
    batch = [(np.full((4, 2, 3, 5), i), i) for i in range(3)]
    x, y = stack_dense(batch)
    assert x.shape == (3, 4, 2, 3, 5) and y.tolist() == [0, 1, 2]
    tm, _ = stack_time_major(batch)
    assert tm.shape == (4, 3, 2, 3, 5) and torch.equal(tm[:, 1], x[1])
    with pytest.raises(ValueError, match="equal shapes"):
        stack_dense([(np.zeros((4, 2)), 0), (np.zeros((5, 2)), 1)])


def test_length_buckets_cover_each_index_once_and_group_lengths(store):
    ds = load(store)
    lengths = ds.lengths
    sampler = LengthBucketBatchSampler(lengths, 4, bucket_batches=5, seed=0)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(N))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths) / 2  # buckets of 20 sorted samples: batches far narrower than random
    sampler.set_epoch(1)
    assert list(sampler) != batches
    ranks = [list(LengthBucketBatchSampler(lengths, 4, num_replicas=2, rank=r, seed=0)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 5
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=pad_events)
    assert sorted(torch.cat([b.labels for b in loader]).tolist()) == list(range(N))
