"""``neurodata train`` and ``neurodata plot`` through the real CLI on a tiny prepared synthetic cache."""

from __future__ import annotations

import builtins
import json
import math

import pytest
from torch.utils.data import DataLoader

import neurodata
from neurodata.cli.main import main
from neurodata.datasets.prepare import prepare
from neurodata.loaders import stack_time_major
from neurodata.sim.gestures import write_archive
from neurodata.transforms import Downsample, ToFrame
from snn.models import load_run, read_model_spec
from snn.train import TrainConfig, evaluate

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
    assert summary["epochs_run"] == 2
    # no val split in the cache: 1 of the 11 training samples is held out (10%, seed 0); test is never
    # used to choose, only evaluated at the end with best.pt
    splits = {"train": "train (the other 10 samples)", "val": "val (10% of train, seed 0)", "test": "test"}
    assert summary["splits"] == splits and summary["validation_split"] == splits["val"]
    assert {"train_loss", "val_accuracy", "val_firing_rate"} <= set(summary["last"])
    config = json.loads((run_dir / "config.json").read_text())
    assert config["epochs"] == 2 and config["splits"] == splits
    assert json.loads((run_dir / "best.json").read_text())["config"]["splits"]["val"] == splits["val"]
    test = json.loads((run_dir / "test.json").read_text())
    assert test == summary["test"] and test["split"] == "test" and test["checkpoint"] == "best.pt"
    assert test["samples"] == 11

    # the run folder rebuilds its model: evaluated on the test split it gives test.json's figures
    model = load_run(run_dir)
    spec = read_model_spec(run_dir)
    assert spec.model == "dvsgesture-net" and spec.representation["n_time_bins"] == 4
    assert spec.input_size == (16, 16) and spec.num_classes == 11 and len(spec.class_names) == 11
    frames = ToFrame(sensor_size=(16, 16, 2), n_time_bins=4)
    downsample = Downsample(sensor_size=(128, 128, 2), target_size=(16, 16))
    test_set = neurodata.load(tiny_store, "test", representation=frames, transform=downsample)
    loader = DataLoader(test_set, batch_size=4, collate_fn=stack_time_major)
    again = evaluate(model, loader, TrainConfig(progress=False, activity=False))
    assert again["accuracy"] == pytest.approx(test["accuracy"]) and again["loss"] == pytest.approx(test["loss"])

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


def test_default_settings_learn_on_synthetic_gestures(tiny_store, tmp_path, capsys):
    """dvsgesture-net at the default hyperparameters (lr, optimizer, schedule, loss, --init data),
    narrowed to 8 channels and 32 hidden neurons on 32x32 frames so that it trains in seconds: the
    training loss falls below ln(11) and the output layer fires. With PyTorch's initialisation the
    output layer stays silent, and each epoch warns, naming it."""
    narrow = ["--model-option", "channels=8", "--model-option", "hidden=32", "--model-option", "backend=torch"]
    common = ["train", "--dataset", tiny_store, *narrow, "--size", "32", "--T", "8", "--batch-size", "2"]
    assert main([*common, "--epochs", "6", "--out", str(tmp_path / "data-init"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rates = {k: v for k, v in summary["last"].items() if k.startswith("val_fr/")}
    output_layer = list(rates)[-1]
    assert summary["last"]["train_loss"] < math.log(11) - 0.01
    assert rates[output_layer] > 0 and not summary["warnings"]

    assert main([*common, "--epochs", "1", "--init", "default", "--out", str(tmp_path / "default")]) == 0
    captured = capsys.readouterr()
    silent = output_layer.removeprefix("val_fr/")
    assert "warning: epoch 1: spiking layer(s)" in captured.err and f"{silent} (the output layer)" in captured.err


def test_a_validation_fraction_out_of_range_is_a_clear_error(tiny_store, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(train_args(tiny_store, run_dir, 1) + ["--val-fraction", "1.5"]) == 2
    assert "--val-fraction: the validation fraction must be in (0, 1), got 1.5" in capsys.readouterr().err
    assert not run_dir.exists()


def test_what_would_mix_or_spoil_runs_is_refused(tiny_store, tmp_path, capsys):
    """Training into an earlier run's folder overwrote it in place; a --resume with another
    optimizer or model option was a traceback after model.json had been rewritten (the run then no
    longer loaded); --size above the sensor upsampled (or asked for 65 GB)."""
    run_dir = tmp_path / "run"
    assert main(train_args(tiny_store, run_dir, 1)) == 0
    capsys.readouterr()
    model_json = (run_dir / "model.json").read_text()
    assert main(train_args(tiny_store, run_dir, 1)) == 2
    assert "holds a run already" in json.loads(capsys.readouterr().out)["error"]
    assert main([*train_args(tiny_store, run_dir, 2), "--resume", "--optimizer", "sgd"]) == 2
    assert "the run was trained otherwise: optimizer: 'sgd' (the run has 'adam')" in json.loads(capsys.readouterr().out)["error"]
    args = train_args(tiny_store, run_dir, 2)
    args[args.index("--size") + 1] = "8"
    assert main([*args, "--resume"]) == 2
    assert "differ from the run's model.json" in json.loads(capsys.readouterr().out)["error"]
    assert (run_dir / "model.json").read_text() == model_json
    load_run(run_dir)  # still rebuilds its model
    args[args.index("--size") + 1] = "200"
    args[args.index("--out") + 1] = str(tmp_path / "other")
    assert main(args) == 2
    assert "--size 200: frames are downsampled, to at most the sensor's 128" in json.loads(capsys.readouterr().out)["error"]
