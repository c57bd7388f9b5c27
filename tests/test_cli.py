"""The ``neurodata`` command as a user runs it: real subprocesses, exit codes, JSON and errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

import neurodata as nd


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurodata.cli", *args], capture_output=True, text=True, timeout=120)


def test_info_json_on_fixture(fixtures):
    result = run_cli("info", str(fixtures / "nmnist" / "sample_nmnist.bin"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["format"] == "nmnist"
    assert summary["events"] == 4325
    assert (summary["t_first"], summary["t_last"]) == (654, 311175)
    assert {"width", "height"} <= summary.keys()


def test_info_demo_is_human_readable():
    result = run_cli("info", "--demo")
    assert result.returncode == 0, result.stderr
    assert "synthetic" in result.stdout and "events" in result.stdout


def test_convert_round_trip_and_json_summary(fixtures, tmp_path):
    src = fixtures / "nmnist" / "sample_nmnist.bin"
    out = tmp_path / "copy.npz"
    result = run_cli("convert", str(src), str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["events"] == 4325
    with np.load(out, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["t"], nd.read(src)["t"])


def test_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "random.xyz"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes())
    for args in (("info", str(bad)), ("info", str(tmp_path / "missing.bin")), ("convert", str(bad), "x.npz")):
        result = run_cli(*args)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("neurodata: error: ") and args[1] in result.stderr
    result = run_cli("info", str(bad), "--json")
    assert json.loads(result.stdout)["error"].startswith(str(bad))


def test_failed_convert_leaves_no_output(fixtures, tmp_path):
    out = tmp_path / "out.bin"
    result = run_cli(
        "convert", str(fixtures / "nmnist" / "sample_nmnist.bin"), str(out), "--out-format", "nope"
    )
    assert result.returncode == 2
    assert list(tmp_path.iterdir()) == []


def test_convert_chain_through_every_writable_format(fixtures, tmp_path):
    """EVT 3.0 fixture -> AEDAT 4 -> EVT 2.0 -> DAT -> EVT 3.0 -> .h5: events survive every hop."""
    src = fixtures / "evt3" / "evt3_sample.raw"
    original = nd.read(src)
    hops = [("a.aedat4", None), ("b.raw", "evt2"), ("c.dat", None), ("d.raw", "evt3")]
    current = src
    for name, fmt in hops:
        out = tmp_path / name
        args = ["convert", str(current), str(out), "--json"] + (["--out-format", fmt] if fmt else [])
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["events"] == len(original)
        np.testing.assert_array_equal(nd.read(out), original)
        current = out
    info = json.loads(run_cli("info", str(current), "--json").stdout)
    assert (info["format"], info["width"], info["height"]) == ("evt3", 1280, 720)


def test_exit_after_training_imports_prints_nothing_more():
    """The program's exit (``run``) after torch's optimizer has loaded its compiler, and with it Triton
    where installed (the dev extra installs it; so does a CUDA torch): freezing the heap for a fast
    exit made Triton's bindings print a page of "nanobind: leaked instances" after every training
    command (``neurodata demo`` ended with it)."""
    code = (
        "import sys, torch\n"
        "torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])\n"
        "sys.argv = ['neurodata', 'formats']\n"
        "from neurodata.cli.main import run\n"
        "run()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "evt3" in result.stdout
    assert result.stderr == ""
