"""``prepare`` reads archives where they are: no copy of a local archive, no extracted tree for zip and
tar (members decoded in place; a compressed tar streamed in memory-budget rounds), RAR extracted by a
tool and removed after the build unless ``keep_raw``. Every variant must give the cache the extracted
folder gives, and refuse what extraction refuses."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from neurodata.cache import open_cache
from neurodata.datasets import checksum, tar_tree
from neurodata.datasets.members import ExtractError, UnsafeArchiveError
from neurodata.datasets.prepare import prepare
from neurodata.formats.esimagenet import esimagenet_events
from tests.archives import add_long_trials, nmnist_zip_bytes, write_dvs128_folder
from tests.rar4 import rar4


@pytest.fixture(scope="module")
def dvs128_tree(fixtures, tmp_path_factory) -> Path:
    folder = write_dvs128_folder(fixtures, tmp_path_factory.mktemp("dvs") / "src")
    add_long_trials(fixtures, folder, trials=3, repeats=4)
    return folder


@pytest.fixture(scope="module")
def reference(dvs128_tree, tmp_path_factory) -> Path:
    """The cache prepared from the extracted folder."""
    root = tmp_path_factory.mktemp("reference")
    return Path(prepare("dvs128", source=str(dvs128_tree), root=root, progress=False)["url"])


def tar_bytes(folder: Path, mode: str, extra: list[tuple[tarfile.TarInfo, bytes]] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        tar.add(folder, arcname="DvsGesture")
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def same_samples(got: str | Path, expected: Path) -> None:
    a, b = open_cache(expected), open_cache(got)
    assert set(a.splits) == set(b.splits)
    for split in a.splits:
        assert len(a[split]) == len(b[split]) > 0
        for i in range(len(a[split])):
            (ea, la), (eb, lb) = a[split][i], b[split][i]
            assert la == lb
            np.testing.assert_array_equal(ea, eb)
        assert a[split].column("source").tolist() == b[split].column("source").tolist()


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("mode, workers", [("w:gz", 1), ("w:gz", 2), ("w:", 2), ("w:xz", 1)])
def test_tar_members_are_decoded_in_place(dvs128_tree, reference, tmp_path, mode, workers):
    archive = tmp_path / "in" / "mini_DvsGesture.tar"
    archive.parent.mkdir()
    archive.write_bytes(tar_bytes(dvs128_tree, mode))
    before = archive.stat()
    root = tmp_path / "root"
    summary = prepare("dvs128", source=str(archive), root=root, workers=workers, progress=False, verify=False)
    same_samples(summary["url"], reference)
    # nothing but the cache was written: no copy of the archive, no extracted tree, no raw folder
    assert all(name.startswith("dvs128.zarr/") for name in files_under(root)), files_under(root)
    assert not (root / "raw").exists()
    assert archive.stat().st_mtime_ns == before.st_mtime_ns and files_under(archive.parent) == [archive.name]


@pytest.mark.parametrize("workers", [1, 2])
def test_compressed_tar_over_the_memory_budget_is_streamed_in_rounds(
    dvs128_tree, reference, tmp_path, monkeypatch, workers
):
    """A budget smaller than one trial: the listing pass holds only small members, one more pass
    brings the trials in a budget at a time (rounds, each built and released before the next)."""
    archive = tmp_path / "mini_DvsGesture.tar.gz"
    archive.write_bytes(tar_bytes(dvs128_tree, "w:gz"))
    monkeypatch.setattr(tar_tree, "HOLD_BYTES", 4096)
    passes = []
    members = tar_tree.TarTree._members

    def counted(self):
        passes.append(1)
        return members(self)

    monkeypatch.setattr(tar_tree.TarTree, "_members", counted)
    released = []
    release = tar_tree.TarTree.release

    def recorded(self, names):
        released.append(list(names))
        return release(self, names)

    monkeypatch.setattr(tar_tree.TarTree, "release", recorded)
    summary = prepare(
        "dvs128", source=str(archive), root=tmp_path / "root", workers=workers, progress=False, verify=False
    )
    same_samples(summary["url"], reference)
    assert len(passes) == 2  # the listing pass, then one more
    assert len(released) >= 4  # five trials, each over the budget: built round by round


def test_zip_members_are_read_in_place_by_worker_processes(fixtures, tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    for split, per_digit in (("Train", 2), ("Test", 1)):
        (folder / f"{split}.zip").write_bytes(nmnist_zip_bytes(fixtures, split, per_digit))
    summary = prepare("nmnist", source=str(folder), root=tmp_path / "root", workers=2, progress=False, verify=False)
    assert all(name.startswith("nmnist.zarr/") for name in files_under(tmp_path / "root"))
    # the same recordings read straight from the files
    extracted = tmp_path / "extracted"
    for split in ("Train", "Test"):
        shutil.unpack_archive(folder / f"{split}.zip", extracted / split)
    expected = prepare("nmnist", source=str(extracted), root=tmp_path / "expected", progress=False)
    same_samples(summary["url"], Path(expected["url"]))


def test_a_damaged_member_read_by_worker_processes_is_named(fixtures, tmp_path):
    """The decoders' FormatError crossed back from the workers unpickled only with its message, so
    several workers (the default) ended in BrokenProcessPool and a traceback; one worker named it."""
    import zipfile

    good = nmnist_zip_bytes(fixtures, "Train", 1)
    cut = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as source, zipfile.ZipFile(cut, "w") as damaged:
        for info in source.infolist():
            data = source.read(info)
            damaged.writestr(info.filename, data[:-2] if info.filename == "Train/3/00000.bin" else data)
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "Train.zip").write_bytes(cut.getvalue())
    (folder / "Test.zip").write_bytes(nmnist_zip_bytes(fixtures, "Test", 1))
    cli = [sys.executable, "-m", "neurodata.cli", "prepare", "nmnist", "--source", str(folder), "--no-verify"]
    for workers in ("1", "2"):
        done = subprocess.run([*cli, "--root", str(tmp_path / workers), "--workers", workers], capture_output=True, text=True)
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines()[-1].startswith(f"neurodata: error: {folder / 'Train.zip'}:Train/3/00000.bin: at byte ")
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "kind, name, problem",
    [
        ("file", "../escape.aedat", "'..' component would escape"),
        ("file", "/abs/olute.aedat", "absolute path"),
        ("symlink", "DvsGesture/link.aedat", "links are not extracted"),
        ("fifo", "DvsGesture/pipe", "device, FIFO or socket"),
    ],
)
def test_unsafe_members_are_refused_reading_in_place(dvs128_tree, tmp_path, kind, name, problem):
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE, "fifo": tarfile.FIFOTYPE}[kind]
    info.linkname = "/etc/passwd" if kind == "symlink" else ""
    data = b"x" * 10 if kind == "file" else b""
    info.size = len(data)
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(tar_bytes(dvs128_tree, "w:gz", [(info, data)]))
    with pytest.raises(UnsafeArchiveError, match=rf"^{archive}: refusing member .*{problem}"):
        prepare("dvs128", source=str(archive), root=tmp_path / "root", progress=False, verify=False)
    assert not (tmp_path / "escape.aedat").exists() and not (tmp_path / "root" / "dvs128.zarr").exists()


def test_truncated_archive_is_one_line_naming_it(dvs128_tree, tmp_path):
    whole = tar_bytes(dvs128_tree, "w:gz")
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ExtractError, match=rf"^{archive}: cannot read tar archive"):
        prepare("dvs128", source=str(archive), root=tmp_path / "root", progress=False, verify=False)
    result = subprocess.run(
        [sys.executable, "-m", "neurodata.cli", "prepare", "dvs128", "--source", str(archive), "--root",
         str(tmp_path / "cli"), "--no-verify"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]  # after the progress lines, one line names the archive
    assert error.startswith(f"neurodata: error: {archive}: cannot read tar archive")
    assert "Traceback" not in result.stderr


def esimagenet_folder(tmp_path: Path) -> dict[str, bytes]:
    """An ES-ImageNet layout: label files and one .npz sample per split (the sample format's real fields)."""
    files = {}
    for split, listing, label in (("train", "trainlabel.txt", 3), ("val", "vallabel.txt", 7)):
        sample = io.BytesIO()
        pos = np.array([[20, 30, 2], [100, 200, 8]], dtype=np.uint8)
        np.savez_compressed(sample, pos=pos, neg=np.array([[21, 31, 1]], dtype=np.uint8))
        files[f"ES/{split}/s{label}.npz"] = sample.getvalue()
        files[f"ES/{listing}"] = f"s{label}.npz {label} 200 180\n".encode()
    # a member after the samples larger than zip's end-record search window: stored .npz samples (zips)
    # near the end of a stored RAR make bsdtar take the whole archive for a zip
    files["ES/README.txt"] = b"ES-ImageNet layout for tests\n" * 4096
    return files


@pytest.mark.parametrize("keep_raw", [False, True])
def test_rar_is_extracted_by_a_tool_and_removed_unless_kept(tmp_path, keep_raw):
    if shutil.which("bsdtar") is None and shutil.which("unar") is None and shutil.which("7z") is None:
        pytest.skip("no RAR extractor installed (apt-get install libarchive-tools); .ci/run installs it")
    archive = tmp_path / "es.rar"
    archive.write_bytes(rar4([(name, data, "file") for name, data in esimagenet_folder(tmp_path).items()]))
    root = tmp_path / "root"
    summary = prepare("esimagenet", source=str(archive), root=root, progress=False, verify=False, keep_raw=keep_raw)
    cache = open_cache(summary["url"])
    assert cache["train"].labels.tolist() == [3] and cache["test"].labels.tolist() == [7]
    events, _ = cache["train"][0]
    expected = esimagenet_events(np.array([[20, 30, 2], [100, 200, 8]], np.uint8), np.array([[21, 31, 1]], np.uint8))
    np.testing.assert_array_equal(events, expected)
    extracted = root / "raw" / "esimagenet" / "extracted" / "es"
    assert extracted.is_dir() == keep_raw
    if keep_raw:
        assert (extracted / "ES" / "trainlabel.txt").is_file()


def test_cli_uses_the_usable_cores_by_default_and_refuses_zero_workers(dvs128_tree, reference, tmp_path):
    from neurodata.workers import usable_cores

    archive = tmp_path / "mini_DvsGesture.tar.gz"
    archive.write_bytes(tar_bytes(dvs128_tree, "w:gz"))
    cli = [sys.executable, "-m", "neurodata.cli", "prepare", "dvs128", "--source", str(archive), "--no-verify"]
    done = subprocess.run([*cli, "--root", str(tmp_path / "a"), "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert [e["workers"] for e in events if e.get("stage") == "decode" and "parts" in e] == [usable_cores()]
    same_samples(tmp_path / "a" / "dvs128.zarr", reference)
    refused = subprocess.run([*cli, "--root", str(tmp_path / "b"), "--workers", "0"], capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == "neurodata: error: workers: 0 is not a number of processes (give 1 or more)"


def test_reading_the_archive_reports_its_progress_per_pass(dvs128_tree, reference, tmp_path, monkeypatch):
    """Each pass over a tar reports the archive's bytes read, ending at its size; a second pass (an
    archive over the memory budget) starts again from the beginning."""
    archive = tmp_path / "mini_DvsGesture.tar.gz"
    archive.write_bytes(tar_bytes(dvs128_tree, "w:gz"))
    size = archive.stat().st_size
    events: list[dict] = []
    prepare("dvs128", source=str(archive), root=tmp_path / "a", progress=False, verify=False, callback=events.append)
    reads = [(e["done"], e["total"]) for e in events if e.get("stage") == "read"]
    assert reads and reads[-1] == (size, size) and all(total == size for _, total in reads)
    assert [done for done, _ in reads] == sorted(done for done, _ in reads)  # in order
    assert [done for done, _ in reads].count(size) == 1  # one pass: every member was held from the listing
    monkeypatch.setattr(tar_tree, "HOLD_BYTES", 4096)
    events.clear()
    summary = prepare("dvs128", source=str(archive), root=tmp_path / "b", progress=True, verify=False, callback=events.append)
    same_samples(summary["url"], reference)
    ends = [e for e in events if e.get("stage") == "read" and e["done"] == size]
    assert len(ends) == 2  # the listing pass and the pass that brought the trials in


def test_waiting_for_a_local_zips_checksum_reports_its_progress(fixtures, tmp_path, monkeypatch, capsys):
    # a zip lists at once; hashing a large one takes seconds: that wait shows a bar and `verify` events
    for split in ("Train", "Test"):
        (tmp_path / f"{split}.zip").write_bytes(nmnist_zip_bytes(fixtures, split, 1))
    sizes = {f"{split}.zip": (tmp_path / f"{split}.zip").stat().st_size for split in ("Train", "Test")}
    monkeypatch.setattr(checksum, "READ_BLOCK", 4096)  # slow hashing, block by block
    slow_update = checksum.Hasher.update

    def update(self, data):
        time.sleep(0.01)  # tens of blocks: a few tenths of a second per archive, several polls of the wait
        slow_update(self, data)

    monkeypatch.setattr(checksum.Hasher, "update", update)
    events: list[dict] = []
    sources = [str(tmp_path / name) for name in sizes]
    prepare("nmnist", source=sources, root=tmp_path / "root", progress=True, verify=False, callback=events.append)
    for name, size in sizes.items():
        verifying = [(e["done"], e["total"]) for e in events if e.get("stage") == "verify" and "done" in e and e["file"] == name]
        assert len(verifying) >= 2 and verifying[-1] == (size, size), (name, verifying)
        assert all(total == size for _, total in verifying)
        assert [done for done, _ in verifying] == sorted(done for done, _ in verifying)
    assert "verifying Test.zip" in capsys.readouterr().err


@pytest.mark.parametrize("budget", [300, 64], ids=["first copy held", "streamed again"])
def test_a_repeated_member_reads_as_its_last_copy_as_extraction_gives_it(tmp_path, monkeypatch, budget):
    monkeypatch.setattr(tar_tree, "HOLD_BYTES", budget)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for data in (b"first copy " * 20, b"second copy " * 20):
            info = tarfile.TarInfo("DvsGesture/notes.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = tmp_path / "twice.tar.gz"
    archive.write_bytes(buf.getvalue())
    tree = tar_tree.TarTree(archive)
    for _ in tree.rounds({"DvsGesture/notes.txt"}):
        if tree.ready("DvsGesture/notes.txt"):
            break
    assert tree.read_bytes("DvsGesture/notes.txt") == b"second copy " * 20
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    assert (tmp_path / "x" / "DvsGesture" / "notes.txt").read_bytes() == b"second copy " * 20
