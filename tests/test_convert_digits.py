"""Evidence on real data (scikit-learn's digits): converted with mode="max", an MLP with BatchNorm1d and a
CNN with BatchNorm2d and average pooling are within 1 point of their ANN at T=32; trained with QCFS(levels=8),
within 2 points at T=8."""

from __future__ import annotations

import pytest

from snn.convert import accuracy_vs_timesteps, ann_to_snn, plot_accuracy_vs_timesteps

pytest.importorskip("sklearn")
from convert_digits import MODELS, accuracy, load_digits, train  # noqa: E402


@pytest.fixture(scope="module")
def digits(one_torch_thread):
    return load_digits()


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_converted_relu_network_is_within_one_point_at_32_steps(digits, model):
    ann = train(MODELS[model]("relu"), digits)
    ann_accuracy = accuracy(ann, digits)
    assert ann_accuracy > 0.9
    snn_model = ann_to_snn(ann, digits.train_x[:512], mode="max")
    curve = accuracy_vs_timesteps(snn_model, digits.test_batches(), timesteps=(4, 32))
    assert curve[32] >= ann_accuracy - 0.01, (ann_accuracy, curve)
    assert curve[4] < curve[32]  # the rate code needs time: few steps are worse


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_qcfs_network_is_within_two_points_at_8_steps(digits, model, tmp_path):
    ann = train(MODELS[model]("qcfs"), digits)
    ann_accuracy = accuracy(ann, digits)
    assert ann_accuracy > 0.9
    snn_model = ann_to_snn(ann, None)
    curve = accuracy_vs_timesteps(snn_model, digits.test_batches(), timesteps=(1, 8), static=True)
    assert curve[8] >= ann_accuracy - 0.02, (ann_accuracy, curve)
    png = plot_accuracy_vs_timesteps({"QCFS": curve}, tmp_path / "curve.png", ann_accuracy=ann_accuracy)
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.endswith("curve.png")
