"""Fault injection: a full disk (ENOSPC) during ``prepare``'s cache build, ``convert``, ``frames`` and a
checkpoint write. Each: one error naming the path and the space needed, nothing half-written
published, the earlier output intact, and a rerun once space is freed equal to an uninterrupted run.

The disk is :mod:`tests.full_disk`'s fault-injecting file layer (Linux: it maps descriptors to paths
through ``/proc``); the last test uses a real, small filesystem (a tmpfs mounted in a user
namespace) where ``unshare`` allows it.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

import neurodata as nd
import tests.cache_samples as cs
from cli import convert as convert_cli
from cli.main import main
from neurodata.cache import CacheBuilder, build_cache, verify_cache
from neurodata.cache.layout import MANIFEST_KEY
from neurodata.diskspace import DiskFullError
from neurodata.loaders.precompute import precompute
from neurodata.synthetic import rotating_bar
from snn.train import TrainConfig, fit, load_checkpoint
from snn.train.checkpoint import atomic_save, tensor_bytes
from tests.full_disk import full_disk
from tests.train_helpers import TinyNet, loaders

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="maps descriptors through /proc")

FULL = "no space left on the device: writing needs about"
SPEC = {"type": "frame", "n_time_bins": 4}


def temporaries(folder: Path) -> list[str]:
    """Temporary files and folders left anywhere below ``folder``."""
    return sorted(str(p) for p in folder.rglob("*") if ".tmp-" in p.name or p.name.endswith(".partial"))


# ---- convert -----------------------------------------------------------------------------------


@pytest.fixture
def recording(tmp_path) -> Path:
    path = tmp_path / "src" / "bar.raw"
    path.parent.mkdir()
    nd.write(path, rotating_bar(), nd.RecordingInfo(format="evt3", width=128, height=128))
    return path


def assert_same_npz(got: Path, expected: Path) -> None:
    """The same arrays (the zip members' times may differ)."""
    with np.load(got, allow_pickle=False) as a, np.load(expected, allow_pickle=False) as b:
        assert a.files == b.files
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])


def _convert(src: Path, dst: Path, capsys) -> tuple[int, dict]:
    code = main(["convert", str(src), str(dst), "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("foreseen", [False, True], ids=["met-mid-write", "checked-after-first-chunk"])
def test_convert_on_a_full_disk(recording, tmp_path, monkeypatch, capsys, foreseen):
    reference = tmp_path / "reference" / "bar.npz"
    reference.parent.mkdir()
    assert _convert(recording, reference, capsys)[0] == 0
    out = tmp_path / "disk" / "bar.npz"
    out.parent.mkdir()
    out.write_bytes(b"an earlier conversion")
    half = reference.stat().st_size // 2
    disk = full_disk(monkeypatch, out.parent, budget=half if foreseen else None)
    if foreseen:  # several blocks: the estimate after the first already exceeds the free space
        monkeypatch.setattr(convert_cli, "BLOCK_BYTES", 1 << 16)
    else:  # the check passes, then another writer takes the space
        real = convert_cli.require_space

        def taken_after_the_check(path, needed):
            real(path, needed)
            disk.budget = half

        monkeypatch.setattr(convert_cli, "require_space", taken_after_the_check)

    code, result = _convert(recording, out, capsys)

    assert code == 2
    assert result["error"].startswith(f"{out}: {FULL}")
    assert (disk.full > 0) != foreseen  # foreseen: it stopped before the disk refused a write
    assert out.read_bytes() == b"an earlier conversion"
    assert temporaries(out.parent) == []
    monkeypatch.undo()  # space freed
    assert _convert(recording, out, capsys)[0] == 0
    assert_same_npz(out, reference)


def test_a_full_disk_no_command_translated_is_one_line(tmp_path, monkeypatch, capsys):
    """The CLI's last resort (an extraction, a download): the operating system's file, exit 2."""
    where = tmp_path / "raw" / "archive.tar"

    def full(args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(where))

    monkeypatch.setattr(convert_cli, "convert", full)
    assert main(["convert", "in.raw", "out.npz", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"].startswith(f"{where}: no space left on the device")
    assert "Traceback" not in captured.err and len(captured.err.splitlines()) == 1


# ---- checkpoints -------------------------------------------------------------------------------


def test_checkpoint_write_on_a_full_disk(tmp_path, monkeypatch):
    path = tmp_path / "run" / "last.pt"
    earlier = {"epoch": 1, "weights": torch.zeros(1000)}
    atomic_save(earlier, path)
    payload = {"epoch": 2, "weights": torch.arange(50_000, dtype=torch.float32)}
    disk = full_disk(monkeypatch, path.parent, budget=None)
    for budget, refused in ((tensor_bytes(payload) - 1, 0), (tensor_bytes(payload), 1)):
        disk.budget, disk.used = budget, 0  # too small by a byte: refused before writing; else met
        with pytest.raises(DiskFullError, match=f"^{path}: {FULL} 195.3 KiB"):
            atomic_save(payload, path)
        assert disk.full == refused
        assert torch.equal(load_checkpoint(path)["weights"], earlier["weights"])
        assert [p.name for p in path.parent.iterdir()] == ["last.pt"]
    disk.budget = None
    atomic_save(payload, path)
    assert torch.equal(load_checkpoint(path)["weights"], payload["weights"])


def test_training_on_a_full_disk_resumes_to_the_same_model(tmp_path, monkeypatch):
    config = TrainConfig(epochs=3, lr=2e-2, progress=False, time_major=False)
    straight = TinyNet()
    fit(straight, *loaders(), dataclasses.replace(config, run_dir=str(tmp_path / "a")))
    run = tmp_path / "b"
    disk = full_disk(monkeypatch, run, budget=None)

    def disk_fills(row, model):
        if row["epoch"] == 1:
            disk.budget = disk.used

    with pytest.raises(DiskFullError, match=f"^{run}/(best|last).pt: {FULL}"):
        fit(TinyNet(), *loaders(), dataclasses.replace(config, run_dir=str(run)), callbacks=[disk_fills])
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert temporaries(run) == []
    disk.budget = None
    resumed = TinyNet(seed=99)
    fit(resumed, *loaders(), dataclasses.replace(config, run_dir=str(run)), resume=True)
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name


# ---- prepare (the cache build) -----------------------------------------------------------------

V2 = {**cs.ATTRS, "rules_version": 2}


def _v2(url: Path) -> CacheBuilder:
    return CacheBuilder(str(url), "toy", V2, cs.PLAN, **cs.SMALL_CHUNKS, overwrite=True)


@pytest.fixture(scope="module")
def v2_manifest(tmp_path_factory) -> bytes:
    """The manifest (every file's size and CRC32C) of an uninterrupted build."""
    url = tmp_path_factory.mktemp("reference") / "toy.zarr"
    build_cache(_v2(url), cs.make_random_part)
    return (url / MANIFEST_KEY).read_bytes()


@pytest.fixture
def earlier_cache(tmp_path) -> Path:
    """A finished cache of an earlier build, which the failed builds below must leave intact."""
    url = tmp_path / "disk" / "toy.zarr"
    build_cache(cs.builder(str(url)), cs.make_random_part)
    return url


def _assert_unchanged(url: Path, manifest: bytes) -> None:
    assert (url / MANIFEST_KEY).read_bytes() == manifest
    assert verify_cache(url).ok


def test_build_fills_the_disk_while_staging_parts_and_resumes(earlier_cache, v2_manifest, tmp_path, monkeypatch):
    url, earlier = earlier_cache, (earlier_cache / MANIFEST_KEY).read_bytes()
    disk = full_disk(monkeypatch, url.parent, budget=None)

    def make_part(split: str, index: int):
        if (split, index) == ("train", 2):
            disk.budget = disk.used  # nothing more fits from this part on
        return cs.make_random_part(split, index)

    with pytest.raises(DiskFullError, match=f"^{url}: {FULL}"):
        build_cache(_v2(url), make_part)
    assert disk.full
    assert [_v2(url).part_done("train", i) for i in range(3)] == [True, True, False]
    assert temporaries(url.parent) == []
    _assert_unchanged(url, earlier)
    disk.budget = None
    log = tmp_path / "parts.log"
    build_cache(_v2(url), lambda split, index: cs.make_random_part(split, index, str(log)))
    assert log.read_text().split("\n")[:-1] == ["train 2", "train 3", "train 4", "test 0", "test 1"]
    _assert_unchanged(url, v2_manifest)


@pytest.mark.parametrize("foreseen", [False, True], ids=["met-mid-commit", "checked-before-commit"])
def test_build_fills_the_disk_while_committing(earlier_cache, v2_manifest, tmp_path, monkeypatch, foreseen):
    url, earlier = earlier_cache, (earlier_cache / MANIFEST_KEY).read_bytes()
    disk = full_disk(monkeypatch, url.parent, budget=None)
    # foreseen: too little room left for the staged parts' bytes, checked before the commit writes;
    # else the room runs out while the final tree is written
    hook = "_commit_checked" if foreseen else "_commit_locked"
    real = getattr(CacheBuilder, hook)

    def fill_then_commit(self, *args):
        disk.budget = disk.used + 2000
        return real(self, *args)

    monkeypatch.setattr(CacheBuilder, hook, fill_then_commit)
    with pytest.raises(DiskFullError, match=f"^{url}: {FULL}"):
        build_cache(_v2(url), cs.make_random_part)
    assert (disk.full > 0) != foreseen
    assert not (url.parent / "toy.zarr.build" / "final").exists()
    assert all(_v2(url).part_done(split, i) for split, n in cs.PLAN.items() for i in range(n))
    assert temporaries(url.parent) == []
    _assert_unchanged(url, earlier)
    monkeypatch.setattr(CacheBuilder, hook, real)
    disk.budget = None
    log = tmp_path / "parts.log"
    build_cache(_v2(url), lambda split, index: cs.make_random_part(split, index, str(log)))
    assert not log.exists()  # every part was staged already
    _assert_unchanged(url, v2_manifest)


# ---- frames ------------------------------------------------------------------------------------


@pytest.fixture
def frames_cache(tmp_path) -> Path:
    url = tmp_path / "disk" / "toy.zarr"
    build_cache(cs.builder(str(url), {"train": 2, "test": 1}), cs.make_random_part)
    return url


def _stored(url: Path, key: str) -> dict[str, np.ndarray]:
    folder = url / "representations" / key
    return {split: zarr.open_group(folder / split, mode="r")["data"][:] for split in ("train", "test")}


@pytest.mark.parametrize("foreseen", [False, True], ids=["met-mid-write", "checked-before-writing"])
def test_frames_on_a_full_disk(frames_cache, tmp_path, monkeypatch, foreseen):
    url = frames_cache
    expected_url = tmp_path / "expected.zarr"
    shutil.copytree(url, expected_url)
    precompute(expected_url, SPEC, progress=False)
    precompute(url, {**SPEC, "n_time_bins": 2}, progress=False)  # earlier output of another spec
    precompute(url, SPEC, ["test"], progress=False)  # and an earlier copy of this one's test split
    earlier = {p: p.read_bytes() for p in (url / "representations").rglob("*") if p.is_file()}
    disk = full_disk(monkeypatch, url, budget=None)
    if foreseen:
        disk.budget = disk.used + 2000
    else:  # room for the estimate, gone while the shards are written
        from neurodata.loaders import precompute as module

        real = module._store_split

        def fill_then_store(*args):
            disk.budget = disk.used + 2000
            return real(*args)

        monkeypatch.setattr(module, "_store_split", fill_then_store)

    with pytest.raises(DiskFullError, match=f"^{url}/representations/frame-[0-9a-f]+/test: {FULL}"):
        precompute(url, SPEC, ["train", "test"][::-1], progress=False, overwrite=True)
    assert (disk.full > 0) != foreseen
    assert temporaries(url) == []
    assert {p: p.read_bytes() for p in (url / "representations").rglob("*") if p.is_file()} == earlier
    disk.budget = None
    monkeypatch.undo()
    precompute(url, SPEC, progress=False, overwrite=True)
    [key] = [p.name for p in (expected_url / "representations").iterdir()]  # SPEC's alone
    got, want = _stored(url, key), _stored(expected_url, key)
    for split in want:
        np.testing.assert_array_equal(got[split], want[split])


# ---- a real small filesystem -------------------------------------------------------------------


def _tmpfs_available() -> bool:
    try:
        probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@pytest.mark.skipif(not _tmpfs_available(), reason="needs user namespaces (unshare -rm) to mount a tmpfs")
def test_convert_and_checkpoint_on_a_small_tmpfs(recording, tmp_path, capsys):
    """A real filesystem: a 2 MiB tmpfs with 1 MiB taken by another file. ``convert`` sees from
    ``statvfs`` that its output does not fit; a checkpoint of exactly 1 MiB of tensors passes that
    check and meets the kernel's own ENOSPC (the file also holds the archive's headers)."""
    reference = tmp_path / "reference.npz"
    assert _convert(recording, reference, capsys)[0] == 0
    mount, results = tmp_path / "mnt", tmp_path / "results"
    mount.mkdir()
    results.mkdir()
    convert = f"{sys.executable} -m neurodata.cli convert {recording} {mount}/bar.npz --json"
    save = (
        f"{sys.executable} -c 'import torch, sys; from snn.train.checkpoint import atomic_save; "
        f"atomic_save({{\"w\": torch.ones(1 << 18)}}, sys.argv[1])' {mount}/last.pt"
    )
    script = f"""
        mount -t tmpfs -o size=2m tmpfs {mount}
        head -c 1048576 /dev/zero > {mount}/filler
        echo earlier > {mount}/bar.npz
        echo earlier > {mount}/last.pt
        {convert} > {results}/convert.json; echo $? > {results}/convert.rc
        {save} 2> {results}/save.err; echo $? > {results}/save.rc
        ls -a {mount} > {results}/listing
        cp {mount}/bar.npz {mount}/last.pt {results}/
        rm {mount}/filler
        {convert} > /dev/null; echo $? > {results}/convert_again.rc
        cp {mount}/bar.npz {results}/bar_again.npz
    """
    subprocess.run(["unshare", "-rm", "sh", "-c", script], check=True, timeout=120, cwd=Path(__file__).parents[1])
    assert (results / "convert.rc").read_text().strip() == "2"
    error = json.loads((results / "convert.json").read_text())["error"]
    assert error.startswith(f"{mount}/bar.npz: {FULL}")
    assert (results / "save.rc").read_text().strip() == "1"
    assert f"DiskFullError: {mount}/last.pt: {FULL} 1.0 MiB" in (results / "save.err").read_text()
    assert (results / "listing").read_text().split() == [".", "..", "bar.npz", "filler", "last.pt"]
    assert (results / "bar.npz").read_text() == (results / "last.pt").read_text() == "earlier\n"
    assert (results / "convert_again.rc").read_text().strip() == "0"
    assert_same_npz(results / "bar_again.npz", reference)
