"""Errors a new user meets, as one line in one style (issue 15): missing folders and files, format
limits, usage errors, empty files, and outputs that respect the umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurodata as nd
from neurodata.errors import FormatError, NeurodataError
from neurodata.synthetic import rotating_bar
from snn.train.checkpoint import atomic_save, atomic_write_text

sys.path.insert(0, str(Path(__file__).parent))
import loader_samples as ls  # noqa: E402

ERROR = "neurodata: error: "


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neurodata.cli", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *names: str) -> str:
    """Exit 2, a single ``neurodata: error:`` line on stderr naming each of ``names``; returns it."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and ".tmp-" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR), result.stderr
    for name in names:
        assert name in lines[0]
    return lines[0]


@pytest.fixture
def nmnist_sample(fixtures) -> Path:
    return fixtures / "nmnist" / "sample_nmnist.bin"


@pytest.fixture
def run_dir(tmp_path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").write_text("epoch,train_loss,val_accuracy\n1,2.0,0.5\n2,1.5,0.6\n")
    return run


# --- writing into a folder that does not exist --------------------------------------------------


def test_write_into_a_missing_folder_names_the_path(tmp_path):
    target = tmp_path / "no" / "such" / "out.npz"
    with pytest.raises(nd.PathNotFoundError) as caught:
        nd.write(target, rotating_bar(width=16, height=16, duration_us=1000))
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, NeurodataError)
    assert str(caught.value).startswith(f"{target}: ") and ".tmp-" not in str(caught.value)


def test_convert_simulate_plot_into_a_missing_folder(nmnist_sample, tmp_path, run_dir):
    out = str(tmp_path / "missing" / "out.npz")
    assert_one_line_error(run_cli("convert", str(nmnist_sample), out), out, "does not exist")
    frames = tmp_path / "frames.npy"
    np.save(frames, np.random.default_rng(0).random((3, 8, 8)).astype(np.float32))
    result = run_cli("simulate", str(frames), out, "--fps", "100")
    assert_one_line_error(result, out, "does not exist")
    png = str(tmp_path / "missing" / "curves.png")
    assert_one_line_error(run_cli("plot", str(run_dir), "--out", png), png, "does not exist")
    result = run_cli("plot", str(run_dir), "--out", png, "--json")
    assert json.loads(result.stdout)["error"].startswith(png)
    text = str(tmp_path / "curves.txt")  # a PNG was written under this name
    assert_one_line_error(run_cli("plot", str(run_dir), "--out", text), text, ".png")
    assert not Path(text).exists()


# --- N-MNIST's time limit and --shift-time -------------------------------------------------------


def test_unix_time_to_nmnist_is_refused_with_the_limit(fixtures, tmp_path):
    out = tmp_path / "out.bin"
    result = run_cli("convert", str(fixtures / "aedat4" / "sample.aedat4"), str(out))
    line = assert_one_line_error(result, "2**32 us", "--shift-time")
    assert "1605537493718345" in line and not out.exists()


def test_shift_time_starts_the_output_at_zero(tmp_path):
    events = rotating_bar(width=32, height=32, duration_us=50_000)
    events["t"] += 1_605_537_493_718_345
    with pytest.raises(NeurodataError, match="2\\*\\*32 us"):
        nd.write(tmp_path / "a.bin", events)
    nd.write(tmp_path / "a.bin", events, shift_time=True)
    back = nd.read(tmp_path / "a.bin")
    np.testing.assert_array_equal(back["t"], events["t"] - events["t"][0])
    np.testing.assert_array_equal(back["x"], events["x"])


def test_convert_shift_time(fixtures, tmp_path):
    src = fixtures / "aedat4" / "sample.aedat4"
    out = tmp_path / "shifted.npz"
    result = run_cli("convert", str(src), str(out), "--shift-time", "--json")
    assert result.returncode == 0, result.stderr
    with np.load(out, allow_pickle=False) as z:
        t = z["t"]
    original = nd.read(src)["t"]
    assert t[0] == 0
    np.testing.assert_array_equal(t, original - original[0])


# --- permissions follow the umask ----------------------------------------------------------------


def modes_under(root: Path) -> tuple[set[int], set[int]]:
    """The permission bits of the files and of the folders under ``root`` (itself included)."""
    files, folders = set(), {stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        (folders if path.is_dir() else files).add(stat.S_IMODE(path.stat().st_mode))
    return files, folders


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_outputs_and_caches_respect_the_umask(nmnist_sample, tmp_path, umask):
    old = os.umask(umask)
    try:
        assert run_cli("convert", str(nmnist_sample), str(tmp_path / "c.raw")).returncode == 0
        nd.write(tmp_path / "w.npz", nd.read(nmnist_sample))
        cache = Path(ls.build_indexed_cache(str(tmp_path / "cache.zarr"), 4))
        atomic_save({"epoch": 1}, tmp_path / "run" / "last.pt")  # a training run's files
        atomic_write_text("epoch\n1\n", tmp_path / "run" / "metrics.csv")
    finally:
        os.umask(old)
    for name in ("c.raw", "w.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask
    for tree in (cache, tmp_path / "run"):
        files, folders = modes_under(tree)
        assert files == {0o666 & ~umask} and folders == {0o777 & ~umask}


# --- the format written, one flag name --------------------------------------------------------


def test_raw_output_says_evt3(nmnist_sample, tmp_path):
    result = run_cli("convert", str(nmnist_sample), str(tmp_path / "a.raw"))
    assert result.returncode == 0, result.stderr
    assert "(evt3)" in result.stdout and "(raw)" not in result.stdout
    result = run_cli("convert", str(nmnist_sample), str(tmp_path / "b.raw"), "--out-format", "evt2", "--json")
    assert json.loads(result.stdout)["output_format"] == "evt2"
    assert nd.open_recording(tmp_path / "b.raw").info.format == "evt2"


def test_simulate_takes_out_format_and_the_old_spelling(tmp_path):
    frames = tmp_path / "frames.npy"
    np.save(frames, np.random.default_rng(0).random((4, 8, 8)).astype(np.float32))
    for flag in ("--out-format", "--format"):
        out = tmp_path / f"{flag.strip('-')}.raw"
        result = run_cli("simulate", str(frames), str(out), "--fps", "100", flag, "evt2", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["output_format"] == "evt2"
        assert nd.open_recording(out).info.format == "evt2"
    helps = run_cli("simulate", "--help").stdout
    assert "--out-format" in helps and "--format" not in helps.replace("--out-format", "")


def test_info_takes_in_format_as_convert_does_and_the_old_spelling(nmnist_sample):
    for flag in ("--in-format", "--format"):
        result = run_cli("info", str(nmnist_sample), flag, "nmnist", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["events"] == 4325
    assert "--in-format" in run_cli("info", "--help").stdout


# --- usage errors, verify, info ------------------------------------------------------------------


def test_usage_errors_are_one_line_and_json(nmnist_sample, tmp_path):
    result = run_cli("convert", str(nmnist_sample), str(tmp_path / "x.npz"), "--bogus")
    assert_one_line_error(result, "--bogus", "neurodata")
    assert "usage:" not in result.stderr
    result = run_cli("simulate", "clip.mp4", "out.raw", "--size", "big", "--json")
    assert_one_line_error(result, "--size", "WIDTHxHEIGHT")
    assert "WIDTHxHEIGHT" in json.loads(result.stdout)["error"]
    assert_one_line_error(run_cli("convert"), "required")
    result = run_cli("prepare", "nmnist", "--option", "novalue", "--json")
    assert_one_line_error(result, "--option", "novalue")
    assert "KEY=VALUE" in json.loads(result.stdout)["error"]


def test_verify_a_missing_path_says_no_such_cache(tmp_path):
    missing = str(tmp_path / "nothing.zarr")
    assert_one_line_error(run_cli("verify", missing), missing, "no such cache")
    result = run_cli("verify", missing, "--json")
    assert "no such cache" in json.loads(result.stdout)["error"]


def test_info_on_a_plain_folder(tmp_path):
    assert_one_line_error(run_cli("info", str(tmp_path)), str(tmp_path), "neither", "cache", "recording")


# --- empty and missing files ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["empty.raw", "empty.bin", "empty.aedat4"])
def test_empty_files_are_reported_as_empty(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(FormatError, match="empty file"):
        nd.read(path)
    with pytest.raises(FormatError, match="empty file"):
        nd.open_recording(path)
    assert_one_line_error(run_cli("info", str(path)), str(path), "empty file (0 bytes)")


def test_read_of_a_missing_file_is_a_file_not_found_error(tmp_path):
    missing = tmp_path / "missing.raw"
    for call in (nd.read, nd.open_recording):
        with pytest.raises(FileNotFoundError, match="no such file") as caught:
            call(missing)
        assert isinstance(caught.value, NeurodataError) and str(missing) in str(caught.value)


# --- frames: spec errors and progress bars --------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return ls.build_indexed_cache(str(tmp_path_factory.mktemp("frames") / "indexed.zarr"), 4)


@pytest.mark.parametrize(
    "spec, named",
    [
        ("frame:n_time_bins=abc", "n_time_bins='abc'"),
        ("frame:bogus=1", "bogus=1"),
        ("nope:n_time_bins=2", "type='nope'"),
        ("frame:n_time_bins=-1", "n_time_bins=-1"),
        ("frame:n_time_bins=2,dtype=int3", "dtype='int3'"),
    ],
)
def test_frames_spec_errors_name_the_key_and_value(store, spec, named):
    line = assert_one_line_error(run_cli("frames", store, "--spec", spec), f"--spec {named}:")
    assert "type='frame'" not in line


def test_frames_draws_no_progress_bar_into_a_file(store):
    result = run_cli("frames", store, "--spec", "frame:n_time_bins=2")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


# --- numbers out of range, folders that take no files (a prober's findings) ----------------------


@pytest.mark.parametrize(
    "command, option",
    [
        (["simulate", "{frames}", "{out}.npz", "--fps", "30", "--leak-hz", "inf"], "--leak-hz"),  # spun forever
        (["simulate", "{frames}", "{out}.npz", "--fps", "inf"], "--fps"),
        (["simulate", "{frames}", "{out}.npz", "--fps", "30", "--shot-noise-hz", "1e308"], "--shot-noise-hz"),
        (["simulate", "{frames}", "{out}.npz", "--fps", "30", "--seed", "-1"], "--seed"),
        (["live", "--realtime", "{recording}", "--out", "{out}.npz", "--speed", "0"], "--speed"),  # ZeroDivisionError
        (["live", "{recording}", "--out", "{out}.npz", "--duration", "inf"], "--duration"),
        (["live", "{recording}", "--out", "{out}.npz", "--width", "0"], "--width"),
        (["view", "{recording}", "--out", "{out}.gif", "--speed", "nan"], "--speed"),
        (["replay", "{recording}", "udp://127.0.0.1:9", "--speed", "nan"], "--speed"),
        (["train", "--dataset", "{out}", "--out", "{out}", "--batch-size", "0"], "--batch-size"),
        (["train", "--dataset", "{out}", "--out", "{out}", "--T", "0"], "--T"),
        (["train", "--dataset", "{out}", "--out", "{out}", "--workers", "-1"], "--workers"),
        (["demo", "--quick", "--epochs", "0", "--root", "{out}"], "--epochs"),
        (["frames", "{out}", "--spec", "frame:n_time_bins=4", "--workers", "0"], "--workers"),
    ],
)
def test_numbers_out_of_range_are_usage_errors(tmp_path, nmnist_sample, capsys, command, option):
    """Refused by the parser, before anything is made: they hung, divided by zero or ended in a
    traceback from deep inside."""
    from cli.main import main

    frames = tmp_path / "frames.npy"
    np.save(frames, np.zeros((3, 8, 8), np.uint8))
    paths = {"frames": str(frames), "out": str(tmp_path / "out"), "recording": str(nmnist_sample)}
    assert main([word.format(**paths) for word in command]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith(ERROR) and option in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.npy"]


def test_train_refuses_a_device_it_cannot_use_before_making_the_run_folder(tmp_path, capsys):
    from cli.main import main

    for device, words in (("bogus", "not a device torch knows"), ("cuda:7", "not usable here")):
        if device.startswith("cuda") and __import__("torch").cuda.device_count() > 7:
            continue
        assert main(["train", "--dataset", str(tmp_path), "--out", str(tmp_path / "run"), "--device", device]) == 2
        assert words in capsys.readouterr().err
        assert not (tmp_path / "run").exists()


def test_outputs_and_folders_that_cannot_be_made_are_one_line(tmp_path, nmnist_sample):
    """A file where a folder should be, and (on Linux) /proc, which takes no new files: one line naming
    the path, exit 2 (tracebacks before)."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert_one_line_error(run_cli("convert", str(nmnist_sample), str(a_file / "out.npz")), str(a_file / "out.npz"))
    assert_one_line_error(run_cli("verify", str(nmnist_sample)), str(nmnist_sample))
    if Path("/proc/self").is_dir():
        line = assert_one_line_error(run_cli("convert", str(nmnist_sample), "/proc/out.npz", "--json"), "/proc/out.npz")
        assert "takes no new files" in line
        assert_one_line_error(run_cli("demo", "--quick", "--root", "/proc/neurodata-demo"), "/proc/neurodata-demo")


def test_warnings_are_one_line_like_the_errors(tmp_path):
    """A layout-3 cache warns that its chunks carry no checksum: one ``neurodata: warning:`` line,
    not Python's two (file:line, then the source line)."""
    import shutil

    cache = tmp_path / "cache3"
    shutil.copytree(Path(__file__).parent / "data" / "cache_layout3", cache)
    result = run_cli("frames", str(cache), "--spec", "frame:n_time_bins=2")
    assert result.returncode == 0, result.stderr
    warning_lines = [line for line in result.stderr.splitlines() if "checksum" in line]
    assert warning_lines and all(line.startswith("neurodata: warning: ") for line in warning_lines), result.stderr
    assert ".py:" not in result.stderr


def test_info_on_a_recording_without_events_or_size_says_so(fixtures):
    result = run_cli("info", str(fixtures / "aedat4" / "test_data_gray16.aedat4"))
    assert result.returncode == 0, result.stderr
    assert "unknown (no events to bound it)" in result.stdout and "None" not in result.stdout


def test_convert_takes_the_sensor_size_a_recording_does_not_say(fixtures, tmp_path):
    """An N-CARS .dat names no sensor size; Event Stream stores one: --sensor-size gives it (the error
    used to ask for the API's info=)."""
    source = str(fixtures / "dat" / "sample_ncars.dat")
    out = tmp_path / "out.es"
    assert "--sensor-size" in assert_one_line_error(run_cli("convert", source, str(out)), "Event Stream")
    assert_one_line_error(run_cli("convert", source, str(out), "--sensor-size", "10x10"), str(out), "width 10")
    assert not out.exists()
    result = run_cli("convert", source, str(out), "--sensor-size", "120x100")
    assert result.returncode == 0, result.stderr
    events, info = nd.read(out, return_info=True)
    np.testing.assert_array_equal(events, nd.read(source))
    assert (info.width, info.height) == (120, 100)
