"""Fused Triton neuron kernels (the "triton" backend), run on CPU through Triton's interpreter.

Ground truth: SpikingJelly 2.0's own outputs and gradients captured into
tests/data/snn_spikingjelly_neurons.npz (see tests/data/capture_spikingjelly_neurons.py), a hand-worked
LIF example whose values are written in the test (test_lif_anchor_example), and the plain-torch
reference loop (the "torch" backend).
"""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported: kernels become Python on CPU tensors

import subprocess  # noqa: E402
import sys  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

triton = pytest.importorskip(
    "triton", reason="triton is not installed (optional dependency: pip install triton)"
)
from triton.runtime.interpreter import InterpretedFunction  # noqa: E402

import snn  # noqa: E402
from snn import functional as F  # noqa: E402
from snn.backends import torch_backend, triton_backend  # noqa: E402
from snn.backends.fused import ONE_STATE_KINDS, TWO_STATE_KINDS, FusedConfig  # noqa: E402
from snn.kernels import triton_neurons  # noqa: E402
from snn.surrogate import NAMES, SurrogateFunction, by_name  # noqa: E402

if not isinstance(triton_neurons._neuron_forward_kernel, InterpretedFunction):
    pytest.skip(
        "snn.kernels.triton_neurons was imported before TRITON_INTERPRET=1 was set, so its kernels "
        "were built for a GPU; run this file on its own: pytest tests/test_snn_triton.py",
        allow_module_level=True,
    )

SJ = np.load(Path(__file__).parent / "data" / "snn_spikingjelly_neurons.npz", allow_pickle=False)
SJ_CONFIGS = [str(c) for c in SJ["configs"]]
SURROGATES = list(NAMES)
CUBA_DECAYS = dict(current_decay=float(SJ["current_decay"]), voltage_decay=float(SJ["voltage_decay"]))
ALL_KINDS = ONE_STATE_KINDS + TWO_STATE_KINDS


def _reference(x_seq, state, p):
    """The torch backend, spikes in x's dtype as the kernels return them (the state is fp32 in both)."""
    spikes, final = torch_backend.multi_step(x_seq, state, p)
    return spikes.to(x_seq.dtype), final


IMPLEMENTATIONS = {"triton": triton_backend.multi_step, "reference": _reference}


def _params(kind: str, v_reset: float | None, detach: bool, decay: bool, surrogate: str, tau: float):
    """The parameter object of ``kind`` (PLIF's ``w`` is set by :func:`_run`)."""
    common = dict(v_threshold=1.0, v_reset=v_reset, detach_reset=detach, surrogate=by_name(surrogate))
    if kind == "if":
        return snn.IFParameters(**common)
    if kind == "lif":
        return snn.LIFParameters(tau=tau, decay_input=decay, **common)
    if kind == "plif":
        return snn.PLIFParameters(decay_input=decay, **common)
    if kind == "alif":
        return snn.ALIFParameters(tau=tau, decay_input=decay, tau_adapt=5.0, beta=0.3, **common)
    return snn.CubaLIFParameters(**CUBA_DECAYS, **common)


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_()


def _run(implementation, p, x, v0, u0, w, grad_spikes, grad_v_last, grad_u_last):
    """(spikes, v_last, u_last or None, grads of the loss w.r.t. x, v0 and then u0 (two-state) or w (plif)).

    The loss is <spikes, grad_spikes> + <v_last, grad_v_last> (+ <u_last, grad_u_last>).
    """
    inputs = [_leaf(x), _leaf(v0)]
    two_state = p.kind in TWO_STATE_KINDS
    if two_state:
        inputs.append(_leaf(u0))
    elif p.kind == "plif":
        inputs.append(_leaf(w))
        p = replace(p, w=inputs[-1])
    state = F.STEPS[p.kind][1](*inputs[1 : 3 if two_state else 2])
    spikes, final = IMPLEMENTATIONS[implementation](inputs[0], state, p)
    u_last = final[1] if two_state else None
    loss = (spikes.float() * grad_spikes).sum() + (final.v * grad_v_last).sum()
    if two_state:
        loss = loss + (u_last * grad_u_last).sum()
    return spikes, final.v, u_last, torch.autograd.grad(loss, inputs)


def _sj_expected(row: int):
    T, N = SJ["x"].shape
    values = torch.from_numpy(SJ["results"][row])
    spikes, v_last, grad_x, grad_v0, grad_w = torch.split(values, [T * N, N, T * N, N, 1])
    return spikes.view(T, N), v_last, grad_x.view(T, N), grad_v0, grad_w


@pytest.mark.parametrize("implementation", ["reference", "triton"])
@pytest.mark.parametrize("config", SJ_CONFIGS)
def test_matches_spikingjelly(config: str, implementation: str) -> None:
    """IF/LIF/PLIF/CUBA-LIF x surrogate x hard/soft reset x detach_reset x decay_input, fp32, against SpikingJelly."""
    kind, surrogate, reset, detach, decay = config.split("-")
    p = _params(kind, None if reset == "soft" else 0.0, detach == "1", decay == "1", surrogate, float(SJ["tau"]))
    x, v0, w, grad_spikes, grad_v_last = (
        torch.from_numpy(SJ[k]) for k in ("x", "v0", "w", "grad_spikes", "grad_v_last")
    )
    zeros = torch.zeros_like(v0)  # CUBA-LIF: SpikingJelly starts the current at 0
    spikes, v_last, u_last, grads = _run(implementation, p, x, v0, zeros, w, grad_spikes, grad_v_last, zeros)
    row = SJ_CONFIGS.index(config)
    sj_spikes, sj_v_last, sj_grad_x, sj_grad_v0, sj_grad_w = _sj_expected(row)
    assert torch.equal(spikes, sj_spikes)
    assert 0 < spikes.sum() < spikes.numel()  # the inputs exercise both branches
    torch.testing.assert_close(v_last, sj_v_last, rtol=0, atol=1e-6)
    torch.testing.assert_close(grads[0], sj_grad_x, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[1], sj_grad_v0, rtol=1e-5, atol=1e-6)
    if kind == "plif":
        torch.testing.assert_close(grads[2].reshape(1), sj_grad_w, rtol=1e-5, atol=1e-5)
    if kind == "cuba_lif":
        torch.testing.assert_close(u_last, torch.from_numpy(SJ["cuba_i_last"][row]), rtol=0, atol=1e-6)


def test_lif_anchor_example() -> None:
    """The project's LIF anchor (hand-worked): tau=2, inputs [0.5, 0.9, 1.5, 0, 2.5] -> spikes [0,0,1,0,1], hard-reset V [0.25, 0.575, 0, 0, 0]."""
    x = torch.tensor([0.5, 0.9, 1.5, 0.0, 2.5]).view(5, 1)
    p = _params("lif", 0.0, False, True, "sigmoid", 2.0)
    spikes, _ = triton_backend.multi_step(x, None, p)
    assert spikes.flatten().tolist() == [0, 0, 1, 0, 1]
    trace = [triton_backend.multi_step(x[: t + 1], None, p)[1].v.item() for t in range(5)]
    assert trace == pytest.approx([0.25, 0.575, 0.0, 0.0, 0.0], abs=1e-7)


def test_alif_threshold_adapts_after_each_spike() -> None:
    """ALIF worked by hand: H = V/2 + 1.5 (tau=2, decay_input=False), theta = 1 + 0.5*A, A decays by 1/2.

    t0: H=1.5 >= 1 fires, V=0, A=1; t1: H=1.5 >= 1.5 fires, V=0, A=1.5; t2: H=1.5 < 1.75 silent,
    V=1.5, A=0.75; t3: H=2.25 >= 1.375 fires, V=0, A=1.375.
    """
    p = replace(_params("alif", 0.0, False, False, "sigmoid", 2.0), tau_adapt=2.0, beta=0.5)
    spikes, (v_last, a_last) = triton_backend.multi_step(torch.full((4, 1), 1.5), None, p)
    assert spikes.flatten().tolist() == [1, 1, 0, 1]
    assert v_last.item() == 0.0 and a_last.item() == 1.375


def _random_case(dtype: torch.dtype, shape=(4, 3, 7), seed: int = 0):
    """(x, v0, u0, w, grad_spikes, grad_v_last, grad_u_last) with a mix of firing and silent steps."""
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen) * 1.5 + 0.4).to(dtype)
    v0, u0 = torch.randn(shape[1:], generator=gen) * 0.5, torch.rand(shape[1:], generator=gen)
    grad_spikes = torch.randn(shape, generator=gen)
    grad_v_last, grad_u_last = torch.randn(shape[1:], generator=gen), torch.randn(shape[1:], generator=gen)
    return x, v0, u0, torch.tensor(-0.4), grad_spikes, grad_v_last, grad_u_last


def _assert_same_as_reference(p, case, grad_rtol=1e-5) -> None:
    got = _run("triton", p, *case)
    want = _run("reference", p, *case)
    assert got[0].dtype == case[0].dtype and got[1].dtype == torch.float32
    assert torch.equal(got[0], want[0])
    assert 0 < got[0].sum() < got[0].numel()
    torch.testing.assert_close(got[1], want[1], rtol=0, atol=1e-6)
    if p.kind in TWO_STATE_KINDS:
        torch.testing.assert_close(got[2], want[2], rtol=0, atol=1e-6)
    for g, r in zip(got[3], want[3]):
        assert g.dtype == r.dtype
        torch.testing.assert_close(g, r, rtol=grad_rtol, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize(
    ("v_reset", "detach", "decay"),
    [(0.0, False, True), (None, False, False), (-0.2, True, True), (None, True, True)],
)
def test_matches_reference(kind: str, dtype: torch.dtype, v_reset, detach: bool, decay: bool) -> None:
    """All kinds (incl. ALIF, whose adaptation gradient SpikingJelly has no counterpart for) and dtypes.

    Half inputs: spikes equal the reference run on the same values upcast (state is fp32 in both);
    grad_x is rounded to x's dtype. The surrogate rotates through all eight across the cases.
    """
    case = (
        3 * ALL_KINDS.index(kind) + [torch.bfloat16, torch.float16, torch.float32].index(dtype) + int(detach)
    )
    p = _params(kind, v_reset, detach, decay, SURROGATES[case % len(SURROGATES)], 1.7)
    grad_rtol = 1e-5 if dtype == torch.float32 else 1e-2
    _assert_same_as_reference(p, _random_case(dtype, seed=case), grad_rtol=grad_rtol)


@pytest.mark.parametrize("kind", ["lif", "plif", "alif", "cuba_lif"])
def test_several_programs_and_ragged_last_block(kind: str, monkeypatch) -> None:
    """40 neurons in blocks of 16: three programs, the last one masked; PLIF sums dL/dw across programs."""
    monkeypatch.setattr(triton_backend, "_INTERPRETER_MAX_BLOCK", 16)
    p = _params(kind, None, False, True, "atan", 2.5)
    _assert_same_as_reference(p, _random_case(torch.float32, shape=(5, 40), seed=7))


def test_non_contiguous_inputs() -> None:
    """Transposed x_seq, strided v0 and an expanded (stride-0) upstream gradient."""
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(6, 4, generator=gen) * 1.5 + 0.5).t()  # [T=4, N=6], not contiguous
    v0 = torch.randn(6, 2, generator=gen)[:, 0]
    assert not x.is_contiguous() and not v0.is_contiguous()
    p = _params("lif", 0.0, False, True, "sigmoid", 2.0)
    xs = [x.clone().requires_grad_() for _ in range(2)]
    outs = [fn(xi, F.MembraneState(v0), p) for fn, xi in zip(IMPLEMENTATIONS.values(), xs)]
    for spikes, state in outs:
        (spikes.sum() + state.v.sum()).backward()  # d/d spikes is an expanded tensor of ones
    assert torch.equal(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[0][1].v, outs[1][1].v, rtol=0, atol=1e-6)
    torch.testing.assert_close(xs[0].grad, xs[1].grad, rtol=1e-5, atol=1e-6)


def test_inference_without_grad_matches_training_forward() -> None:
    x, v0, *_ = _random_case(torch.float32)
    p = _params("lif", 0.0, False, True, "sigmoid", 2.0)
    with torch.no_grad():
        spikes, state = triton_backend.multi_step(x, F.MembraneState(v0), p)
    ref_spikes, ref_state = _reference(x, F.MembraneState(v0), p)
    assert torch.equal(spikes, ref_spikes) and torch.equal(state.v, ref_state.v)


def test_zero_time_steps_return_initial_state() -> None:
    v0 = torch.randn(3)
    spikes, state = triton_backend.multi_step(
        torch.empty(0, 3), F.MembraneState(v0), _params("if", 0.0, False, True, "rect", 2.0)
    )
    assert spikes.shape == (0, 3) and torch.equal(state.v, v0)


def test_torch_compile_fullgraph_forward_and_backward() -> None:
    """The custom ops trace as single nodes (fake impls + registered autograd) with no graph break.

    Uses the aot_eager backend: it runs the same tracing, fake tensors and AOT autograd as inductor
    but skips C++ code generation, which is slow on this 2-core machine and is not what is tested here.
    """

    plif_params = _params("plif", 0.0, False, True, "sigmoid", 2.0)
    alif_params = _params("alif", None, True, False, "erf", 2.0)

    def step(x, v0, w):
        s1, (v1,) = triton_backend.multi_step(x, F.MembraneState(v0), replace(plif_params, w=w))
        s2, (v2, a2) = triton_backend.multi_step(s1 * 2.0, F.AdaptiveState(v1, torch.zeros_like(v1)), alif_params)
        return s2.sum() + v2.square().sum() + a2.sum()

    x, v0, _, w, *_ = _random_case(torch.float32)
    results = []
    for fn in (step, torch.compile(step, backend="aot_eager", fullgraph=True)):
        inputs = [t.clone().requires_grad_() for t in (x, v0, w)]
        loss = fn(*inputs)
        results.append((loss, *torch.autograd.grad(loss, inputs)))
    for eager, compiled in zip(*results):
        torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["plif", "alif"])
def test_opcheck_custom_ops(kind: str) -> None:
    """torch.library.opcheck: schema, fake (meta) implementation and autograd registration agree."""
    x, v0, u0, *_ = _random_case(torch.float32, shape=(3, 5))
    u0 = u0 if kind == "alif" else v0.new_empty(0)
    k = torch.sigmoid(torch.tensor([0.2]))
    config = FusedConfig(
        kind=kind, v_threshold=1.0, v_reset=0.0, v_leak=0.0, detach_reset=False, surrogate="atan", alpha=2.0,
        tau=2.0, tau_adapt=5.0, beta=0.3, current_decay=0.5, voltage_decay=0.75,
    )  # fmt: skip
    args = (x.requires_grad_(), v0.requires_grad_(), u0.requires_grad_(), k)
    torch.library.opcheck(triton_backend.neuron_forward, args, {**config._asdict(), "save_h": True})


class _Tanh(SurrogateFunction):
    name = "tanh"


_X = torch.zeros(2, 3)
_LIF = snn.LIFParameters(surrogate=by_name("sigmoid"))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: triton_backend.multi_step(_X, None, snn.IzhikevichParameters()), ValueError, "izhikevich"),
        (lambda: triton_backend.multi_step(_X, None, snn.LIFParameters(surrogate=_Tanh())), ValueError, "surrogate"),
        (lambda: triton_backend.multi_step(_X.double(), None, _LIF), TypeError, "x_seq"),
        (lambda: triton_backend.multi_step(_X, F.MembraneState(torch.zeros(4)), _LIF), ValueError, "state.v"),
        (
            lambda: triton_backend.multi_step(_X, F.MembraneState(torch.zeros(3, device="meta")), _LIF),
            ValueError,
            "state.v is on meta",
        ),
        (
            lambda: triton_backend.multi_step(_X, None, snn.PLIFParameters(w=torch.zeros(3))),
            ValueError,
            "tensor fields w",
        ),
        (
            lambda: triton_backend.multi_step(
                _X, F.AdaptiveState(torch.zeros(3), torch.zeros(2)), snn.ALIFParameters()
            ),
            ValueError,
            "state.a",
        ),
        (lambda: triton_backend.multi_step(_X, None, snn.LIFParameters(tau=0.0)), ValueError, "tau"),
        (lambda: triton_backend.multi_step(_X, None, snn.LIFParameters(surrogate=by_name("atan", -1.0))), ValueError, "alpha"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call()


def test_cpu_tensors_without_interpreter_are_refused(monkeypatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="CUDA"):
        triton_backend.multi_step(torch.zeros(2, 3), None, _params("lif", 0.0, False, True, "sigmoid", 2.0))


_SM90_COMPILE_CHECK = """
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from snn.kernels import triton_neurons as tn

def compile_for_h100(kernel, io_dtype, constexprs):
    def arg_type(name):
        if name in constexprs:
            return "constexpr"
        if name.endswith("_ptr"):
            return io_dtype if name in ("x_ptr", "spikes_ptr", "grad_spikes_ptr", "grad_x_ptr") else "*fp32"
        return {"T": "i32", "N": "i64"}.get(name, "fp32")
    signature = {name: arg_type(name) for name in kernel.arg_names}
    # As Triton's launcher specializes them at run time: 16-byte aligned pointers, N % 16 == 0.
    aligned = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(kernel.arg_names)
               if name not in constexprs and (name.endswith("_ptr") or name == "N")}
    source = ASTSource(kernel, signature, constexprs, aligned)
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4, "enable_fp_fusion": False})
    assert compiled.asm["cubin"]
    return compiled.asm["ptx"]

for kind, decay, soft in [(0, True, False), (1, True, True), (1, False, False), (2, True, False), (2, False, True),
                          (3, True, True), (3, False, False), (4, True, False)]:
    for io_dtype, block in [("*fp32", 512), ("*bf16", 1024)][: 2 if kind == 1 else 1]:
        flags = {"KIND": kind, "DECAY_INPUT": decay, "SOFT_RESET": soft, "SAVE_H": kind != 1, "BLOCK": block}
        ptx = compile_for_h100(tn._neuron_forward_kernel, io_dtype, flags)
        if kind == 1:  # the launch heuristic's promise: one 16-byte vector per thread per tensor
            assert "ld.global.v4.b32" in ptx and "st.global.v4.b32" in ptx, ptx
for s in range(10):
    flags = {"KIND": s % 5, "DECAY_INPUT": s % 2 == 0, "SOFT_RESET": s % 4 < 2, "DETACH_RESET": s % 3 == 1,
             "SURROGATE": s % 8, "BLOCK": 1024}
    if s == 0:
        flags["T"] = 1  # Triton specializes integer arguments equal to 1 into constants
    compile_for_h100(tn._neuron_backward_kernel, "*fp16", flags)
print("ok")
"""


def test_kernels_compile_for_h100() -> None:
    """Every kernel branch (kinds, resets, surrogates) compiles to an sm_90 cubin; no GPU needed.

    Also checks the LIF forward uses 16-byte vector loads and stores at the heuristic's block sizes.

    The interpreter runs the kernels as Python, so it cannot catch typing errors of the compiled
    path; this compiles them in a subprocess without TRITON_INTERPRET.
    """
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run(
        [sys.executable, "-c", _SM90_COMPILE_CHECK], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
