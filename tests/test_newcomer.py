"""What a newcomer meets first: a dataset loaded before it is prepared, an archive written into a new folder."""

from __future__ import annotations

import json

import pytest

import neurodata
from neurodata.cache import CacheError
from neurodata.cli.main import main
from neurodata.sim.gestures import write_archive


def test_loading_a_dataset_before_preparing_it_says_how(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODATA_HOME", str(tmp_path / "home"))
    with pytest.raises(CacheError, match=r"dvs128: not prepared .*run `neurodata prepare dvs128` first"):
        neurodata.load("dvs128")
    with pytest.raises(CacheError, match=r"no cache at .*other.dvs128\.zarr"):
        neurodata.load("dvs128", root=tmp_path / "other")


def test_commands_on_an_unprepared_dataset_give_one_line(tmp_path, capsys):
    code = main(["frames", "dvs128", "--root", str(tmp_path), "--spec", "frame:n_time_bins=4", "--json"])
    assert code == 2
    error = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "neurodata prepare dvs128" in json.dumps(error)


def test_write_archive_creates_its_folders_first(tmp_path):
    path = tmp_path / "new" / "nested" / "tiny.tar.gz"
    written = write_archive(path, n_users=2, n_test_users=1, lightings=("led",), gesture_us=100_000, frame_us=20_000)
    assert written == path and path.stat().st_size > 0
