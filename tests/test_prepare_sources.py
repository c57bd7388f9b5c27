"""``prepare`` from your own copies, in the datasets' real layouts: ``--source`` repeated, a folder
holding the downloaded archives, ``--mirror``, ``--no-verify`` recorded in the cache and shown by
``info``, an HTML page where an archive was expected, an offline machine, and no lock files left."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest

from neurodata.cache import open_cache
from neurodata.cli.main import main
from neurodata.datasets import nmnist
from neurodata.datasets.checksum import ChecksumError
from neurodata.datasets.cifar10dvs import CLASSES
from neurodata.datasets.download import DownloadError, UnreachableError
from neurodata.datasets.prepare import prepare
from neurodata.errors import NeurodataError
from neurodata.network import RetryPolicy
from tests.archives import cifar10dvs_zip_bytes, nmnist_zip_bytes, tar_gz_bytes, write_dvs128_folder
from tests.httpserver import FileServer

FAST = RetryPolicy(retries=3, backoff=0.01, max_backoff=0.05, give_up_after=20.0, timeout=5.0)
HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Log in to download</body></html>\n"


@pytest.fixture(scope="module")
def nmnist_zips(fixtures, tmp_path_factory) -> dict[str, bytes]:
    return {"Train.zip": nmnist_zip_bytes(fixtures, "Train"), "Test.zip": nmnist_zip_bytes(fixtures, "Test", 1)}


@pytest.fixture
def published_as(monkeypatch):
    """Make N-MNIST's published md5s those of the given archives (the real ones cannot be served)."""

    def publish(zips: dict[str, bytes]) -> None:
        resources = tuple(
            r.__class__(r.filename, md5=hashlib.md5(zips[r.filename]).hexdigest(), urls=r.urls)
            for r in nmnist.SPEC.resources
        )
        monkeypatch.setattr(nmnist, "SPEC", nmnist.SPEC.__class__(**{**nmnist.SPEC.__dict__, "resources": resources}))

    return publish


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def lock_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.lock"))


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed): connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cli_json(args: list[str], capsys) -> tuple[int, dict]:
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_nmnist_from_two_sources_verified_and_no_lock_left(nmnist_zips, published_as, tmp_path):
    published_as(nmnist_zips)
    downloaded = write_files(tmp_path / "Downloads", nmnist_zips)
    summary = prepare(
        "nmnist", source=[downloaded / "Train.zip", downloaded / "Test.zip"], root=tmp_path / "root", progress=False
    )
    assert summary["splits"]["train"]["n_samples"] == 20 and summary["splits"]["test"]["n_samples"] == 10
    sums = summary["source_checksums"]
    assert sums["Test.zip"] == {
        "md5": hashlib.md5(nmnist_zips["Test.zip"]).hexdigest(),
        "sha256": hashlib.sha256(nmnist_zips["Test.zip"]).hexdigest(),
    }  # verified: no "unverified" entry
    assert lock_files(tmp_path / "root") == []


def test_one_of_two_archives_missing_is_named(nmnist_zips, tmp_path):
    train = write_files(tmp_path / "dl", {"Train.zip": nmnist_zips["Train.zip"]}) / "Train.zip"
    with pytest.raises(NeurodataError, match=r"lack Test\.zip.*--source Train\.zip --source Test\.zip"):
        prepare("nmnist", source=[train], root=tmp_path / "root", progress=False)


def test_cli_refuses_a_different_archive_then_no_verify_is_recorded_and_shown(nmnist_zips, tmp_path, capsys):
    """The real published md5s: our miniature archives differ, as a repacked copy would."""
    downloaded = write_files(tmp_path / "Downloads", nmnist_zips)
    root = tmp_path / "root"
    args = ["prepare", "nmnist", "--source", str(downloaded / "Train.zip"), "--source", str(downloaded / "Test.zip")]
    code, error = cli_json([*args, "--root", str(root)], capsys)
    assert code == 2 and "md5 mismatch" in error["error"] and "--no-verify" in error["error"]
    assert "\n" not in error["error"] and lock_files(root) == []
    assert not (root / "nmnist.zarr").exists()

    code, summary = cli_json([*args, "--root", str(root), "--no-verify"], capsys)
    assert code == 0 and summary["n_samples"] == 30
    code, info = cli_json(["info", str(root / "nmnist.zarr")], capsys)
    train = info["source_checksums"]["Train.zip"]
    assert train["sha256"] == hashlib.sha256(nmnist_zips["Train.zip"]).hexdigest()
    assert train["unverified"] == (
        f"differs from the published md5 {nmnist.SPEC.resources[0].md5} (accepted with --no-verify)"
    )
    assert main(["info", str(root / "nmnist.zarr")]) == 0
    text = capsys.readouterr().out
    assert f"UNVERIFIED (differs from the published md5 {nmnist.SPEC.resources[0].md5}" in text
    assert train["sha256"] in text
    assert lock_files(root) == []


def test_cifar10dvs_from_a_folder_holding_its_ten_zips(fixtures, tmp_path):
    zips = {f"{name}.zip": cifar10dvs_zip_bytes(fixtures, name) for name in CLASSES}
    folder = write_files(tmp_path / "Downloads", {**zips, "notes.txt": b"not an archive"})
    summary = prepare(
        "cifar10dvs",
        source=str(folder),
        root=tmp_path / "root",
        progress=False,
        verify=False,
        options={"split": "seeded"},
    )
    assert summary["n_samples"] == 20 and sorted(summary["source_checksums"]) == sorted(zips)
    cache = open_cache(summary["url"])
    assert sorted(cache["train"].labels.tolist()) == [k for k in range(10) for _ in range(2)]
    assert all("differs from the published md5" in s["unverified"] for s in summary["source_checksums"].values())
    assert lock_files(tmp_path / "root") == []


def test_dvs128_synthetic_archive_under_the_published_name(fixtures, tmp_path):
    """The project's own archive saved as DvsGesture.tar.gz, in a folder: refused, then accepted."""
    tree = write_dvs128_folder(fixtures, tmp_path / "tree")
    folder = write_files(tmp_path / "Downloads", {"DvsGesture.tar.gz": tar_gz_bytes(tree, "DvsGesture")})
    with pytest.raises(ChecksumError, match=r"md5 mismatch: expected 8a5c71fb.*rerun with --no-verify"):
        prepare("dvs128", source=str(folder), root=tmp_path / "root", progress=False)
    summary = prepare("dvs128", source=str(folder), root=tmp_path / "root", progress=False, verify=False)
    assert summary["n_samples"] == 8
    assert "8a5c71fb11e24e5ca5b11866ca6c00a1" in summary["source_checksums"]["DvsGesture.tar.gz"]["unverified"]


def test_mirror_with_a_dropped_and_a_stalled_transfer(nmnist_zips, published_as, tmp_path):
    """``--mirror URL/``: file names appended; a connection cut after N bytes and one that stalls
    after N bytes are both resumed with Range requests, and the archives verified."""
    published_as(nmnist_zips)
    events: list[dict] = []
    with FileServer() as server:
        server.add("/m/Train.zip", nmnist_zips["Train.zip"], drop_after=5000, faulty_requests=1)
        server.add("/m/Test.zip", nmnist_zips["Test.zip"], stall=3.0, stall_after=4000, faulty_requests=1, chunk=1000)
        summary = prepare(
            "nmnist",
            mirror=server.url("/m/"),
            root=tmp_path,
            progress=False,
            retry=RetryPolicy(retries=3, backoff=0.01, timeout=0.5),
            callback=events.append,
        )
        assert server.ranges("/m/Train.zip") == [None, "bytes=5000-"]
        assert server.ranges("/m/Test.zip") == [None, "bytes=4000-"]
    assert summary["n_samples"] == 30
    retries = [e for e in events if e.get("event") == "retry"]
    assert [e["file"] for e in retries] == ["Train.zip", "Test.zip"] and "timed out" in retries[1]["error"]
    assert all("unverified" not in s for s in summary["source_checksums"].values())


def test_dvs128_takes_no_mirror(tmp_path):
    with pytest.raises(NeurodataError, match=r"DvsGesture\.tar\.gz is a manual download.*--source http://m/DvsGesture"):
        prepare("dvs128", mirror="http://m/", root=tmp_path, progress=False)


def test_html_page_served_or_saved_instead_of_an_archive(fixtures, tmp_path):
    with FileServer() as server:
        server.add("/m/Train.zip", HTML)
        url = server.url("/m/Train.zip")
        with pytest.raises(DownloadError, match=rf"^{url}: serves an HTML page, not Train\.zip \(a login"):
            prepare("nmnist", mirror=server.url("/m"), root=tmp_path / "a", progress=False, retry=FAST)
        assert len(server.ranges("/m/Train.zip")) == 1  # not retried
    saved = write_files(tmp_path / "Downloads", {"DvsGesture.tar.gz": HTML}) / "DvsGesture.tar.gz"
    with pytest.raises(DownloadError, match=rf"^{saved}: an HTML page, not DvsGesture\.tar\.gz \(a login"):
        prepare("dvs128", source=str(saved), root=tmp_path / "b", progress=False, verify=False)
    assert lock_files(tmp_path) == []


@pytest.mark.parametrize("where", ["refused", "unresolvable"])
def test_offline_fails_at_once_saying_what_to_do(where, tmp_path, capsys):
    """The default policy (5 retries, back-off from 0.5 s) would wait 15.5 s; a host that cannot be
    reached on the first request is given up at once."""
    mirror = f"http://127.0.0.1:{free_port()}/" if where == "refused" else "http://nonexistent.invalid/"
    events: list[dict] = []
    with pytest.raises(UnreachableError) as info:
        prepare("nmnist", mirror=mirror, root=tmp_path, progress=False, callback=events.append)
    message = str(info.value)
    assert message.startswith(f"{mirror}Train.zip: cannot reach the host: ")
    assert ("refused" if where == "refused" else "does not resolve") in message
    assert "download Train.zip elsewhere" in message and "--source PATH" in message and "--mirror" in message
    assert not [e for e in events if e.get("event") == "retry"]
    code, error = cli_json(["prepare", "nmnist", "--mirror", mirror, "--root", str(tmp_path)], capsys)
    assert code == 2 and "cannot reach the host" in error["error"]
    assert lock_files(tmp_path) == []
