"""Dataset cache: round trips, empty samples and splits, resume after SIGKILL, concurrent builders,
verification of damaged caches, invisibility of unfinished builds, parallel and dask builds."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import neurodata
from neurodata.cache import (
    CacheBuilder,
    CacheError,
    PartData,
    build_cache,
    cache_info,
    open_cache,
    verify_cache,
)
from neurodata.cache.codecs import decode_times, encode_times
from neurodata.cache.reader import decode_range
from neurodata.cache.tasks import run_tasks
from neurodata.events import make_events

sys.path.insert(0, str(Path(__file__).parent))
import cache_samples as cs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> str:
    """A serially built cache of the random plan: what every other build must reproduce."""
    url = str(tmp_path_factory.mktemp("ref") / "toy.zarr")
    build_cache(cs.builder(url), cs.make_random_part)
    return url


def expected_samples(split: str) -> list[tuple[np.ndarray, int, str]]:
    return [s for i in range(cs.PLAN[split]) for s in cs.random_samples(split, i)]


def assert_same_cache(url: str, reference: str) -> None:
    """All arrays equal, and the stored bytes too (the manifests list identical sizes and CRCs)."""
    ours, ref = cs.all_arrays(url), cs.all_arrays(reference)
    assert ours.keys() == ref.keys()
    for key in ref:
        np.testing.assert_array_equal(ours[key], ref[key], err_msg=key)
    manifest = json.loads((Path(url) / "manifest" / "zarr.json").read_text())
    assert manifest == json.loads((Path(reference) / "manifest" / "zarr.json").read_text())


def run_child(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a Python snippet in a fresh interpreter with the project and the test helpers importable."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        timeout=timeout,
        capture_output=True,
        text=True,
    )


# ---- round trips ---------------------------------------------------------------------------------


def test_round_trip_random_events(reference):
    cache = open_cache(reference)
    assert set(cache.splits) == set(cs.PLAN)
    assert cache.attrs["class_names"] == cs.ATTRS["class_names"]
    assert cache.attrs["sensor_size"] == [640, 480, 2]
    assert cache.attrs["layout_version"] == 4 and cache.attrs["neurodata_version"] == neurodata.__version__
    assert cache.attrs["time_coding"] == "per-sample-delta-polarity"  # random 0/1 polarities: in the times
    for split in cs.PLAN:
        expected = expected_samples(split)
        reader = cache[split]
        assert reader.n_samples == len(expected) and len(reader.labels) == len(expected)
        assert reader.n_events == sum(len(e) for e, _, _ in expected)
        assert split == "empty" or len(expected[1][0]) == 0  # every part holds an empty sample
        for i, (events, label, _) in enumerate(expected):
            got, got_label = reader.sample(i)
            assert got.dtype == neurodata.EVENT_DTYPE
            np.testing.assert_array_equal(got, events)
            assert got_label == label
        assert list(reader.column("source")) == [s for _, _, s in expected]
        nonempty = [i for i, (e, _, _) in enumerate(expected) if len(e)]
        np.testing.assert_array_equal(
            reader.column("t_first")[nonempty], [expected[i][0]["t"][0] for i in nonempty]
        )
        np.testing.assert_array_equal(
            reader.column("t_last")[nonempty], [expected[i][0]["t"][-1] for i in nonempty]
        )
        ranged = reader.samples(slice(1, len(expected) - 1))
        assert len(ranged) == max(0, len(expected) - 2)
        for (got, got_label), (events, label, _) in zip(ranged, expected[1:-1]):
            np.testing.assert_array_equal(got, events)
            assert got_label == label
    assert verify_cache(reference, deep=True).ok


def test_random_order_reads_through_the_chunk_window(reference):
    """Reads jump between chunks (replacing the cached window) and back; each must be exact."""
    reader = open_cache(reference)["train"]
    expected = expected_samples("train")
    order = np.random.default_rng(1).permutation(len(expected))
    for i in [*order, *order[::-1]]:
        np.testing.assert_array_equal(reader.sample(int(i))[0], expected[i][0])


def test_zstd_codec_round_trip(tmp_path, reference):
    url = str(tmp_path / "zstd.zarr")
    build_cache(cs.builder(url, codec="zstd"), cs.make_random_part)
    assert open_cache(url).attrs["codec"] == "zstd"
    ours, ref = cs.all_arrays(url), cs.all_arrays(reference)
    for key in ref:
        np.testing.assert_array_equal(ours[key], ref[key], err_msg=key)
    assert verify_cache(url, deep=True).ok


def test_split_with_zero_samples(reference):
    empty = open_cache(reference)["empty"]
    assert empty.n_samples == 0 and empty.n_events == 0
    assert empty.samples(slice(None)) == []
    assert list(empty.offsets) == [0]
    with pytest.raises(IndexError):
        empty.sample(0)


def test_round_trip_fixture_events(tmp_path, fixtures):
    """Real recordings (N-MNIST decoded by neurodata, EVT3 golden decode, the gesture ground truth)."""
    nmnist = neurodata.read(fixtures / "nmnist" / "sample_nmnist.bin")
    evt3 = np.load(fixtures / "evt3" / "evt3_sample.npy", allow_pickle=False)
    truth = np.load(fixtures / "synthetic_ground_truth.npz", allow_pickle=False)
    gesture = make_events(truth["t"], truth["x"], truth["y"], truth["p"])
    evt3 = make_events(evt3["t"], evt3["x"], evt3["y"], evt3["p"])
    assert len(nmnist) == 4325 and len(evt3) == 219596 and len(gesture) == 2042
    samples = [(nmnist, 3, "nmnist"), (evt3, 1, "evt3"), (gesture[:0], 0, "none"), (gesture, 5, "gesture")]
    url = str(tmp_path / "fixtures.zarr")
    builder = CacheBuilder(url, "fixtures", {}, {"train": 1}, chunk_events=1 << 14, shard_events=1 << 16)
    build_cache(builder, functools.partial(_fixed_part, samples))
    reader = open_cache(url)["train"]
    for i, (events, label, _) in enumerate(samples):
        got, got_label = reader.sample(i)
        np.testing.assert_array_equal(got, events)
        assert got_label == label
    events, local = reader.events(0, 4)
    np.testing.assert_array_equal(events, np.concatenate([s[0] for s in samples]))
    assert list(np.diff(local)) == [len(s[0]) for s in samples]
    assert verify_cache(url, deep=True).ok


def _fixed_part(samples, split, index):
    return PartData.from_samples(samples)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=6), max_size=6))
def test_time_coding_is_exact_for_any_int64(samples):
    """Per-sample delta coding round-trips even unsorted times and int64 overflow in the running sum."""
    t = np.array([v for s in samples for v in s], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in samples])]).astype(np.int64)
    coded = encode_times(t, offsets)
    np.testing.assert_array_equal(decode_times(coded, offsets), t)
    starts = offsets[:-1][np.diff(offsets) > 0]
    np.testing.assert_array_equal(coded[starts], t[starts])  # each sample's first time is stored as is
    n = len(t)
    columns = {
        "t": coded,
        "x": np.arange(n, dtype=np.uint16),
        "y": np.arange(n, dtype=np.uint16)[::-1].copy(),
    }
    columns["p"] = (np.arange(n) % 2).astype(np.uint8)
    events = decode_range(columns, offsets)  # the Numba kernel against the numpy reference
    np.testing.assert_array_equal(events["t"], t)
    for name in ("x", "y", "p"):
        np.testing.assert_array_equal(events[name], columns[name])


def test_decode_range_rejects_offsets_that_do_not_fit():
    columns = {
        "t": np.zeros(3, np.int64),
        "x": np.zeros(3, np.uint16),
        "y": np.zeros(3, np.uint16),
        "p": np.zeros(3, np.uint8),
    }
    for offsets in ([0, 2], [0, 4], [1, 3], [0, 2, 1, 3], []):
        with pytest.raises(CacheError, match="offsets do not partition the 3 events"):
            decode_range(columns, np.array(offsets, dtype=np.int64))


# ---- parallel builds ------------------------------------------------------------------------------


def test_process_pool_build_equals_serial(tmp_path, reference):
    url = str(tmp_path / "pool.zarr")
    build_cache(cs.builder(url), cs.make_random_part, workers=2)
    assert_same_cache(url, reference)


def test_run_tasks_runs_meanwhile_while_its_tasks_run():
    """The commit lays out the arrays' metadata while the workers write the shards: ``meanwhile``
    runs once the tasks are submitted (here they wait for it), and first when there is no executor."""
    laid_out = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        assert run_tasks(pool, lambda k: laid_out.wait(10), [0, 1], meanwhile=laid_out.set) == [True, True]
    order: list[int] = []
    run_tasks(None, order.append, [1, 2], meanwhile=lambda: order.append(0))
    assert order == [0, 1, 2]


def test_a_failing_meanwhile_cancels_the_tasks_not_started():
    release, ran = threading.Event(), []

    def task(k: int) -> None:
        release.wait(10)
        ran.append(k)

    def fail() -> None:
        raise RuntimeError("metadata failed")

    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(RuntimeError, match="metadata failed"):
            run_tasks(pool, task, [0, 1, 2], meanwhile=fail)
        release.set()
    assert 1 not in ran and 2 not in ran


def test_dask_local_cluster_build_equals_serial(tmp_path, reference):
    distributed = pytest.importorskip(
        "distributed", reason="dask[distributed] not installed (optional 'dask' extra)"
    )
    url = str(tmp_path / "dask.zarr")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            build_cache(cs.builder(url), cs.make_random_part, executor=client.get_executor())
    assert_same_cache(url, reference)


# ---- interruption, resume, concurrency --------------------------------------------------------------

KILL_DURING_PART = """
import os, signal
import cache_samples as cs
from neurodata.cache import staging, writer
real = staging.write_done_marker
def dying(location, done):
    if location.url.endswith("/train/000002") or "/train/000002.tmp-" in location.url:
        os.kill(os.getpid(), signal.SIGKILL)  # arrays written, done.json not yet
    real(location, done)
staging.write_done_marker = dying
writer.build_cache(cs.builder({url!r}), cs.make_random_part)
"""


def test_resume_after_sigkill_during_parts(tmp_path, reference):
    url = str(tmp_path / "killed.zarr")
    result = run_child(KILL_DURING_PART.format(url=url))
    assert result.returncode == -signal.SIGKILL, result.stderr
    with pytest.raises(CacheError, match="no cache here"):
        open_cache(url)  # nothing visible at the store path
    builder = cs.builder(url)
    done_before = {(s, i) for s, n in cs.PLAN.items() for i in range(n) if builder.part_done(s, i)}
    assert done_before == {("train", 0), ("train", 1)}
    log = tmp_path / "calls.log"
    build_cache(builder, functools.partial(cs.make_random_part, log=str(log)))
    rebuilt = {(s, int(i)) for s, i in (line.split() for line in log.read_text().splitlines())}
    assert rebuilt == {("train", 2), ("train", 3), ("train", 4), ("test", 0), ("test", 1)}
    assert_same_cache(url, reference)
    assert not os.path.exists(url + ".build") and not os.path.exists(url + ".lock")


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that counts the tasks it was given."""

    submitted = 0

    def submit(self, fn, /, *args, **kwargs):
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_start_checks_staged_parts_only_when_resuming(tmp_path):
    # a staging area begun now holds no parts: start() gives no tasks (a streamed prepare would
    # fork its workers once for nothing); resuming the same plan checks each part on the executor
    url = str(tmp_path / "fresh.zarr")
    planned = [(s, i) for s, n in cs.PLAN.items() for i in range(n)]
    with CountingExecutor(2) as executor:
        assert sorted(cs.builder(url).start(executor)) == sorted(planned)
        assert executor.submitted == 0
    builder = cs.builder(url)
    builder.write_part("train", 1, cs.make_random_part("train", 1))
    with CountingExecutor(2) as executor:
        pending = builder.start(executor)
        assert executor.submitted == len(planned)
    assert sorted(pending) == sorted(p for p in planned if p != ("train", 1))


KILL_DURING_COMMIT = """
import os, signal
import cache_samples as cs
from neurodata.cache import writer
real = writer.write_shard
calls = []
def dying(*args):
    calls.append(args)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # two shards committed, the marker not yet
    return real(*args)
writer.write_shard = dying
writer.build_cache(cs.builder({url!r}), cs.make_random_part)
"""


def test_resume_after_sigkill_during_commit(tmp_path, reference):
    url = str(tmp_path / "killed.zarr")
    result = run_child(KILL_DURING_COMMIT.format(url=url))
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert os.path.isdir(url + ".build/final/train")  # the half-assembled tree exists, but not at the URL
    with pytest.raises(CacheError):
        open_cache(url)
    log = tmp_path / "calls.log"
    build_cache(cs.builder(url), functools.partial(cs.make_random_part, log=str(log)))
    assert not log.exists()  # every part was staged and verified: none decoded again
    assert_same_cache(url, reference)


def test_incomplete_marker_is_refused(tmp_path):
    """What an object-store reader sees mid-commit: arrays present, root zarr.json without the marker."""
    url = str(tmp_path / "partial.zarr")
    group = zarr.open_group(url, mode="w")
    group.attrs["neurodata_cache"] = {"layout_version": 1, "complete": False, "splits": {}}
    with pytest.raises(CacheError, match="incomplete"):
        open_cache(url)
    assert not verify_cache(url).ok


CONCURRENT_BUILDER = """
import cache_samples as cs
from neurodata.cache import build_cache
build_cache(cs.builder({url!r}), cs.make_random_part)
"""


def test_two_concurrent_builders(tmp_path, reference):
    url = str(tmp_path / "shared.zarr")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    code = textwrap.dedent(CONCURRENT_BUILDER.format(url=url))
    children = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    assert verify_cache(url, deep=True).ok
    assert_same_cache(url, reference)


LOCKED_COUNTER = """
import glob, os, sys, time
from neurodata.cache.store import Location, commit_lock
location, folder = Location({url!r}), {folder!r}
counter = os.path.join(folder, "n")
open(os.path.join(folder, "ready-" + sys.argv[1]), "w").close()
while len(glob.glob(os.path.join(folder, "ready-*"))) < 3:  # start together, so the loops overlap
    time.sleep(0.001)
for _ in range(20):
    with commit_lock(location):
        value = int(open(counter).read()) if os.path.exists(counter) else 0
        time.sleep(0.002)  # widen the race window: without mutual exclusion increments get lost
        with open(counter, "w") as f:
            f.write(str(value + 1))
"""


def test_commit_lock_excludes_other_processes(tmp_path):
    """Three processes increment a counter under the lock (which is unlinked after each use)."""
    code = textwrap.dedent(LOCKED_COUNTER.format(url=str(tmp_path / "c.zarr"), folder=str(tmp_path)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen([sys.executable, "-c", code, str(i)], env=env, stderr=subprocess.PIPE, text=True)
        for i in range(3)
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    assert (tmp_path / "n").read_text() == "60"
    assert not (tmp_path / "c.zarr.lock").exists()


def test_changed_attributes_do_not_reuse_a_cache(tmp_path, reference):
    url = str(tmp_path / "rules.zarr")
    build_cache(cs.builder(url), cs.make_random_part)
    changed = CacheBuilder(url, "toy", {**cs.ATTRS, "rules_version": 2}, cs.PLAN, **cs.SMALL_CHUNKS)
    with pytest.raises(CacheError, match="overwrite=True"):
        changed.start()
    changed.overwrite = True
    build_cache(changed, cs.make_random_part)
    assert open_cache(url).attrs["rules_version"] == 2
    assert cs.builder(url).is_complete() is False


# ---- verification ------------------------------------------------------------------------------


@pytest.fixture
def copy_of(reference, tmp_path):
    import shutil

    url = str(tmp_path / "copy.zarr")
    shutil.copytree(reference, url)
    return url


def test_verify_detects_a_flipped_byte(copy_of):
    chunk = Path(copy_of) / "train" / "x" / "c" / "1"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x10
    chunk.write_bytes(bytes(data))
    report = verify_cache(copy_of)
    assert not report.ok
    assert any(p.startswith("train/x/c/1: CRC32C") for p in report.problems), report.problems


def test_verify_detects_truncated_offsets(copy_of):
    chunk = Path(copy_of) / "train" / "offsets" / "c" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-7])
    problems = verify_cache(copy_of).problems
    assert any(p.startswith("train/offsets/c/0: ") and "bytes" in p for p in problems), problems
    assert any(p.startswith("train: cannot be read") for p in problems), problems


def test_verify_detects_a_shortened_offsets_array(copy_of):
    offsets = zarr.open_array(os.path.join(copy_of, "train", "offsets"), mode="r+")
    offsets.resize((offsets.shape[0] - 1,))
    problems = verify_cache(copy_of).problems
    assert "train/offsets/zarr.json: CRC32C" in " ".join(problems)
    assert any("offsets:" in p and "expected n_samples + 1" in p for p in problems), problems


def test_verify_detects_missing_and_extra_files(copy_of):
    os.remove(Path(copy_of) / "test" / "t" / "c" / "0")
    (Path(copy_of) / "stray.bin").write_bytes(b"x")
    problems = verify_cache(copy_of).problems
    assert (
        "test/t/c/0: missing" in problems and "stray.bin: unexpected file (not in the manifest)" in problems
    )


def test_cache_info(reference):
    info = cache_info(reference)
    json.dumps(info)  # the CLI prints it
    assert info["complete"] and info["name"] == "toy" and info["n_classes"] == 7
    assert info["source_checksums"] == cs.ATTRS["source_checksums"]
    assert info["n_samples"] == sum(len(expected_samples(s)) for s in cs.PLAN)
    assert info["n_events"] == sum(len(e) for s in cs.PLAN for e, _, _ in expected_samples(s))
    files = [p for p in Path(reference).rglob("*") if p.is_file()]
    assert info["bytes_on_disk"] == sum(p.stat().st_size for p in files)
    labels = [label for _, label, _ in expected_samples("train")]
    assert info["splits"]["train"]["label_counts"] == {str(c): labels.count(c) for c in sorted(set(labels))}


# ---- bad input -----------------------------------------------------------------------------------


def test_bad_inputs_name_the_fault(tmp_path):
    url = str(tmp_path / "bad.zarr")
    with pytest.raises(CacheError, match="no cache here"):
        open_cache(url)
    with pytest.raises(CacheError, match="reserved"):
        CacheBuilder(url, "x", {"complete": True}, {"train": 1})
    with pytest.raises(CacheError, match="not JSON-serialisable"):
        CacheBuilder(url, "x", {"bad": object()}, {"train": 1})
    builder = CacheBuilder(url, "x", {}, {"train": 1})
    builder.start()
    events = make_events([1, 2], [0, 0], [0, 0], [1, 1])
    with pytest.raises(CacheError, match="split 'train' part 0: 'counts' sum to 3 but there are 2 events"):
        builder.write_part("train", 0, PartData(events, np.array([3]), np.array([0]), ["a"]))
    with pytest.raises(CacheError, match="no part 1 in split 'train'"):
        builder.write_part("train", 1, PartData.from_samples([]))
    with pytest.raises(CacheError, match="1 part\\(s\\) not staged: train/0"):
        builder.commit()


def test_reader_pickles_into_worker_processes(reference):
    """DataLoader workers receive the reader by pickle and reopen the store lazily there."""
    reader = open_cache(reference)["train"]
    reader.sample(0)  # opened here first
    with ProcessPoolExecutor(1) as pool:
        got = pool.submit(_second_sample, reader).result()
    np.testing.assert_array_equal(got, reader.sample(1)[0])


def _second_sample(reader):
    return reader.sample(1)[0]
