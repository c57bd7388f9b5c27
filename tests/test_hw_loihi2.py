"""Loihi 2: the netx HDF5 export, the numpy CUBA reference read from the file, and spike equality with our quantized model."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
import torch

import snn
from hw import loihi2
from hw.artefacts import HwError
from hw.loihi2_sim import _trunc_decay, cuba_steps
from snn import layers
from snn.quant import freeze, prepare_qat
from tests.quant_digits import fit, load, one_thread


def test_hand_computed_cuba_steps():
    # vThMant 1: spike when v > 64; u = a << 6; v decays by 1024/4096
    # t0: v = 64 (not > 64); t1: v = 48 + 64 = 112 -> spike, v = 0; t2: v = 0; t3: v = 64
    neuron = {"iDecay": 4096, "vDecay": 1024, "vThMant": 1}
    assert cuba_steps(np.array([1, 1, 0, 1]), neuron).tolist() == [0, 1, 0, 0]
    # a current that halves each step: u = 128, 64, 32; v (no leak) = 128, 192 (not > 192), 224 -> spike
    neuron = {"iDecay": 2048, "vDecay": 0, "vThMant": 3}
    assert cuba_steps(np.array([2, 0, 0]), neuron).tolist() == [0, 0, 1]
    # a bias of 1 adds 64 per step: v = 64, 128, 192, 256 -> spike at the fourth step
    assert cuba_steps(np.zeros(4, np.int64), {"iDecay": 4096, "vDecay": 0, "vThMant": 3}, 1).tolist() == [
        0,
        0,
        0,
        1,
    ]
    # lava's decay rounds towards zero: -64 * 4095 / 4096 -> -63, not -64
    assert _trunc_decay(np.array([-64, 64]), 1).tolist() == [-63, 63]


def test_quantized_neuron_fires_above_the_threshold_one_step_late():
    # weight 1, threshold 1: 127 units, current 127 << 6; threshold 127 << 6, crossed from above
    net = torch.nn.Sequential(layers.Linear(1, 1, bias=False), snn.IF(v_reset=0.0, backend="torch"))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    integer = loihi2.quantize(net)
    (neuron,) = [s for s in integer.stages if hasattr(s, "threshold")]
    assert int(neuron.threshold) == 127 * 64 + 1
    x = torch.tensor([1.0, 1.0, 0.0]).reshape(3, 1, 1)
    assert net(x).flatten().tolist() == [1.0, 1.0, 0.0]  # the float neuron reaches v = 1 each step
    # step 0: nothing arrives yet; step 1: v = 127*64, not above; step 2: v = 2*127*64 -> spike
    assert integer(x).flatten().tolist() == [0, 0, 1]


def _rate_input(images: torch.Tensor, steps: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (torch.rand(steps, *images.shape, generator=generator) < images).float()


@pytest.fixture(scope="module")
def digits():
    with one_thread():
        yield load()


def _assert_equal_spikes(net, path, x, input_shape=None) -> int:
    report = loihi2.export(net, path, input_shape)
    integer = loihi2.quantize(net)
    ours = integer.run(x, record=True)
    reference = loihi2.simulate(path, x.numpy())
    assert len(reference.layers) == len(ours.spikes) == report["delay_steps"]
    total = 0
    for (label, spikes), chip in zip(ours.spikes.items(), reference.layers):
        assert np.array_equal(spikes.numpy().reshape(chip.shape), chip), label
        total += int(chip.sum())
    assert integer.counter.total == 0
    return total


def test_trained_mlp_spikes_equal_the_reference_read_from_the_file(digits, tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        layers.Linear(64, 64),
        layers.BatchNorm1d(64),
        snn.LIF(tau=2.0, v_reset=0.0, backend="torch"),
        layers.Linear(64, 10),
        snn.IF(v_reset=0.0, backend="torch"),
    )
    net = fit(net, digits, True, epochs=3, lr=1e-2)
    x = _rate_input(digits.x_test[:200].flatten(1), 16)
    total = _assert_equal_spikes(net, tmp_path / "mlp.h5", x)
    print(f"MLP: {total} spikes equal")
    assert total > 20_000
    integer = loihi2.quantize(net)
    accuracy = (integer(x).sum(0).argmax(1) == digits.y_test[:200]).float().mean()
    print(f"integer accuracy {accuracy:.3f}")
    assert accuracy > 0.85
    with h5py.File(tmp_path / "mlp.h5") as f:
        first = f["layer/0"]
        assert first["type"][0] == b"dense" and first["weight"].dtype == np.int8
        assert first["weight"].shape == (64, 64) and int(first["inFeatures"][()]) == 64
        assert np.abs(first["weight"][()]).max() == 127 and first["bias"].dtype == np.int16
        assert first["neuron/type"][0] == b"CUBA"
        assert first["neuron/iDecay"][()] == 4096 and first["neuron/vDecay"][()] == 2048  # tau 2
        assert f["layer/1/neuron/vDecay"][()] == 0 and f["layer/1/neuron/refDelay"][()] == 1


def test_trained_cnn_with_qat_spikes_equal_the_reference(digits, tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        layers.Conv2d(1, 8, 3, padding=1),
        layers.BatchNorm2d(8),
        snn.IF(v_reset=0.0, backend="torch"),
        layers.Conv2d(8, 8, 3, stride=2, padding=1),
        snn.IF(v_reset=0.0, backend="torch"),
        layers.Flatten(),
        layers.Linear(128, 10),
        snn.IF(v_reset=0.0, backend="torch"),
    )
    net = fit(net, digits, False, epochs=2, lr=1e-2)
    fake = prepare_qat(net, loihi2.LOIHI2)
    x = _rate_input(digits.x_test[:100], 12)
    total = _assert_equal_spikes(fake, tmp_path / "cnn.h5", x, (1, 8, 8))
    print(f"CNN: {total} spikes equal")
    assert total > 5_000
    frozen = freeze(fake)
    assert torch.equal(frozen(x), loihi2.quantize(fake)(x))
    report = loihi2.export(frozen, tmp_path / "frozen.h5", (1, 8, 8))  # a frozen model exports as it is
    assert [layer["neurons"] for layer in report["layers"]] == [8 * 64, 8 * 16, 128, 10]
    assert report["layers"][3]["weights"] == 1280 and report["delay_steps"] == 3
    with h5py.File(tmp_path / "cnn.h5") as f:
        assert [f[f"layer/{i}/type"][0] for i in range(4)] == [b"conv", b"conv", b"flatten", b"dense"]
        assert f["layer/1/shape"][()].tolist() == [8, 4, 4] and f["layer/1/stride"][()].tolist() == [2, 2]
        assert f["layer/0/weight"].shape == (8, 1, 3, 3)


def test_soft_reset_and_what_netx_cannot_express_are_refused_together(tmp_path):
    net = torch.nn.Sequential(
        layers.Linear(4, 4),
        snn.IF(v_reset=None),
        layers.AvgPool1d(2),
        layers.Linear(2, 3),
        snn.LIF(v_reset=0.0),
        layers.Linear(3, 2),
    )
    with pytest.raises(HwError) as caught:
        loihi2.export(net, tmp_path / "net.h5")
    text = "; ".join(caught.value.problems)
    assert "1 (IF): soft reset (v_reset=None) is not available: Loihi 2's CUBA neuron resets to zero" in text
    assert "2 (AvgPool1d): netx has no pooling layer" in text
    with pytest.raises(HwError, match="2: no neuron after it"):
        loihi2.export(
            torch.nn.Sequential(layers.Linear(4, 3), snn.IF(v_reset=0.0), layers.Linear(3, 2)),
            tmp_path / "n.h5",
        )
    assert os.listdir(tmp_path) == []


def test_non_finite_weights_and_an_input_shape_that_does_not_fit_are_refused(tmp_path):
    """A NaN weight was written as 0 and an infinite one zeroed its whole layer, without a word."""
    for bad in (float("nan"), float("inf")):
        net = torch.nn.Sequential(layers.Linear(16, 12), snn.LIF(tau=2.0, v_reset=0.0)).eval()
        with torch.no_grad():
            net[0].weight[0, 0] = bad
        with pytest.raises(HwError, match=r"0 \(Linear\): weight holds NaN or infinite values"):
            loihi2.export(net, tmp_path / "net.h5")
    net = torch.nn.Sequential(layers.Linear(16, 12), snn.LIF(tau=2.0, v_reset=0.0)).eval()
    with torch.no_grad():
        net[0].bias[:] = float("nan")
    with pytest.raises(HwError, match=r"0 \(Linear\): bias holds NaN or infinite values"):
        loihi2.export(net, tmp_path / "net.h5")
    net = torch.nn.Sequential(layers.Linear(16, 12), snn.LIF(tau=2.0, v_reset=0.0)).eval()
    with pytest.raises(HwError, match=r"0: takes 16 inputs, the shape before it \(17,\) gives 17"):
        loihi2.export(net, tmp_path / "net.h5", input_shape=(17,))
    assert os.listdir(tmp_path) == []


def test_the_reference_names_the_layer_an_input_does_not_fit(tmp_path):
    net = torch.nn.Sequential(layers.Linear(16, 12), snn.LIF(tau=2.0, v_reset=0.0)).eval()
    loihi2.export(net, tmp_path / "net.h5")
    with pytest.raises(ValueError, match=r"layer 0: takes 16 inputs, got \[T, B, ...\] shape \[3, 2, 15\]"):
        loihi2.simulate(tmp_path / "net.h5", np.zeros((3, 2, 15), np.int64))  # a numpy gufunc error before
