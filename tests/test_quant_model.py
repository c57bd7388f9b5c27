"""snn.quant on untrained networks: fake-quantized spikes == integer spikes for every rule, STE
gradients, the original model untouched, and one clear error per bad input."""

from __future__ import annotations

import copy

import pytest
import torch

import snn
from snn import layers
from snn.quant import QuantError, QuantTarget, freeze, prepare_qat
from snn.sequential import SpikingSequential


def _lif(**kw):
    return snn.LIF(backend="torch", **kw)


def _conv_net(seed: int, neuron=_lif, **neuron_kw) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    net = SpikingSequential(
        layers.Conv2d(2, 6, 3, padding=1, stride=1), layers.BatchNorm2d(6), neuron(**neuron_kw),
        layers.MaxPool2d(2), layers.Conv2d(6, 8, 3, stride=2), neuron(**neuron_kw),
        layers.AvgPool2d(2), layers.Flatten(), layers.Dropout(0.3), layers.Linear(8, 5),
    )
    with torch.no_grad():
        for m in net:
            if isinstance(m, (layers.Conv2d, layers.Linear)):
                m.weight.mul_(4.0)  # enough current that every layer spikes
            if isinstance(m, layers.Conv2d) and m.in_channels == 6:
                m.bias.fill_(0.4)  # the sparse spikes of the first layer still drive the second
            if isinstance(m, layers.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(0.2, 0.6)
    return net.eval()


def _conv1d_net(seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        layers.Conv1d(3, 6, 3, padding=2, stride=2), snn.IF(backend="torch", v_reset=None, v_init=0.5),
        layers.SeqToANN(torch.nn.AvgPool1d(2)),
        torch.nn.Sequential(layers.Flatten(), layers.Linear(18, 4), layers.BatchNorm1d(4)),
        _lif(tau=3.0, decay_input=False),
    )
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (layers.Conv1d, layers.Linear)):
                m.weight.mul_(3.0)
    return net.eval()


CASES = [
    ("per_tensor multiply floor", dict(), dict()),
    ("per_channel shift floor soft", dict(granularity="per_channel", decay="shift"), dict(v_reset=None)),
    ("4-bit trunc decay_input off", dict(weight_bits=4, decay_rounding="trunc"), dict(decay_input=False, tau=4.0)),
    ("2-bit nearest power-of-two", dict(weight_bits=2, decay_rounding="nearest", power_of_two_scale=True), dict()),
    ("10-bit state wraps", dict(weight_bits=4, state_bits=10, overflow="wrap"), dict(v_reset=None, v_init=0.3)),
    ("10-bit state saturates", dict(weight_bits=4, state_bits=10, granularity="per_channel"), dict()),
]


@pytest.mark.parametrize("name,target_kw,neuron_kw", CASES, ids=[c[0] for c in CASES])
def test_integer_spikes_equal_fake_spikes(name, target_kw, neuron_kw):
    net = _conv_net(0, **neuron_kw)
    target = QuantTarget(name=name, **target_kw)
    fake = prepare_qat(net, target, input_scale=1 / 32).eval()
    frozen = freeze(fake)
    x = torch.rand(5, 3, 2, 10, 10)
    with torch.no_grad():
        fake_run, int_run = fake.run(x, record=True), frozen.run(x, record=True)
    assert set(fake_run.spikes) == {"2", "5"}
    for label, spikes in fake_run.spikes.items():
        assert spikes.sum() > 0, f"layer {label} never spikes: the comparison would be empty"
        assert torch.equal(spikes.long(), int_run.spikes[label])
    assert int_run.output.dtype == torch.int64
    assert torch.equal(fake_run.output.long(), int_run.output) and torch.equal(fake_run.output, int_run.output.double())
    assert fake.counter.counts() == frozen.counter.counts()
    if target.state_bits == 10:
        assert frozen.counter.total > 0  # a narrow state register overflows here, and it is counted


# Example chip-like targets (the chips' exact definitions belong to hw/): Loihi-like 12-bit
# multiply decay towards zero with a 24-bit state and zero reset; Xylo-like bit-shift decay with a
# 16-bit saturating state, subtractive reset and no biases.
LOIHI_LIKE = QuantTarget(
    name="loihi-like", state_bits=24, decay="multiply", decay_bits=12, decay_rounding="trunc", resets=("zero",)
)
XYLO_LIKE = QuantTarget(
    name="xylo-like", state_bits=16, decay="shift", decay_rounding="floor", resets=("subtract",), bias_bits=None
)


@pytest.mark.parametrize("target,reset", [(LOIHI_LIKE, 0.0), (XYLO_LIKE, None)], ids=["loihi-like", "xylo-like"])
def test_chip_like_targets(target, reset):
    torch.manual_seed(4)
    net = torch.nn.Sequential(
        layers.Linear(16, 32, bias=False), _lif(tau=8.0, v_reset=reset),
        layers.Linear(32, 8, bias=False), _lif(tau=4.0, v_reset=reset, decay_input=False),
    )
    with torch.no_grad():
        net[0].weight.mul_(6.0)
        net[2].weight.mul_(8.0)
    fake = prepare_qat(net, target)
    frozen = freeze(fake)
    x = (torch.rand(20, 4, 16) < 0.3).float()  # input spikes
    fake_run, int_run = fake.run(x, record=True), frozen.run(x, record=True)
    for label in ("1", "3"):
        assert fake_run.spikes[label].sum() > 0
        assert torch.equal(fake_run.spikes[label].long(), int_run.spikes[label])
    assert frozen.stages[2].decay.tau == 8.0  # exactly representable in both forms
    other = XYLO_LIKE if target is LOIHI_LIKE else LOIHI_LIKE
    with pytest.raises(QuantError, match=r"1 \(LIF\): reset"):
        prepare_qat(net, other)


def test_conv1d_soft_reset_initial_potential_and_nested_containers():
    net = _conv1d_net(1)
    fake = prepare_qat(net, QuantTarget(granularity="per_channel"), input_scale=1 / 64)
    frozen = freeze(fake)
    x = torch.rand(6, 4, 3, 9)
    fake_run, int_run = fake.run(x, record=True), frozen.run(x, record=True)
    assert set(fake_run.spikes) == {"1", "4"}
    for label, spikes in fake_run.spikes.items():
        assert spikes.sum() > 0 and torch.equal(spikes.long(), int_run.spikes[label])
    assert frozen.stages[2].v_init.gt(0).all()  # v_init=0.5 became a positive integer potential


def test_fake_model_spikes_approach_the_float_model_with_more_bits():
    net = _conv_net(2)
    x = torch.rand(4, 8, 2, 10, 10)
    seen = {}
    hook = net[2].register_forward_hook(lambda module, inputs, output: seen.update(spikes=output))
    with torch.no_grad():
        net(x)
    hook.remove()
    agreement = {}
    for bits in (2, 4, 8):
        fake = prepare_qat(net, QuantTarget(weight_bits=bits, state_bits=24), input_scale=1 / 127)
        with torch.no_grad():
            spikes = fake.run(x, record=True).spikes["2"]
        agreement[bits] = float((spikes.float() == seen["spikes"]).float().mean())
    assert agreement[2] < agreement[4] < agreement[8] and agreement[8] > 0.99, agreement


def test_qat_trains_the_copy_and_leaves_the_model_alone():
    net = _conv_net(3)
    before = copy.deepcopy(net.state_dict())
    fake = prepare_qat(net, QuantTarget(weight_bits=4)).train()
    assert not net.training
    optimizer = torch.optim.SGD(fake.parameters(), lr=0.1)
    loss = fake(torch.rand(4, 2, 2, 10, 10)).pow(2).sum()
    loss.backward()
    grads = [p.grad for p in fake.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    optimizer.step()
    freeze(fake)
    after = net.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    "field,value",
    [("weight_bits", 1), ("weight_bits", 9), ("state_bits", 40), ("decay_bits", 0), ("input_bits", 17),
     ("threshold_bits", 0), ("bias_bits", 1), ("weight_bits", 4.0), ("current_shift", 17), ("threshold_shift", -1)],
)
def test_bit_widths_out_of_range_name_the_argument(field, value):
    with pytest.raises(QuantError, match=rf"QuantTarget\.{field} must be an integer in \[\d+, \d+\], got {value}"):
        QuantTarget(**{field: value})


@pytest.mark.parametrize(
    "field,value", [("rounding", "up"), ("decay", "exp"), ("granularity", "per_row"), ("overflow", "clip")]
)
def test_unknown_rules_name_the_argument(field, value):
    with pytest.raises(QuantError, match=rf"QuantTarget\.{field} must be one of"):
        QuantTarget(**{field: value})
    with pytest.raises(QuantError, match="QuantTarget.resets"):
        QuantTarget(resets=("hard",))
    with pytest.raises(QuantError, match="QuantTarget.fire_above must be a bool, got 1"):
        QuantTarget(fire_above=1)


def test_every_unsupported_layer_is_named_in_one_error():
    net = torch.nn.Sequential(
        layers.Linear(4, 4), torch.nn.ReLU(),
        torch.nn.Sequential(layers.Linear(4, 4), snn.PLIF()),
        _lif(v_reset=-0.1), layers.MaxPool1d(2, padding=1),
    )
    with pytest.raises(QuantError) as info:
        prepare_qat(net, QuantTarget())
    message = str(info.value)
    assert "\n" not in message
    for fragment in ("1 (ReLU): unsupported layer", "2.1 (PLIF): neuron kind 'plif'", "3 (LIF): v_reset=-0.1",
                     "4 (MaxPool1d): padding"):
        assert fragment in message


def test_target_rules_refuse_what_they_do_not_implement():
    soft = torch.nn.Sequential(layers.Linear(4, 4), _lif(v_reset=None))
    with pytest.raises(QuantError, match=r"1 \(LIF\): reset 'subtract': target 'cuba' implements only \('zero',\)"):
        prepare_qat(soft, QuantTarget(name="cuba", resets=("zero",)))
    with pytest.raises(QuantError, match=r"0 \(Linear\): has a bias; target 'nobias' has none"):
        prepare_qat(soft, QuantTarget(name="nobias", bias_bits=None))
    bn_first = torch.nn.Sequential(layers.BatchNorm1d(4), layers.Linear(4, 4))
    with pytest.raises(QuantError, match=r"0 \(BatchNorm1d\): batch norm must directly follow"):
        prepare_qat(bn_first, QuantTarget())
    chained = torch.nn.Sequential(layers.Linear(4, 4), layers.Linear(4, 4))
    with pytest.raises(QuantError, match=r"1 \(Linear\): follows a per-channel scaled layer"):
        prepare_qat(chained, QuantTarget(granularity="per_channel"))


def test_bad_arguments_of_prepare_and_freeze():
    net = torch.nn.Sequential(layers.Linear(4, 4), _lif())
    with pytest.raises(QuantError, match="input_scale must be a finite number > 0, got 0"):
        prepare_qat(net, QuantTarget(), input_scale=0)
    with pytest.raises(QuantError, match="target must be a snn.quant.QuantTarget, got dict"):
        prepare_qat(net, {"weight_bits": 8})
    with pytest.raises(QuantError, match="a float model needs a target"):
        freeze(net)
    fake = prepare_qat(net, QuantTarget(name="a"))
    with pytest.raises(QuantError, match="target 'b' differs"):
        freeze(fake, QuantTarget(name="b"))
    with pytest.raises(ValueError, match=r"input must be time-major \[T, B, ...\], got shape \(4,\)"):
        fake(torch.rand(4))
    frozen = freeze(fake)
    # each was a bare torch error naming no stage (or, for NaN, spikes out of nothing)
    with pytest.raises(QuantError, match=r"input has no time steps \(shape \(0, 2, 4\)\)"):
        frozen(torch.rand(0, 2, 4))
    with pytest.raises(QuantError, match=r"^0: does not take input of shape \[3, 2, 5\] \("):
        frozen(torch.rand(3, 2, 5))
    with pytest.raises(QuantError, match="input holds NaN or infinite values"):
        frozen(torch.full((3, 2, 4), float("nan")))


def test_clamped_thresholds_are_reported_not_silent():
    linear = layers.Linear(2, 1, bias=False)
    with torch.no_grad():
        linear.weight.fill_(1e-3)
    net = torch.nn.Sequential(linear, _lif())
    with pytest.warns(UserWarning, match="clamped"):
        frozen = freeze(net, QuantTarget(threshold_bits=8))
    assert frozen.clamped == {"1": 1} and frozen.stages[2].threshold.item() == 255
