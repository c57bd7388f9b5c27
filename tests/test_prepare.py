"""``prepare`` end to end, offline: archives in the real layouts served over loopback HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from neurodata.cache import open_cache, verify_cache
from neurodata.datasets.download import ChecksumError
from neurodata.datasets.prepare import prepare
from neurodata.errors import NeurodataError
from tests.archives import (
    add_long_trials,
    expected_dvs128_samples,
    nmnist_zip_bytes,
    tar_gz_bytes,
    write_dvs128_folder,
)
from tests.httpserver import FileServer


@pytest.fixture(scope="module")
def dvs128_archive(fixtures, tmp_path_factory):
    folder = write_dvs128_folder(fixtures, tmp_path_factory.mktemp("dvs"))
    return folder, tar_gz_bytes(folder, "DvsGesture")


def assert_cache_holds(store, expected):
    cache = open_cache(store)
    for split, samples in expected.items():
        reader = cache[split]
        assert len(reader) == len(samples)
        for i, (events, label) in enumerate(samples):
            got, got_label = reader[i]
            assert got_label == label
            np.testing.assert_array_equal(got, events)


def test_dvs128_from_http_with_traps_and_overflow(fixtures, dvs128_archive, tmp_path):
    folder, data = dvs128_archive
    with FileServer() as server:
        server.add("/mini_DvsGesture.tar.gz", data, drop_after=len(data) // 3, faulty_requests=1)
        summary = prepare(
            "dvs128", source=server.url("/mini_DvsGesture.tar.gz"), root=tmp_path, progress=False
        )
        assert len([r for r in server.ranges("/mini_DvsGesture.tar.gz") if r]) == 1  # resumed once with Range
    store = tmp_path / "dvs128.zarr"
    assert summary["splits"]["train"]["n_samples"] == 6 and summary["splits"]["test"]["n_samples"] == 2
    assert summary["class_names"][0] == "hand_clapping" and summary["n_classes"] == 11
    assert_cache_holds(store, expected_dvs128_samples(fixtures))
    assert verify_cache(store).ok
    sums = summary["source_checksums"]["mini_DvsGesture.tar.gz"]
    import hashlib

    assert sums["md5"] == hashlib.md5(data).hexdigest()


def test_dvs128_wrong_checksum_is_refused(dvs128_archive, tmp_path):
    _, data = dvs128_archive
    with FileServer() as server:
        server.add("/DvsGesture.tar.gz", data)  # the published name: its published md5 must match, and cannot
        with pytest.raises(ChecksumError, match="md5"):
            prepare("dvs128", source=server.url("/DvsGesture.tar.gz"), root=tmp_path, progress=False)
    assert not (tmp_path / "dvs128.zarr").exists()


def test_dvs128_needs_manual_download(tmp_path):
    with pytest.raises(NeurodataError, match="DvsGesture.tar.gz.*--source"):
        prepare("dvs128", root=tmp_path, progress=False)


def test_dvs128_from_extracted_folder_and_rerun_is_a_no_op(fixtures, dvs128_archive, tmp_path):
    folder, _ = dvs128_archive
    first = prepare("dvs128", source=str(folder.parent), root=tmp_path, progress=False)
    store = tmp_path / "dvs128.zarr"
    mtime = (store / "zarr.json").stat().st_mtime_ns
    second = prepare("dvs128", source=str(folder), root=tmp_path, progress=False)
    assert (store / "zarr.json").stat().st_mtime_ns == mtime
    assert first["n_events"] == second["n_events"]


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ("no test list", r"DvsGesture/trials_to_test.txt is missing \(it lists the test trials\)"),  # KeyError before
        ("listed twice", r"trials_to_train.txt lists user01_fluorescent.aedat twice"),  # its samples doubled
        ("in both lists", r"trials_to_test.txt lists user01_fluorescent.aedat and trials_to_train.txt too"),
        ("time past int64", r"user24_natural_labels.csv: line 2: class must be 1..11 and 0 <= start <= end"),
    ],
)
def test_dvs128_lists_and_labels_that_cannot_be_right_are_refused(fixtures, tmp_path, edit, said):
    import shutil

    folder = write_dvs128_folder(fixtures, tmp_path / "src")
    if edit == "no test list":
        (folder / "trials_to_test.txt").unlink()
    elif edit == "listed twice":
        (folder / "trials_to_train.txt").write_text("user01_fluorescent.aedat\nuser02_led.aedat\nuser01_fluorescent.aedat\n")
    elif edit == "in both lists":
        (folder / "trials_to_test.txt").write_text("user24_natural.aedat\nuser01_fluorescent.aedat\n")
    else:
        (folder / "user24_natural_labels.csv").write_text("class,startTime_usec,endTime_usec\n5,0,99999999999999999999999\n")
    with pytest.raises(NeurodataError, match=said):
        prepare("dvs128", source=str(folder), root=tmp_path / "root", progress=False)
    shutil.rmtree(tmp_path / "src")


def test_a_finished_cache_keeps_its_codec_unless_another_is_asked_for(fixtures, dvs128_archive, tmp_path):
    """A cache prepared with lz4 (or before zstd became the default) is reused by a plain rerun;
    asking for another codec explicitly is refused without overwrite, as any changed build is."""
    folder, _ = dvs128_archive
    first = prepare("dvs128", source=str(folder), root=tmp_path, progress=False, codec="lz4")
    store = tmp_path / "dvs128.zarr"
    mtime = (store / "zarr.json").stat().st_mtime_ns
    again = prepare("dvs128", source=str(folder), root=tmp_path, progress=False)
    assert (store / "zarr.json").stat().st_mtime_ns == mtime
    assert open_cache(store).attrs["codec"] == "lz4" and again["n_events"] == first["n_events"]
    with pytest.raises(NeurodataError, match="fingerprint differs"):
        prepare("dvs128", source=str(folder), root=tmp_path, progress=False, codec="zstd")
    fresh = prepare("dvs128", source=str(folder), root=tmp_path / "new", progress=False)
    assert open_cache(tmp_path / "new" / "dvs128.zarr").attrs["codec"] == "zstd"
    assert fresh["n_events"] == first["n_events"]
    assert_cache_holds(tmp_path / "new" / "dvs128.zarr", expected_dvs128_samples(fixtures))


def test_nmnist_from_mirrors_with_a_dead_first_mirror(fixtures, tmp_path, monkeypatch):
    from neurodata.datasets import nmnist
    from neurodata.datasets.resource import Resource

    train, test = nmnist_zip_bytes(fixtures, "Train"), nmnist_zip_bytes(fixtures, "Test", per_digit=1)
    import hashlib

    with FileServer() as server:
        server.add("/Train.zip", train)
        server.add("/Test.zip", test)
        resources = tuple(
            Resource(
                name,
                md5=hashlib.md5(blob).hexdigest(),
                urls=(server.url("/gone/" + name), server.url("/" + name)),
            )
            for name, blob in (("Train.zip", train), ("Test.zip", test))
        )
        monkeypatch.setattr(
            nmnist, "SPEC", nmnist.SPEC.__class__(**{**nmnist.SPEC.__dict__, "resources": resources})
        )
        summary = prepare("nmnist", root=tmp_path, progress=False, workers=2)
    assert summary["splits"]["train"]["n_samples"] == 20 and summary["splits"]["test"]["n_samples"] == 10
    cache = open_cache(tmp_path / "nmnist.zarr")
    assert cache["train"].labels.tolist() == [d for d in range(10) for _ in range(2)]
    events, label = cache["test"][3]
    assert label == 3 and len(events) == 800


def test_prepare_killed_midway_resumes_to_the_same_cache(fixtures, tmp_path):
    folder = write_dvs128_folder(fixtures, tmp_path / "src")
    add_long_trials(fixtures, folder, trials=20, repeats=60)  # so that the build is still running when killed
    reference = prepare("dvs128", source=str(folder), root=tmp_path / "ref", progress=False)

    cmd = [
        sys.executable,
        "-m",
        "neurodata.cli",
        "prepare",
        "dvs128",
        "--source",
        str(folder),
        "--root",
        str(tmp_path / "run"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    parts = tmp_path / "run" / "dvs128.zarr.build" / "parts" / "train"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if parts.is_dir() and len([p for p in parts.iterdir() if not p.name.startswith(".")]) >= 3:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "prepare finished before it could be killed"
    assert not (tmp_path / "run" / "dvs128.zarr" / "zarr.json").exists()
    result = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    resumed = json.loads(result.stdout)
    assert resumed["n_events"] == reference["n_events"]
    ref_cache, run_cache = (
        open_cache(tmp_path / "ref" / "dvs128.zarr"),
        open_cache(tmp_path / "run" / "dvs128.zarr"),
    )
    for split in ("train", "test"):
        assert len(ref_cache[split]) == len(run_cache[split])
        for i in range(len(ref_cache[split])):
            a, b = ref_cache[split][i], run_cache[split][i]
            assert a[1] == b[1]
            np.testing.assert_array_equal(a[0], b[0])
