"""Fault injection: SIGKILL ``neurodata prepare`` and ``neurodata frames`` at seeded points, to the main
process alone (what the OOM killer does) and to the whole process group (what ``kill -9 -PGID`` or a
scheduler does), then check that no process of the run is left and that a rerun completes to the same
cache as an uninterrupted build. Linux only: processes are found through ``/proc``.

Each kill point is a stage the run can be seen to reach (the archive open for reading in place, parts
being staged, the final tree being assembled) plus a seeded delay, so the kills land across reading the
archive, decoding, commit and publish without depending on how fast the machine is.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import zarr

from neurodata.cache import open_cache, verify_cache
from neurodata.cache.layout import MANIFEST_KEY
from neurodata.datasets.prepare import prepare
from neurodata.localfs import file_lock
from tests.archives import add_long_trials, tar_gz_bytes, write_dvs128_folder

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds processes through /proc")

SEED = 16
RERUN_TIMEOUT_S = 60  # a rerun blocked by a lock a dead run's worker still holds would wait forever
GONE_WITHIN_S = 5  # how long the workers of a killed main process may take to end
FRAMES_SPEC = "frame:n_time_bins=4"


class KillPoint(NamedTuple):
    """When to kill: once ``stage`` is seen (see :func:`_reached`), after ``delay`` seconds."""

    stage: str
    delay: float
    workers: int
    group: bool  # the whole process group, else the main process alone


def _kill_points() -> list[KillPoint]:
    """Every stage, the main process alone with 2 workers (the hang of issue 16) and with 1, and the
    whole group; each after a seeded delay."""
    rng = random.Random(SEED)
    cases = [
        ("read", 2, False),
        ("read", 1, True),
        ("decode", 2, False),
        ("decode", 1, False),
        ("decode", 2, True),
        ("commit", 2, False),
        ("commit", 1, True),
    ]
    return [KillPoint(stage, round(rng.uniform(0.0, 0.15), 3), w, group) for stage, w, group in cases]


@pytest.fixture(scope="module")
def archive(fixtures, tmp_path_factory) -> Path:
    """A DVS128 archive with enough trials that decoding and committing take a moment."""
    work = tmp_path_factory.mktemp("faults")
    folder = write_dvs128_folder(fixtures, work / "src")
    add_long_trials(fixtures, folder, trials=10, repeats=30)
    path = work / "mini_DvsGesture.tar.gz"  # not the published name, whose checksum is known
    path.write_bytes(tar_gz_bytes(folder, "DvsGesture"))
    return path


@pytest.fixture(scope="module")
def reference(archive, tmp_path_factory) -> Path:
    """The cache of an uninterrupted build."""
    root = tmp_path_factory.mktemp("reference")
    prepare("dvs128", source=str(archive), root=root, progress=False)
    return root / "dvs128.zarr"


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _assert_group_ends(pgid: int) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while (left := _group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if left:
        for pid in left:  # do not leave them to the rest of the suite
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes {left} of the killed run outlived it by {GONE_WITHIN_S} s"


def _open_files(pid: int) -> set[Path]:
    """The files process ``pid`` has open (through ``/proc``; empty once it is gone)."""
    found = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return found
    for fd in descriptors:
        try:
            found.add(Path(os.readlink(fd)))
        except OSError:
            continue
    return found


def _reached(stage: str, root: Path, pid: int, archive: Path) -> bool:
    """Whether the run ``pid`` into ``root`` has visibly reached ``stage`` (``read``: it holds ``archive`` open)."""
    store = root / "dvs128.zarr"
    if stage == "read":
        return archive in _open_files(pid)
    if stage == "decode":
        parts = store.with_name("dvs128.zarr.build") / "parts" / "train"
        return parts.is_dir() and any(not p.name.startswith(".") for p in parts.iterdir())
    if stage == "commit":
        return (store.with_name("dvs128.zarr.build") / "final").is_dir() or store.is_dir()
    raise ValueError(stage)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "neurodata.cli", *args]


def _run_and_kill(cmd: list[str], reached: Callable[[int], bool], point: KillPoint) -> int:
    """Start ``cmd`` in its own session and kill it as ``point`` says once ``reached(its pid)``; its
    return code (0: it finished first)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and not reached(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(point.delay)
        if proc.poll() is None:
            if point.group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        _assert_group_ends(proc.pid)
    return proc.returncode


def _assert_same_cache(got: Path, expected: Path) -> None:
    assert verify_cache(got).ok
    # the manifest lists every file's size and CRC: equal manifests, byte-equal caches
    assert (got / MANIFEST_KEY).read_bytes() == (expected / MANIFEST_KEY).read_bytes()
    a, b = open_cache(expected), open_cache(got)
    assert set(a.splits) == set(b.splits)
    for split in a.splits:
        assert len(a[split]) == len(b[split])
        for i in range(len(a[split])):
            (ea, la), (eb, lb) = a[split][i], b[split][i]
            assert la == lb
            np.testing.assert_array_equal(ea, eb)


@pytest.mark.parametrize(
    "point", _kill_points(), ids=lambda p: f"{p.stage}-{p.workers}w-{'group' if p.group else 'main'}"
)
def test_prepare_killed_reruns_to_the_same_cache(archive, reference, tmp_path, point):
    root = tmp_path / "run"
    cmd = _cli(
        "prepare", "dvs128", "--source", str(archive), "--root", str(root), "--workers", str(point.workers)
    )
    returncode = _run_and_kill(cmd, lambda pid: _reached(point.stage, root, pid, archive), point)
    # decoding lasts seconds, so those kills land while the workers run; the others may come too late
    assert returncode == -signal.SIGKILL if point.stage == "decode" else returncode in (0, -signal.SIGKILL)
    rerun = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=RERUN_TIMEOUT_S)
    assert rerun.returncode == 0, rerun.stderr
    _assert_same_cache(root / "dvs128.zarr", reference)


def _temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if ".tmp-" in p.name)


def test_frames_killed_reruns_to_the_same_frames(reference, tmp_path):
    store = tmp_path / "dvs128.zarr"
    shutil.copytree(reference, store)
    expected_store = tmp_path / "expected.zarr"
    shutil.copytree(reference, expected_store)
    cmd = _cli("frames", str(store), "--spec", FRAMES_SPEC, "--workers", "2", "--json")
    representations = store / "representations"

    def computing(pid: int) -> bool:  # both pool workers have started
        return len(_group_members(pid)) >= 3

    returncode = _run_and_kill(cmd, computing, KillPoint("frames", 0.0, 2, group=False))
    assert returncode == -signal.SIGKILL, "frames finished before it could be killed"
    assert _temporaries(representations), "the killed run left no temporary folder to clean"
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=RERUN_TIMEOUT_S)
    assert rerun.returncode == 0, rerun.stderr
    assert _temporaries(representations) == []  # the rerun removed the killed run's
    expected = subprocess.run(
        _cli("frames", str(expected_store), "--spec", FRAMES_SPEC, "--json"),
        capture_output=True,
        text=True,
        timeout=RERUN_TIMEOUT_S,
    )
    assert expected.returncode == 0, expected.stderr
    assert json.loads(rerun.stdout)["written"].keys() == {"train", "test"}
    [key] = [p.name for p in (expected_store / "representations").iterdir()]
    for split in ("train", "test"):
        got = zarr.open_group(representations / key / split, mode="r")
        want = zarr.open_group(expected_store / "representations" / key / split, mode="r")
        np.testing.assert_array_equal(got["data"][:], want["data"][:])


def _first_line_of(code: str) -> str:
    """Run ``code`` in a new interpreter and return the first line it prints, once it has exited.

    Only the first line is read: its children inherit stdout, and waiting for its end would wait
    for theirs.
    """
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    return line


def _assert_ends(pid: int) -> None:
    deadline = time.monotonic() + GONE_WITHIN_S
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"process {pid} outlived its parent by {GONE_WITHIN_S} s")


def test_forked_child_does_not_keep_its_parents_lock(tmp_path):
    """A process that dies holding a lock frees it, though a child it forked meanwhile lives on."""
    lock = tmp_path / "held.lock"
    line = _first_line_of(
        "import os, time\n"
        "from neurodata.localfs import file_lock\n"
        f"with file_lock({str(lock)!r}):\n"
        "    child = os.fork()\n"
        "    if child == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "    print(child, flush=True)\n"
        "    os._exit(0)  # dies holding the lock, as under SIGKILL: nothing unlocks it\n"
    )
    child = int(line)
    try:
        assert Path(f"/proc/{child}").exists()
        with file_lock(lock, timeout=5):
            pass
    finally:
        os.kill(child, signal.SIGKILL)


@pytest.mark.parametrize("signal_available", [True, False], ids=["death-signal", "watcher"])
def test_pool_workers_end_with_their_parent(signal_available):
    """The parent-death signal (Linux), and the watcher thread used where there is none."""
    patch = "" if signal_available else "workers._set_parent_death_signal = lambda: False\n"
    line = _first_line_of(
        "import os\n"
        "from neurodata import workers\n" + patch + "pool = workers.process_pool(2)\n"
        "print(*{pool.submit(os.getpid).result() for _ in range(8)}, flush=True)\n"
        "os._exit(0)  # dies without shutting the pool down, as under SIGKILL\n"
    )
    pids = [int(p) for p in line.split()]
    assert pids
    for pid in pids:
        _assert_ends(pid)
