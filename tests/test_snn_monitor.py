"""Firing-rate and synaptic-operation monitors, checked against hand counts and brute force."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

import snn
from snn import layers
from snn.monitor import E_AC_PJ, E_MAC_PJ, FiringRateMonitor, SynOpsMonitor, energy_estimate


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        layers.Conv2d(1, 4, 3, padding=1),
        snn.LIF(tau=2.0, backend="torch"),
        layers.Flatten(),
        layers.Linear(4 * 6 * 6, 10),
        snn.LIF(tau=2.0, backend="torch"),
    )


def test_firing_rates_equal_the_spike_means():
    net = small_net()
    x = torch.rand(5, 3, 1, 6, 6) * 3
    with FiringRateMonitor(net) as monitor:
        net(x)
        net(x)
        rates = monitor.rates()
    hidden = net[1](net[0](x))
    out = net[4](net[3](net[2](hidden)))
    assert set(rates) == {"1", "4"}
    assert rates["1"] == pytest.approx(hidden.mean().item())
    assert rates["4"] == pytest.approx(out.mean().item())
    assert 0.0 < rates["1"] < 1.0
    # hooks are gone after the with block
    net(x)
    assert monitor.slots["1"] == 2 * hidden.numel()


def test_linear_synops_are_spikes_times_fan_out():
    lin = nn.Linear(4, 5)
    spikes = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    with SynOpsMonitor(nn.Sequential(lin)) as monitor:
        lin(spikes)
    assert monitor.synops["0"] == 4 * 5  # 4 input spikes, each reaching 5 output neurons
    assert monitor.macs["0"] == 0
    assert monitor.dense_macs["0"] == 8 * 5


def test_conv_fan_out_at_center_and_corner():
    conv = nn.Conv2d(1, 2, 3, padding=1)
    x = torch.zeros(2, 1, 5, 5)
    x[0, 0, 2, 2] = 1  # reaches 3x3 output positions x 2 channels
    x[1, 0, 0, 0] = 1  # corner: 2x2 output positions x 2 channels
    with SynOpsMonitor(nn.Sequential(conv)) as monitor:
        conv(x)
    assert monitor.synops["0"] == 18 + 8


def test_multistep_conv_synops_match_brute_force_unfold():
    torch.manual_seed(4)
    conv = layers.Conv2d(3, 4, 3, stride=2, padding=1)
    x = (torch.rand(4, 2, 3, 7, 7) < 0.3).float()
    with SynOpsMonitor(nn.Sequential(conv)) as monitor:
        conv(x)
    # brute force: every output position sees its receptive field; each active input there costs
    # one accumulation per output channel
    patches = TF.unfold(x.flatten(0, 1), 3, padding=1, stride=2)
    assert monitor.synops["0"] == patches.sum().item() * 4


def test_real_valued_input_counts_as_macs_and_energy_uses_the_constants():
    net = small_net()
    x = torch.rand(2, 3, 1, 6, 6)  # analog input to the first conv: MACs, spikes after it: SynOps
    with SynOpsMonitor(net) as monitor:
        net(x)
    assert monitor.macs["0"] > 0 and monitor.synops["0"] == 0
    assert monitor.macs["3"] == 0
    hidden = net[2](net[1](net[0](x)))
    assert monitor.synops["3"] == hidden.sum().item() * 10
    energy = monitor.energy()
    expected = (monitor.total_synops() * E_AC_PJ + monitor.total_macs() * E_MAC_PJ) * 1e-12
    assert energy["snn_j"] == pytest.approx(expected)
    assert energy["ann_j"] == pytest.approx(sum(monitor.dense_macs.values()) * E_MAC_PJ * 1e-12)
    assert energy["snn_j"] < energy["ann_j"]
    assert energy_estimate(1e12) == {"snn_j": pytest.approx(0.9)}


def test_dropout_scaled_spikes_still_count_as_synops():
    lin = nn.Linear(3, 2)
    with SynOpsMonitor(nn.Sequential(lin)) as monitor:
        lin(torch.tensor([[1.25, 0.0, 1.25]]))  # spikes after Dropout(0.2): one amplitude, an AC each
        lin(torch.tensor([[0.5, 0.0, 1.0]]))  # graded values: real multiplies
    assert monitor.synops["0"] == 2 * 2 and monitor.macs["0"] == 2 * 2


def test_monitor_without_matching_layers_is_an_error():
    with pytest.raises(ValueError, match="has no"):
        FiringRateMonitor(nn.Sequential(nn.Linear(2, 2)))
