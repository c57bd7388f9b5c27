"""Fused Triton neuron kernels (snn.kernels.triton_neurons), run on CPU through Triton's interpreter.

Ground truth: SpikingJelly 2.0's own outputs and gradients captured into
tests/data/snn_spikingjelly_neurons.npz (see tests/data/capture_spikingjelly_neurons.py), the LIF
example in shared/docs/ANCHORS.md, and the plain-torch reference loops in snn.kernels.reference.
"""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported: kernels become Python on CPU tensors

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

triton = pytest.importorskip(
    "triton", reason="triton is not installed (optional dependency: pip install triton)"
)
from triton.runtime.interpreter import InterpretedFunction  # noqa: E402

from snn.kernels import triton_neurons  # noqa: E402
from snn.kernels.reference import SURROGATE_DEFAULT_ALPHA, neuron_multistep_reference  # noqa: E402
from snn.kernels.triton_neurons import neuron_multistep_triton  # noqa: E402

if not isinstance(triton_neurons._neuron_forward_kernel, InterpretedFunction):
    pytest.skip(
        "snn.kernels.triton_neurons was imported before TRITON_INTERPRET=1 was set, so its kernels "
        "were built for a GPU; run this file on its own: pytest tests/test_snn_triton.py",
        allow_module_level=True,
    )

SJ = np.load(Path(__file__).parent / "data" / "snn_spikingjelly_neurons.npz", allow_pickle=False)
SJ_CONFIGS = [str(c) for c in SJ["configs"]]
SURROGATES = list(SURROGATE_DEFAULT_ALPHA)


def _params(kind: str, v_reset: float | None, detach: bool, decay: bool, surrogate: str, tau) -> dict:
    return dict(
        v_threshold=1.0,
        v_reset=v_reset,
        detach_reset=detach,
        decay_input=decay,
        surrogate_name=surrogate,
        alpha=SURROGATE_DEFAULT_ALPHA[surrogate],
        tau=tau,
    )


def _run(fn, kind, x, v0, w, params, grad_spikes, grad_v_last):
    """Spikes, v_last and the gradients of <spikes, grad_spikes> + <v_last, grad_v_last>."""
    x = x.detach().clone().requires_grad_()
    v0 = v0.detach().clone().requires_grad_()
    inputs = [x, v0]
    if kind == "plif":
        w = w.detach().clone().requires_grad_()
        params = {**params, "tau": w}
        inputs.append(w)
    spikes, v_last = fn(kind, x, v0, **params)
    loss = (spikes.float() * grad_spikes).sum() + (v_last * grad_v_last).sum()
    return spikes, v_last, torch.autograd.grad(loss, inputs)


def _config_params(config: str) -> tuple[str, dict]:
    kind, surrogate, reset, detach, decay = config.split("-")
    v_reset = None if reset == "soft" else 0.0
    return kind, _params(kind, v_reset, detach == "1", decay == "1", surrogate, float(SJ["tau"]))


def _sj_expected(row: int):
    T, N = SJ["x"].shape
    values = torch.from_numpy(SJ["results"][row])
    sizes = [T * N, N, T * N, N, 1]
    spikes, v_last, grad_x, grad_v0, grad_w = torch.split(values, sizes)
    return spikes.view(T, N), v_last, grad_x.view(T, N), grad_v0, grad_w


def _sj_inputs():
    return tuple(torch.from_numpy(SJ[k]) for k in ("x", "v0", "w", "grad_spikes", "grad_v_last"))


@pytest.mark.parametrize("implementation", ["reference", "triton"])
@pytest.mark.parametrize("config", SJ_CONFIGS)
def test_matches_spikingjelly(config: str, implementation: str) -> None:
    """Every kind x surrogate x hard/soft reset x detach_reset x decay_input, fp32, against SpikingJelly."""
    fn = neuron_multistep_reference if implementation == "reference" else neuron_multistep_triton
    kind, params = _config_params(config)
    x, v0, w, grad_spikes, grad_v_last = _sj_inputs()
    spikes, v_last, grads = _run(fn, kind, x, v0, w, params, grad_spikes, grad_v_last)
    sj_spikes, sj_v_last, sj_grad_x, sj_grad_v0, sj_grad_w = _sj_expected(SJ_CONFIGS.index(config))
    assert torch.equal(spikes, sj_spikes)
    assert 0 < spikes.sum() < spikes.numel()  # the inputs exercise both branches
    torch.testing.assert_close(v_last, sj_v_last, rtol=0, atol=1e-6)
    torch.testing.assert_close(grads[0], sj_grad_x, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[1], sj_grad_v0, rtol=1e-5, atol=1e-6)
    if kind == "plif":
        torch.testing.assert_close(grads[2].reshape(1), sj_grad_w, rtol=1e-5, atol=1e-5)


def test_lif_anchor_example() -> None:
    """ANCHORS.md: LIF tau=2, inputs [0.5, 0.9, 1.5, 0, 2.5] -> spikes [0,0,1,0,1], hard-reset V [0.25, 0.575, 0, 0, 0]."""
    x = torch.tensor([0.5, 0.9, 1.5, 0.0, 2.5]).view(5, 1)
    params = _params("lif", 0.0, False, True, "sigmoid", 2.0)
    spikes, _ = neuron_multistep_triton("lif", x, None, **params)
    assert spikes.flatten().tolist() == [0, 0, 1, 0, 1]
    trace = [neuron_multistep_triton("lif", x[: t + 1], None, **params)[1].item() for t in range(5)]
    assert trace == pytest.approx([0.25, 0.575, 0.0, 0.0, 0.0], abs=1e-7)


def _random_case(kind: str, dtype: torch.dtype, shape=(4, 3, 7), seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen) * 1.5 + 0.4).to(dtype)
    v0 = torch.randn(shape[1:], generator=gen) * 0.5
    w = torch.tensor(-0.4)
    grad_spikes = torch.randn(shape, generator=gen)
    grad_v_last = torch.randn(shape[1:], generator=gen)
    return x, v0, w, grad_spikes, grad_v_last


def _assert_same_as_reference(kind, params, x, v0, w, grad_spikes, grad_v_last, grad_rtol=1e-5) -> None:
    got = _run(neuron_multistep_triton, kind, x, v0, w, params, grad_spikes, grad_v_last)
    want = _run(neuron_multistep_reference, kind, x, v0, w, params, grad_spikes, grad_v_last)
    assert got[0].dtype == x.dtype and got[1].dtype == torch.float32
    assert torch.equal(got[0], want[0])
    torch.testing.assert_close(got[1], want[1], rtol=0, atol=1e-6)
    for g, r in zip(got[2], want[2]):
        assert g.dtype == r.dtype
        torch.testing.assert_close(g, r, rtol=grad_rtol, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("kind", ["if", "lif", "plif"])
@pytest.mark.parametrize(
    ("v_reset", "detach", "decay"), [(0.0, False, True), (None, True, False), (-0.2, True, True)]
)
def test_dtypes_match_reference(kind: str, dtype: torch.dtype, v_reset, detach: bool, decay: bool) -> None:
    """Half inputs: spikes equal the reference run on the same values upcast; state and grads fp32 inside."""
    case = 3 * ["if", "lif", "plif"].index(kind) + [torch.bfloat16, torch.float16, torch.float32].index(dtype)
    surrogate = SURROGATES[case % len(SURROGATES)]
    params = _params(kind, v_reset, detach, decay, surrogate, 1.7)
    grad_rtol = 1e-5 if dtype == torch.float32 else 1e-2  # grad_x is rounded to x's dtype
    _assert_same_as_reference(kind, params, *_random_case(kind, dtype, seed=case), grad_rtol=grad_rtol)


@pytest.mark.parametrize("kind", ["lif", "plif"])
def test_several_programs_and_ragged_last_block(kind: str, monkeypatch) -> None:
    """40 neurons in blocks of 16: three programs, the last one masked; PLIF sums dL/dw across programs."""
    monkeypatch.setattr(triton_neurons, "_INTERPRETER_MAX_BLOCK", 16)
    params = _params(kind, None, False, True, "atan", 2.5)
    _assert_same_as_reference(kind, params, *_random_case(kind, torch.float32, shape=(5, 40), seed=7))


def test_non_contiguous_inputs() -> None:
    """Transposed x_seq, strided v0 and an expanded (stride-0) upstream gradient."""
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(6, 4, generator=gen) * 1.5 + 0.5).t()  # [T=4, N=6], not contiguous
    v0 = torch.randn(6, 2, generator=gen)[:, 0]
    assert not x.is_contiguous() and not v0.is_contiguous()
    params = _params("lif", 0.0, False, True, "sigmoid", 2.0)
    xs = [x.clone().requires_grad_() for _ in range(2)]
    outs = [
        fn("lif", xi, v0, **params)
        for fn, xi in zip((neuron_multistep_triton, neuron_multistep_reference), xs)
    ]
    for spikes, v_last in outs:
        (spikes.sum() + v_last.sum()).backward()  # d/d spikes is an expanded tensor of ones
    assert torch.equal(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=0, atol=1e-6)
    torch.testing.assert_close(xs[0].grad, xs[1].grad, rtol=1e-5, atol=1e-6)


def test_inference_without_grad_matches_training_forward() -> None:
    x, v0, *_ = _random_case("lif", torch.float32)
    params = _params("lif", 0.0, False, True, "sigmoid", 2.0)
    with torch.no_grad():
        spikes, v_last = neuron_multistep_triton("lif", x, v0, **params)
    ref_spikes, ref_v_last = neuron_multistep_reference("lif", x, v0, **params)
    assert torch.equal(spikes, ref_spikes) and torch.equal(v_last, ref_v_last)


def test_zero_time_steps_return_initial_state() -> None:
    v0 = torch.randn(3)
    spikes, v_last = neuron_multistep_triton(
        "if", torch.empty(0, 3), v0, **_params("if", 0.0, False, True, "rect", 2.0)
    )
    assert spikes.shape == (0, 3) and torch.equal(v_last, v0)


def test_torch_compile_fullgraph_forward_and_backward() -> None:
    """The custom ops trace as single nodes (fake impls + registered autograd) with no graph break.

    Uses the aot_eager backend: it runs the same tracing, fake tensors and AOT autograd as inductor
    but skips C++ code generation, which is slow on this 2-core machine and is not what is tested here.
    """

    def step(x, v0, w):
        s1, v1 = neuron_multistep_triton("plif", x, v0, **_params("plif", 0.0, False, True, "sigmoid", w))
        s2, v2 = neuron_multistep_triton("lif", s1 * 2.0, v1, **_params("lif", None, True, False, "erf", 2.0))
        return s2.sum() + v2.square().sum()

    x, v0, w, *_ = _random_case("plif", torch.float32)
    results = []
    for fn in (step, torch.compile(step, backend="aot_eager", fullgraph=True)):
        inputs = [t.clone().requires_grad_() for t in (x, v0, w)]
        loss = fn(*inputs)
        results.append((loss, *torch.autograd.grad(loss, inputs)))
    for eager, compiled in zip(*results):
        torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-6)


def test_opcheck_custom_ops() -> None:
    """torch.library.opcheck: schema, fake (meta) implementation and autograd registration agree."""
    x, v0, *_ = _random_case("lif", torch.float32, shape=(3, 5))
    k = torch.sigmoid(torch.tensor([0.2]))
    args = (
        x.requires_grad_(),
        v0.requires_grad_(),
        k,
        "plif",
        1.0,
        0.0,
        False,
        False,
        True,
        0.0,
        "atan",
        2.0,
        True,
    )
    torch.library.opcheck(triton_neurons.neuron_forward, args)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda p: neuron_multistep_triton("alif", torch.zeros(2, 3), None, **p), ValueError, "kind"),
        (
            lambda p: neuron_multistep_triton(
                "lif", torch.zeros(2, 3), None, **{**p, "surrogate_name": "tanh"}
            ),
            ValueError,
            "surrogate_name",
        ),
        (
            lambda p: neuron_multistep_triton("lif", torch.zeros(2, 3, dtype=torch.float64), None, **p),
            TypeError,
            "x_seq",
        ),
        (lambda p: neuron_multistep_triton("lif", torch.zeros(2, 3), torch.zeros(4), **p), ValueError, "v0"),
        (lambda p: neuron_multistep_triton("plif", torch.zeros(2, 3), None, **p), TypeError, "plif"),
        (
            lambda p: neuron_multistep_triton("lif", torch.zeros(2, 3), None, **{**p, "tau": 0.0}),
            ValueError,
            "tau",
        ),
        (
            lambda p: neuron_multistep_triton("lif", torch.zeros(2, 3), None, **{**p, "alpha": -1.0}),
            ValueError,
            "alpha",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call(_params("lif", 0.0, False, True, "sigmoid", 2.0))


def test_cpu_tensors_without_interpreter_are_refused(monkeypatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="CUDA"):
        neuron_multistep_triton(
            "lif", torch.zeros(2, 3), None, **_params("lif", 0.0, False, True, "sigmoid", 2.0)
        )


_SM90_COMPILE_CHECK = """
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from snn.kernels import triton_neurons as tn

def compile_for_h100(kernel, types, constexprs):
    signature = {name: "constexpr" if name in constexprs else types[name] for name in kernel.arg_names}
    source = ASTSource(kernel, signature, constexprs)
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4, "enable_fp_fusion": False})
    assert compiled.asm["cubin"]

forward = {"x_ptr": "*bf16", "v0_ptr": "*fp32", "k_ptr": "*fp32", "spikes_ptr": "*bf16", "h_ptr": "*fp32",
           "v_last_ptr": "*fp32", "T": "i32", "N": "i64", "v_threshold": "fp32", "v_reset": "fp32", "tau": "fp32"}
for kind, decay, soft in [(0, True, False), (1, True, True), (1, False, False), (2, True, False), (2, False, True)]:
    flags = {"KIND": kind, "DECAY_INPUT": decay, "SOFT_RESET": soft, "SAVE_H": kind != 1, "BLOCK": 512}
    compile_for_h100(tn._neuron_forward_kernel, forward, flags)
backward = {"grad_spikes_ptr": "*fp16", "grad_v_last_ptr": "*fp32", "h_ptr": "*fp32", "x_ptr": "*fp16",
            "v0_ptr": "*fp32", "k_ptr": "*fp32", "grad_x_ptr": "*fp16", "grad_v0_ptr": "*fp32",
            "grad_k_partial_ptr": "*fp32", "T": "i32", "N": "i32", "v_threshold": "fp32", "v_reset": "fp32",
            "tau": "fp32", "alpha": "fp32"}
for s in range(8):
    flags = {"KIND": s % 3, "DECAY_INPUT": s % 2 == 0, "SOFT_RESET": s % 4 < 2, "DETACH_RESET": s % 3 == 1,
             "SURROGATE": s, "BLOCK": 512}
    if s == 0:
        flags["T"] = 1  # Triton specializes integer arguments equal to 1 into constants
    compile_for_h100(tn._neuron_backward_kernel, backward, flags)
print("ok")
"""


def test_kernels_compile_for_h100() -> None:
    """Every kernel branch (kinds, resets, surrogates) compiles to an sm_90 cubin; no GPU needed.

    The interpreter runs the kernels as Python, so it cannot catch typing errors of the compiled
    path; this compiles them in a subprocess without TRITON_INTERPRET.
    """
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run(
        [sys.executable, "-c", _SM90_COMPILE_CHECK], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
