"""Extraction: zip, tar (plain/gz/bz2/xz), single compressed files, RAR through each external tool;
malicious members refused with nothing written outside; atomic appearance and recovery after SIGKILL."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from neurodata.datasets.extract import archive_kind, extract
from neurodata.datasets.members import ExtractError, UnsafeArchiveError
from tests.rar4 import rar4

ROOT = Path(__file__).resolve().parents[1]
TREE = {
    "dataset/README.txt": b"a small dataset\n",
    "dataset/train/0/sample0.bin": os.urandom(5000),
    "dataset/train/1/sample1.bin": os.urandom(7000),
    "dataset/test/sample2.bin": bytes(range(256)) * 40,
}


def read_tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def tar_member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = kind, linkname, len(data), 0o644
    return info, io.BytesIO(data) if kind == tarfile.REGTYPE else None


def make_tar(path: Path, members: list[tuple], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            tf.addfile(info, data)
    return path


@pytest.fixture
def work(tmp_path) -> Path:
    """``tmp_path/work`` holds the target; tests check nothing else appears anywhere under tmp_path."""
    (tmp_path / "work").mkdir()
    return tmp_path / "work"


def everything_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_zip_is_extracted_completely(work):
    archive = make_zip(work.parent / "data.zip", TREE)
    events: list[dict] = []
    target = extract(archive, work / "out", progress=False, callback=events.append)
    assert target == work / "out" and read_tree(target) == TREE
    assert sorted(os.listdir(work)) == ["out"]  # no staging folder left
    assert [e["member"] for e in events if e["event"] == "extract"] == list(TREE)
    assert events[-2]["done"] == events[-2]["total"] == sum(map(len, TREE.values()))
    assert events[-1] == {"event": "extracted", "archive": str(archive), "path": str(target)}


@pytest.mark.parametrize(
    "mode, suffix", [("w", ".tar"), ("w:gz", ".tar.gz"), ("w:bz2", ".tar.bz2"), ("w:xz", ".tar.xz")]
)
def test_tar_with_any_compression(work, mode, suffix):
    members = [tar_member(name, data) for name, data in TREE.items()]
    archive = make_tar(work.parent / f"data{suffix}", members, mode)
    assert archive_kind(archive) == "tar"
    assert read_tree(extract(archive, work / "out", progress=False)) == TREE


def test_kind_is_decided_by_content_not_name(work):
    archive = make_zip(work.parent / "misnamed.tar.gz", TREE)
    assert archive_kind(archive) == "zip"
    assert read_tree(extract(archive, work / "out", progress=False)) == TREE


@pytest.mark.parametrize("opener, suffix", [(gzip.open, ".gz"), (bz2.open, ".bz2"), (lzma.open, ".xz")])
def test_single_compressed_file_is_decompressed(work, opener, suffix):
    payload = os.urandom(100_000)
    archive = work.parent / f"shd_train.h5{suffix}"
    with opener(archive, "wb") as f:
        f.write(payload)
    assert read_tree(extract(archive, work / "out", progress=False)) == {"shd_train.h5": payload}


def test_existing_target_is_kept_unless_overwrite(work):
    archive = make_zip(work.parent / "data.zip", TREE)
    target = extract(archive, work / "out", progress=False)
    (target / "marker").write_text("mine")
    extract(archive, target, progress=False)
    assert (target / "marker").exists()
    extract(archive, target, progress=False, overwrite=True)
    assert read_tree(target) == TREE and sorted(os.listdir(work)) == ["out"]


ESCAPES = ["../evil.txt", "/tmp/neurodata-evil.txt", "dataset/../../evil.txt", "..\\evil.txt", "C:/evil.txt"]


@pytest.mark.parametrize("bad_name", ESCAPES)
def test_zip_member_escaping_is_refused(work, bad_name):
    archive = make_zip(work.parent / "evil.zip", {"dataset/ok.txt": b"fine", bad_name: b"pwned"})
    with pytest.raises(UnsafeArchiveError) as info:
        extract(archive, work / "out", progress=False)
    assert (
        info.value.member == bad_name
        and str(archive) in str(info.value)
        and repr(bad_name) in str(info.value)
    )
    assert everything_under(work.parent) == {"evil.zip", "work"}
    assert not Path("/tmp/neurodata-evil.txt").exists()


def test_zip_symlink_member_is_refused(work):
    archive = work.parent / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        link = zipfile.ZipInfo("dataset/link")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "../../outside")
    with pytest.raises(UnsafeArchiveError, match="links are not extracted"):
        extract(archive, work / "out", progress=False)
    assert not (work / "out").exists()


MALICIOUS_TARS = {
    "parent": [tar_member("dataset/ok.txt", b"fine"), tar_member("../evil.txt", b"pwned")],
    "absolute": [tar_member("/tmp/neurodata-evil.txt", b"pwned")],
    "symlink_then_write_through_it": [
        tar_member("dataset/ok.txt", b"fine"),
        tar_member("escape", kind=tarfile.SYMTYPE, linkname=".."),
        tar_member("escape/evil.txt", b"pwned"),
    ],
    "symlink_inside": [
        tar_member("a.txt", b"fine"),
        tar_member("b.txt", kind=tarfile.SYMTYPE, linkname="a.txt"),
    ],
    "hardlink_outside": [tar_member("passwd", kind=tarfile.LNKTYPE, linkname="/etc/passwd")],
    "device": [tar_member("dataset/null", kind=tarfile.CHRTYPE)],
    "fifo": [tar_member("dataset/fifo", kind=tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("case", list(MALICIOUS_TARS))
def test_tar_unsafe_members_are_refused(work, case):
    archive = make_tar(work.parent / "evil.tar.gz", MALICIOUS_TARS[case], "w:gz")
    with pytest.raises(UnsafeArchiveError) as info:
        extract(archive, work / "out", progress=False)
    assert str(archive) in str(info.value) and info.value.member in str(info.value)
    assert everything_under(work.parent) == {"evil.tar.gz", "work"}
    assert not Path("/tmp/neurodata-evil.txt").exists()


def test_corrupt_archives_are_clear_errors(work):
    good = make_tar(work.parent / "data.tar.gz", [tar_member(n, d) for n, d in TREE.items()], "w:gz")
    truncated = work.parent / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ExtractError, match="truncated.tar.gz: cannot extract tar archive"):
        extract(truncated, work / "out", progress=False)
    assert not (work / "out").exists() and not (work / ".out.extracting").exists()
    unknown = work.parent / "notes.txt"
    unknown.write_text("hello")
    with pytest.raises(ExtractError, match="notes.txt: not a zip, tar"):
        extract(unknown, work / "out", progress=False)


KILLED_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from neurodata.datasets.extract import extract

    def die_after_first_member(event):
        if event["event"] == "extract":
            os.kill(os.getpid(), signal.SIGKILL)

    extract(sys.argv[1], sys.argv[2], progress=False, callback=die_after_first_member)
    """
)


def test_killed_extraction_leaves_no_target_and_reruns_cleanly(work):
    archive = make_zip(work.parent / "data.zip", TREE)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_CHILD, str(archive), str(work / "out")],
        cwd=ROOT,
        timeout=60,
        capture_output=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert not (work / "out").exists()
    assert (work / ".out.extracting" / "dataset" / "README.txt").exists()  # the half tree, hidden aside
    assert read_tree(extract(archive, work / "out", progress=False)) == TREE
    assert not (work / ".out.extracting").exists()


RAR_TREE = [
    ("dataset", None, "dir"),
    ("dataset/README.txt", TREE["dataset/README.txt"], "file"),
    ("dataset/test/sample2.bin", TREE["dataset/test/sample2.bin"], "file"),
]
TOOLS = ["bsdtar", "unar", "7z"]
EXECUTABLES = {"bsdtar": ["bsdtar"], "unar": ["unar", "lsar"], "7z": ["7z"]}
DEBIAN_PACKAGES = {"bsdtar": "libarchive-tools", "unar": "unar", "7z": "p7zip-full"}  # what .ci/run installs


def need(tool: str) -> None:
    missing = [exe for exe in EXECUTABLES[tool] if shutil.which(exe) is None]
    if missing:
        pytest.skip(
            f"{tool} is not installed here ({', '.join(missing)} not on PATH); RAR needs an external tool: "
            f"apt-get install {DEBIAN_PACKAGES[tool]}"
        )


@pytest.mark.parametrize("tool", TOOLS)
def test_rar_through_external_tool(work, tool):
    need(tool)
    archive = work.parent / "data.rar"
    archive.write_bytes(rar4(RAR_TREE))
    assert archive_kind(archive) == "rar"
    target = extract(archive, work / "out", progress=False, tool=tool)
    assert read_tree(target) == {name: data for name, data, kind in RAR_TREE if kind == "file"}


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("bad_name", ["../evil.txt", "/tmp/neurodata-evil.txt"])
def test_rar_escaping_member_is_refused_before_the_tool_runs(work, tool, bad_name):
    need(tool)
    archive = work.parent / "evil.rar"
    archive.write_bytes(rar4([("ok.txt", b"fine", "file"), (bad_name, b"pwned", "file")]))
    with pytest.raises(UnsafeArchiveError) as info:
        extract(archive, work / "out", progress=False, tool=tool)
    assert info.value.member.replace("\\", "/") == bad_name  # tools may show RAR's own separator
    assert everything_under(work.parent) == {"evil.rar", "work"}


@pytest.mark.parametrize("tool", TOOLS)
def test_rar_symlink_is_refused(work, tool):
    need(tool)
    archive = work.parent / "link.rar"
    archive.write_bytes(rar4([("ok.txt", b"fine", "file"), ("escape", b"../../..", "symlink")]))
    with pytest.raises(UnsafeArchiveError, match="links are not extracted"):
        extract(archive, work / "out", progress=False, tool=tool)
    assert everything_under(work.parent) == {"link.rar", "work"}


def test_rar_without_any_tool_names_the_tools(work, monkeypatch):
    archive = work.parent / "data.rar"
    archive.write_bytes(rar4(RAR_TREE))
    monkeypatch.setenv("PATH", str(work))  # an empty folder: no tool can be found
    with pytest.raises(ExtractError) as info:
        extract(archive, work / "out", progress=False)
    message = str(info.value)
    assert "data.rar" in message and "bsdtar" in message and "unar" in message and "7-Zip" in message


@pytest.mark.parametrize("tool", TOOLS)
def test_truncated_rar_is_a_clear_error(work, tool):
    need(tool)
    archive = work.parent / "cut.rar"
    whole = rar4(RAR_TREE)
    archive.write_bytes(whole[: len(whole) - 3000])  # ends inside sample2.bin's data
    with pytest.raises(ExtractError, match="cut.rar"):
        extract(archive, work / "out", progress=False, tool=tool)
    assert everything_under(work.parent) == {"cut.rar", "work"}


@pytest.mark.parametrize("tool", TOOLS)
def test_7z_archive_through_external_tool(work, tool):
    need(tool)
    if shutil.which("7z") is None:
        pytest.skip("the 7z program is needed to create the test archive")
    source = work.parent / "src"
    for name, data in TREE.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    archive = work.parent / "data.7z"
    subprocess.run(
        ["7z", "a", "-bd", str(archive), "dataset"], cwd=source, check=True, capture_output=True, timeout=60
    )
    assert archive_kind(archive) == "7z"
    assert read_tree(extract(archive, work / "out", progress=False, tool=tool)) == TREE


def test_zip_with_deflate64_falls_back_to_an_external_tool(work):
    if shutil.which("7z") is None:
        pytest.skip(
            "the 7z program is needed to create a Deflate64 zip (as Windows' zipper writes for big files): "
            "apt-get install p7zip-full"
        )
    source = work.parent / "src"
    for name, data in TREE.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    archive = work.parent / "big.zip"
    subprocess.run(
        ["7z", "a", "-bd", "-tzip", "-mm=Deflate64", str(archive), "dataset"],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=60,
    )
    with zipfile.ZipFile(archive) as zf, pytest.raises(NotImplementedError):
        assert zf.getinfo("dataset/test/sample2.bin").compress_type == 9  # Deflate64
        zf.read("dataset/test/sample2.bin")  # which Python's zipfile cannot read
    assert read_tree(extract(archive, work / "out", progress=False)) == TREE


def test_callback_error_mid_rar_stops_bsdtar_and_cleans_up(work):
    need("bsdtar")
    archive = work.parent / "big.rar"
    archive.write_bytes(rar4([(f"part{i}.bin", os.urandom(1 << 20), "file") for i in range(4)]))

    def fail_on_first_member(event):
        if event["event"] == "extract":
            raise KeyError("stop here")

    with pytest.raises(
        KeyError, match="stop here"
    ):  # bsdtar is blocked on a full pipe: must be killed, not awaited
        extract(archive, work / "out", progress=False, callback=fail_on_first_member, tool="bsdtar")
    assert everything_under(work.parent) == {"big.rar", "work"}
