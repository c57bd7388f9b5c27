"""``neurodata train`` and ``neurodata plot`` through the real CLI on a tiny prepared synthetic cache."""

from __future__ import annotations

import builtins
import json

import pytest

from neurodata.cli.main import main
from neurodata.datasets.prepare import prepare
from neurodata.sim.gestures import write_archive

TINY_MODEL = [
    "--model",
    "dvsgesture-net",
    *("--model-option", "channels=4", "--model-option", "hidden=16", "--model-option", "n_blocks=2"),
    *("--model-option", "voting=2", "--model-option", "backend=torch"),  # no torch.compile in tests
]


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """2 users (1 train, 1 test) x 1 lighting x 11 gestures of 0.2 s, prepared into a cache."""
    folder = tmp_path_factory.mktemp("tiny-gestures")
    archive = write_archive(
        folder / "tiny.tar.gz",
        n_users=2,
        n_test_users=1,
        lightings=("led",),
        gesture_us=200_000,
        frame_us=10_000,
    )
    return prepare("dvs128", source=str(archive), root=folder / "cache", progress=False)["url"]


def train_args(store, run_dir, epochs):
    return ["train", "--dataset", store, *TINY_MODEL, "--size", "16", "--T", "4"] + [
        *("--epochs", str(epochs), "--batch-size", "4", "--out", str(run_dir), "--json"),
    ]


def test_train_then_resume_then_plot(tiny_store, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(train_args(tiny_store, run_dir, 2)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs_run"] == 2 and summary["validation_split"] == "test"
    assert {"train_loss", "val_accuracy", "val_firing_rate"} <= set(summary["last"])
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 2

    # --resume with more epochs continues from last.pt: the first two rows are kept, one is added
    first_rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert main(train_args(tiny_store, run_dir, 3) + ["--resume"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["epochs_run"] == 3
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert rows[:3] == first_rows and len(rows) == 4

    pytest.importorskip("matplotlib", reason="the PNG path needs the optional plot extra (matplotlib)")
    assert main(["plot", str(run_dir), "--json"]) == 0
    png = json.loads(capsys.readouterr().out)["png"]
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_what_to_install(tmp_path, capsys, monkeypatch):
    (tmp_path / "metrics.csv").write_text("epoch,train_loss\n1,2.0\n")
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert main(["plot", str(tmp_path)]) == 2
    assert "pip install 'neurodata[plot]'" in capsys.readouterr().err


def test_plot_of_a_folder_without_a_run_is_a_clear_error(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "metrics.csv: no such file" in capsys.readouterr().err


def test_unknown_model_is_a_clear_error(tiny_store, tmp_path, capsys):
    args = train_args(tiny_store, tmp_path / "run", 1)
    args[args.index("dvsgesture-net")] = "no-such-net"
    assert main(args) == 2
    assert "unknown model 'no-such-net'" in capsys.readouterr().err
