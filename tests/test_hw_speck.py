"""Speck / DYNAP-CNN: the core mapping and its constraints, discretization, and the numpy IAF reference."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import snn
from hw import speck
from hw.artefacts import HwError, write_with_report
from hw.speck_map import kernel_memory, neuron_memory
from neurodata.errors import PathNotFoundError
from snn import layers
from tests.quant_digits import fit, load, one_thread


def if_cnn() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        layers.Conv2d(1, 8, 3, padding=1),
        layers.BatchNorm2d(8),
        snn.IF(backend="torch"),
        layers.AvgPool2d(2),
        layers.Flatten(),
        layers.Linear(128, 10),
        snn.IF(v_reset=None, backend="torch"),
    )


def test_memory_formulas_by_hand():
    # c * 2^(ceil(log2(kx*ky)) + ceil(log2 f)): 9 -> 16 taps, 10 -> 16 features
    assert kernel_memory(3, (3, 3), 10) == 3 * 16 * 16
    assert kernel_memory(1, (1, 1), 1) == 1
    # f * 2^(ceil(log2 H) + ceil(log2 W)): 30 -> 32, 17 -> 32
    assert neuron_memory(5, 30, 17) == 5 * 32 * 32
    assert neuron_memory(4, 64, 64) == 4 * 4096


def dvs_gesture_net() -> torch.nn.Sequential:
    """A DVS-Gesture-sized IAF network (2 x 128 x 128 events, 11 classes)."""
    return torch.nn.Sequential(
        layers.Conv2d(2, 16, 2, stride=2),
        snn.IF(),
        layers.Conv2d(16, 32, 3, stride=2, padding=1),
        snn.IF(),
        layers.AvgPool2d(2),
        layers.Conv2d(32, 64, 3, padding=1),
        snn.IF(),
        layers.AvgPool2d(2),
        layers.Flatten(),
        layers.Linear(64 * 8 * 8, 11),
        snn.IF(),
    )


def test_mapping_of_a_dvs_gesture_sized_network_fits_and_places_the_big_layers_on_big_cores():
    report = speck.check(dvs_gesture_net(), (2, 128, 128))
    assert report.ok, report.violations
    first, second, third, readout = report.layers
    assert first.neuron_shape == (16, 64, 64) and first.neuron_memory == 64 * 1024
    assert first.core in (0, 1, 2)  # only cores 0-2 have 64 Ki of neuron memory
    assert second.neuron_memory == 32 * 1024 and second.output_shape == (32, 16, 16)
    assert third.kernel_memory == 32 * 16 * 64 and third.core in (3, 4, 5, 6)  # 32 Ki of kernels
    assert readout.kernel == (8, 8) and readout.kernel_memory == 64 * 64 * 16 and readout.core in (5, 6)
    assert len({layer.core for layer in report.layers}) == 4


def test_every_violation_is_listed_with_its_layer_and_number():
    net = torch.nn.Sequential(
        layers.Conv2d(2, 2000, 17, stride=3),
        snn.LIF(),
        layers.MaxPool2d(3),
        torch.nn.ReLU(),
        layers.Flatten(),
        layers.Linear(4, 4),
    )
    problems = speck.check(net, (2, 200, 200)).violations
    text = "\n".join(problems)
    for expected in (
        "1 (LIF): only integrate-and-fire",
        "2 (MaxPool2d): Speck pools by summing",
        "(3, 3) stride (3, 3)",
        "3 (ReLU): unsupported",
        "input 200x200 larger than 128x128",
        "kernel 17x17 larger than 16x16",
        "stride (3, 3) not in",
        "2000 features > 1024",
        "no IF neurons after the synapse",
    ):
        assert expected in text, expected
    assert any("kernel memory 2097152 > 65536" in p for p in problems)
    assert "5 (Linear): in_features 4 != 800000 inputs (2000, 20, 20)" in problems
    unflattened = speck.check(torch.nn.Sequential(layers.Linear(8, 4), snn.IF()), (2, 8, 8)).violations
    assert unflattened == ["0 (Linear): applied to a 2x8x8 map without Flatten before it"]


def test_too_many_layers_for_the_neuron_memories_is_refused_naming_the_unplaced():
    # four layers needing 64 Ki of neurons: only three cores have it
    net = torch.nn.Sequential(*[m for _ in range(4) for m in (layers.Conv2d(16, 16, 3, padding=1), snn.IF())])
    report = speck.check(net, (16, 64, 64))
    assert not report.ok
    assert "unplaced: layer" in report.violations[-1] and "N=65536" in report.violations[-1]


@pytest.fixture(scope="module")
def trained():
    with one_thread():
        data = load()
        counts = type(data)(
            data.x_train * 16, data.y_train, data.x_test * 16, data.y_test
        )  # events: pixel counts 0..16
        yield fit(if_cnn(), counts, flat=False, epochs=2, lr=1e-2), counts


def test_discretized_model_spikes_equal_the_numpy_reference_on_digits(trained):
    net, data = trained
    exported = speck.export(net, (1, 8, 8))
    x = data.x_test[:200].unsqueeze(0).expand(4, -1, -1, -1, -1)
    result = speck.verify(exported, x)
    assert result["spikes"] > 500 and result["differing"] == 0
    # the integer network classifies like the float one
    accuracy = (exported.model(x).sum(0).argmax(1) == data.y_test[:200]).float().mean()
    assert accuracy > 0.8
    first = exported.layers[0]
    assert first.weight.dtype == np.int8 and np.abs(first.weight).max() == 127 and first.pool == (2, 2)


def test_save_writes_weights_and_the_core_mapping(trained, tmp_path):
    net, _ = trained
    exported = speck.export(net, (1, 8, 8))
    report = speck.save(exported, tmp_path / "net.npz")
    with np.load(tmp_path / "net.npz", allow_pickle=False) as arrays:
        assert np.array_equal(arrays["layer1_weight"], exported.layers[1].weight)
        assert arrays["layer0_weight"].dtype == np.int8 and arrays["layer1_weight"].shape == (10, 8, 4, 4)
    on_disk = json.loads((tmp_path / "net.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    assert [layer["core"] for layer in on_disk["layers"]] == [layer.core for layer in exported.report.layers]
    assert on_disk["layers"][1]["reset"] == "subtract" and on_disk["fits"]


def test_export_refuses_a_model_that_does_not_fit_and_writes_nothing(tmp_path):
    net = torch.nn.Sequential(
        layers.Conv2d(2, 4, 3), snn.LIF(v_reset=-0.5), layers.Conv2d(4, 4, 20), snn.IF()
    )
    with pytest.raises(HwError) as caught:
        speck.export(net, (2, 16, 16))
    problems = caught.value.problems
    assert any("1 (LIF): only integrate-and-fire" in p for p in problems)
    assert any("kernel 20x20 larger than 16x16" in p for p in problems)
    assert any("v_reset=-0.5" in p for p in problems)  # the discretization's problem is listed too
    assert os.listdir(tmp_path) == []


def test_a_failed_save_leaves_neither_file_and_keeps_the_previous_pair(tmp_path):
    path = tmp_path / "net.npz"
    write_with_report(path, lambda f: f.write(b"first"), {"n": 1})

    def broken(fileobj):
        fileobj.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_with_report(path, broken, {"n": 2})
    assert sorted(os.listdir(tmp_path)) == ["net.json", "net.npz"]
    assert path.read_bytes() == b"first" and json.loads((tmp_path / "net.json").read_text())["n"] == 1
    with pytest.raises(PathNotFoundError, match="missing"):
        write_with_report(tmp_path / "missing" / "net.npz", lambda f: f.write(b"x"), {})


def test_a_threshold_beyond_the_16_bit_state_is_a_problem():
    # sum pooling over 4x4 divides the next layer's unit by 16: its threshold no longer fits 15 bits
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        layers.Conv2d(2, 8, 2, stride=2),
        snn.IF(),
        layers.AvgPool2d(4),
        layers.Flatten(),
        layers.Linear(8 * 16 * 16, 11),
        snn.IF(),
    )
    assert speck.check(net, (2, 128, 128)).ok
    with pytest.raises(
        HwError, match="5: 1 thresholds, biases or initial potentials clamped to the 16-bit state"
    ):
        speck.export(net, (2, 128, 128))
