"""Hand-computed cases of snn.quant's integer arithmetic: rounding, shifts, decays, registers, one network."""

from __future__ import annotations

import pytest
import torch

import snn
from snn import layers
from snn.quant import QuantTarget, freeze, prepare_qat
from snn.quant.arith import decay_rule, decay_value, limit, round_value, shift_right


def ints(*values):
    return torch.tensor(values, dtype=torch.int64)


def test_rounding_modes_on_ties_and_negatives():
    x = torch.tensor([2.5, -2.5, -63.5, 1.2, -1.2], dtype=torch.float64)
    assert round_value(x, "nearest").tolist() == [3, -2, -63, 1, -1]  # ties upwards
    assert round_value(x, "floor").tolist() == [2, -3, -64, 1, -2]
    assert round_value(x, "trunc").tolist() == [2, -2, -63, 1, -1]


@pytest.mark.parametrize("dtype", [torch.int64, torch.float64])
def test_shift_right_is_the_arithmetic_shift_and_alike_in_both_dtypes(dtype):
    x = torch.tensor([7, -7, 8, -8, -1], dtype=dtype)
    assert shift_right(x, 1, "floor").tolist() == [3, -4, 4, -4, -1]  # -7 >> 1 == -4, -1 >> 1 == -1
    assert shift_right(x, 1, "trunc").tolist() == [3, -3, 4, -4, 0]
    assert shift_right(x, 1, "nearest").tolist() == [4, -3, 4, -4, 0]  # (x + 1) >> 1
    assert shift_right(x, 0, "floor").tolist() == x.tolist()


def test_multiply_decay_loihi_style_12_bits():
    # tau = 4: k = (1 - 1/4) * 4096 = 3072, Loihi's vDecay = 4096 - 3072 = 1024
    rule = decay_rule(4.0, QuantTarget(decay="multiply", decay_bits=12, decay_rounding="trunc"))
    assert (rule.k, rule.n, rule.tau) == (3072, 12, 4.0)
    assert decay_value(ints(1000, -1001, 3), rule).tolist() == [750, -750, 2]  # -750.75 -> -750, 2.25 -> 2
    floor = decay_rule(4.0, QuantTarget(decay_rounding="floor"))
    assert decay_value(ints(1000, -1001, 3), floor).tolist() == [750, -751, 2]
    # tau = 3: k = round(2/3 * 4096) = 2731, the time constant realised is 4096 / 1365
    rule = decay_rule(3.0, QuantTarget())
    assert rule.k == 2731 and rule.tau == pytest.approx(4096 / 1365)


def test_shift_decay_xylo_style():
    # v -= v >> dash with dash = log2(tau) = 3
    rule = decay_rule(8.0, QuantTarget(decay="shift", decay_rounding="floor"))
    assert (rule.n, rule.tau) == (3, 8.0)
    assert decay_value(ints(100, -100, 7, -7), rule).tolist() == [88, -87, 7, -6]  # -100 >> 3 == -13
    trunc = decay_rule(8.0, QuantTarget(decay="shift", decay_rounding="trunc"))
    assert decay_value(ints(100, -100, -7), trunc).tolist() == [88, -88, -7]
    assert decay_rule(5.0, QuantTarget(decay="shift")).n == 2  # log2(5) = 2.32: nearest power of two is 4


def test_registers_saturate_or_wrap_and_count():
    values = ints(32767 + 5, -40000, 5, 32767)
    saturated = limit(values, 16, "saturate")
    assert saturated.value.tolist() == [32767, -32768, 5, 32767] and int(saturated.out_of_range) == 2
    wrapped = limit(ints(32768, -32769, 70000, -3), 16, "wrap")
    assert wrapped.value.tolist() == [-32768, 32767, 70000 - 65536, -3] and int(wrapped.out_of_range) == 3


def _two_input_if(v_threshold: float, **neuron) -> torch.nn.Sequential:
    """Linear(2 -> 1) with weights 0.5 and -0.25: 8-bit per tensor scale 0.5/127, integers 127 and -63."""
    linear = layers.Linear(2, 1, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.5, -0.25]]))
    return torch.nn.Sequential(linear, snn.IF(v_threshold=v_threshold, backend="torch", **neuron)).eval()


def test_integer_network_by_hand():
    net = _two_input_if(1.0, v_reset=None)
    frozen = freeze(net, QuantTarget(weight_bits=8))
    synapse, neuron = frozen.stages[1], frozen.stages[2]
    assert synapse.weight.tolist() == [[127, -63]]  # -0.25 * 254 = -63.5, ties upwards to -63
    assert neuron.threshold.item() == 254  # 1.0 / (0.5 / 127)
    x = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]).view(4, 1, 2)
    run = frozen.run(x, record=True)
    # currents 64, 127, 127, 127; potentials 64, 191, 318 -> spike, 318 - 254 = 64, 191
    assert run.spikes["1"].view(-1).tolist() == [0, 0, 1, 0]
    assert frozen.counter.total == 0


def test_shifted_current_threshold_mantissa_strict_firing_and_delay_by_hand():
    target = QuantTarget(current_shift=2, threshold_shift=2, fire_above=True, synapse_delay=True)
    frozen = freeze(_two_input_if(1.0, v_reset=None), target)
    neuron = frozen.stages[2]
    assert neuron.threshold.item() == 254 * 4 + 1  # mantissa 254 << 2, crossed from above
    x = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]).view(4, 1, 2)
    run = frozen.run(x, record=True)
    # currents (delayed one step, shifted by 2): 0, 256, 508, 508; potentials 0, 256, 764, 1272 -> spike
    assert run.spikes["1"].view(-1).tolist() == [0, 0, 0, 1]
    assert prepare_qat(_two_input_if(1.0, v_reset=None), target)(x).view(-1).tolist() == [0.0, 0.0, 0.0, 1.0]


def test_state_and_current_registers_count_saturation_by_hand():
    # threshold 2.0 is 508 units; a 9-bit state (-256..255) never reaches it
    target = QuantTarget(state_bits=9)
    frozen = freeze(_two_input_if(2.0), target)
    x = torch.tensor([1.0, 0.0]).expand(4, 1, 2)
    run = frozen.run(x, record=True)
    # potentials 127, 254, 381 -> 255 (saturated), 255 + 127 -> 255 (saturated)
    assert run.spikes["1"].sum() == 0
    assert frozen.counter.counts() == {"1": {"state": 2}}
    wrapping = freeze(_two_input_if(2.0), QuantTarget(state_bits=9, overflow="wrap"))
    wrapping.run(x)  # 127, 254, 381 -> -131 (wrapped), -4
    assert wrapping.counter.counts() == {"1": {"state": 1}}
    # an input of 3 units gives a current of 381, beyond the 9-bit current register
    frozen.counter.reset()
    frozen.run(torch.tensor([3.0, 0.0]).expand(1, 1, 2))
    assert frozen.counter.counts() == {"0": {"current": 1}}


def test_fake_model_agrees_on_the_hand_case_and_its_float_view():
    net = _two_input_if(1.0, v_reset=None)
    fake = prepare_qat(net, QuantTarget())
    x = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]).view(4, 1, 2)
    assert fake(x).view(-1).tolist() == [0.0, 0.0, 1.0, 0.0]
    assert net(x).view(-1).tolist() == [0.0, 0.0, 1.0, 0.0]


def test_lif_with_decay_input_folds_one_over_tau_into_the_unit_by_hand():
    linear = layers.Linear(1, 1, bias=False)
    with torch.no_grad():
        linear.weight.fill_(0.5)
    net = torch.nn.Sequential(linear, snn.LIF(tau=2.0, backend="torch")).eval()
    frozen = freeze(net, QuantTarget(decay="multiply", decay_bits=12))
    neuron = frozen.stages[2]
    # weight 127 units of 0.5/127; the potential's unit is that over tau = 2: threshold 1.0 is 508
    assert neuron.threshold.item() == 508 and (neuron.decay.k, neuron.decay.n) == (2048, 12)
    x = torch.full((4, 1, 1), 3.0)  # current 381 per step
    # h = 381; floor(381 / 2) + 381 = 571 >= 508 -> spike, reset to 0; and again
    assert frozen.run(x, record=True).spikes["1"].view(-1).tolist() == [0, 1, 0, 1]
    assert net(x).view(-1).tolist() == [0.0, 1.0, 0.0, 1.0]  # the float LIF: 0.75, 1.125 -> spike, ...
