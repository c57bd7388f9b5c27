"""Quantization-aware training on real data (scikit-learn's digits): integer spikes == fake-quantized
spikes on trained networks, and the accuracy report per weight width."""

from __future__ import annotations

import copy

import pytest
import torch

from snn.quant import QuantTarget, freeze, prepare_qat, quant_report
from tests.quant_digits import INPUT_SCALE, cnn, evaluation_batches, fit, load, mlp


@pytest.fixture(scope="module")
def digits(one_torch_thread):
    return load()


@pytest.mark.parametrize(
    "build,flat,granularity,decay",
    [(mlp, True, "per_tensor", "multiply"), (cnn, False, "per_channel", "shift")],
    ids=["mlp-bn1d-soft-reset", "cnn-bn2d-avgpool"],
)
def test_qat_at_8_and_4_bits_integer_spikes_equal_fake_spikes(digits, build, flat, granularity, decay):
    net = fit(build(), digits, flat, epochs=5, lr=1e-2)
    trained = copy.deepcopy(net.state_dict())
    quantized = []
    for bits in (8, 4):
        target = QuantTarget(name=f"w{bits}", weight_bits=bits, granularity=granularity, decay=decay)
        quantized.append(fit(prepare_qat(net, target, input_scale=INPUT_SCALE), digits, flat, epochs=1, lr=2e-3))
    report = quant_report(net, quantized, evaluation_batches(digits, flat))
    print(report.table())
    assert report.float_accuracy > 0.9
    w8, w4 = report.rows
    for row in report.rows:
        assert row.spikes > 10_000  # a trained network that spikes, compared spike by spike
        assert row.differing_spikes == 0
        assert row.integer_accuracy == row.fake_accuracy
        assert row.out_of_range == 0
    assert w8.fake_accuracy >= report.float_accuracy - 0.02
    assert w4.fake_accuracy >= report.float_accuracy - 0.04
    assert w4.size_bytes < w8.size_bytes < report.float_size_bytes / 3
    after = net.state_dict()
    assert all(torch.equal(trained[k], after[k]) for k in trained)  # QAT trained copies only


def test_report_counts_out_of_range_values_of_a_narrow_target(digits):
    net = fit(mlp(), digits, True, epochs=1, lr=1e-2)
    narrow = prepare_qat(net, QuantTarget(name="narrow", state_bits=8), input_scale=INPUT_SCALE)
    report = quant_report(net, [narrow], evaluation_batches(digits, True)[:1])
    (row,) = report.rows
    assert row.out_of_range > 0 and row.differing_spikes == 0
    frozen = freeze(narrow)
    frozen.run(evaluation_batches(digits, True)[0][0])
    assert set(frozen.counter.counts()) <= {"0", "2", "3"} and frozen.counter.total == row.out_of_range
