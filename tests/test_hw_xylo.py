"""Xylo: the integer reference against hand-computed cases, the export within SYNS61201's limits, save and load."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import snn
from hw import xylo
from hw.artefacts import HwError
from hw.xylo_sim import bitshift_decay, simulate
from snn import layers
from tests.quant_digits import one_thread
from tests.xylo_digits import STEPS, events, trained_network


def one_neuron_spec(**overrides) -> dict:
    spec = {
        "weights_in": np.array([[[120, 0]]]),
        "weights_out": np.array([[40]]),
        "dash_syn": np.array([1]),
        "dash_mem": np.array([1]),
        "threshold": np.array([40]),
        "dash_syn_out": np.array([1]),
        "dash_mem_out": np.array([1]),
        "threshold_out": np.array([30]),
    }
    return {**spec, **overrides}


def test_bitshift_decay_moves_at_least_one_unit_towards_zero():
    x = np.array([100, 1, -1, -3, 0, -100, 7])
    dash = np.array([2, 4, 4, 1, 3, 2, 0])
    assert bitshift_decay(x, dash).tolist() == [75, 0, 0, -1, 0, -75, 0]


def test_hand_computed_multi_spike_hidden_neuron_and_delayed_readout():
    # t0: 3 events x 120 = 360 -> decays to 180 -> v 180 -> 4 spikes (v 20)
    # t1: isyn 90, v 20 - 10 + 90 = 100 -> 2 spikes (v 20); readout gets 4 x 40 = 160 -> 80 -> spike (v 50)
    # t2: isyn 45, v 10 + 45 = 55 -> 1 spike (v 15); readout isyn 80 + 2 x 40 = 160 -> 80, v 25 + 80 = 105 -> one
    # spike at most (v 75)
    run = simulate(one_neuron_spec(), np.array([[3], [0], [0]]))
    assert run.hidden[:, 0].tolist() == [4, 2, 1]
    assert run.v_hidden[:, 0].tolist() == [20, 20, 15]
    assert run.output[:, 0].tolist() == [0, 1, 1]
    assert run.v_output[:, 0].tolist() == [0, 50, 75]


def test_hand_computed_saturation_after_each_event_and_input_cap():
    # 127 << 7 = 16256 per event; the third saturates at 32767, decaying to 16384; 20 events count as 15
    spec = one_neuron_spec(weights_in=np.array([[[127, 0]]]), threshold=np.array([30000]))
    run = simulate({**spec, "weight_shift_in": 7}, np.array([[3]]))
    assert run.v_hidden[0, 0] == 16384 and run.hidden[0, 0] == 0
    capped = simulate(one_neuron_spec(threshold=np.array([30000])), np.array([[20]]))
    fifteen = simulate(one_neuron_spec(threshold=np.array([30000])), np.array([[15]]))
    assert capped.v_hidden[0, 0] == fifteen.v_hidden[0, 0] == (15 * 120) - (15 * 120 >> 1)


def test_simulate_rejects_bad_rasters_and_thresholds():
    with pytest.raises(ValueError, match=r"raster must be \[T, 1\]"):
        simulate(one_neuron_spec(), np.zeros((3, 2), int))
    with pytest.raises(ValueError, match="thresholds must be positive"):
        simulate(one_neuron_spec(threshold=np.array([0])), np.zeros((3, 1), int))
    for bad in (-1, 0.5):
        with pytest.raises(ValueError, match=f"raster must hold non-negative whole event counts, got {bad}"):
            simulate(one_neuron_spec(), np.array([[0], [bad]]))


@pytest.fixture(scope="module")
def digits_net():
    with one_thread():
        x_train, y_train, x_test, y_test = events()
        yield trained_network(x_train, y_train), x_test, y_test


def test_export_of_a_trained_network_fits_the_chip_and_classifies(digits_net):
    net, x_test, y_test = digits_net
    exported = xylo.export(net)
    spec = exported.spec
    assert spec["weights_in"].shape == (16, 64, 2) and spec["weights_in"].dtype == np.int8
    assert spec["weights_out"].shape == (64, 8) and not spec["weights_in"][:, :, 1].any()
    assert np.abs(spec["weights_in"]).max() == 127 and int(spec["threshold"][0]) < 2**15
    hidden, readout = exported.report["layers"]
    assert hidden["current_decay"] == [0.5, 0.5] and hidden["voltage_decay"] == [0.75, 0.75]
    assert hidden["weight_error_max"] <= 0.5 / 127 + 1e-9
    raster = x_test[:100].unsqueeze(0).expand(STEPS + 1, -1, -1)
    agreement = xylo.compare(exported, net, raster)
    assert agreement["reference_spikes"] > 200 and agreement["model_spikes"] > 200
    counts = np.stack([simulate(spec, raster[:, b].long().numpy()).output[1:].sum(0) for b in range(100)])
    assert (counts.argmax(1) == y_test[:100].numpy()).mean() > 0.4  # 8 classes: chance is 0.125


def test_save_and_load_round_trip(digits_net, tmp_path):
    exported = xylo.export(digits_net[0])
    report = xylo.save(exported, tmp_path / "net.npz")
    spec = xylo.load_spec(tmp_path / "net.npz")
    assert set(spec) == set(exported.spec)
    for key, value in exported.spec.items():
        assert np.array_equal(spec[key], value), key
    assert spec["weights_in"].dtype == np.int8 and isinstance(spec["weight_shift_in"], int)
    assert json.loads((tmp_path / "net.json").read_text()) == json.loads(json.dumps(report))


def test_export_lists_every_problem_and_writes_nothing(tmp_path):
    net = torch.nn.Sequential(
        layers.Linear(20, 1200),
        snn.LIF(),
        layers.Linear(1200, 9, bias=False),
        snn.CubaLIF(0.2, v_reset=0.0),
    )
    with pytest.raises(HwError) as caught:
        xylo.export(net)
    text = "; ".join(caught.value.problems)
    for expected in (
        "0 (Linear): has a bias",
        "1 (LIF): Xylo neurons have a synaptic current",
        "v_reset=0.0",
        "current_decay=0.2 < 0.5",
        "20 inputs > 16",
        "1200 hidden neurons > 1000",
        "9 outputs > 8",
    ):
        assert expected in text, expected
    wrong = torch.nn.Sequential(layers.Linear(4, 4, bias=False), snn.CubaLIF(v_reset=None))
    with pytest.raises(HwError, match="expected Linear, CubaLIF, Linear, CubaLIF"):
        xylo.export(wrong)
    assert os.listdir(tmp_path) == []


def test_non_finite_weights_damaged_specs_and_one_step_comparisons_are_refused(digits_net, tmp_path):
    net = torch.nn.Sequential(
        layers.Linear(4, 6, bias=False), snn.CubaLIF(v_reset=None), layers.Linear(6, 2, bias=False), snn.CubaLIF(v_reset=None)
    )
    with torch.no_grad():
        net[2].weight[1, 1] = float("nan")  # was a bare "cannot convert float NaN to integer"
    with pytest.raises(HwError, match=r"2 \(Linear\): weight holds NaN or infinite values"):
        xylo.export(net)
    net = digits_net[0]
    exported = xylo.export(net)
    path = tmp_path / "net.npz"
    xylo.save(exported, path)
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.npz").write_text("not an archive")
    for name in ("cut.npz", "text.npz"):
        with pytest.raises(ValueError, match=rf"{name}: not an .npz archive"):
            xylo.load_spec(tmp_path / name)
    np.savez(tmp_path / "partial.npz", weights_in=np.zeros((2, 2, 2), np.int8))
    with pytest.raises(ValueError, match=r"partial.npz: lacks \['bias', "):
        xylo.load_spec(tmp_path / "partial.npz")
    raster = torch.zeros(1, 2, exported.report["inputs"])
    with pytest.raises(ValueError, match="raster has 1 step"):  # compared two empty arrays: 0 differing
        xylo.compare(exported, net, raster)
