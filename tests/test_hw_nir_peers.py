"""hw.nir against the NIR implementations of Norse 1.1.0, SpikingJelly 2.0 and snnTorch 1.0.

Our graphs load in Norse and SpikingJelly and simulate to our spikes (hard-reset models); graphs
they write load into ours and simulate to theirs. Each peer's quirk is handled here the way
``docs/sections/hw-nir.md`` says. ``.ci/run`` runs this file in its peer environment with
``NEURODATA_REQUIRE_PEERS=1``.
"""

from __future__ import annotations

import importlib

import pytest
import torch
from conftest import peer_missing
from torch import nn

import snn
from snn import layers

nir = pytest.importorskip("nir")
import hw.nir as hn  # noqa: E402

DT = 1e-4


def peer(name: str):
    try:
        return importlib.import_module(name)
    except Exception as exc:  # absent, or its own dependencies missing
        peer_missing(f"{name} is not installed ({exc.__class__.__name__}: {exc})")


def spikes(shape, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < 0.4).float()


def boosted(*linears: nn.Linear) -> None:
    """Weights that make the layers fire often, and biases that are not zero (nirtorch's default drops them)."""
    with torch.no_grad():
        for linear in linears:
            linear.weight.mul_(2).add_(0.1)
            linear.bias.uniform_(0.01, 0.1)


def step_by_step(module, x: torch.Tensor) -> torch.Tensor:
    """Run a stateful single-step module (``out, state = module(x_t, state)``) over ``[T, ...]``."""
    state, out = None, []
    for x_t in x:
        y, state = module(x_t, state)
        out.append(y)
    return torch.stack(out).detach()


@pytest.fixture
def ours(tmp_path):
    """A hard-reset IF/LIF network of ours, written with nir.write; the spikes it gives on ``x``."""
    torch.manual_seed(0)
    model = nn.Sequential(layers.Linear(12, 10), snn.IF(v_threshold=0.5), layers.Linear(10, 6), snn.LIF(4.0, v_threshold=0.3))
    boosted(model[0], model[2])
    path = tmp_path / "ours.nir"
    nir.write(path, hn.to_nir(model, (12,), dt=DT))
    x = spikes((40, 3, 12))
    with torch.no_grad():
        expected = model(x)
    assert expected.sum() > 20
    return path, x, expected


def test_spikingjelly_simulates_our_graph(ours):
    exchange = peer("spikingjelly.activation_based.nir_exchange")
    path, x, expected = ours
    net = exchange.import_from_nir(path, dt=DT, step_mode="m")
    out, _ = net(x, None)
    assert torch.equal(out.detach(), expected)


def test_norse_simulates_our_graph(ours):
    norse = peer("norse.torch")
    path, x, expected = ours
    # Norse warns that IF's r = 1/dt is not 1: its IAF integrates the input as is, which is what r = 1/dt means
    net = norse.from_nir(nir.read(path), dt=DT, ignore_warnings=True)
    assert torch.equal(step_by_step(net, x), expected)


def test_spikingjelly_graph_simulates_alike_in_ours(tmp_path):
    exchange = peer("spikingjelly.activation_based.nir_exchange")
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(1)
    net = nn.Sequential(
        layer.Linear(12, 10), neuron.IFNode(v_threshold=0.5), layer.Linear(10, 6), neuron.LIFNode(tau=4.0, v_threshold=0.3)
    )
    boosted(net[0], net[2])
    functional.set_step_mode(net, "m")
    x = spikes((40, 3, 12), seed=1)
    with torch.no_grad():
        expected = net(x)
    functional.reset_net(net)
    path = tmp_path / "sj.nir"
    nir.write(path, exchange.export_to_nir(net, x[:, :1], dt=DT))  # SpikingJelly's default dt is 1e-4 too
    assert expected.sum() > 20
    with torch.no_grad():
        assert torch.equal(hn.from_nir(path, dt=DT)(x), expected)


def test_norse_graph_simulates_alike_in_ours():
    norse = peer("norse.torch")
    torch.manual_seed(2)
    cell = norse.LIFBoxCell
    net = norse.SequentialState(
        nn.Linear(12, 10),
        cell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(2000.0), v_th=torch.tensor(0.3)), dt=DT),
        nn.Linear(10, 6),
        cell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(2500.0), v_th=torch.tensor(0.2)), dt=DT),
    )
    boosted(net[0], net[2])
    x = spikes((40, 3, 12), seed=2)
    expected = step_by_step(net, x)
    # Norse 1.1.0 puts the sample's batch dimension in Input (export one sample: a leading 1, which we
    # accept) and writes tau = dt / tau_mem_inv, off by a factor of dt (norse issue 411): divide it back.
    # Its 0-d parameters are kept in memory: nir.write refuses 0-d arrays (it compresses every array).
    graph = norse.to_nir(net, x[0, :1], dt=DT)
    assert list(graph.nodes["input"].input_type["input"]) == [1, 12]
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF):
            node.tau = node.tau / DT
    assert expected.sum() > 20
    with torch.no_grad():
        assert torch.equal(hn.from_nir(graph, dt=DT)(x), expected)


def test_snntorch_graph_simulates_alike_in_ours():
    snntorch = peer("snntorch")
    nirtorch = peer("nirtorch")
    from snntorch import export_nir, utils

    torch.manual_seed(3)

    def leaky(beta, threshold, **kw):  # reset to zero: snnTorch's default subtraction would be written as a hard reset
        return snntorch.Leaky(beta=beta, threshold=threshold, init_hidden=True, reset_mechanism="zero", **kw)

    net = nn.Sequential(nn.Linear(12, 10), leaky(0.75, 0.3), nn.Linear(10, 6), leaky(0.5, 0.2, output=True))
    boosted(net[0], net[2])
    x = spikes((40, 3, 12), seed=3)
    # snnTorch 1.0's export_to_nir fails its own type inference (scalar Leaky parameters): build the
    # graph with the same extractor, without the failing check
    with pytest.raises(ValueError, match="Type inference error"):
        export_nir.export_to_nir(net, x[0, :1], ignore_dims=[0])
    graph = nirtorch.extract_nir_graph(
        net, export_nir._extract_snntorch_module, x[0, :1], model_name="snntorch", ignore_dims=[0]
    )
    utils.reset(net)
    expected = torch.stack([net(x_t)[0] for x_t in x]).detach()
    assert expected.sum() > 20
    with torch.no_grad():
        assert torch.equal(hn.from_nir(graph, dt=DT)(x), expected)
