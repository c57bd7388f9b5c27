"""The ordered thread map the AEDAT 4 reader and the streaming loader share: results in order, at
most ``ahead`` calls beyond the consumer, an error raised where its result is reached, the calls
not yet started cancelled when the consumer stops; per-process pools."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest

from neurodata._threads import ordered_map, prefetched, shared_pool


@pytest.mark.parametrize("executor", ["pool", "inline"])
def test_results_come_in_order_however_the_calls_finish(executor):
    pool = shared_pool("test-order", 4) if executor == "pool" else None

    def slow_first(k: int) -> int:
        time.sleep(0.02 if k % 3 == 0 else 0)  # later items finish before earlier ones
        return k * k

    assert list(ordered_map(slow_first, range(20), pool, 6)) == [k * k for k in range(20)]


def test_no_more_than_ahead_calls_run_beyond_the_consumer():
    started: list[int] = []
    lock = threading.Lock()

    def record(k: int) -> int:
        with lock:
            started.append(k)
        return k

    results = ordered_map(record, range(100), shared_pool("test-ahead", 3), 2)
    assert next(results) == 0
    time.sleep(0.05)
    assert len(started) <= 3  # the item consumed and two ahead
    assert list(results) == list(range(1, 100))


@pytest.mark.parametrize("executor", ["pool", "inline"])
def test_an_error_is_raised_where_its_result_is_reached(executor):
    pool = shared_pool("test-error", 2) if executor == "pool" else None

    def read(k: int) -> int:
        if k == 5:
            raise ValueError("item 5 is damaged")
        return k

    got = []
    with pytest.raises(ValueError, match="item 5 is damaged"):
        for value in ordered_map(read, range(10), pool, 3):
            got.append(value)
    assert got == [0, 1, 2, 3, 4]


def test_closing_early_cancels_the_calls_not_yet_started():
    gate = threading.Event()
    started: list[int] = []

    def blocked(k: int) -> int:
        started.append(k)
        if k > 0:
            gate.wait(5)  # item 1 holds the pool's one thread: 2-4 wait in its queue
        return k

    pool = shared_pool("test-cancel", 1)
    results = ordered_map(blocked, range(10), pool, 4)
    assert next(results) == 0
    results.close()
    gate.set()
    pool.submit(lambda: None).result()  # the thread has run whatever was left in its queue
    assert started in ([0], [0, 1])  # 2-4 never ran (1 too, when cancelled before it began)


def test_prefetched_reads_inline_at_depth_zero_and_ahead_otherwise():
    threads = []

    def read(k: int) -> int:
        threads.append(threading.current_thread().name)
        return k

    assert list(prefetched(read, range(3), depth=0)) == [0, 1, 2]
    assert set(threads) == {threading.current_thread().name}
    threads.clear()
    assert list(prefetched(read, range(3), depth=2)) == [0, 1, 2]
    assert all(name.startswith("neurodata-prefetch") for name in threads)


def _pool_in_child(out) -> None:
    out.put(shared_pool("test-fork", 2).submit(os.getpid).result(timeout=10))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_makes_its_own_pool():
    assert shared_pool("test-fork", 2) is shared_pool("test-fork", 2)
    shared_pool("test-fork", 2).submit(lambda: None).result()  # the parent's threads exist
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_pool_in_child, args=(out,))
    child.start()
    pid = out.get(timeout=30)  # a pool inherited from the parent would have no thread to run it
    child.join()
    assert pid == child.pid
