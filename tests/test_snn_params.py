"""Parameter objects (``snn.params``): defaults reproduce the neurons, ``v_init`` / ``v_leak`` by hand,
tensor fields on the torch backend, and which backends run what."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_snn_neurons import eager_fused_loops  # noqa: F401  (autouse: the cpu backend's loops run eagerly)

import snn
from snn import backends
from snn import functional as F
from snn.surrogate import ATan, Sigmoid

KINDS = {
    "if": (snn.IF, snn.IFParameters),
    "lif": (snn.LIF, snn.LIFParameters),
    "plif": (snn.PLIF, snn.PLIFParameters),
    "alif": (snn.ALIF, snn.ALIFParameters),
    "cuba_lif": (snn.CubaLIF, snn.CubaLIFParameters),
    "izhikevich": (snn.Izhikevich, snn.IzhikevichParameters),
}
FUSED_CPU = ("torch", "numba")


def _fields(p: snn.NeuronParameters) -> dict:
    return {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}


@pytest.mark.parametrize("kind", KINDS)
def test_default_parameters_are_the_default_neurons(kind):
    neuron_cls, params_cls = KINDS[kind]
    got, want = _fields(neuron_cls().params()), _fields(params_cls())
    if kind == "plif":
        assert torch.equal(got.pop("w").detach(), want.pop("w"))
    assert got == want
    assert neuron_cls.param_cls is params_cls and params_cls.kind == kind


def test_parameters_are_frozen_and_validated():
    p = snn.LIFParameters()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.tau = 3.0
    with pytest.raises(TypeError):
        snn.LIFParameters(2.0)  # keyword-only: no positional tuples
    with pytest.raises(ValueError, match="tau must be >= 1"):
        snn.LIFParameters(tau=torch.tensor([2.0, 0.5]))
    with pytest.raises(ValueError, match="voltage_decay must be in"):
        snn.CubaLIFParameters(voltage_decay=1.5)
    with pytest.raises(TypeError, match="SurrogateFunction"):
        snn.IFParameters(surrogate=torch.sigmoid)
    assert dataclasses.replace(p, tau=4.0).tau == 4.0 and p.tau == 2.0
    assert p.tensor_fields() == () and snn.PLIFParameters().tensor_fields() == ("w",)


@pytest.mark.parametrize("kind", ["lif", "plif", "alif"])
@pytest.mark.parametrize("v_reset", [-0.2, None])
@pytest.mark.parametrize("backend", FUSED_CPU)
def test_explicit_defaults_give_identical_bits(kind, v_reset, backend):
    """v_init = v_leak = the resting value, spelled out, changes nothing on any backend."""
    neuron_cls, _ = KINDS[kind]
    rest = 0.0 if v_reset is None else v_reset
    torch.manual_seed(1)
    x = torch.randn(7, 3, 5) * 0.8 + 0.5
    default = neuron_cls(v_reset=v_reset, backend=backend)
    explicit = neuron_cls(v_reset=v_reset, v_init=rest, v_leak=rest, backend=backend)
    (s0, st0), (s1, st1) = default(x, return_state=True), explicit(x, return_state=True)
    assert torch.equal(s0, s1) and all(torch.equal(a, b) for a, b in zip(st0, st1, strict=True))


def test_v_init_by_hand():
    """IF, threshold 1, hard reset to 0, x = [0.6, 0.3, 0.3]: from rest it fires at t=2; from
    v_init=0.5 (low-latency conversion's half threshold) at t=0, then V = 0, 0.3, 0.6."""
    x = torch.tensor([0.6, 0.3, 0.3]).reshape(3, 1)
    for backend in FUSED_CPU:
        assert snn.IF(backend=backend)(x).flatten().tolist() == [0.0, 0.0, 1.0]
        spikes, state = snn.IF(v_init=0.5, backend=backend)(x, return_state=True)
        assert spikes.flatten().tolist() == [1.0, 0.0, 0.0]
        assert torch.allclose(state.v, torch.tensor([0.6]))
    p = snn.IFParameters(v_init=0.5)
    _, _, v_seq = F.multi_step(x, None, p, return_v_seq=True)
    assert torch.allclose(v_seq.flatten(), torch.tensor([0.0, 0.3, 0.6]))
    assert torch.equal(F.init_state(p, x[0]).v, torch.tensor([0.5]))


def test_v_leak_by_hand():
    # LIF tau=2, decay_input, hard reset to 0, leak towards 0.4, no input: H = V + (0.4 - V)/2
    x = torch.zeros(3, 1)
    _, _, v_seq = F.multi_step(x, None, snn.LIFParameters(v_leak=0.4), return_v_seq=True)
    assert torch.allclose(v_seq.flatten(), torch.tensor([0.2, 0.3, 0.35]))
    # soft reset, decay_input=False, leak towards -0.5: H0 = 0 - 0.5/2 + 1.5 = 1.25 fires, V = 0.25;
    # H1 = 0.25 - (0.25 + 0.5)/2 = -0.125
    p = snn.LIFParameters(v_reset=None, v_leak=-0.5, decay_input=False)
    spikes, _, v_seq = F.multi_step(torch.tensor([1.5, 0.0]).reshape(2, 1), None, p, return_v_seq=True)
    assert spikes.flatten().tolist() == [1.0, 0.0]
    assert torch.allclose(v_seq.flatten(), torch.tensor([0.25, -0.125]))
    # CubaLIF, decays 0.5, leak towards 0.2: I = 0.6, 0.3; H0 = 0.2 + (0 - 0.2)/2 + 0.6 = 0.7,
    # H1 = 0.2 + (0.7 - 0.2)/2 + 0.3 = 0.75
    p = snn.CubaLIFParameters(current_decay=0.5, voltage_decay=0.5, v_leak=0.2)
    _, _, v_seq = F.multi_step(torch.tensor([0.6, 0.0]).reshape(2, 1), None, p, return_v_seq=True)
    assert torch.allclose(v_seq.flatten(), torch.tensor([0.7, 0.75]))


@pytest.mark.parametrize("kind", ["lif", "plif", "alif"])
@pytest.mark.parametrize("v_reset", [-0.2, None])
def test_v_leak_on_the_fused_backends_equals_the_torch_loop(kind, v_reset):
    neuron_cls, _ = KINDS[kind]
    torch.manual_seed(2)
    x = torch.randn(8, 3, 6) * 0.8 + 0.5
    results = {}
    for backend in ("torch", "numba", "cpu"):
        if kind == "alif" and backend == "cpu":
            continue
        xs = x.clone().requires_grad_(True)
        neuron = neuron_cls(v_reset=v_reset, v_leak=0.3, surrogate=Sigmoid(), backend=backend)
        spikes, state = neuron(xs, return_state=True)
        ((spikes * torch.linspace(-1, 1, spikes.numel()).reshape(spikes.shape)).sum() + state.v.sum()).backward()
        results[backend] = (spikes, state.v, xs.grad, getattr(neuron, "w", torch.zeros(())).grad)
    want = results.pop("torch")
    assert want[0].any() and not want[0].all()
    assert not torch.equal(want[0], neuron_cls(v_reset=v_reset, surrogate=Sigmoid(), backend="torch")(x))
    for got in results.values():
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        torch.testing.assert_close(got[2], want[2], rtol=1e-5, atol=1e-5)
        if kind == "plif":
            torch.testing.assert_close(got[3], want[3], rtol=1e-4, atol=1e-4)


PER_NEURON = {  # one value per neuron of the last dim (3 neurons)
    "if": dict(v_threshold=[0.5, 1.0, 1.5], v_reset=[0.0, -0.3, 0.2]),
    "lif": dict(tau=[1.5, 2.0, 4.0], v_threshold=[0.8, 1.0, 1.2], v_leak=[0.0, 0.3, -0.2]),
    "plif": dict(w=[-1.0, 0.0, 0.5], v_init=[0.0, 0.5, -0.5]),
    "alif": dict(beta=[0.0, 0.2, 0.5], tau_adapt=[2.0, 5.0, 20.0]),
    "cuba_lif": dict(current_decay=[0.2, 0.5, 0.9], v_leak=[0.0, 0.1, -0.1]),
    "izhikevich": dict(a=[0.0, 0.1, 0.2], b=[0.0, 0.05, 0.1], w_rest=[0.0, 0.1, -0.1]),
}


@pytest.mark.parametrize("kind", PER_NEURON)
def test_per_neuron_tensor_fields_on_the_torch_backend(kind):
    """A layer with per-neuron fields equals each neuron run alone with float fields."""
    _, params_cls = KINDS[kind]
    values = PER_NEURON[kind]
    torch.manual_seed(3)
    x = torch.rand(9, 2, 3) * 1.6 - 0.1
    p = params_cls(surrogate=ATan(), **{k: torch.tensor(v) for k, v in values.items()})
    assert set(values) <= set(p.tensor_fields())
    spikes, state = F.multi_step(x, None, p)
    assert spikes.any()
    for j in range(3):
        own = {k: (torch.tensor(v[j]) if k == "w" else v[j]) for k, v in values.items()}
        s_j, state_j = F.multi_step(x[..., j], None, params_cls(surrogate=ATan(), **own))
        assert torch.equal(spikes[..., j], s_j), j
        for a, b in zip(state, state_j, strict=True):
            torch.testing.assert_close(a[..., j], b, rtol=0, atol=1e-6)


def test_per_channel_threshold_broadcasts_and_learns():
    """A [C, 1, 1] threshold against [T, B, C, H, W] input; gradients reach a learnable threshold."""
    x = torch.rand(4, 2, 3, 5, 5) * 2
    v_threshold = torch.tensor([0.5, 1.0, 100.0]).reshape(3, 1, 1).requires_grad_(True)
    spikes, _ = F.multi_step(x, None, snn.LIFParameters(v_threshold=v_threshold))
    assert spikes[:, :, 0].any() and not spikes[:, :, 2].any()
    spikes.sum().backward()
    assert v_threshold.grad.shape == (3, 1, 1) and v_threshold.grad[:2].abs().sum() > 0


def test_backend_resolution_falls_back_to_torch_for_tensor_fields(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    x = torch.rand(5, 2, 3) * 2
    per_neuron = snn.LIFParameters(v_threshold=torch.tensor([0.5, 1.0, 1.5]))
    assert backends.resolve_backend("auto", per_neuron, x) == "torch"
    for backend in ("numba", "cpu", "triton"):
        with pytest.raises(ValueError, match="tensor fields v_threshold.*runs on backend='torch'"):
            backends.resolve_backend(backend, per_neuron, x)
    spikes, _ = backends.multi_step("auto", x, None, per_neuron)
    assert torch.equal(spikes, F.multi_step(x, None, per_neuron)[0])
    # what the fused kernels do run: v_init of any shape (it is the initial state), PLIF's one-element w
    assert backends.resolve_backend("auto", snn.LIFParameters(v_init=torch.rand(2, 3)), x) == "numba"
    assert backends.resolve_backend("auto", snn.PLIFParameters(w=torch.tensor(0.3)), x) == "numba"
    assert backends.resolve_backend("auto", snn.PLIFParameters(w=torch.zeros(3)), x) == "torch"
    assert backends.resolve_backend("auto", snn.CubaLIFParameters(v_leak=0.1), x) == "torch"
    with pytest.raises(ValueError, match="CubaLIF's v_leak"):
        snn.CubaLIF(v_leak=0.1, backend="numba")
    assert backends.resolve_backend("auto", snn.CubaLIFParameters(), x) == "numba"


def test_v_init_tensor_runs_on_numba():
    x = torch.rand(5, 2, 3) * 2
    p = snn.LIFParameters(v_init=torch.tensor([0.0, 0.5, 0.9]))
    want = F.multi_step(x, None, p)
    got = backends.multi_step("numba", x, None, p)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1].v, want[1].v)


def test_neuron_attributes_feed_the_parameter_object_and_checkpoints_keep_their_names():
    neuron = snn.LIF(tau=3.0)
    neuron.v_threshold = 0.5
    assert neuron.params().v_threshold == 0.5 and neuron.params().tau == 3.0
    plif = snn.PLIF(init_tau=3.0)
    assert list(plif.state_dict()) == ["w"] and plif.params().w is plif.w
    assert list(snn.ALIF().state_dict()) == []
    with pytest.raises(TypeError, match="unexpected keyword argument 'tua'"):
        snn.LIF(tua=2.0)


def test_threshold_reset_and_initial_potential_refuse_nan_in_one_line():
    for field in ("v_threshold", "v_reset", "v_init", "v_leak"):
        with pytest.raises(ValueError, match=rf"^{field} must be a number, not NaN, got nan$"):
            snn.LIF(**{field: float("nan")}).params()
    with pytest.raises(ValueError, match=r"^beta must be a number, not NaN, got nan$"):  # accepted before
        snn.ALIF(beta=float("nan")).params()
    per_channel = torch.ones(64, 64)
    per_channel[3, 5] = float("nan")
    with pytest.raises(ValueError, match=r"^v_threshold must be a number, not NaN, got nan \(in a tensor of shape \[64, 64\]\)$"):
        snn.IF(v_threshold=per_channel).params()
