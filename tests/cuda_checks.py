"""Correctness on a real CUDA device: compiled Triton neurons against the reference loop, and the
DVS128 Gesture network on the GPU against the same network on the CPU.

Run by ``tests/test_cuda.py`` in a fresh process (the interpreter tests set ``TRITON_INTERPRET=1``,
which must not leak into compiled kernels) and by ``benchmarks/device_check.sh`` on a lent GPU.
Prints one line per check and exits non-zero on the first mismatch.

    python tests/cuda_checks.py
    python tests/cuda_checks.py --dry-run   # CPU, Triton interpreter, tiny sizes: checks this script
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
DRY_RUN = "--dry-run" in sys.argv
if DRY_RUN:
    os.environ["TRITON_INTERPRET"] = "1"
else:
    os.environ.pop("TRITON_INTERPRET", None)
DEVICE = "cpu" if DRY_RUN else "cuda"

import torch  # noqa: E402

import snn  # noqa: E402
from snn.surrogate import ATan, Erf, Sigmoid  # noqa: E402

NEURONS = {
    "if": lambda b: snn.IF(v_reset=None, surrogate=Sigmoid(), backend=b),
    "lif": lambda b: snn.LIF(tau=1.7, decay_input=False, detach_reset=True, backend=b),
    "plif": lambda b: snn.PLIF(init_tau=2.5, v_reset=-0.2, surrogate=Erf(), backend=b),
    "alif": lambda b: snn.ALIF(tau=2.0, tau_adapt=3.0, beta=0.3, backend=b),
    "cuba_lif": lambda b: snn.CubaLIF(
        current_decay=0.6, voltage_decay=0.7, v_reset=None, surrogate=ATan(3.0), backend=b
    ),
}


def run_neuron(make, backend: str, x: torch.Tensor) -> tuple:
    """Spikes, final state and input gradient over two chunks (state handed across)."""
    neuron = make(backend).to(x.device)
    xs = x.clone().requires_grad_(True)
    first, state = neuron(xs[: len(x) // 2], return_state=True)
    second, state = neuron(xs[len(x) // 2 :], state=state, return_state=True)
    spikes = torch.cat([first, second])
    weights = torch.linspace(-1, 1, spikes.numel(), device=x.device).reshape(spikes.shape)
    (spikes.float() * weights).sum().backward()
    w_grad = neuron.w.grad if hasattr(neuron, "w") else None
    return spikes.detach().float(), [s.detach().float() for s in state], xs.grad.float(), w_grad


def check_neurons() -> None:
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        for name, make in NEURONS.items():
            torch.manual_seed(7)
            shape = (4, 2, 37) if DRY_RUN else (16, 8, 4099)  # odd sizes: partial blocks
            x = (torch.rand(*shape, device=DEVICE) * 2 - 0.3).to(dtype)
            ref = run_neuron(make, "torch", x.float())  # the fp32 reference on the same (rounded) inputs
            got = run_neuron(make, "triton", x)
            assert torch.equal(ref[0], got[0]), f"{name} {dtype}: spikes differ"
            state_tol = 1e-5 if dtype == torch.float32 else 1e-4  # fp32 state, reduced-precision decay terms
            for a, b in zip(ref[1], got[1]):
                torch.testing.assert_close(b, a, atol=state_tol, rtol=state_tol, msg=f"{name} {dtype}: state")
            tol = 1e-4 if dtype == torch.float32 else 2e-2  # gradients come back in the input dtype
            torch.testing.assert_close(got[2], ref[2], atol=tol, rtol=tol, msg=f"{name} {dtype}: grad x")
            if ref[3] is not None:
                torch.testing.assert_close(
                    got[3], ref[3], atol=1e-3, rtol=1e-3, msg=f"{name} {dtype}: grad w"
                )
            print(f"ok  triton {name:<8} {str(dtype):<15} spikes equal, state and gradients within {tol}")


def check_network() -> None:
    """DVSGestureNet (PLIF, T=4, batch 4, dropout off) with its fused neurons on the device (Triton on
    CUDA, Numba in the dry run) equals the same network with the plain-torch reference neurons on the
    same device: outputs and every parameter gradient. The outputs must also match a CPU run.

    Gradients are not compared across devices: the network is chaotic in them. On the CPU alone an
    fp32 run and an fp64 run of the same weights and input give equal outputs but parameter
    gradients that differ by 15-400 % (one threshold crossing flipped by rounding reroutes the
    surrogate gradient), so a cuDNN-vs-oneDNN summation order says nothing about our kernels. Within
    one device, with deterministic convolutions, both networks see the same currents."""
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.manual_seed(0)
    cpu = snn.models.build("dvsgesture-net")
    fused = snn.models.build("dvsgesture-net").to(DEVICE)
    reference = snn.models.build("dvsgesture-net").to(DEVICE)
    fused.load_state_dict(cpu.state_dict())
    reference.load_state_dict(cpu.state_dict())
    for module in [*cpu.modules(), *fused.modules(), *reference.modules()]:
        if isinstance(module, snn.layers.Dropout):
            module.p = 0.0  # CPU and CUDA would draw different masks
    neurons = [m for m in reference.modules() if isinstance(getattr(m, "backend", None), str)]
    assert neurons, "dvsgesture-net has no neuron layers?"
    for module in neurons:
        module.backend = "torch"
    x = (torch.rand(2 if DRY_RUN else 4, 2, 2, 128, 128) < 0.1).float()
    out_cpu = cpu(x)
    out_fused, out_reference = fused(x.to(DEVICE)), reference(x.to(DEVICE))
    torch.testing.assert_close(out_fused.detach().cpu(), out_cpu.detach(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out_fused, out_reference, atol=1e-5, rtol=1e-5)
    out_fused.sum().backward()
    out_reference.sum().backward()
    worst = max(
        float((p_f.grad - p_r.grad).abs().max() / (p_r.grad.abs().max() + 1e-12))
        for p_f, p_r in zip(fused.parameters(), reference.parameters())
    )
    silent = [n for n, p in reference.named_parameters() if not p.grad.abs().max() > 0]
    assert len(silent) <= 2, (
        f"zero gradients would make the check empty: {silent}"
    )  # the last FC may see no spikes
    assert worst < 1e-3, f"dvsgesture-net: relative gradient difference {worst:.2e}"
    print(
        f"ok  dvsgesture-net on {DEVICE}: fused neurons vs torch reference neurons, outputs within 1e-5 "
        f"(CPU within 1e-4), gradients within {worst:.1e} (relative)"
    )


if __name__ == "__main__":
    if not DRY_RUN and not torch.cuda.is_available():
        sys.exit("no CUDA device")
    print(
        f"device: {torch.cuda.get_device_name() if not DRY_RUN else 'cpu (dry run)'}  torch {torch.__version__}"
    )
    check_neurons()
    check_network()
