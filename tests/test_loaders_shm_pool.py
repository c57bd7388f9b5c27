"""The workers' reusable shared-memory batches: a batch the main process still holds (or a view of
one) is never written again; a released one is reused; a batch that never left the worker is
given back; batches through real DataLoader workers equal the ones collated in the main process."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neurodata.loaders import shm_pool, stack_dense

sys.path.insert(0, str(Path(__file__).parent))

pytestmark = pytest.mark.skipif(not hasattr(shm_pool.os, "memfd_create"), reason="memfd is Linux-only")


def test_a_lent_segment_comes_back_only_when_every_view_is_gone():
    pool = shm_pool.Pool()
    lease, layout, (a, b) = shm_pool.lend([((3, 4), np.int64), ((5,), np.bool_)], pool)
    segment = lease.segment
    a[:] = np.arange(12).reshape(3, 4)
    b[:] = [True, False, True, False, True]
    received = shm_pool.receive(lease.handle(), layout)  # what the main process gets
    del a, b
    gc.collect()
    assert not segment.arrays_alive and segment.map[0] == shm_pool.LENT  # sent: the main process holds it
    assert pool.acquire(64) is not segment
    torch.testing.assert_close(received[0], torch.arange(12).reshape(3, 4))
    assert received[1].tolist() == [True, False, True, False, True]
    row = received[0][1]  # a view keeps the whole batch lent
    del received
    gc.collect()
    assert segment.map[0] == shm_pool.LENT and row.tolist() == [4, 5, 6, 7]
    del row
    gc.collect()
    assert segment.reusable
    assert pool.acquire(layout[-1][0]) is segment


def test_a_batch_that_never_left_the_worker_is_given_back():
    pool = shm_pool.Pool()
    lease, _, (a,) = shm_pool.lend([((1000,), np.float32)], pool)
    assert lease.segment.map[0] == shm_pool.LENT and not lease.segment.reusable
    del a
    gc.collect()
    assert lease.segment.reusable


def test_free_segments_beyond_the_spare_count_are_closed():
    pool = shm_pool.Pool()
    lent = [shm_pool.lend([((1 << 16,), np.uint8)], pool) for _ in range(5)]  # all held at once
    assert len(pool.segments) == 5
    del lent
    gc.collect()  # none was sent: all came back
    pool.acquire(1 << 16)
    assert len(pool.segments) == 1 + shm_pool.MAX_FREE


FRAMES = [(np.random.default_rng(i).integers(0, 1000, (4, 2, 8, 8)).astype(np.int32), i) for i in range(48)]


def _stack_and_count(samples):
    """stack_dense in the worker, plus how many segments the worker's pool holds now."""
    return stack_dense(samples), len(shm_pool.worker_pool().segments)


@pytest.mark.parametrize("hold", [True, False], ids=["held", "released"])
def test_worker_batches_survive_while_held_and_segments_are_reused_once_released(hold):
    loader = DataLoader(
        FRAMES, batch_size=2, num_workers=2, multiprocessing_context="fork", collate_fn=_stack_and_count
    )
    kept, counts = [], []
    for k, ((frames, labels), n_segments) in enumerate(loader):
        counts.append(n_segments)
        expected = np.stack([FRAMES[2 * k][0], FRAMES[2 * k + 1][0]])
        np.testing.assert_array_equal(frames.numpy(), expected)
        assert labels.tolist() == [2 * k, 2 * k + 1]
        if hold:
            kept.append((k, frames))
        del frames, labels
        gc.collect()
    for k, frames in kept:  # nothing held was overwritten by later batches
        np.testing.assert_array_equal(frames.numpy(), np.stack([FRAMES[2 * k][0], FRAMES[2 * k + 1][0]]))
    if hold:
        assert max(counts) >= 12 - 1  # 12 batches per worker, each still lent when the next was built
    else:
        assert max(counts) <= 5  # the prefetched batches and one in hand, then reuse


def _events(n: int, seed: int) -> np.ndarray:
    from neurodata.events import make_events

    rng = np.random.default_rng(seed)
    return make_events(
        np.sort(rng.integers(0, 10**6, n)),
        rng.integers(0, 128, n),
        rng.integers(0, 128, n),
        rng.integers(0, 2, n),
    )


def test_batches_collated_in_this_process_reuse_released_memory_and_keep_held_batches(monkeypatch):
    from neurodata.loaders import pad_events

    monkeypatch.setattr(shm_pool, "_pools", {})  # a pool of this test's batches alone
    long = [(_events(500, k), k) for k in range(4)]
    short = [(_events(20, 9), 9), (_events(7, 10), 10)]
    held = pad_events(long)
    expected = {name: getattr(held, name).clone() for name in ("t", "x", "y", "p", "mask")}
    pool = shm_pool.local_pool()
    in_use = [s for s in pool.segments if not s.reusable]
    assert in_use and all(s.fd == -1 for s in in_use)  # private memory, not a memfd
    later = pad_events(short)  # the held batch's memory is not reused
    for name, values in expected.items():
        torch.testing.assert_close(getattr(held, name), values)
    before = list(pool.segments)
    del held  # released: its memory (full of long samples) is written again, padding included
    gc.collect()
    again = pad_events(short)
    assert pool.segments == before and len(before) == 2 and later.t.data_ptr() != again.t.data_ptr()
    for row, (events, _) in enumerate(short):
        n = len(events)
        assert again.mask[row].tolist() == [True] * n + [False] * (again.t.shape[1] - n)
        assert again.t[row, :n].tolist() == events["t"].tolist() and not again.t[row, n:].any()
        assert not again.x[row, n:].any() and not again.p[row, n:].any()


def test_private_batch_memory_cannot_be_sent():
    pool = shm_pool.Pool(shared=False)
    lease, _, _ = shm_pool.lend([((8,), np.uint8)], pool)
    with pytest.raises(TypeError, match="private memory"):
        lease.handle()


def _stack_and_count_new(samples):
    """stack_dense in the worker, plus how many segments this worker has created so far."""
    return stack_dense(samples), _created.get(shm_pool.os.getpid(), 0)


_created: dict[int, int] = {}


def test_workers_of_later_epochs_reuse_the_segments_earlier_workers_made(monkeypatch):
    """The main process keeps the segments it received; workers forked for the next epoch claim
    them instead of making new ones, and a batch still held from the first epoch is not written."""
    monkeypatch.setattr(shm_pool, "_kept", {})
    make = shm_pool.Segment.__init__

    def counting(self, size, shared=True):
        _created[shm_pool.os.getpid()] = _created.get(shm_pool.os.getpid(), 0) + 1
        make(self, size, shared)

    monkeypatch.setattr(shm_pool.Segment, "__init__", counting)  # forked workers inherit the patch
    loader = DataLoader(
        FRAMES, batch_size=2, num_workers=2, multiprocessing_context="fork", collate_fn=_stack_and_count_new
    )
    first = [(frames, made) for (frames, _), made in loader]
    assert max(made for _, made in first) >= 1 and len(shm_pool._kept) >= 2
    held = first[0][0]  # kept across the next epoch: its segment is lent, not reusable
    expected = held.clone()
    del first
    gc.collect()
    second = [made for (_, _), made in loader]
    assert max(second) == 0  # every batch of the second epoch went into a kept segment
    torch.testing.assert_close(held, expected)


def _try_claim(segment, out):
    out.put(segment.claim())


def test_a_claimed_segment_is_taken_by_one_process_at_a_time():
    import multiprocessing

    pool = shm_pool.Pool()
    segment = pool.acquire(1 << 12)  # made here and claimed by this process
    assert segment.lock_fd >= 0
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_try_claim, args=(segment, out))
    child.start()
    assert out.get(timeout=30) is False
    child.join()
    segment.close()  # this process lets go
    other = shm_pool.Segment(1 << 12)
    child = context.Process(target=_try_claim, args=(other, out))
    child.start()
    assert out.get(timeout=30) is True
    child.join()
    assert other.claim()  # the child's claim ended with it
    other.close()


def _claim_and_write(out) -> None:
    """In a forked child: the pool a new worker starts with, and one batch written into it."""
    pool = shm_pool._pool(shared=True)
    sizes = sorted((s.size for s in pool.segments), reverse=True)
    inherited = [s.mapped for s in pool.segments]  # nothing in this process's page tables yet
    segment = pool.acquire(3 * shm_pool.PAGE + 1)  # the smallest that fits: the fourth largest
    mapped = segment.mapped
    segment.map[shm_pool.HEADER : shm_pool.HEADER + 5] = b"child"
    out.put((sizes, inherited, segment.size, mapped))


@pytest.mark.skipif(not hasattr(shm_pool.os, "fork"), reason="fork is POSIX only")
@pytest.mark.parametrize("advice", ["known", "unknown"])
def test_a_new_worker_claims_the_largest_kept_segments_and_maps_them_in_one_call(monkeypatch, advice):
    import multiprocessing

    if advice == "unknown":  # another system, or a Python without MADV_POPULATE_READ: pages fault in
        monkeypatch.setattr(shm_pool, "MADV_POPULATE_READ", None)
    monkeypatch.setattr(shm_pool, "_kept", {})
    made = [shm_pool.Segment(n * shm_pool.PAGE) for n in (1, 16, 4, 8, 32, 2)]
    for segment in made:  # as the main process keeps what workers sent it
        info = os.fstat(segment.fd)
        shm_pool._kept[info.st_dev, info.st_ino] = segment
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_claim_and_write, args=(out,))
    child.start()
    sizes, inherited, size, mapped = out.get(timeout=30)
    child.join()
    assert sizes == [n * shm_pool.PAGE for n in (32, 16, 8, 4)]  # CLAIM of them, largest first
    assert inherited == [0] * shm_pool.CLAIM
    assert size == 4 * shm_pool.PAGE
    # MADV_POPULATE_READ mapped the pages the batch needs (-1: a kernel before 5.14, left to faults)
    assert mapped in ((4 * shm_pool.PAGE, -1) if advice == "known" else (-1,))
    assert made[2].map[shm_pool.HEADER : shm_pool.HEADER + 5] == b"child"  # the child wrote the shared pages
    for segment in made:
        segment.close()


def test_populating_falls_back_to_page_faults_where_the_kernel_refuses(monkeypatch):
    segment = shm_pool.Segment(4 * shm_pool.PAGE)
    segment.mapped = 0  # as if inherited

    class Refusing:  # mmap objects' methods cannot be patched: wrap the mapping
        def __init__(self, inner):
            self.inner = inner

        def madvise(self, *args):
            raise OSError(22, "Invalid argument")

        def __getattr__(self, name):
            return getattr(self.inner, name)

    inner = segment.map
    segment.map = Refusing(inner)
    segment.populate(2 * shm_pool.PAGE)
    assert segment.mapped == -1  # no further attempts: pages fault in on first write
    segment.populate(4 * shm_pool.PAGE)
    assert segment.mapped == -1
    segment.map = inner
    segment.close()


# --- the switch, the bound, release and the fallbacks --------------------------------------------


@pytest.fixture
def pool_environment(monkeypatch):
    """No pool variables set, restored afterwards (configure writes them); kept segments and
    registered users of this test alone."""
    monkeypatch.delenv(shm_pool.SWITCH_VARIABLE, raising=False)
    monkeypatch.delenv(shm_pool.KEEP_VARIABLE, raising=False)
    monkeypatch.setattr(shm_pool, "_kept", {})
    monkeypatch.setattr(shm_pool, "_users", {})
    monkeypatch.setattr(shm_pool, "_pools", {})
    gc.collect()  # earlier tests' garbage finalizes now, not mid-test


def test_settings_come_from_the_environment_and_refuse_nonsense(pool_environment, monkeypatch):
    assert shm_pool.settings() == shm_pool.PoolSettings(True, 1 << 30)
    monkeypatch.setenv("NEURODATA_SHM_POOL", "0")
    monkeypatch.setenv("NEURODATA_SHM_POOL_KEEP_MIB", "64")
    assert shm_pool.settings() == shm_pool.PoolSettings(False, 64 << 20)
    assert shm_pool.local_pool() is None
    monkeypatch.setenv("NEURODATA_SHM_POOL", "maybe")
    with pytest.raises(ValueError, match="NEURODATA_SHM_POOL must be 0 or 1"):
        shm_pool.settings()
    monkeypatch.setenv("NEURODATA_SHM_POOL", "on")
    monkeypatch.setenv("NEURODATA_SHM_POOL_KEEP_MIB", "1.5G")
    with pytest.raises(ValueError, match="NEURODATA_SHM_POOL_KEEP_MIB must be a whole number"):
        shm_pool.settings()


def _epoch(loader) -> list:
    return [frames for frames, _ in loader]


def frame_loader() -> DataLoader:
    return DataLoader(FRAMES, batch_size=2, num_workers=2, multiprocessing_context="fork", collate_fn=stack_dense)


def test_configure_switches_the_pool_for_this_process_and_later_workers(pool_environment):
    loader = frame_loader()
    _epoch(loader)
    assert shm_pool._kept and shm_pool.local_pool() is not None
    assert shm_pool.configure(enabled=False) == shm_pool.PoolSettings(False, 1 << 30)
    assert os.environ["NEURODATA_SHM_POOL"] == "0" and not shm_pool._kept  # released at once
    assert shm_pool.local_pool() is None and not stack_dense(FRAMES[:2])[0].is_shared()
    batches = _epoch(loader)  # workers forked now build batches in torch's shared memory
    assert all(frames.is_shared() for frames in batches) and not shm_pool._kept
    for k, frames in enumerate(batches):
        np.testing.assert_array_equal(frames.numpy(), np.stack([FRAMES[2 * k][0], FRAMES[2 * k + 1][0]]))
    with pytest.raises(ValueError, match="keep_mib"):
        shm_pool.configure(keep_mib=-1)
    assert shm_pool.configure(enabled=True, keep_mib=0).enabled
    _epoch(loader)
    assert not shm_pool._kept  # a bound of 0: nothing is kept for later workers


def test_the_main_process_keeps_segments_up_to_the_bound(pool_environment, monkeypatch):
    batch_bytes = shm_pool.layout_of([((2, *FRAMES[0][0].shape), np.int32)])[1]
    monkeypatch.setenv("NEURODATA_SHM_POOL_KEEP_MIB", "1")
    _epoch(frame_loader())
    kept = sum(segment.size for segment in shm_pool._kept.values())
    assert 0 < kept <= 1 << 20 and batch_bytes < 1 << 20


def test_release_lets_go_of_everything_but_the_batches_still_held(pool_environment):
    held = _epoch(frame_loader())[0]
    expected = held.clone()
    local = stack_dense(FRAMES[:2])[0]  # this process's private pool: one segment lent, one free after
    del local
    gc.collect()
    stack_dense(FRAMES[2:4])
    gc.collect()
    kept = list(shm_pool._kept.values())
    pool = shm_pool.local_pool()
    assert len(kept) >= 2 and pool.segments
    shm_pool.release()
    assert not shm_pool._kept and not pool.segments
    assert all(segment.fd == -1 for segment in kept)  # descriptors closed
    assert sum(segment.map.closed for segment in kept) == len(kept) - 1  # the held batch's stays mapped
    torch.testing.assert_close(held, expected)
    del held
    gc.collect()
    again = _epoch(frame_loader())  # new segments, kept again
    assert len(again) == len(FRAMES) // 2 and shm_pool._kept


def test_the_memory_goes_when_the_last_loader_is_garbage_collected(pool_environment, tmp_path):
    import loader_samples as ls

    from neurodata.loaders import load, pad_events

    store = ls.build_indexed_cache(str(tmp_path / "indexed.zarr"), 24)
    first, second = load(store), load(store, streaming=True, block_samples=4)
    for dataset in (first, second):
        loader = DataLoader(
            dataset, batch_size=4, num_workers=2, multiprocessing_context="fork", collate_fn=pad_events
        )
        assert sum(len(batch.lengths) for batch in loader) == 24
    pad_events([first[1], first[2]])
    assert shm_pool._kept and shm_pool.local_pool().segments
    del loader, dataset, first
    gc.collect()
    assert shm_pool._kept  # one loader is still alive
    del second
    gc.collect()
    assert not shm_pool._kept and not shm_pool.local_pool().segments
