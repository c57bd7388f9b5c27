"""`neurodata export RUN_DIR OUT --target nir`: the run's model as a NIR file that runs like it."""

from __future__ import annotations

import json

import pytest
import torch
from run_helpers import tiny_run

from neurodata.cli.main import main

pytest.importorskip("nir", reason="hw.nir needs the nir package (the dev extra installs it)")


def test_export_nir_writes_a_file_that_runs_like_the_model(tmp_path, capsys):
    import hw.nir

    run = tmp_path / "run"
    run.mkdir()
    model = tiny_run(run, "sew-resnet18", {"stem": "small", "connect": "ADD", "backend": "torch"})
    for layer in model.modules():  # statistics whose fold is exact (1 / sqrt(var + eps) == 1), see below
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_var.fill_(1 - layer.eps)
    torch.save(model.state_dict(), run / "best.pt")
    out = tmp_path / "model.nir"
    assert main(["export", str(run), str(out), "--target", "nir", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["check"]["equal"] and report["check"]["differing_outputs"] == 0
    assert report["path"] == str(out) and report["nodes"] > 10 and report["check"]["batch_norm_folded"]
    x = (torch.rand(6, 2, 2, 16, 16, generator=torch.Generator().manual_seed(3)) < 0.2).float()
    with torch.no_grad():
        expected, got = model(x), hw.nir.from_nir(out)(x)
    assert expected.abs().sum() > 0
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_the_report_counts_what_folding_batch_norm_changes(tmp_path, capsys):
    """With ordinary statistics the fold rounds differently, and a potential that close to the
    threshold spikes on one side only: the report says how many outputs differ, and why."""
    run = tmp_path / "run"
    run.mkdir()
    tiny_run(run, "sew-resnet18", {"stem": "small", "connect": "ADD", "backend": "torch"})
    assert main(["export", str(run), str(tmp_path / "m.nir"), "--target", "nir", "--json"]) == 0
    check = json.loads(capsys.readouterr().out)["check"]
    assert check["batch_norm_folded"]
    assert check["equal"] == (check["differing_outputs"] == 0) == (check["max_abs_difference"] == 0)


def test_export_lists_every_layer_it_cannot_map_and_writes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    tiny_run(run)  # dvsgesture-net: max pooling and a voting layer
    out = tmp_path / "model.nir"
    assert main(["export", str(run), str(out), "--target", "nir"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "layer '3': max pooling" in err and "layer '7'" in err and "Voting" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input-shape", "2,x"], "--input-shape '2,x'"),
        (["--target", "loihi9"], "invalid choice: 'loihi9'"),
    ],
)
def test_bad_options_are_one_line(tmp_path, capsys, args, message):
    run = tmp_path / "run"
    run.mkdir()
    tiny_run(run)
    argv = ["export", str(run), str(tmp_path / "m.nir"), "--target", "nir", *args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_folder_that_is_not_a_run_is_named(tmp_path, capsys):
    assert main(["export", str(tmp_path), str(tmp_path / "m.nir"), "--target", "nir"]) == 2
    assert "model.json" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["loihi2", "xylo", "speck"])
def test_chip_targets_list_what_the_zoo_model_breaks_and_write_nothing(tmp_path, capsys, target):
    run = tmp_path / "run"
    run.mkdir()
    tiny_run(run)  # dvsgesture-net: batch norm, max pooling, PLIF neurons, a voting layer
    out = tmp_path / "model.bin"
    assert main(["export", str(run), str(out), "--target", target, "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert f"cannot export to {target}" in error and "\n" not in error
    if target != "xylo":  # Xylo's one problem is the structure (Linear, CubaLIF, Linear, CubaLIF)
        assert error.count(";") >= 1, error  # every problem, in one line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def _speck_net():
    import snn
    from snn import layers

    return torch.nn.Sequential(
        layers.Conv2d(2, 8, 2, stride=2), snn.IF(backend="torch"), layers.AvgPool2d(2),
        layers.Conv2d(8, 4, 3, padding=1), snn.IF(backend="torch"),
    )  # fmt: skip


def _loihi_net():
    import snn
    from snn import layers

    return torch.nn.Sequential(
        layers.Flatten(), layers.Linear(2 * 8 * 8, 32), snn.IF(v_reset=0.0, backend="torch"),
        layers.Linear(32, 4), snn.IF(v_reset=0.0, backend="torch"),
    )  # fmt: skip


@pytest.mark.parametrize(("target", "build", "shape"), [("speck", _speck_net, (2, 16, 16)), ("loihi2", _loihi_net, (2, 8, 8))])
def test_chip_target_writes_its_artefact_and_checks_it_against_the_reference(tmp_path, target, build, shape):
    """The command's per-target step on a model that fits: the artefact and its JSON report appear,
    and the report's check (the quantized model against the target's reference on sample spikes)
    finds no differing spike."""
    import argparse

    from cli.export import TARGETS

    torch.manual_seed(1)
    net = build()
    for layer in net.modules():
        if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
            layer.weight.data *= 4  # spikes flow through every layer
    out = tmp_path / f"model.{'h5' if target == 'loihi2' else 'npz'}"
    report = TARGETS[target](net, str(out), shape, argparse.Namespace(dt=1e-4))
    assert out.exists() and out.with_suffix(".json").exists()
    assert report["check"]["equal"], report["check"]
