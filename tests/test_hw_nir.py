"""hw.nir: export to NIR, nir.write/nir.read, import, and the same spikes as the original model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import snn
from snn import layers

nir = pytest.importorskip("nir")
import hw.nir as hn  # noqa: E402


def spikes(shape, p=0.3, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def round_trip(model: nn.Module, input_shape, tmp_path, dt: float = 1e-4) -> nn.Module:
    """Export, write, read (type-checked) and import."""
    path = tmp_path / "model.nir"
    nir.write(path, hn.to_nir(model, input_shape, dt=dt))
    return hn.from_nir(path, dt=dt)


def run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def quantized_mlp() -> nn.Sequential:
    """Integer weights and thresholds: membrane potentials hit the threshold exactly, often."""
    torch.manual_seed(1)
    fc1, fc2 = layers.Linear(20, 16, bias=False), layers.Linear(16, 6)
    with torch.no_grad():
        fc1.weight.copy_(torch.randint(-2, 4, fc1.weight.shape).float())
        fc2.weight.copy_(torch.randint(-2, 4, fc2.weight.shape).float())
        fc2.bias.fill_(0.5)
    return nn.Sequential(fc1, snn.IF(v_threshold=3.0), fc2, snn.LIF(2.0, decay_input=False, v_threshold=2.0))


# -- the snn pieces the import needs ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_strict_threshold_fires_only_above(dtype):
    x = torch.full((4, 1, 1), 0.5, dtype=dtype)  # v: 0.5, 1.0 (equal: no spike when strict), 1.5, ...
    assert snn.IF(strict=True, v_reset=None)(x).flatten().tolist() == [0, 0, 1, 0]
    assert snn.IF(v_reset=None)(x).flatten().tolist() == [0, 1, 0, 1]


def test_per_neuron_fields_are_buffers_and_run():
    threshold = torch.tensor([0.5, 1.0, 2.0])
    neuron = snn.LIF(torch.tensor([2.0, 3.0, 4.0]), v_threshold=threshold, v_reset=torch.tensor([0.0, -0.5, 0.1]))
    assert {"tau", "v_threshold", "v_reset"} <= set(dict(neuron.named_buffers()))
    x = torch.ones(6, 2, 3)
    expected, _ = snn.functional.multi_step(x, None, neuron.params())
    assert torch.equal(neuron(x), expected)
    assert neuron(x)[:, :, 0].sum() > neuron(x)[:, :, 2].sum()  # the lower threshold fires more


def test_delay_and_integrators():
    x = torch.arange(12.0).reshape(4, 1, 3)
    y = layers.Delay(torch.tensor([0, 1, 2]))(x)[:, 0]
    assert y.tolist() == [[0, 0, 0], [3, 1, 0], [6, 4, 2], [9, 7, 5]]
    assert snn.Integrator()(torch.ones(3, 1, 1)).flatten().tolist() == [1, 2, 3]
    assert snn.LeakyIntegrator(2.0)(torch.ones(3, 1, 1)).flatten().tolist() == [0.5, 0.75, 0.875]


# -- round trips ------------------------------------------------------------------------------------
def test_quantized_round_trip_is_exact_where_potentials_equal_the_threshold(tmp_path):
    model = quantized_mlp()
    x = spikes((40, 8, 20))
    # the case that needs the shifted threshold: some potentials land exactly on it
    v, charged = torch.zeros(8, 16), []
    for current in run(model[0], x):
        charged.append(v + current)
        v = torch.where(charged[-1] >= 3.0, 0.0, charged[-1])
    assert (torch.stack(charged) == 3.0).sum() > 10
    imported = round_trip(model, (20,), tmp_path)
    assert torch.equal(run(imported, x), run(model, x))
    # writing our threshold unchanged would fire one step late where H == threshold exactly
    graph = hn.to_nir(model, (20,))
    graph.nodes["1"].v_threshold = np.full(16, 3.0, dtype=np.float32)
    assert not torch.equal(run(hn.from_nir(graph), x), run(model, x))


def test_threshold_written_one_float32_below():
    graph = hn.to_nir(quantized_mlp(), (20,))
    assert graph.nodes["1"].v_threshold.dtype == np.float32
    assert np.all(graph.nodes["1"].v_threshold == np.nextafter(np.float32(3.0), np.float32(0)))
    assert np.all(graph.nodes["1"].r == 1e4)  # IF: r = 1 / dt
    lif = graph.nodes["3"]
    assert np.allclose(lif.tau, 2e-4) and np.all(lif.r == 2.0)  # decay_input=False: r = tau_steps


@pytest.mark.parametrize(
    "neuron",
    [
        lambda: snn.IF(v_threshold=0.7, v_reset=-0.2),
        lambda: snn.LIF(3.0, v_threshold=0.6, v_reset=0.1, v_leak=-0.3),
        lambda: snn.LIF(5.0, decay_input=False, v_threshold=0.4),
        lambda: snn.PLIF(3.0, v_threshold=0.5),
        lambda: snn.CubaLIF(0.6, 0.9, v_threshold=0.5, v_leak=0.05),
        lambda: snn.CubaLIF(0.3, 0.7, v_threshold=0.5),
    ],
    ids=["if", "lif-leak", "lif-no-decay-input", "plif", "cuba-leak", "cuba"],
)
def test_neuron_kinds_round_trip_exactly(neuron, tmp_path):
    torch.manual_seed(2)
    model = nn.Sequential(layers.Linear(12, 10), neuron(), layers.Linear(10, 4), neuron())
    with torch.no_grad():
        for linear in (model[0], model[2]):
            linear.weight.mul_(3).add_(0.2)
    x = spikes((50, 4, 12), seed=3)
    out = run(model, x)
    assert out.sum() > 0
    assert torch.equal(run(round_trip(model, (12,), tmp_path), x), out)


def test_per_neuron_parameters_round_trip_exactly(tmp_path):
    g = torch.Generator().manual_seed(4)
    shape = (3, 6, 6)
    neuron = snn.LIF(
        1.0 + 9 * torch.rand(shape, generator=g),
        v_threshold=0.2 + torch.rand(shape, generator=g),
        v_reset=-0.2 * torch.rand(shape, generator=g),
        v_leak=0.1 * torch.randn(shape, generator=g),
    )
    cuba = snn.CubaLIF(torch.rand(3, 1, 1, generator=g), torch.rand(3, 1, 1, generator=g), v_threshold=0.3)
    torch.manual_seed(5)
    model = nn.Sequential(layers.Conv2d(2, 3, 3, padding=1), neuron, layers.Conv2d(3, 3, 3, padding=1), cuba)
    x = spikes((30, 2, 2, 6, 6), seed=6)
    out = run(model, x)
    assert 0 < out.mean() < 0.9
    assert torch.equal(run(round_trip(model, (2, 6, 6), tmp_path), x), out)


def test_soft_reset_and_initial_potential_travel_as_metadata(tmp_path):
    torch.manual_seed(7)
    model = nn.Sequential(layers.Linear(8, 8), snn.IF(v_reset=None, v_init=0.5, v_threshold=1.0))
    with pytest.warns(UserWarning, match="soft reset.*initial potential"):
        graph = hn.to_nir(model, (8,))
    node = graph.nodes["1"]
    assert node.metadata["neurodata_reset"] == "subtract"
    assert np.all(node.metadata["neurodata_v_init"] == 0.5)
    assert np.all(node.v_reset == 0)  # what other readers see
    path = tmp_path / "soft.nir"
    nir.write(path, graph)
    x = spikes((40, 3, 8), p=0.5, seed=8)
    out = run(model, x)
    assert torch.equal(run(hn.from_nir(path), x), out)
    # read as the hard reset NIR's fields alone say, the spikes differ: the metadata carries information
    node.metadata.clear()
    assert not torch.equal(run(hn.from_nir(graph), x), out)


def test_layers_without_neurons_round_trip(tmp_path):
    torch.manual_seed(9)
    model = nn.Sequential(
        layers.Conv2d(2, 4, 3, stride=2, padding=1),
        layers.SumPool2d(2),
        layers.Scale(torch.linspace(0.5, 1.5, 4).reshape(4, 1, 1)),
        layers.Threshold(0.2),
        layers.Delay(2),
        layers.AvgPool2d(2),
        layers.Flatten(),
        layers.Linear(4 * 2 * 2, 5, bias=False),
        snn.LeakyIntegrator(4.0, v_leak=0.1),
        snn.Integrator(v_init=0.25),
    )
    x = spikes((12, 2, 2, 16, 16), seed=10)
    graph = hn.to_nir(model, (2, 16, 16))
    kinds = [type(graph.nodes[n]).__name__ for n in map(str, range(10))]
    assert kinds == ["Conv2d", "SumPool2d", "Scale", "Threshold", "Delay", "AvgPool2d", "Flatten", "Linear", "LI", "I"]
    assert torch.equal(run(round_trip(model, (2, 16, 16), tmp_path), x), run(model, x))


def test_sew_resnet18_exports_and_imports(tmp_path):
    model = snn.models.build("sew-resnet18", stem="small", connect="ADD", input_size=16, num_classes=5).eval()
    torch.manual_seed(11)
    for m in model.modules():  # trained-looking batch norm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    graph = hn.to_nir(model, (2, 16, 16))
    kinds = {type(node).__name__ for node in graph.nodes.values()}
    assert kinds == {"Input", "Conv2d", "IF", "Scale", "AvgPool2d", "Flatten", "Affine", "Output"}
    junctions = [n for n, node in graph.nodes.items() if isinstance(node, nir.Scale)]
    assert len(junctions) == 8 and all(sum(dst == j for _, dst in graph.edges) == 2 for j in junctions)
    x = spikes((6, 2, 2, 16, 16), seed=12)
    expected = run(model.body, x)
    got = run(round_trip(model, (2, 16, 16), tmp_path), x)
    # batch norm folded into the convolutions changes the potentials by rounding only
    assert torch.allclose(got, expected, atol=1e-4)


# -- the importer against NIR's own equations -----------------------------------------------------
def test_import_follows_nir_forward_euler():
    n, dt = 5, 1e-3
    g = np.random.default_rng(13)
    tau, r = g.uniform(2e-3, 2e-2, n), g.uniform(0.5, 2.0, n)
    v_leak, th, reset = g.uniform(-0.1, 0.1, n), g.uniform(0.3, 0.8, n), g.uniform(-0.2, 0.0, n)
    node = nir.LIF(tau=tau, r=r, v_leak=v_leak, v_threshold=th, v_reset=reset)
    graph = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([n])), "lif": node, "out": nir.Output(np.array([n]))},
        edges=[("in", "lif"), ("lif", "out")],
    )
    current = g.uniform(0, 1.5, (200, 1, n))
    v, expected = np.zeros(n), []
    for i in current[:, 0]:
        v = v + dt / tau * ((v_leak - v) + r * i)
        s = v > th
        v = np.where(s, reset, v)
        expected.append(s)
    got = run(hn.from_nir(graph, dt=dt), torch.tensor(current, dtype=torch.float32))
    assert np.array(expected).sum() > 20
    assert (got[:, 0].numpy() == np.array(expected)).mean() > 0.99  # float32 against float64 rounding


# -- what does not export or import ------------------------------------------------------------------
def test_max_pooling_and_other_problems_are_all_named():
    model = snn.models.build("sew-resnet18", stem="imagenet", connect="AND", input_size=32)
    with pytest.raises(hn.NIRError) as info:
        hn.to_nir(model, (2, 32, 32))
    problems = info.value.problems
    assert any(p.startswith("layer '3'") and "max pooling" in p for p in problems)
    assert any("'4'" in p and "mul" in p for p in problems)  # the AND of the first SEW block
    model = nn.Sequential(layers.Linear(4, 4), snn.ALIF(), layers.MaxPool1d(2))
    with pytest.raises(hn.NIRError, match=r"layer '1': alif neurons.*layer '2': max pooling"):
        hn.to_nir(model, (4,))


def test_import_refuses_cycles_and_short_time_constants():
    n = np.array([3])
    lif = nir.LIF(tau=np.full(3, 1e-5), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3))
    graph = nir.NIRGraph(
        nodes={"in": nir.Input(n), "lif": lif, "out": nir.Output(n)}, edges=[("in", "lif"), ("lif", "out")]
    )
    with pytest.raises(hn.NIRError, match="node 'lif'.*tau must be >= 1"):
        hn.from_nir(graph, dt=1e-4)
    loop = nir.NIRGraph(
        nodes={"in": nir.Input(n), "a": nir.Scale(np.ones(3)), "b": nir.Scale(np.ones(3)), "out": nir.Output(n)},
        edges=[("in", "a"), ("a", "b"), ("b", "a"), ("b", "out")],
        type_check=False,
    )
    with pytest.raises(hn.NIRError, match="recurrent"):
        hn.from_nir(loop)


def test_import_refuses_graphs_whose_edges_do_not_connect():
    n = np.array([3])
    scale = nir.Scale(np.ones(3, np.float32))

    def graph(nodes, edges):
        return nir.NIRGraph(nodes={"in": nir.Input(n), **nodes, "out": nir.Output(n)}, edges=edges, type_check=False)

    with pytest.raises(hn.NIRError, match=r"edges name nodes \['zzz'\] that are not in the graph"):
        hn.from_nir(graph({}, [("in", "zzz"), ("in", "out")]))
    with pytest.raises(hn.NIRError, match=r"nodes \['b'\]: no edge leads to them"):  # ran on None before
        hn.from_nir(graph({"a": scale, "b": scale}, [("in", "a"), ("a", "out")]))
    with pytest.raises(hn.NIRError, match=r"nodes \['out'\]: no edge leads to them"):  # returned None before
        hn.from_nir(graph({"a": scale}, [("in", "a")]))
    lif = nir.LIF(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.array([1.0, np.nan, 1.0]))
    with pytest.raises(hn.NIRError, match=r"node 'a' \(LIF\): v_threshold must be a number, not NaN, got nan \(in a"):
        hn.from_nir(graph({"a": lif}, [("in", "a"), ("a", "out")]))


def test_import_names_a_damaged_or_missing_file(tmp_path):
    model = quantized_mlp().eval()
    path = tmp_path / "model.nir"
    nir.write(path, hn.to_nir(model, (20,)))
    data = path.read_bytes()
    (tmp_path / "cut.nir").write_bytes(data[: len(data) // 2])
    with pytest.raises(hn.NIRError, match=r"cut.nir: not a NIR file nir.read can read \(OSError"):
        hn.from_nir(tmp_path / "cut.nir")
    with pytest.raises(hn.NIRError, match=r"missing.nir: no such file"):
        hn.from_nir(tmp_path / "missing.nir")


def test_export_refuses_non_finite_weights_and_steps_and_a_shape_that_does_not_fit():
    model = quantized_mlp().eval()
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(hn.NIRError, match=r"layer '0': weight: NaN or infinite values"):
        hn.to_nir(model, (20,))
    conv = nn.Sequential(layers.Conv2d(2, 4, 3), layers.BatchNorm2d(4), snn.IF()).eval()
    conv[1].running_var[1] = -2.0  # the fold's square root: NaN
    with pytest.raises(hn.NIRError, match=r"layer '0': weight and bias \(with the batch norm after it folded in\)"):
        hn.to_nir(conv, (2, 8, 8))
    for dt in (float("inf"), float("nan"), 0.0):
        with pytest.raises(ValueError, match="dt must be a finite number > 0 seconds"):
            hn.to_nir(quantized_mlp(), (20,), dt=dt)
        with pytest.raises(ValueError, match="dt must be a finite number > 0 seconds"):
            hn.from_nir(hn.to_nir(quantized_mlp(), (20,)), dt=dt)
    with pytest.raises(hn.NIRError, match=r"^layer '0': input_shape \(21,\) does not fit \([^\n]*\)$"):
        hn.to_nir(quantized_mlp(), (21,))


def test_torch_flatten_inside_the_sequence_counts_time_and_batch(tmp_path):
    """A plain ``nn.Flatten`` in a multi-step model sees ``[T, B, ...]``: its dimensions are the
    sample's plus two (inside a SeqToANN plus one)."""
    torch.manual_seed(0)
    x = spikes((3, 2, 2, 8, 8))
    for flatten in (nn.Flatten(2), nn.Flatten(-3), layers.SeqToANN(nn.Flatten())):
        model = nn.Sequential(layers.Conv2d(2, 4, 3), snn.IF(), flatten, layers.Linear(144, 3), snn.IF()).eval()
        assert torch.equal(run(round_trip(model, (2, 8, 8), tmp_path), x), run(model, x))
    merged = nn.Sequential(layers.Conv2d(2, 4, 3), snn.IF(), nn.Flatten(), layers.Linear(144, 3), snn.IF())
    with pytest.raises(hn.NIRError, match=r"layer '2': Flatten\(start_dim=1, end_dim=-1\) merges the time or batch"):
        hn.to_nir(merged, (2, 8, 8))


def test_export_leaves_the_model_untouched():
    model = quantized_mlp().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hn.to_nir(model, (20,))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
