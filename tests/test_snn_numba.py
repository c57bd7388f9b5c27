"""The Numba CPU backend (``snn/backends/numba_backend.py``, ``snn/kernels/numba_neurons.py``).

Checked against SpikingJelly 2.0.0's captured outputs (``tests/data/spikingjelly_snn_reference.npz``,
written by ``tests/data/capture_spikingjelly_snn.py``, see ``test_snn_neurons.py``) and against the
reference loop :func:`snn.functional.multi_step` over every neuron kind, surrogate, reset mode,
``detach_reset`` and ``decay_input``: spikes and membrane potentials bit-identical in fp32,
gradients (input, initial potential, PLIF ``w``) to float rounding.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_snn_neurons import ARRAYS, CASES, build, run_with_grads

import snn
from snn import functional as F
from snn.backends import numba_backend, resolve_backend
from snn.backends.fused import ONE_STATE_KINDS as KINDS
from snn.backends.fused import TWO_STATE_KINDS
from snn.backends.numba_backend import multi_step, neuron_maxpool2d
from snn.kernels.numba_neurons import BLOCK, SURROGATE_IDS
from snn.surrogate import ATan, Sigmoid, SurrogateFunction, by_name

NUMBA_CASES = [c for c in CASES if c["neuron"] in KINDS + TWO_STATE_KINDS]
PARAMS = {
    "if": snn.IFParameters,
    "lif": snn.LIFParameters,
    "plif": snn.PLIFParameters,
    "alif": snn.ALIFParameters,
    "cuba_lif": snn.CubaLIFParameters,
}


def _flat(out) -> tuple[torch.Tensor, ...]:
    """``(spikes, state)`` as ``(spikes, *state)``."""
    return out[0], *out[1]
TWO_BLOCKS = (2, (BLOCK + 100) // 2)  # one time step's shape: a full block of neurons and a partial one


@pytest.mark.parametrize(
    "case", NUMBA_CASES, ids=[f"{c['id']}-{c['neuron']}-{c['surrogate']}" for c in NUMBA_CASES]
)
def test_matches_spikingjelly_captures(case):
    """Spikes and every step's membrane potential bit-exact; dL/dX and dL/dw to 1e-5."""
    neuron = build(case, backend="numba")
    cid = case["id"]
    spikes, grad_x = run_with_grads(neuron, cid)
    np.testing.assert_array_equal(spikes.numpy(), ARRAYS[f"{cid}/spikes"])
    np.testing.assert_allclose(grad_x.numpy(), ARRAYS[f"{cid}/grad_x"], rtol=1e-4, atol=1e-5)
    if case["neuron"] == "plif":
        np.testing.assert_allclose(
            neuron.w.grad.reshape(1).numpy(), ARRAYS[f"{cid}/grad_w"], rtol=1e-4, atol=1e-5
        )
    # the trace, one prefix at a time: V after step t is v_last of the run over x[:t+1]
    x = torch.from_numpy(ARRAYS[f"{cid}/x"])
    with torch.no_grad():
        trace = torch.stack([neuron(x[: t + 1], return_state=True)[1].v for t in range(x.shape[0])])
    np.testing.assert_array_equal(trace.numpy(), ARRAYS[f"{cid}/v_seq"])


def _neuron_kwargs(kind: str, decay_input: bool) -> dict:
    return {
        "if": {},
        "lif": {"tau": 1.8, "decay_input": decay_input},
        "plif": {"init_tau": 2.7, "decay_input": decay_input},
    }[kind]


def _run(neuron: snn.Neuron, x: torch.Tensor, v0: torch.Tensor, weights: torch.Tensor):
    """Spikes, v_last and the gradients of a loss touching both outputs (x, v0 and PLIF w)."""
    xs, vs = x.clone().requires_grad_(True), v0.clone().requires_grad_(True)
    spikes, state = neuron(xs, state=F.MembraneState(vs), return_state=True)
    ((spikes * weights).sum() + state.v.pow(2).sum()).backward()
    w_grad = neuron.w.grad.clone() if isinstance(neuron, snn.PLIF) else None
    return spikes.detach(), state.v.detach(), xs.grad, vs.grad, w_grad


GRID = [  # IF has no decay_input switch; every surrogate is looped over inside the test
    params
    for params in itertools.product(KINDS, [0.0, -0.25, None], [False, True], [True, False])
    if params[0] != "if" or params[3]
]


@pytest.mark.parametrize("kind,v_reset,detach_reset,decay_input", GRID)
def test_equals_reference_loop(kind, v_reset, detach_reset, decay_input):
    """Two blocks of neurons (the second partial), random initial potential, all 8 surrogates."""
    torch.manual_seed(11)
    x = torch.randn(7, *TWO_BLOCKS) * 0.8 + 0.5
    v0 = torch.randn(TWO_BLOCKS) * 0.3
    weights = torch.randn(x.shape)
    cls = {"if": snn.IF, "lif": snn.LIF, "plif": snn.PLIF}[kind]
    for surrogate in SURROGATE_IDS:
        results = {}
        for backend in ("torch", "numba"):
            neuron = cls(
                v_reset=v_reset,
                detach_reset=detach_reset,
                surrogate=by_name(surrogate, 1.7),
                backend=backend,
                **_neuron_kwargs(kind, decay_input),
            )
            results[backend] = _run(neuron, x, v0, weights)
        (s0, v0_, gx0, gv0, gw0), (s1, v1, gx1, gv1, gw1) = results["torch"], results["numba"]
        assert s0.any() and not s0.all()
        assert torch.equal(s0, s1) and torch.equal(v0_, v1), surrogate
        torch.testing.assert_close(gx1, gx0, rtol=1e-5, atol=1e-5, msg=surrogate)
        torch.testing.assert_close(gv1, gv0, rtol=1e-5, atol=1e-5, msg=surrogate)
        if kind == "plif":
            torch.testing.assert_close(gw1, gw0, rtol=1e-4, atol=1e-4, msg=surrogate)


TWO_STATE_GRID = [
    (make, surrogate, v_reset, detach_reset)
    for make in (
        lambda **kw: snn.ALIF(tau=2.0, tau_adapt=3.0, beta=0.3, **kw),
        lambda **kw: snn.ALIF(tau=1.6, tau_adapt=5.0, beta=0.5, decay_input=False, **kw),
        lambda **kw: snn.CubaLIF(current_decay=0.6, voltage_decay=0.7, **kw),
    )
    for surrogate in ("sigmoid", "atan", "rect")
    for v_reset in (0.0, -0.25, None)
    for detach_reset in (False, True)
]


@pytest.mark.parametrize("make,surrogate,v_reset,detach_reset", TWO_STATE_GRID)
def test_two_state_equals_reference_loop(make, surrogate, v_reset, detach_reset):
    """ALIF and CUBA LIF: spikes and both final states exact, gradients to x, v0 and u0 (A or I) close."""
    torch.manual_seed(12)
    x = torch.randn(8, *TWO_BLOCKS) * 0.8 + 0.5
    noise = (torch.randn(TWO_BLOCKS) * 0.2, torch.rand(TWO_BLOCKS) * 0.5)
    weights = torch.randn(x.shape)
    results = {}
    for backend in ("torch", "numba"):
        neuron = make(
            v_reset=v_reset, detach_reset=detach_reset, surrogate=by_name(surrogate, 2.5), backend=backend
        )
        rest = neuron.init_state(x[0])
        state0 = type(rest)(*((s + e).requires_grad_(True) for s, e in zip(rest, noise)))
        xs = x.clone().requires_grad_(True)
        spikes, state = neuron(xs, state=state0, return_state=True)
        ((spikes * weights).sum() + state[0].pow(2).sum() + state[1].pow(2).sum()).backward()
        results[backend] = (spikes, *state, xs.grad, state0[0].grad, state0[1].grad)
    assert results["torch"][0].any()
    for got, want in zip(results["numba"][:3], results["torch"][:3]):
        assert torch.equal(got, want)
    for got, want in zip(results["numba"][3:], results["torch"][3:]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_two_state_defaults_and_dtypes():
    """u0=None is zeros, v0=None the resting potential; bf16 input runs in fp32 like the fp32 input."""
    x = torch.rand(6, 2, 5) * 2
    rest = (torch.full((2, 5), -0.2), torch.zeros(2, 5))
    p = snn.ALIFParameters(v_reset=-0.2)
    got = _flat(multi_step(x, None, p))
    want = _flat(multi_step(x, F.AdaptiveState(*rest), p))
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    half = _flat(multi_step(x.bfloat16(), None, snn.CubaLIFParameters()))
    full = _flat(multi_step(x.bfloat16().float(), None, snn.CubaLIFParameters()))
    assert half[0].dtype == torch.bfloat16 and half[1].dtype == torch.float32
    assert (
        torch.equal(half[0].float(), full[0])
        and torch.equal(half[1], full[1])
        and torch.equal(half[2], full[2])
    )
    with pytest.raises(ValueError, match="state.a shape"):
        multi_step(x, F.AdaptiveState(rest[0], torch.zeros(5)), p)


def test_long_sequences_and_many_blocks_need_no_recompilation():
    """T and N change freely (the kernels are compiled once): T=200, N spanning 5 blocks."""
    torch.manual_seed(2)
    x = torch.randn(200, 5 * BLOCK - 3) * 0.6 + 0.4
    p = snn.LIFParameters(tau=3.0, surrogate=ATan())
    ref, ref_state = F.multi_step(x, None, p)
    spikes, state = multi_step(x, None, p)
    assert torch.equal(spikes, ref) and torch.equal(state.v, ref_state.v)


def test_non_contiguous_input_and_state():
    torch.manual_seed(4)
    base = torch.randn(3, 9, 6) + 0.5
    x = base.permute(1, 2, 0)  # [T=9, 6, 3], not contiguous
    v0 = torch.randn(3, 6).t()
    assert not x.is_contiguous() and not v0.is_contiguous()
    p = snn.IFParameters(v_reset=None)
    got = multi_step(x, F.MembraneState(v0), p)
    want = multi_step(x.contiguous(), F.MembraneState(v0.contiguous()), p)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1].v, want[1].v)


def test_upstream_gradient_on_one_output_only():
    torch.manual_seed(6)
    x = torch.randn(6, 4, 5) + 0.5
    for use in ("spikes", "v_last"):
        grads = {}
        for backend in ("torch", "numba"):
            xs = x.clone().requires_grad_(True)
            spikes, state = snn.LIF(tau=2.5, backend=backend)(xs, return_state=True)
            (spikes.sum() if use == "spikes" else state.v.sum()).backward()
            grads[backend] = xs.grad
        torch.testing.assert_close(grads["numba"], grads["torch"], rtol=1e-5, atol=1e-6)


def test_no_grad_builds_no_graph():
    x = (torch.rand(5, 2, 3) * 2).requires_grad_(True)
    neuron = snn.PLIF(backend="numba")
    with torch.no_grad():
        spikes = neuron(x)
    assert spikes.grad_fn is None and not spikes.requires_grad
    assert torch.equal(spikes, neuron(x).detach())


def test_v0_none_starts_at_rest():
    x = torch.rand(6, 4) * 2 - 0.5
    for v_reset in (-0.3, None):
        rest = torch.full((4,), 0.0 if v_reset is None else v_reset)
        p = snn.LIFParameters(v_reset=v_reset, tau=2.0)
        got = multi_step(x, None, p)
        want = multi_step(x, F.MembraneState(rest), p)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1].v, want[1].v)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_other_dtypes_compute_in_fp32_and_cast_back(dtype):
    """Spikes and dL/dX in the input's dtype, equal to the fp32 run on the same values; v_last in fp32."""
    torch.manual_seed(8)
    x = (torch.randn(6, 3, 4) + 0.5).to(dtype)
    v0 = torch.zeros(3, 4, dtype=dtype)
    w = torch.tensor(0.3, requires_grad=True)
    xs, x32 = x.clone().requires_grad_(True), x.float().requires_grad_(True)
    out = _flat(multi_step(xs, F.MembraneState(v0), snn.PLIFParameters(w=w)))
    (out[0].sum() + out[1].sum()).backward()
    w_grad, w.grad = w.grad.clone(), None
    ref = _flat(multi_step(x32, F.MembraneState(v0.float()), snn.PLIFParameters(w=w)))
    (ref[0].sum() + ref[1].sum()).backward()
    assert out[0].dtype == dtype and xs.grad.dtype == dtype and out[1].dtype == torch.float32
    assert torch.equal(out[0].float(), ref[0]) and torch.equal(out[1], ref[1])
    assert torch.equal(xs.grad, x32.grad.to(dtype))
    assert torch.equal(w_grad, w.grad)


def test_plif_w_gradient_is_independent_of_the_thread_count():
    """dL/dw is summed from fixed per-block partials: bit-identical with 1 or 2 threads."""
    torch.manual_seed(9)
    x = torch.randn(10, 4 * BLOCK) + 0.5
    grads = []
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            w = torch.tensor(-0.2, requires_grad=True)
            spikes, state = multi_step(x, None, snn.PLIFParameters(w=w, surrogate=Sigmoid(4.0)))
            (spikes.sum() + state.v.sum()).backward()
            grads.append(w.grad)
    finally:
        torch.set_num_threads(before)
    assert grads[0].item() != 0.0 and torch.equal(grads[0], grads[1])


def test_torch_thread_setting_is_left_alone():
    """Numba's OpenMP pool start-up resets the process-wide thread count; the backend restores torch's.

    In a fresh process, since the pool starts only once per process.
    """
    code = (
        "import torch, snn; from snn.backends.numba_backend import multi_step; torch.set_num_threads(1); "
        "multi_step(torch.rand(3, 4), None, snn.LIFParameters()); print(torch.get_num_threads())"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "1"


def test_auto_picks_numba_on_cpu(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    for kind in KINDS + TWO_STATE_KINDS:
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            assert resolve_backend("auto", PARAMS[kind](), torch.zeros(2, 1, dtype=dtype)) == "numba"
    # fp64 keeps its precision on the reference loop; neurons without a Numba kernel too
    assert resolve_backend("auto", snn.LIFParameters(), torch.zeros(2, 1, dtype=torch.float64)) == "torch"
    assert resolve_backend("auto", snn.IzhikevichParameters(), torch.zeros(2, 1)) == "torch"

    class Custom(SurrogateFunction):
        name = "custom"

    assert resolve_backend("auto", snn.LIFParameters(surrogate=Custom()), torch.zeros(2, 1)) == "torch"
    with pytest.raises(ValueError, match="runs on backend='torch'"):
        snn.Izhikevich(backend="numba")


def test_modules_with_auto_run_the_numba_kernels(monkeypatch):
    calls = []

    def spy(x_seq, state, p):
        calls.append(p.kind)
        return multi_step(x_seq, state, p)

    monkeypatch.setattr(numba_backend, "multi_step", spy)
    x = torch.rand(4, 2, 3) * 2
    for neuron in (snn.IF(), snn.LIF(), snn.PLIF(), snn.ALIF(), snn.CubaLIF()):
        neuron(x)
    assert calls == ["if", "lif", "plif", "alif", "cuba_lif"]


def test_bad_arguments_are_reported():
    x = torch.rand(3, 2)

    class Custom(SurrogateFunction):
        name = "tanh"

    with pytest.raises(ValueError, match=r"this neuron \(izhikevich neurons\) runs on backend='torch'"):
        multi_step(x, None, snn.IzhikevichParameters())
    with pytest.raises(ValueError, match="built-in surrogate"):
        multi_step(x, None, snn.LIFParameters(surrogate=Custom()))
    with pytest.raises(ValueError, match="state.v shape"):
        multi_step(x, F.MembraneState(torch.zeros(3)), snn.LIFParameters())
    with pytest.raises(ValueError, match="floating-point"):
        multi_step(torch.ones(3, 2, dtype=torch.int32), None, snn.IFParameters())
    with pytest.raises(ValueError, match="tensor fields w"):
        multi_step(x, None, snn.PLIFParameters(w=torch.zeros(2)))
    with pytest.raises(ValueError, match="T >= 1"):
        multi_step(torch.zeros(0, 2), None, snn.IFParameters())


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` [T, B, C, H, W] laid out as a channels_last convolution's output unfolded to 5-d."""
    return x.flatten(0, 1).contiguous(memory_format=torch.channels_last).reshape(x.shape)


def test_channels_last_input_runs_in_place_and_keeps_its_layout():
    """Elementwise within a step: a channels_last sequence gives the contiguous run's values and
    gradients, with spikes (and dL/dX) in the input's layout rather than a copy."""
    torch.manual_seed(5)
    x = torch.randn(6, 3, 16, 10, 12) * 0.8 + 0.5
    v0 = torch.randn(3, 16, 10, 12) * 0.3
    results = []
    for layout in (lambda t: t, _channels_last):
        xs = layout(x.clone()).requires_grad_(True)
        w = torch.tensor(0.2, requires_grad=True)
        spikes, state = multi_step(xs, F.MembraneState(v0), snn.PLIFParameters(w=w, detach_reset=True))
        (spikes * torch.arange(spikes.numel()).reshape(spikes.shape).sin()).sum().backward()
        results.append((xs, spikes, state.v, xs.grad, w.grad))
    (x0, s0, v_0, gx0, gw0), (x1, s1, v_1, gx1, gw1) = results
    assert s1.stride() == x1.stride() and gx1.stride() == x1.stride()
    assert torch.equal(s0, s1) and torch.equal(v_0, v_1) and torch.equal(gx0, gx1)
    torch.testing.assert_close(gw1, gw0, rtol=1e-5, atol=1e-6)


def _neuron_then_pool(x: torch.Tensor, state: F.MembraneState, p):
    spikes, state = multi_step(x, state, p)
    return torch.nn.functional.max_pool2d(spikes.flatten(0, 1), 2).unflatten(0, x.shape[:2]), state


POOL_GRID = [
    (kind, v_reset, detach_reset, layout)
    for kind in KINDS
    for v_reset, detach_reset in ((0.0, True), (None, False), (-0.25, False))
    for layout in ("contiguous", "channels_last")
]


@pytest.mark.parametrize("kind,v_reset,detach_reset,layout", POOL_GRID)
def test_neuron_maxpool_equals_neuron_then_torch_max_pool(kind, v_reset, detach_reset, layout):
    """The fused neuron + 2x2 max-pool against the two ops run one after the other: pooled spikes,
    v_last, dL/dX, dL/dV0 (the pool's gradient to the first maximum of each window, zero windows
    included) and PLIF's dL/dw. The images span several blocks (contiguous: the last one partial)."""
    torch.manual_seed(3)
    shape = (5, 3, 24, 10, 2 * (BLOCK // 48) + 2)  # one row pair of 24 channels: just over BLOCK / 2
    x = torch.randn(shape) * 0.8 + 0.5
    if layout == "channels_last":
        x = _channels_last(x)
    v0 = torch.randn(shape[1:]) * 0.3
    results = []
    for run in (_neuron_then_pool, neuron_maxpool2d):
        xs, vs = x.clone().requires_grad_(True), v0.clone().requires_grad_(True)
        w = torch.tensor(0.4, requires_grad=True)
        own = {"if": {}, "lif": {"tau": 1.7}, "plif": {"w": w}}[kind]
        p = PARAMS[kind](v_reset=v_reset, detach_reset=detach_reset, **own)
        pooled, (v_last,) = run(xs, F.MembraneState(vs), p)
        weights = torch.arange(pooled.numel()).reshape(pooled.shape).cos()
        ((pooled * weights).sum() + v_last.pow(2).sum()).backward()
        results.append((pooled.detach(), v_last.detach(), xs.grad, vs.grad, w.grad))
    (p0, v_0, gx0, gv0, gw0), (p1, v_1, gx1, gv1, gw1) = results
    assert p0.any() and not p0.all()  # windows with spikes (mostly several: ties) and windows without
    assert p1.shape == (*shape[:3], shape[3] // 2, shape[4] // 2)
    assert torch.equal(p0, p1) and torch.equal(v_0, v_1)
    assert torch.equal(gx0, gx1) and torch.equal(gv0, gv1)
    if kind == "plif":
        torch.testing.assert_close(gw1, gw0, rtol=1e-5, atol=1e-6)


def test_neuron_maxpool_shape_errors():
    with pytest.raises(ValueError, match="even H and W"):
        neuron_maxpool2d(torch.rand(2, 1, 1, 4, 5), None, snn.LIFParameters())
    with pytest.raises(ValueError, match=r"\[T, B, C, H, W\]"):
        neuron_maxpool2d(torch.rand(2, 4, 4), None, snn.LIFParameters())


def test_torch_compile_of_a_model_calls_the_kernels_eagerly():
    """torch.compile of a network around the numba neurons (Dynamo graph-breaks at them instead of
    tracing into the kernels' arguments, which Numba then rejected) gives the eager values and gradients."""
    torch.manual_seed(6)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), snn.PLIF(backend="numba"), torch.nn.Linear(16, 4))
    x = torch.randn(5, 3, 8) * 2.0
    eager = net(x)
    eager.sum().backward()
    grads = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    compiled = torch.compile(net, backend="eager")(x)
    compiled.sum().backward()
    assert torch.equal(compiled, eager)
    for p, g in zip(net.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g)
