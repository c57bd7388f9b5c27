"""Hand-computed cases for each conversion rule of snn.convert (tiny networks whose folded weights,
thresholds and spike trains can be worked out on paper), and the layers conversion adds to snn.layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import snn
from snn import layers
from snn.convert import QCFS, ann_to_snn


def _linear(weight, bias) -> nn.Linear:
    w = torch.tensor(weight, dtype=torch.float32)
    layer = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return layer


def _weight(layer: nn.Module) -> float:
    return float(layer.weight.detach())


def _repeat(x: torch.Tensor, steps: int) -> torch.Tensor:
    return x.unsqueeze(0).expand(steps, *x.shape)


def _neurons(model: nn.Module) -> list[snn.IF]:
    return [m for m in model.modules() if isinstance(m, snn.IF)]


def test_batchnorm_and_scales_fold_into_weights_by_hand():
    # Linear w=2 b=3, BN mean=1 var=3 eps=1 gamma=0.5 beta=0: gain 0.5/sqrt(4)=0.25, so w'=0.5 and
    # b'=(3-1)*0.25=0.5. Calibration x in {1, 3}: activations 1 and 2, lam=2: w=0.25, b=0.25; the
    # read-out (w=3, b=0.5) takes lam into its weight: w=6, b=0.5.
    bn = nn.BatchNorm1d(1, eps=1.0)
    with torch.no_grad():
        bn.running_mean.fill_(1.0)
        bn.running_var.fill_(3.0)
        bn.weight.fill_(0.5)
        bn.bias.fill_(0.0)
    ann = nn.Sequential(_linear([[2.0]], [3.0]), bn, nn.ReLU(), _linear([[3.0]], [0.5])).eval()
    model = ann_to_snn(ann, torch.tensor([[1.0], [3.0]]))
    net = model.network
    assert _weight(net.get_submodule("0")) == 0.25 and float(net.get_submodule("0").bias.detach()) == 0.25
    assert _weight(net.get_submodule("3")) == 6.0 and float(net.get_submodule("3").bias.detach()) == 0.5
    (neuron,) = _neurons(model)
    assert (neuron.v_threshold, neuron.v_reset, neuron.v_init) == (1.0, None, None)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.ReLU)) for m in model.modules())
    # x=3: current 1 per step, a spike every step, output 6+0.5 = the ANN's 6.5 at every step.
    # x=1: current 0.5, spikes at steps 2, 4: outputs 0.5, 6.5, 0.5, 6.5; mean 3.5 = the ANN's 3.5.
    out = model(_repeat(torch.tensor([[3.0], [1.0]]), 4))[..., 0]
    assert out[:, 0].tolist() == [6.5] * 4
    assert out[:, 1].tolist() == [0.5, 6.5, 0.5, 6.5]
    assert torch.allclose(ann(torch.tensor([[3.0], [1.0]]))[:, 0], torch.tensor([6.5, 3.5]))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("max", 99.0), ("90%", np.percentile(np.arange(100.0), 90)), ("99.5%", np.percentile(np.arange(100.0), 99.5)),
     ("robust", np.percentile(np.arange(100.0), 99.99)), (0.5, 49.5)],
)  # fmt: skip
def test_calibration_statistics_are_exact_over_all_batches(mode, expected):
    # activations 0..99 spread over three uneven batches: the threshold is the statistic of all 100
    ann = nn.Sequential(_linear([[1.0]], [0.0]), nn.ReLU(), _linear([[1.0]], [0.0])).eval()
    values = torch.arange(100.0).flip(0)[torch.randperm(100, generator=torch.Generator().manual_seed(1))]
    batches = [(chunk.unsqueeze(1), torch.zeros(len(chunk))) for chunk in values.split([7, 60, 33])]
    model = ann_to_snn(ann, batches, mode=mode)
    lam = 1.0 / _weight(model.network.get_submodule("0"))
    assert lam == pytest.approx(float(expected), rel=1e-6)


def test_per_channel_scales_divide_rows_and_multiply_columns():
    # two channels with maxima 2 and 4: row o of the first layer / lam[o], column i of the next * lam[i]
    ann = nn.Sequential(_linear([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]), nn.ReLU(), _linear([[1.0, 1.0]], [0.0]))
    x = torch.tensor([[2.0, 1.0], [0.5, 4.0]])
    model = ann_to_snn(ann.eval(), x, per_channel=True)
    assert model.network.get_submodule("0").weight.tolist() == [[0.5, 0.0], [0.0, 0.25]]
    assert model.network.get_submodule("2").weight.tolist() == [[2.0, 4.0]]
    per_layer = ann_to_snn(ann, x)
    assert per_layer.network.get_submodule("0").weight.tolist() == [[0.25, 0.0], [0.0, 0.25]]


def test_conv_scales_per_channel_and_groups():
    # 1x1 convolutions: weight[o, i] * s_in[i] / s_out[o], with groups=2 pairing channels {0,1}->{0}, {2,3}->{1}
    conv = nn.Conv2d(4, 2, 1, groups=2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, 1.0]]).reshape(2, 2, 1, 1))
    stem = nn.Conv2d(1, 4, 1, bias=False)
    with torch.no_grad():
        stem.weight.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(4, 1, 1, 1))
    ann = nn.Sequential(stem, nn.ReLU(), conv, nn.ReLU(), nn.Flatten(), _linear([[1.0, 1.0]], [0.0])).eval()
    model = ann_to_snn(ann, torch.ones(1, 1, 1, 1), per_channel=True)
    # stem activations 1..4 (lam = 1..4): stem weights / lam = 1; group conv outputs 3 and 7
    assert model.network.get_submodule("0").weight.flatten().tolist() == [1.0, 1.0, 1.0, 1.0]
    expected = torch.tensor([[1 / 3, 2 / 3], [3 / 7, 4 / 7]])
    assert torch.allclose(model.network.get_submodule("2").weight.reshape(2, 2), expected)
    assert model.network.get_submodule("5").weight.tolist() == [[3.0, 7.0]]


class _Residual(nn.Module):
    """relu(x) -> [Linear -> relu] + identity -> relu -> read-out."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = _linear([[1.0]], [0.0])
        self.branch = _linear([[3.0]], [0.0])
        self.out = _linear([[1.0]], [0.0])

    def forward(self, x):
        a = F.relu(self.inp(x))
        return self.out(torch.relu(a + self.branch(a).relu()))


def test_residual_sum_shares_the_largest_scale_of_its_group():
    # x = 1: a = 1 (lam 1), branch 3 (lam 3), sum 4 (lam 4). The sum ties its two terms (a, the
    # branch's ReLU) and its own ReLU into one group: all three share scale max(1, 3, 4) = 4.
    model = ann_to_snn(_Residual().eval(), torch.tensor([[1.0]]))
    net = model.network
    assert _weight(net.inp) == 0.25
    assert _weight(net.branch) == 3 * 4 / 4
    assert _weight(net.out) == 4.0
    assert sum(isinstance(m, layers.Add) for m in model.modules()) == 1
    assert len(_neurons(model)) == 3  # F.relu, Tensor.relu and torch.relu each became a neuron
    # currents: a 1/4 per step (spikes at 4, 8); branch 3 per a-spike (spikes at 4, 5, 6, 8); the sum's
    # neuron gets a + branch = 2, 1, 1, 0, 2 over steps 4..8 and fires at each: 4 * spike at 4..8
    out = model(_repeat(torch.tensor([[1.0]]), 8))[:, 0, 0]
    assert out.tolist() == [0.0, 0.0, 0.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert float(model(_repeat(torch.tensor([[1.0]]), 64)).detach().mean()) == pytest.approx(4.0, abs=0.2)


def test_average_pooling_is_exact_and_reshapes_keep_the_batch():
    # no activation: the network is linear, so every step's output equals the ANN's output
    class Net(nn.Module):
        def __init__(self, how: str) -> None:
            super().__init__()
            self.how = how
            self.conv = nn.Conv2d(2, 3, 3, padding=1)
            self.avg = nn.AvgPool2d(2)
            self.adaptive = nn.AdaptiveAvgPool2d((2, 1))
            self.fc = nn.Linear(6, 4)
            self.flatten = nn.Flatten()

        def forward(self, x):
            x = self.adaptive(self.avg(self.conv(x)))
            x = {
                "module": lambda: self.flatten(x),
                "torch.flatten": lambda: torch.flatten(x, 1),
                "view": lambda: x.view(x.size(0), -1),
                "reshape": lambda: x.reshape(-1, 6),
                "shape": lambda: x.reshape(x.shape[0], 6),
                "method": lambda: x.flatten(1),
            }[self.how]()
            return self.fc(x)

    torch.manual_seed(0)
    x = torch.randn(5, 2, 8, 6)
    for how in ("module", "torch.flatten", "view", "reshape", "shape", "method"):
        ann = Net(how).eval()
        out = ann_to_snn(ann, x)(_repeat(x, 3))
        assert torch.allclose(out, _repeat(ann(x), 3), atol=1e-5), how


def test_every_relu_form_and_dropout_convert():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c, self.d, self.e = (_linear([[1.0]], [0.0]) for _ in range(5))
            self.act = nn.ReLU(inplace=True)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            x = F.relu(self.a(x))
            x = torch.relu(self.b(x))
            x = self.c(x).relu()
            x = self.act(self.d(F.dropout(x, 0.5, self.training)))
            return self.e(self.drop(x))

    ann = Net()
    model = ann_to_snn(ann, torch.tensor([[1.0], [0.5]]))
    assert len(_neurons(model)) == 4
    assert not any(isinstance(m, (nn.ReLU, nn.Dropout)) for m in model.modules())
    assert ann.training  # the ANN keeps its mode
    out = model(_repeat(torch.tensor([[1.0]]), 4))
    assert out[:, 0, 0].tolist() == [1.0] * 4  # current 1 = the threshold at every layer: no delay-free loss


def test_qcfs_forward_and_straight_through_gradient_by_hand():
    act = QCFS(levels=4, lam=2.0)
    x = torch.tensor([-1.0, 0.2, 0.3, 0.7, 1.1, 5.0], requires_grad=True)
    # x * 4 / 2 + 0.5 = -1.5, 0.9, 1.1, 1.9, 2.7, 10.5; floor / 4, clamped to [0, 1], times 2
    y = act(x)
    assert y.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0, 2.0]
    y.sum().backward()
    # straight-through floor: slope 1 where the clamp is inactive, 0 where it clamps
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    # d/dlam: floor(z)/L inside (0.25 + 0.25 + 0.5 over the STE's z dependence) and 1 at the top clip
    assert act.lam.grad is not None and float(act.lam.grad) > 0
    with pytest.raises(ValueError, match="levels"):
        QCFS(levels=0)


@pytest.mark.parametrize("levels", [2, 4, 8])
def test_qcfs_network_equals_its_ann_after_levels_steps(levels):
    # one hidden QCFS layer: with the membrane starting at half the threshold, the spike count
    # after T = L steps of a constant current c is clamp(floor(c L + 1/2), 0, L): the QCFS output
    torch.manual_seed(levels)
    ann = nn.Sequential(nn.Linear(3, 16), QCFS(levels, lam=1.5), nn.Linear(16, 4)).eval()
    model = ann_to_snn(ann, None)
    assert [n.v_init for n in _neurons(model)] == [0.5]
    assert model.input_shape is None
    x = torch.randn(32, 3)
    with torch.no_grad():
        assert torch.allclose(model(_repeat(x, levels)).mean(0), ann(x), atol=1e-5)


def test_cumulative_max_pool_counts_as_the_most_active_input():
    # window (a, b): a = 1 0 1 1, b = 0 1 0 0; running sums a: 1 1 2 3, b: 0 1 1 1; their max 1 1 2 3
    # rises by 1 0 1 1: the output. Step by step, a max (OR) would give 1 1 1 1 (4 spikes for a max of 3).
    # window (c, d): c = 0 0 1 1, d = 1 0 0 0; sums c: 0 0 1 2, d: 1 1 1 1; max 1 1 1 2: output 1 0 0 1
    # (a gate passing the leader's spikes, c's on the tie at step 3, would give 1 0 1 1).
    a, b = [1.0, 0, 1, 1], [0.0, 1, 0, 0]
    c, d = [0.0, 0, 1, 1], [1.0, 0, 0, 0]
    x = torch.tensor([a, b, c, d]).T.reshape(4, 1, 1, 4)
    out = layers.CumulativeMaxPool1d(2)(x)[:, 0, 0]
    assert out[:, 0].tolist() == [1.0, 0.0, 1.0, 1.0]
    assert out[:, 1].tolist() == [1.0, 0.0, 0.0, 1.0]
    # analog inputs: the mean over T is the window's largest mean
    x2 = torch.rand(6, 2, 3, 4, 4)
    pooled = layers.CumulativeMaxPool2d(2)(x2)
    assert pooled.shape == (6, 2, 3, 2, 2)
    assert torch.allclose(pooled.mean(0), F.max_pool2d(x2.mean(0), 2), atol=1e-6)


def test_maxpool_converts_to_the_cumulative_pool():
    ann = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))
    torch.manual_seed(0)
    x = torch.rand(4, 1, 4, 4)
    model = ann_to_snn(ann.eval(), x)
    assert isinstance(model.network.get_submodule("2"), layers.CumulativeMaxPool2d)
    with torch.no_grad():
        assert torch.allclose(model(_repeat(x, 512)).mean(0), ann(x), atol=0.05)


def test_new_multi_step_layers_match_their_ann_layers_per_step():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 4, 6, 6)
    for multi, single in [
        (layers.AdaptiveAvgPool2d(2), nn.AdaptiveAvgPool2d(2)),
        (layers.Flatten(2, 3), nn.Flatten(2, 3)),
        (layers.Reshape(4, 36), lambda t: t.reshape(len(t), 4, 36)),
    ]:
        assert torch.equal(multi(x), torch.stack([single(step) for step in x]))
    assert torch.equal(layers.AdaptiveAvgPool1d(3)(x[..., 0]), torch.stack([F.adaptive_avg_pool1d(s, 3) for s in x[..., 0]]))
    assert torch.equal(layers.Add()(x, x, x), 3 * x)
    assert torch.equal(layers.Flatten()(x), x.flatten(2))
    with pytest.raises(ValueError, match="batch"):
        layers.Flatten(0)
