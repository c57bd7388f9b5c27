"""Model zoo: registry, shapes, gradients, and agreement with SpikingJelly's own networks.

``tests/data/spikingjelly_models.npz`` comes from ``tests/data/capture_spikingjelly_models.py``
(SpikingJelly 2.0 in the benchmark env): its parameter counts, and for reduced sizes its outputs
and gradient digests on a seeded state that both sides generate with ``tests/zoo_reference.py``.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import snn
import snn.models as zoo
from snn import layers
from snn.backends import cpu_backend, numba_backend
from snn.models.resnet import sew_connect
from tests.zoo_reference import checksum, deterministic_state, digest

DATA = Path(__file__).resolve().parent / "data" / "spikingjelly_models.npz"
REFERENCE = np.load(DATA, allow_pickle=False)
META = json.loads(str(REFERENCE["meta"]))
SEED = 7  # as in the capture script

# SpikingJelly case -> our build arguments at the zoo defaults (2 input channels, 11 classes unless noted)
ZOO_DEFAULTS = {
    "dvsgesture-net": ("dvsgesture-net", {}),
    "dvsgesture-net-lif": ("dvsgesture-net", {"neuron": "lif"}),
    "nmnist-csnn": ("nmnist-csnn", {}),  # its default dataset is nmnist: 34x34, 10 classes
    "spiking-resnet18": ("spiking-resnet18", {}),
    "sew-resnet18-add": ("sew-resnet18", {"connect": "ADD"}),
    "sew-resnet18-iand": ("sew-resnet18", {"connect": "IAND"}),
    "spiking-vgg11": ("spiking-vgg11", {}),
    "spiking-vgg16": ("spiking-vgg", {"depth": 16}),
}
# small builds for the shape tests (every model, every dataset preset)
SMALL = {
    "dvsgesture-net": {"channels": 4, "hidden": 16},
    "nmnist-csnn": {"channels": 4, "hidden": 16},
    "spiking-resnet18": {},
    "sew-resnet18": {"stem": "small"},  # also covers the small stem
    "spiking-vgg": {"depth": 11, "pool_size": 1, "hidden": 16},
    "spiking-vgg11": {"pool_size": 1, "hidden": 16},
}


@pytest.fixture(autouse=True)
def eager_fused_loops():
    """The fused CPU neuron path without torch.compile (compilation takes tens of seconds)."""
    before = cpu_backend.compile_enabled()
    cpu_backend.set_compile_enabled(False)
    yield
    cpu_backend.set_compile_enabled(before)


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_registry_lists_and_builds_every_model() -> None:
    assert snn.models.build is zoo.build  # reachable as snn.models after a plain ``import snn``
    assert zoo.available() == sorted(SMALL)
    assert zoo.options("spiking-vgg11")["depth"] == 11 and zoo.options("spiking-vgg")["depth"] == 11
    assert zoo.options("dvsgesture-net")["neuron"] == "plif"
    for name in zoo.available():
        assert isinstance(zoo.build(name, **SMALL[name]), zoo.SpikingClassifier)


def test_unknown_model_option_and_dataset_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet'.*dvsgesture-net"):
        zoo.build("resnet")
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        zoo.build("dvsgesture-net", dataset="mnist")
    with pytest.raises(TypeError, match="dvsgesture-net.*chanels"):
        zoo.build("dvsgesture-net", chanels=8)
    with pytest.raises(ValueError, match="readout"):
        zoo.build("nmnist-csnn", readout="last")
    with pytest.raises(ValueError, match="connect"):
        zoo.build("sew-resnet18", connect="OR")
    with pytest.raises(ValueError, match="too small"):
        zoo.build("dvsgesture-net", input_size=16)


@pytest.mark.parametrize("case", sorted(ZOO_DEFAULTS))
def test_parameter_counts_equal_spikingjelly(case: str) -> None:
    name, args = ZOO_DEFAULTS[case]
    with torch.device("meta"):  # counts only; no memory for VGG's 129 M parameters
        net = zoo.build(name, **args)
    assert n_params(net) == int(REFERENCE[f"{case}/n_params"])


def test_known_parameter_counts() -> None:
    """The counts quoted in docs/sections/model-zoo.md (PLIF adds one parameter per neuron layer)."""
    assert int(REFERENCE["dvsgesture-net/n_params"]) == 1_698_933
    assert int(REFERENCE["dvsgesture-net-lif/n_params"]) == 1_698_926


RAN = [c for c, m in META["cases"].items() if m["ran"]]


@pytest.mark.parametrize(
    ("case", "backend"),
    [(c, "auto") for c in RAN] + [("dvsgesture-net", "torch"), ("sew-resnet18-iand", "torch")],
)
def test_outputs_and_gradients_equal_spikingjelly(case: str, backend: str) -> None:
    """Same seeded state, same input: SpikingJelly's output, gradients and eval output."""
    name = ZOO_DEFAULTS[case][0]
    args = {**META["cases"][case]["zoo_args"], "backend": backend, "readout": "sequence"}
    net = zoo.build(name, **args).double()
    state = deterministic_state(net.state_dict(), SEED)
    assert checksum(state) == pytest.approx(float(REFERENCE[f"{case}/state_checksum"]), rel=1e-12)
    net.load_state_dict(state)
    x = torch.from_numpy(REFERENCE[f"{case}/x"]).double()
    g = torch.from_numpy(REFERENCE[f"{case}/g"])

    out = net.train()(x)
    torch.testing.assert_close(out, torch.from_numpy(REFERENCE[f"{case}/out"]), rtol=1e-9, atol=1e-9)
    (out * g).sum().backward()
    digests = torch.stack([digest(p.grad) for p in net.parameters()])
    torch.testing.assert_close(
        digests, torch.from_numpy(REFERENCE[f"{case}/grad_digest"]), rtol=1e-6, atol=1e-9
    )

    with torch.no_grad():
        out_eval = net.eval()(x)
    torch.testing.assert_close(
        out_eval, torch.from_numpy(REFERENCE[f"{case}/out_eval"]), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("dataset", sorted(zoo.DATASETS))
@pytest.mark.parametrize("name", sorted(set(SMALL) - {"spiking-vgg11"}))  # an alias of spiking-vgg, depth 11
def test_forward_backward_shapes(name: str, dataset: str) -> None:
    spec = zoo.dataset_spec(dataset)
    size = 34 if dataset == "nmnist" else 32  # reduced from 128x128: the layout allows it
    if SMALL[name].get("stem") == "small":
        size = 12
    net = zoo.build(name, dataset=dataset, input_size=size, **SMALL[name])
    assert net.num_classes == spec.num_classes and net.in_channels == spec.in_channels == 2
    x = torch.rand(3, 2, spec.in_channels, size, size)
    out = net(x)
    assert out.shape == (3, 2, spec.num_classes)  # per-step scores, the convention of every network
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_readouts_and_fresh_state_per_call() -> None:
    net = zoo.build("dvsgesture-net", input_size=32, channels=4, hidden=16).eval()
    assert net.readout == "sequence"  # the default: [T, B, ...] -> per-step [T, B, classes]
    x = (torch.rand(4, 2, 2, 32, 32) < 0.3).float()
    with torch.no_grad():
        sequence = net(x)
        again = net(x)  # no reset_net: every call starts at rest
        net.readout = "mean"  # the explicit option: [B, classes]
        mean = net(x)
    assert sequence.shape == (4, 2, 11)
    torch.testing.assert_close(again, sequence, rtol=0, atol=0)
    torch.testing.assert_close(mean, sequence.mean(0))


def test_bad_input_shape_is_a_clear_error() -> None:
    net = zoo.build("nmnist-csnn", channels=4, hidden=16)
    with pytest.raises(ValueError, match=r"\[T, B, 2, H, W\].*\(2, 2, 34, 34\)"):
        net(torch.zeros(2, 2, 34, 34))
    with pytest.raises(ValueError, match=r"\(2, 1, 3, 34, 34\)"):
        net(torch.zeros(2, 1, 3, 34, 34))


def test_voting_layer_is_spikingjellys_average_pool() -> None:
    """``VotingLayer(10)`` is ``avg_pool1d(kernel=stride=10)`` over the last dimension; ours agrees."""
    x = torch.rand(3, 2, 110)
    expected = torch.nn.functional.avg_pool1d(x.reshape(6, 1, 110), 10, 10).reshape(3, 2, 11)
    torch.testing.assert_close(layers.Voting(10)(x), expected)
    net = zoo.build("dvsgesture-net", input_size=32, channels=4, hidden=16, readout="sequence")
    assert isinstance(net.body[-1], layers.Voting) and net.body[-2].__class__ is snn.PLIF
    spikes = {}
    net.body[-2].register_forward_hook(lambda m, i, o: spikes.setdefault("out", o))
    out = net(torch.rand(2, 1, 2, 32, 32))
    assert spikes["out"].shape == (2, 1, 110)
    torch.testing.assert_close(out, spikes["out"].reshape(2, 1, 11, 10).mean(-1))


def test_neuron_and_surrogate_options_reach_every_neuron() -> None:
    net = zoo.build("sew-resnet18", neuron="lif", tau=3.0, surrogate="sigmoid", alpha=5.0, detach_reset=False)
    neurons = [m for m in net.modules() if isinstance(m, snn.Neuron)]
    assert len(neurons) == 1 + 2 * 8 + 3  # stem, two per block, three downsampling shortcuts
    for neuron in neurons:
        assert type(neuron) is snn.LIF and neuron.tau == 3.0 and not neuron.detach_reset
        assert neuron.surrogate == snn.surrogate.Sigmoid(5.0)
    assert len({id(n) for n in neurons}) == len(neurons)


def test_tdbn_scales_the_branches_meeting_at_the_addition() -> None:
    net = zoo.build("spiking-resnet18")
    block = net.body[
        6
    ]  # stem (4 modules), stage 1 (2 blocks), then stage 2, first block (with a downsampling shortcut)
    assert isinstance(block.bn1, layers.TdBatchNorm2d)
    torch.testing.assert_close(block.bn1.weight, torch.ones(128))
    torch.testing.assert_close(block.bn2.weight, torch.full((128,), 2**-0.5))
    torch.testing.assert_close(block.downsample[1].weight, torch.full((128,), 2**-0.5))


def test_sew_connect_functions_on_spikes() -> None:
    s = torch.tensor([0.0, 0.0, 1.0, 1.0])
    a = torch.tensor([0.0, 1.0, 0.0, 1.0])
    assert sew_connect(s, a, "ADD").tolist() == [0, 1, 1, 2]
    assert sew_connect(s, a, "AND").tolist() == [0, 0, 0, 1]
    assert sew_connect(s, a, "IAND").tolist() == [0, 0, 1, 0]  # shortcut AND NOT residual


def test_custom_neuron_factory() -> None:
    net = zoo.build(
        "nmnist-csnn", channels=4, hidden=16, neuron=lambda: snn.IF(v_threshold=0.5, backend="torch")
    )
    neurons = [m for m in net.modules() if isinstance(m, snn.Neuron)]
    assert len(neurons) == 4 and all(type(n) is snn.IF and n.v_threshold == 0.5 for n in neurons)
    with pytest.raises(TypeError, match="tau"):
        zoo.build("nmnist-csnn", neuron=lambda: snn.IF(), tau=2.0)


def _unfused_contiguous_copy(net: zoo.SpikingClassifier) -> zoo.SpikingClassifier:
    """``net`` run module by module (a plain nn.Sequential body) with contiguous convolutions."""
    reference = copy.deepcopy(net)
    reference.body = torch.nn.Sequential(*reference.body)
    for module in reference.modules():
        if isinstance(module, layers.Conv2d):
            module._forward_folded = functools.partial(torch.nn.Conv2d.forward, module)
            module.weight.data = module.weight.data.contiguous()
    return reference


def test_cpu_fast_path_equals_the_plain_modules(monkeypatch) -> None:
    """DVSGestureNet (fp32, numba neurons) with its channels_last convolutions and fused
    neuron + max-pool pairs gives the outputs and gradients of the same modules run one by one on
    contiguous tensors, and really takes both paths."""
    torch.manual_seed(2)
    net = zoo.build("dvsgesture-net", input_size=32, channels=8, hidden=32, n_blocks=3, readout="sequence")
    with torch.no_grad():  # the hidden and output neurons fire: an output that is not all zeros
        for linear in (m for m in net.body if isinstance(m, layers.Linear)):
            linear.weight.mul_(8.0)
    reference = _unfused_contiguous_copy(net)
    fused_calls, conv_layouts = [], []
    fused = numba_backend.neuron_maxpool2d
    monkeypatch.setattr(numba_backend, "neuron_maxpool2d", lambda *a, **k: fused_calls.append(1) or fused(*a, **k))
    net.body[0].register_forward_hook(lambda m, i, o: conv_layouts.append(o.flatten(0, 1).is_contiguous(
        memory_format=torch.channels_last)))  # fmt: skip
    assert all(  # channels_last weights on CPU, contiguous elsewhere
        m.weight.is_contiguous(memory_format=torch.channels_last) and not m.weight.is_contiguous()
        for m in net.modules()
        if isinstance(m, layers.Conv2d)
    )
    assert not copy.deepcopy(net).to("meta").body[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randint(0, 3, (6, 3, 2, 32, 32)).float()
    g = torch.randn(6, 3, 11)
    outs = []
    for model in (reference, net):
        torch.manual_seed(3)  # the same dropout masks
        out = model.train()(x)
        (out * g).sum().backward()
        outs.append(out.detach())
    assert len(fused_calls) == 3 and conv_layouts == [True]
    assert outs[0].any() and not outs[0].all()
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-6)
    for (name, p_ref), p in zip(reference.named_parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_hooked_neurons_see_unpooled_spikes() -> None:
    """A monitor's forward hooks turn the fusion off for the hooked pairs: it observes every spike."""
    torch.manual_seed(4)
    net = zoo.build("dvsgesture-net", input_size=32, channels=4, hidden=16, n_blocks=2)
    x = torch.randint(0, 3, (4, 2, 2, 32, 32)).float()
    plain = net(x)
    with snn.monitor.FiringRateMonitor(net) as monitor:
        monitored = net(x)
    torch.testing.assert_close(monitored, plain, rtol=0, atol=0)
    assert monitor.slots["body.2"] == 4 * 2 * 4 * 32 * 32  # the first neuron layer, before its pool
