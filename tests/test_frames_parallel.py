"""Frames counted by several threads: the same frames and the same errors as one thread, for any
slicing and any misplaced event; the thread policy (DataLoader workers count alone); the runs."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from neurodata.events import make_events
from neurodata.representations import frames as frames_module
from neurodata.representations import kernels, reference, slice_events, to_frame
from neurodata.representations._parallel import (
    MIN_BYTES_PER_THREAD,
    MIN_EVENTS_PER_THREAD,
    FrameRun,
    frame_runs,
    frame_threads,
)
from neurodata.workers import process_pool, usable_cores

try:
    from numpy._core import multiarray as np_multiarray
except ImportError:  # numpy < 2
    from numpy.core import multiarray as np_multiarray

SIZE = (5, 3, 2)
SPECS = st.one_of(
    st.builds(dict, n_time_bins=st.integers(1, 9)),
    st.builds(dict, time_window=st.integers(1, 200), overlap=st.integers(0, 150), include_incomplete=st.booleans()),
    st.builds(dict, event_count=st.integers(1, 30), overlap=st.integers(0, 20), include_incomplete=st.booleans()),
    st.builds(dict, frames_number=st.integers(1, 9), split_by=st.sampled_from(["number", "time"])),
)


def _outcome(events, size, spec, threads, checked_path=False):
    """The frames, or the error's message; ``checked_path``: by the path that checks every event in
    a pass of its own first (the answer the one-pass path must give)."""
    one_pass = frames_module.count_unchecked_frames
    try:
        if checked_path:
            frames_module.count_unchecked_frames = lambda *args: None
        return to_frame(events, size, threads=threads, **spec)
    except ValueError as error:
        return str(error)
    finally:
        frames_module.count_unchecked_frames = one_pass


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 80),
    SPECS,
    st.sampled_from(["none", "x", "y", "p", "order"]),
    st.integers(0, 79),
    st.integers(2, 5),
    st.integers(0, 2**32 - 1),
)
def test_threads_give_the_frames_and_errors_of_one_thread(n, spec, fault, where, threads, seed):
    """A misplaced event anywhere (in a slice, between slices, after the last one) is found whichever
    run holds it: the error, or the sorted input's frames, is the answer of the checked path."""
    rng = np.random.default_rng(seed)
    events = make_events(
        np.sort(rng.integers(0, 500, n)), rng.integers(0, 5, n), rng.integers(0, 3, n), rng.integers(0, 2, n)
    )
    k = where % n
    if fault == "order":
        events["t"][k] = events["t"][k - 1] - 1 if k else events["t"][0]
    elif fault != "none":
        events[fault][k] = {"x": 5, "y": 3, "p": 2}[fault]
    for size in (SIZE, (5, 3, 1)):
        expected = _outcome(events, size, spec, 1, checked_path=True)
        for outcome in (_outcome(events, size, spec, 1), _outcome(events, size, spec, threads)):
            if isinstance(expected, str):
                assert outcome == expected
            else:
                np.testing.assert_array_equal(outcome, expected)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 20),
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=6),
    st.sampled_from(["none", "x", "y", "p", "order"]),
    st.integers(0, 19),
    st.lists(st.integers(1, 3), min_size=1, max_size=5),
    st.integers(0, 2**32 - 1),
)
@example(n=10, bounds=[(0, 3), (5, 7)], fault="x", where=3, cuts=[1], seed=0)  # a gap at a run's start
def test_runs_of_any_slices_check_every_event(n, bounds, fault, where, cuts, seed):
    """Any slices (gaps, overlaps, any order) cut into runs counted apart: some run reports the
    misplaced event, held by a slice or not; without one the runs count like the reference."""
    rng = np.random.default_rng(seed)
    events = make_events(
        np.sort(rng.integers(1, 500, n)), rng.integers(0, 5, n), rng.integers(0, 3, n), rng.integers(0, 2, n)
    )
    if fault != "none" and n:
        k = where % n
        if fault == "order":
            events["t"][k] = events["t"][k - 1] - 1 if k else events["t"][0]
        else:
            events[fault][k] = {"x": 5, "y": 3, "p": 2}[fault]
    starts = np.array([min(a, b, n) for a, b in bounds], dtype=np.int64)
    ends = np.array([min(max(a, b), n) for a, b in bounds], dtype=np.int64)
    edges = np.unique(np.clip(np.cumsum([0, *cuts]), 0, len(starts)))
    runs = [FrameRun(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    if runs[-1].stop != len(starts):
        runs.append(FrameRun(runs[-1].stop, len(starts)))
    t = events["t"].astype(np.int64)
    for merge, n_pol in ((False, 2), (True, 1)):
        bad = (events["x"] >= 5) | (events["y"] >= 3) | ((events["p"] >= n_pol) & (not merge))
        bad[1:] |= t[1:] < t[:-1]
        frames = np.zeros((len(starts), n_pol, 3, 5), dtype=np.int32)
        statuses = [
            kernels.accumulate_frames_validating(
                events, starts[r.first : r.stop], ends[r.first : r.stop], merge, frames[r.first : r.stop],
                0, False, *r.checked_events(ends, n), 2,
            )
            for r in runs
        ]
        assert any(status != -1 for status in statuses) == bool(bad.any())
        if not bad.any():
            np.testing.assert_array_equal(frames, reference.frames_reference(events, starts, ends, n_pol, 3, 5))


@pytest.mark.parametrize("bucketed", [False, True])
@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32])
def test_large_frames_on_threads_equal_the_reference(bucketed, dtype, monkeypatch):
    """1280x720 frames on 3 threads, in the unchecked one-pass path and in the checked path (unsorted
    input) with either kernel, equal the readable reference."""
    if bucketed:
        monkeypatch.setattr(frames_module, "CACHE_BYTES", 1 << 20)
    rng = np.random.default_rng(7)
    n = 150_000
    times = np.sort(rng.choice(10**7, n, replace=False))  # distinct: sorting the reversed input restores it
    events = make_events(times, rng.integers(0, 1280, n), rng.integers(0, 720, n), rng.integers(0, 2, n))
    starts, ends = slice_events(events["t"], time_window=900_000, overlap=300_000)
    expected = reference.frames_reference(events, starts, ends, 2, 720, 1280).astype(dtype)
    for given_events in (events, events[::-1]):
        frames = to_frame(given_events, (1280, 720, 2), time_window=900_000, overlap=300_000, dtype=dtype, threads=3)
        assert frames.dtype == dtype
        np.testing.assert_array_equal(frames, expected)


def _minor_faults_of_threads(prefix: str) -> int:
    """The minor page faults so far of this process's threads whose names start with ``prefix``."""
    total = 0
    for thread in threading.enumerate():
        if thread.name.startswith(prefix) and thread.native_id is not None:
            with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
                total += int(stat.read().rsplit(")", 1)[1].split()[7])  # field 10: minflt
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="per-thread fault counts come from Linux's /proc")
def test_the_pool_threads_count_into_pages_already_mapped():
    """The calling thread faults in each run's fresh frames before the run starts: the pool's threads,
    which count while it faults the next run in, never fault (threads faulting pages of one process
    at the same time stalled for tens of milliseconds on the VMs measured). 4 KiB pages (numpy's
    huge-page advice off) give a run of 3 MiB frames ~770 faults to make, or none."""
    rng = np.random.default_rng(3)
    n = 200_000
    events = make_events(np.arange(n), rng.integers(0, 1280, n), rng.integers(0, 720, n), rng.integers(0, 2, n))
    to_frame(events, (1280, 720, 2), n_time_bins=8, dtype=np.int16, threads=4)  # the pool exists, the kernel loaded
    huge_pages = np_multiarray._set_madvise_hugepage(False)
    try:
        for _ in range(3):
            before = _minor_faults_of_threads("neurodata-frames")
            frames = to_frame(events, (1280, 720, 2), n_time_bins=8, dtype=np.int16, threads=4)
            assert _minor_faults_of_threads("neurodata-frames") - before < 32
    finally:
        np_multiarray._set_madvise_hugepage(huge_pages)
    assert frames.sum() == n


def test_a_cell_past_the_dtype_refuses_on_any_thread():
    """Only the last frame's cell passes uint8: the last run finds it."""
    spread = make_events(np.arange(900), np.arange(900) % 5, np.arange(900) % 3, np.zeros(900))
    hot = make_events(np.arange(900, 1200), np.zeros(300), np.zeros(300), np.ones(300))
    events = np.concatenate([spread, hot])
    for threads in (1, 2, 4):
        with pytest.raises(ValueError, match="more than 255 events, more than dtype uint8 holds"):
            to_frame(events, SIZE, event_count=300, dtype=np.uint8, threads=threads)
        frames = to_frame(events, SIZE, event_count=300, dtype=np.int16, threads=threads)
        assert frames[-1, 1, 0, 0] == 300 and frames.sum() == 1200


def test_thread_policy():
    events, nbytes = 8 * MIN_EVENTS_PER_THREAD, 8 * MIN_BYTES_PER_THREAD
    assert frame_threads(3, 10, 10, 100) == 3  # asked for: used, small input or not
    assert frame_threads(8, events, 2, nbytes) == 2  # never more threads than frames
    assert frame_threads(None, 10, 10, nbytes) == 1  # too few events to share
    assert frame_threads(None, events, 10, MIN_BYTES_PER_THREAD) == 1  # frames too small to share
    assert frame_threads(None, events, 16, nbytes) == usable_cores()  # at most 8
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads must be a whole number of at least 1"):
            frame_threads(bad, events, 4, nbytes)


def test_threads_doing_a_share_of_split_work_count_alone(monkeypatch):
    """A frame count started on one of the loaders' decode threads (or on a frame run's thread)
    stays on that thread: the threads would otherwise nest, cores times cores."""
    from neurodata._threads import parallel_section
    from neurodata.loaders.decode_pool import THREADS_VARIABLE, decode_map
    from neurodata.representations._parallel import side_by_side

    def default_threads(_: object = None) -> int:
        return frame_threads(None, 8 * MIN_EVENTS_PER_THREAD, 16, 8 * MIN_BYTES_PER_THREAD)

    assert default_threads() == usable_cores()
    monkeypatch.setenv(THREADS_VARIABLE, "2")
    assert decode_map(default_threads, list(range(8))) == [1] * 8
    assert side_by_side([default_threads, default_threads]) == [1, 1]
    with parallel_section():
        assert default_threads() == 1
    assert default_threads() == usable_cores()


class _WorkerThreads(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> int:
        return frame_threads(None, 8 * MIN_EVENTS_PER_THREAD, 16, 8 * MIN_BYTES_PER_THREAD)


def test_worker_processes_count_alone():
    """DataLoader workers and process-pool workers: the processes are the parallelism."""
    loader = torch.utils.data.DataLoader(_WorkerThreads(), batch_size=None, num_workers=1)
    assert list(loader) == [1]
    with process_pool(1) as pool:
        assert pool.submit(frame_threads, None, 8 * MIN_EVENTS_PER_THREAD, 16, 8 * MIN_BYTES_PER_THREAD).result() == 1


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_runs_cover_the_frames_in_order(parts):
    lengths = np.array([5, 0, 9, 100, 3, 3, 0, 40])
    runs = frame_runs(lengths, parts)
    assert runs[0].first == 0 and runs[-1].stop == len(lengths)
    assert all(a.stop == b.first and a.first < a.stop for a, b in zip(runs, runs[1:], strict=False))
    assert len(runs) <= parts
    assert frame_runs(np.array([10] * 8), 4) == [(0, 2), (2, 4), (4, 6), (6, 8)]
