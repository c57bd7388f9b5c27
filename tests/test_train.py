"""The trainer: learning, exact resume, early stopping, best-model export, AMP, schedules, logs."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest
import torch

from snn.train import TrainConfig, evaluate, fit, load_best, load_checkpoint, read_history
from snn.train.checkpoint import capture_rng, restore_rng
from snn.train.optim import lr_factor
from tests.train_helpers import TinyNet, loaders

# the helpers' loaders use PyTorch's default collate, whose batches do not declare their layout
BASE = TrainConfig(epochs=4, lr=2e-2, progress=False, time_major=False)


class Interrupt(Exception):
    pass


def interrupt_after(epoch: int):
    def callback(row, model):
        if row["epoch"] == epoch:
            raise Interrupt

    return callback


def test_tiny_model_learns(tmp_path):
    train, val = loaders()
    result = fit(TinyNet(), train, val, dataclasses.replace(BASE, epochs=5, run_dir=str(tmp_path)))
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < first["train_loss"] - 0.1
    assert last["val_accuracy"] >= 0.9 > first["val_accuracy"]
    assert 0 < last["val_firing_rate"] < 1 and "val_fr/body.1" in last and last["val_synops_per_sample"] > 0
    rows = read_history(tmp_path)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[-1]["val_accuracy"] == pytest.approx(last["val_accuracy"])
    assert json.loads((tmp_path / "config.json").read_text())["lr"] == BASE.lr


def test_mse_count_loss_on_spiking_output_learns():
    train, val = loaders()
    config = dataclasses.replace(BASE, epochs=5, loss="mse", lr=3e-2, activity=False)
    result = fit(TinyNet(spiking_out=True), train, val, config)
    assert result.history[-1]["val_accuracy"] >= 0.75
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


@pytest.mark.parametrize("generator_seed", [None, 5], ids=["global-rng-shuffle", "loader-generator"])
def test_resume_after_interruption_is_bit_identical(tmp_path, generator_seed):
    """Shuffled data and dropout make the run depend on every RNG state the checkpoint restores."""
    config = dataclasses.replace(BASE, epochs=4, optimizer="adamw", weight_decay=1e-2, warmup_epochs=1)
    straight = TinyNet(dropout=0.3)
    fit(
        straight,
        *loaders(generator_seed=generator_seed),
        dataclasses.replace(config, run_dir=str(tmp_path / "a")),
    )

    run_b = dataclasses.replace(config, run_dir=str(tmp_path / "b"))
    with pytest.raises(Interrupt):
        fit(
            TinyNet(dropout=0.3),
            *loaders(generator_seed=generator_seed),
            run_b,
            callbacks=[interrupt_after(2)],
        )
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 2
    torch.manual_seed(1234)  # the resumed run must not depend on the state it starts in
    resumed = TinyNet(dropout=0.3, seed=99)
    result = fit(resumed, *loaders(generator_seed=generator_seed), run_b, resume=True)

    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    a, b = read_history(tmp_path / "a"), read_history(tmp_path / "b")
    strip = [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in a]
    assert strip == [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in b]


def test_checkpoint_holds_only_safe_types_and_no_temp_files_remain(tmp_path):
    fit(TinyNet(), *loaders(), dataclasses.replace(BASE, epochs=1, run_dir=str(tmp_path)))
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "history", "config", "epoch"} <= set(saved)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.json",
        "best.pt",
        "config.json",
        "last.pt",
        "metrics.csv",
    ] + (["tensorboard"] if (tmp_path / "tensorboard").exists() else [])


def test_rng_state_round_trip():
    import random

    import numpy as np

    state = capture_rng()
    before = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == before


def test_early_stopping_stops_and_stays_stopped(tmp_path):
    config = dataclasses.replace(BASE, epochs=10, lr=1e-9, patience=2, run_dir=str(tmp_path))
    result = fit(TinyNet(), *loaders(), config)
    # the weights barely move, so val accuracy never beats epoch 1: stop after 1 + patience epochs
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1
    again = fit(TinyNet(), *loaders(), config, resume=True)
    assert again.stopped_early and len(again.history) == 3


def test_best_model_reloads_with_its_metrics(tmp_path):
    train, val = loaders()
    config = dataclasses.replace(BASE, epochs=4, monitor="val_loss", run_dir=str(tmp_path))
    result = fit(TinyNet(), train, val, config)
    losses = [row["val_loss"] for row in result.history]
    assert result.best_epoch == 1 + losses.index(min(losses))
    fresh = TinyNet(seed=7)
    meta = load_best(fresh, tmp_path)
    assert meta["epoch"] == result.best_epoch and meta["config"]["monitor"] == "val_loss"
    again = evaluate(fresh, val, config)
    assert again["loss"] == pytest.approx(meta["value"], rel=1e-6)
    assert again["accuracy"] == pytest.approx(meta["metrics"]["val_accuracy"])


def test_amp_runs_bf16_autocast_on_cpu():
    seen = []
    model = TinyNet()
    model.body[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    config = dataclasses.replace(BASE, epochs=3, amp=True)
    result = fit(model, *loaders(), config)
    assert torch.bfloat16 in seen
    assert all(torch.isfinite(torch.tensor(row["train_loss"])) for row in result.history)
    assert result.history[-1]["val_accuracy"] > 0.5
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_schedules():
    cosine = TrainConfig(epochs=10, schedule="cosine", warmup_epochs=2)
    assert [lr_factor(e, cosine) for e in (0, 1, 2)] == [pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0]
    assert lr_factor(9, cosine) == pytest.approx(0.5 * (1 + torch.cos(torch.tensor(torch.pi * 7 / 8)).item()))
    step = TrainConfig(epochs=10, schedule="step", step_size=3, gamma=0.5)
    assert [lr_factor(e, step) for e in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    assert lr_factor(5, TrainConfig(schedule="none")) == 1.0


def test_learning_rate_in_the_log_follows_the_schedule(tmp_path):
    config = dataclasses.replace(BASE, epochs=3, schedule="step", step_size=1, gamma=0.5, optimizer="sgd")
    result = fit(TinyNet(), *loaders(), config)
    assert [row["lr"] for row in result.history] == pytest.approx([2e-2, 1e-2, 5e-3])


def test_config_rejects_bad_values_by_name():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lamb")
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(epochs=2, warmup_epochs=2)
    with pytest.raises(ValueError, match="unknown field"):
        TrainConfig.from_dict({"epochs": 1, "batch": 3})
    assert TrainConfig.from_dict(TrainConfig(lr=0.5).to_dict()) == TrainConfig(lr=0.5)
    # each was accepted (a growing learning rate for step_size=-1) or a traceback from deep inside
    for values, field in (
        ({"step_size": 0}, "step_size"),
        ({"step_size": -1}, "step_size"),
        ({"gamma": float("nan")}, "gamma"),
        ({"lr": float("inf")}, "lr"),
        ({"lr": "0.1"}, "lr"),
        ({"epochs": 2.5}, "epochs"),
        ({"warmup_epochs": 0.5}, "warmup_epochs"),
        ({"patience": 1.5}, "patience"),
        ({"seed": 2**70}, "seed"),
        ({"weight_decay": -1}, "weight_decay"),
        ({"momentum": -1}, "momentum"),
        ({"device": "bogus"}, "device"),
    ):
        with pytest.raises(ValueError, match=rf"^TrainConfig\.{field}"):
            TrainConfig(**values)


def test_a_non_finite_input_or_gradient_stops_training_naming_it(tmp_path):
    """One NaN in one sample made the first layer's weights NaN; spiking layers hid it from the
    loss (NaN never reaches the threshold) and fit finished, keeping NaN weights as best.pt."""
    from torch.utils.data import DataLoader, TensorDataset

    from snn.train.engine import _check_gradients

    train, _ = loaders()
    x, y = next(iter(train))
    x = x.clone()
    x[3, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"batch 0 of epoch 1 holds NaN or infinite input values"):
        fit(TinyNet(), DataLoader(TensorDataset(x, y), batch_size=16), None, dataclasses.replace(BASE, run_dir=str(tmp_path)))
    net = TinyNet()
    named = list(net.named_parameters())
    for _, p in named:
        p.grad = torch.zeros_like(p)
    named[1][1].grad[0] = float("inf")
    norm = torch.nn.utils.get_total_norm([p.grad for _, p in named])
    with pytest.raises(FloatingPointError, match=rf"the gradient of {named[1][0]} became NaN or infinite \(batch 2"):
        _check_gradients(named, norm, "batch 2 of epoch 1")


def test_resume_with_more_epochs_follows_the_new_schedule_and_refuses_other_changes(tmp_path):
    """The first resumed epoch ran at the old schedule's last rate (0 for cosine), and a changed
    learning rate or weight decay was ignored while config.json recorded it."""
    config = dataclasses.replace(BASE, epochs=2, schedule="cosine", run_dir=str(tmp_path))
    fit(TinyNet(), *loaders(), config)
    more = dataclasses.replace(config, epochs=4)
    result = fit(TinyNet(), *loaders(), more, resume=True)
    assert [row["lr"] for row in result.history] == pytest.approx(
        [BASE.lr * lr_factor(0, config), BASE.lr * lr_factor(1, config), BASE.lr * lr_factor(2, more), BASE.lr * lr_factor(3, more)]
    )
    with pytest.raises(ValueError, match=r"last.pt: cannot resume with another lr: 0.5 \(the run has 0.02\); weight_decay"):
        fit(TinyNet(), *loaders(), dataclasses.replace(more, epochs=5, lr=0.5, weight_decay=0.1), resume=True)


def test_time_major_batches_and_no_validation_loader(tmp_path):
    train, _ = loaders()
    time_major = [(x.transpose(0, 1), y) for x, y in train]
    config = dataclasses.replace(BASE, epochs=2, time_major=True, run_dir=str(tmp_path))
    result = fit(TinyNet(), time_major, None, config)
    assert "val_loss" not in result.history[-1]
    assert json.loads((tmp_path / "best.json").read_text())["monitor"] == "train_accuracy"
    with open(tmp_path / "metrics.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 2


def test_loader_must_yield_pairs():
    with pytest.raises(ValueError, match=r"\(input, target\) pairs"):
        fit(TinyNet(), [torch.zeros(2, 6, 24)], None, dataclasses.replace(BASE, epochs=1))


def test_fp16_with_grad_scaler_and_clipping_runs_on_cpu(tmp_path):
    """The CUDA-default path (float16 + GradScaler, unscaled before clipping), exercised on CPU."""
    seen = []
    model = TinyNet()
    model.body[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    config = dataclasses.replace(
        BASE, epochs=3, amp=True, amp_dtype="fp16", grad_clip=1.0, run_dir=str(tmp_path)
    )
    result = fit(model, *loaders(), config)
    assert set(seen) == {torch.float16}
    assert result.history[-1]["val_accuracy"] > 0.5
    assert load_checkpoint(tmp_path / "last.pt")["scaler"]["scale"] > 0  # the scaler's state is saved
