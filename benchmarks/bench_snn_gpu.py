"""GPU benchmark: fused Triton LIF forward+backward, ours vs SpikingJelly's Triton path vs the memory floor.

Workload (as in SpikingJelly's own figures): x [T, 64, 65536], T in {4, 32, 128}, fp32 and bf16,
LIF tau=2 hard reset, sigmoid surrogate, one forward plus one backward with random upstream
gradients for the spikes and the last potential. Before timing, each case is checked: our spikes must
equal the plain-torch reference exactly (on a slice of neurons) and gradients must agree; SpikingJelly's
spikes must equal ours.

Floor = T*N*(bytes of x + s + 2*h + grad_s + grad_x) / copy bandwidth, h being the fp32 potential the
forward saves and the backward reads; copy bandwidth is measured here with a large device-to-device copy
(read + write bytes / time). Timings are CUDA events around each call, after warmup, ours and
SpikingJelly's interleaved, medians reported.

    python benchmarks/bench_snn_gpu.py            # on a CUDA machine (about 1-2 minutes on an H100)
    python benchmarks/bench_snn_gpu.py --sweep    # also times our kernels at other launch shapes
    python benchmarks/bench_snn_gpu.py --dry-run  # CPU, Triton interpreter, tiny sizes: checks the script
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ARGS = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ARGS.add_argument("--dry-run", action="store_true", help="CPU + TRITON_INTERPRET=1 with tiny sizes")
ARGS.add_argument("--steps", default="4,32,128", help="comma-separated T values")
ARGS.add_argument("--batch", type=int, default=64)
ARGS.add_argument("--features", type=int, default=65536)
ARGS.add_argument("--dtypes", default="float32,bfloat16")
ARGS.add_argument("--warmup", type=int, default=5)
ARGS.add_argument("--reps", type=int, default=25)
ARGS.add_argument(
    "--sweep", action="store_true", help="also time ours at other BLOCK/num_warps launch shapes"
)
OPTS = ARGS.parse_args()
if OPTS.dry_run:
    os.environ["TRITON_INTERPRET"] = "1"  # must precede the first triton import
    OPTS.steps, OPTS.batch, OPTS.features, OPTS.warmup, OPTS.reps = "4", 2, 64, 1, 2
if not OPTS.dry_run:
    os.environ.setdefault("SJ_LIF_CUDA_IMPLEMENTATION", "triton")  # SpikingJelly: pick its Triton LIF

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import snn  # noqa: E402
from snn import functional as F  # noqa: E402
from snn.backends import torch_backend, triton_backend  # noqa: E402
from snn.surrogate import Sigmoid  # noqa: E402

DEVICE = torch.device("cpu" if OPTS.dry_run else "cuda")
LIF = snn.LIFParameters(
    v_threshold=1.0, v_reset=0.0, detach_reset=False, decay_input=True, surrogate=Sigmoid(4.0), tau=2.0
)
CHECK_NEURONS = 100 if OPTS.dry_run else 1 << 16  # the reference loop runs on this many neurons


def spikingjelly_lif():
    """SpikingJelly's functional multi-step LIF (its Triton kernels on CUDA), or a reason it is unavailable."""
    try:
        from spikingjelly.activation_based import surrogate
        from spikingjelly.activation_based.functional import neuron as sj
    except Exception as e:  # noqa: BLE001 - any import failure means "not available here"
        return None, f"not importable ({type(e).__name__}: {e})"
    sigmoid = surrogate.Sigmoid(alpha=LIF.surrogate.alpha)

    def run(x, v0):
        s, v, _ = sj.lif_multi_step(x, v0, LIF.tau, True, LIF.v_threshold, LIF.v_reset, sigmoid, False)
        return s, v

    return run, ""


def ours(x, v0):
    spikes, state = triton_backend.multi_step(x, F.MembraneState(v0), LIF)
    return spikes, state.v


def reference(x, v0):
    spikes, state = torch_backend.multi_step(x, F.MembraneState(v0), LIF)
    return spikes.to(x.dtype), state.v


def fwd_bwd(fn, x, v0, grad_s, grad_v):
    x.grad = None
    s, v = fn(x, v0)
    torch.autograd.backward([s, v], [grad_s, grad_v])
    return s, v, x.grad


def timer(fn) -> float:
    """Milliseconds one call of fn takes on the device."""
    if DEVICE.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def copy_bandwidth_gbs() -> float:
    """Device-to-device copy bandwidth: (read + write) bytes / median time."""
    n_bytes = (1 << 30) if DEVICE.type == "cuda" else (1 << 24)
    src = torch.empty(n_bytes // 4, dtype=torch.float32, device=DEVICE).uniform_()
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    ms = statistics.median(timer(lambda: dst.copy_(src)) for _ in range(20))
    return 2 * n_bytes / (ms * 1e-3) / 1e9


def make_case(steps: int, dtype: torch.dtype):
    gen = torch.Generator(device=DEVICE).manual_seed(steps)
    shape = (steps, OPTS.batch, OPTS.features)
    x = (torch.randn(shape, generator=gen, device=DEVICE) * 1.5 + 0.5).to(dtype).requires_grad_()
    v0 = torch.zeros(shape[1:], device=DEVICE)
    grad_s = torch.randn(shape, generator=gen, device=DEVICE).to(dtype)
    grad_v = torch.randn(shape[1:], generator=gen, device=DEVICE)
    return x, v0, grad_s, grad_v


def check(x, v0, grad_s, grad_v, sj) -> str:
    """Assert ours matches the reference on a slice and SpikingJelly on everything; returns a note."""
    per_step = lambda t: t.reshape(len(t), -1)[:, :CHECK_NEURONS]  # noqa: E731 - [T, ...] -> [T, n]
    state = lambda t: t.reshape(-1)[:CHECK_NEURONS]  # noqa: E731 - [...] -> [n]
    xs = per_step(x.detach()).clone().requires_grad_()
    args = (state(v0).contiguous(), per_step(grad_s).contiguous(), state(grad_v).contiguous())
    s, v, gx = fwd_bwd(ours, xs, *args)
    rs, rv, rgx = fwd_bwd(reference, xs, *args)
    assert torch.equal(s, rs), f"spikes differ from the reference at {int((s != rs).sum())} places"
    torch.testing.assert_close(v, rv, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        gx.float(), rgx.float(), rtol=1e-2 if x.dtype != torch.float32 else 1e-4, atol=1e-4
    )
    if sj is None:
        return "ours == reference"
    s, v, gx = (t.detach().clone() for t in fwd_bwd(ours, x, v0, grad_s, grad_v))
    js, jv, jgx = fwd_bwd(sj, x, v0, grad_s, grad_v)
    mismatches = int((s != js).sum())
    grad_diff = float((gx.float() - jgx.float()).abs().max())
    return f"ours == reference; vs SJ: {mismatches} spike mismatches, max |grad_x diff| {grad_diff:.2e}"


def forward_only(fn, x, v0):
    with torch.no_grad():
        return fn(x, v0)


def median_ms(fn, others=()) -> list[float]:
    """Median ms per call of fn and of each of others, interleaved call by call."""
    fns = [fn, *others]
    for f in fns:
        for _ in range(OPTS.warmup):
            f()
    samples = [[] for _ in fns]
    for _ in range(OPTS.reps):
        for f, out in zip(fns, samples):
            out.append(timer(f))
    return [statistics.median(s) for s in samples]


def bench_case(steps: int, dtype: torch.dtype, sj, bandwidth: float) -> dict:
    """Timings (median ms), memory floor, launch-shape sweep and correctness note for one (T, dtype)."""
    x, v0, grad_s, grad_v = make_case(steps, dtype)
    try:
        note = check(x, v0, grad_s, grad_v, sj)
    except AssertionError:
        raise  # ours is wrong: stop, a timing would be meaningless
    except Exception as e:  # noqa: BLE001 - SpikingJelly failing must not hide our numbers
        note, sj = f"ours == reference; SpikingJelly failed: {type(e).__name__}: {e}", None
    sj_train = [lambda: fwd_bwd(sj, x, v0, grad_s, grad_v)] if sj else []
    sj_infer = [lambda: forward_only(sj, x, v0)] if sj else []
    train = median_ms(lambda: fwd_bwd(ours, x, v0, grad_s, grad_v), sj_train)
    infer = median_ms(lambda: forward_only(ours, x, v0), sj_infer)
    elem = x.element_size()
    floor_ms = steps * v0.numel() * (elem + elem + 2 * 4 + elem + elem) / (bandwidth * 1e9) * 1e3
    sweep = {}
    if OPTS.sweep:
        for shape in ((256, 2), (512, 4), (1024, 4), (1024, 8), (2048, 8)):
            triton_backend.LAUNCH_OVERRIDE = shape
            sweep[f"{shape[0]}/{shape[1]}"] = median_ms(lambda: fwd_bwd(ours, x, v0, grad_s, grad_v))[0]
        triton_backend.LAUNCH_OVERRIDE = None
    print(f"  done: {dtype} T={steps}: ours fwd+bwd {train[0]:.3f} ms", flush=True)
    return dict(dtype=str(dtype).removeprefix("torch."), steps=steps, train=train, infer=infer,
                floor=floor_ms, sweep=sweep, note=note)  # fmt: skip


def _ms(times: list[float], i: int) -> str:
    return f"{times[i]:9.3f}" if len(times) > i else f"{'n/a':>9}"


def main() -> None:
    device_name = (
        torch.cuda.get_device_name() if DEVICE.type == "cuda" else "CPU (Triton interpreter, dry run)"
    )
    bandwidth = copy_bandwidth_gbs()
    sj, sj_note = spikingjelly_lif()
    print(f"device: {device_name}; torch {torch.__version__}; copy bandwidth {bandwidth:.0f} GB/s")
    sj_path = "CPU torch path" if OPTS.dry_run else "Triton LIF (SJ_LIF_CUDA_IMPLEMENTATION=triton)"
    print(f"SpikingJelly: {sj_path if sj else sj_note}")
    n_neurons = OPTS.batch * OPTS.features
    print(
        f"N = {OPTS.batch}x{OPTS.features}; LIF tau=2 hard reset, sigmoid; median of {OPTS.reps} calls each"
    )
    for name in OPTS.dtypes.split(","):
        shape = triton_backend._launch_config(n_neurons, getattr(torch, name).itemsize)
        print(f"our launch shape for {name} (BLOCK, num_warps): {shape}")
    print()
    rows = [
        bench_case(int(steps), getattr(torch, dtype_name), sj, bandwidth)
        for dtype_name in OPTS.dtypes.split(",")
        for steps in OPTS.steps.split(",")
    ]
    header = (
        f"{'dtype':9} {'T':>4} | {'ours ms':>9} {'SJ ms':>9} {'SJ/ours':>8} {'floor ms':>9} {'floor/ours':>10} |"
        f" {'ours fwd':>9} {'SJ fwd':>9}"
    )
    print("left of the second bar: one forward + backward (training); right: forward only, no grad")
    print(header)
    print("-" * len(header))
    for r in rows:
        train, infer = r["train"], r["infer"]
        ratio = f"{train[1] / train[0]:8.2f}" if len(train) > 1 else f"{'n/a':>8}"
        print(
            f"{r['dtype']:9} {r['steps']:4d} | {_ms(train, 0)} {_ms(train, 1)} {ratio} {r['floor']:9.3f}"
            f" {r['floor'] / train[0]:10.2f} | {_ms(infer, 0)} {_ms(infer, 1)}"
        )
    print()
    for r in rows:
        extra = "; ".join(f"BLOCK/warps {k}: {v:.3f} ms" for k, v in r["sweep"].items())
        print(
            f"{r['dtype']} T={r['steps']}: {r['note']}" + (f"\n    sweep (fwd+bwd): {extra}" if extra else "")
        )


if __name__ == "__main__":
    main()
