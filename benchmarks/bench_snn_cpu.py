"""One LIF layer, forward + backward on CPU: ours vs SpikingJelly 2.0, snnTorch and Norse.

    cd <repo> && PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_snn_cpu.py [--reps 30] [--threads 1]
    cd <repo> && PYTHONPATH=. python benchmarks/bench_snn_cpu.py --ours-only [--batch 16]   # no peers needed

First-call latency is measured too: the Numba backend's in fresh subprocesses, once with an empty
Numba cache (a new ``NUMBA_CACHE_DIR``: compile and write the cache) and once more with that cache
warm (load it); the torch.compile backend's in this process (its on-disk inductor cache may be warm).

Workload (ANCHORS.md): x [T=32, B=64, 1024] fp32 with requires_grad, spikes = LIF(x), then
spikes.backward(g) with a fixed random upstream gradient g (no loss ops around the layer). All
implementations run in one process, interleaved round by round; the table reports the median and
the ratio to SpikingJelly. One torch thread by default (``--threads``): on a shared machine two
OpenMP threads per process oversubscribe the cores and every implementation slows 10-50x.

Equivalence of the configurations, checked on the benchmark input before timing (spike trains
must be identical, else the script stops):

* SpikingJelly ``LIFNode(tau=2, decay_input=True, v_reset=0, surrogate ATan(2), step_mode='m')``
  and ours ``snn.LIF(tau=2)``: the same equation ``H = V + (X - V)/2``, hard reset to 0.
* snnTorch ``Leaky(beta=0.5, threshold=1, reset_mechanism='zero', spike_grad=atan(2))``:
  ``U = beta U + X`` is our ``decay_input=False`` form with ``beta = 1 - 1/tau``; snnTorch
  detaches its reset (``detach_reset=True``) and applies it one step late (same spikes). Compared
  against ``snn.LIF(tau=2, decay_input=False, detach_reset=True)``.
* Norse ``LIFBoxCell(LIFBoxParameters(tau_mem_inv=500, v_th=1, v_reset=0), dt=1e-3)`` looped over
  T: ``V + dt/tau_mem (X - V)`` = ``V + 0.5 (X - V)``, hard reset; its surrogate is SuperSpike
  (same cost class as ATan). Norse and snnTorch fire on ``H > V_th``, we and SpikingJelly on
  ``H >= V_th``; random inputs never hit the threshold exactly, and the check confirms it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numba
import torch

import snn
from snn.backends import cpu_backend

T, B, N = 32, 64, 1024


def ours(backend: str, compiled: bool = True, **kwargs) -> Callable:
    neuron = snn.LIF(tau=2.0, backend=backend, **kwargs)

    def run(x):
        cpu_backend.set_compile_enabled(compiled)
        return neuron(x)

    return run


def spikingjelly() -> Callable:
    from spikingjelly.activation_based import functional, neuron, surrogate

    node = neuron.LIFNode(
        tau=2.0, decay_input=True, v_reset=0.0, surrogate_function=surrogate.ATan(alpha=2.0), step_mode="m"
    )

    def run(x):
        functional.reset_net(node)
        return node(x)

    return run


def snntorch() -> Callable:
    import snntorch as snt
    from snntorch import surrogate

    leaky = snt.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero", spike_grad=surrogate.atan(alpha=2.0))

    def run(x):
        mem = leaky.init_leaky()
        spikes = []
        for xt in x:
            spk, mem = leaky(xt, mem)
            spikes.append(spk)
        return torch.stack(spikes)

    return run


def norse() -> Callable:
    from norse.torch import LIFBoxCell, LIFBoxParameters

    cell = LIFBoxCell(
        LIFBoxParameters(
            tau_mem_inv=torch.tensor(500.0), v_th=torch.tensor(1.0), v_reset=torch.tensor(0.0), method="super"
        ),
        dt=1e-3,
    )

    def run(x):
        state = None
        spikes = []
        for xt in x:
            spk, state = cell(xt, state)
            spikes.append(spk)
        return torch.stack(spikes)

    return run


FIRST_CALL = f"""
import time, torch, snn
torch.set_num_threads({{threads}})
x = torch.randn({T}, {B}, {N}).requires_grad_(True)
start = time.perf_counter()
snn.LIF(tau=2.0, backend="numba")(x).sum().backward()
print(time.perf_counter() - start)
"""


def numba_first_calls(threads: int) -> tuple[float, float]:
    """Seconds of the first numba fwd+bwd in a fresh process: (empty Numba cache, warm cache)."""
    with tempfile.TemporaryDirectory() as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        code = FIRST_CALL.format(threads=threads)
        runs = [
            subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        ]
        runs.append(
            subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        )
    cold, warm = (float(run.stdout.split()[-1]) for run in runs)
    return cold, warm


def fwd_bwd(fn: Callable, x: torch.Tensor, g: torch.Tensor) -> float:
    x.grad = None
    start = time.perf_counter()
    fn(x).backward(g)
    return time.perf_counter() - start


def check_equivalence(x: torch.Tensor, impls: dict[str, Callable]) -> None:
    with torch.no_grad():
        reference = {
            "decay_input": snn.LIF(tau=2.0, backend="torch")(x),
            "snntorch": snn.LIF(tau=2.0, decay_input=False, detach_reset=True, backend="torch")(x),
        }
        for name, fn in impls.items():
            want = reference["snntorch" if name.startswith("snnTorch") else "decay_input"]
            got = fn(x)
            if not torch.equal(got, want):
                raise SystemExit(f"{name}: spikes differ from ours on {int((got != want).sum())} entries")
    print(f"equivalence: all {len(impls)} implementations give identical spikes ({int(want.sum())} spikes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=25)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (1: least noise on a shared machine)"
    )
    parser.add_argument(
        "--ours-only",
        action="store_true",
        help="only our torch, numba and eager cpu backends (no peers, no compilation, no first calls)",
    )
    parser.add_argument("--batch", type=int, default=B, help=f"batch size B (default {B})")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = (torch.randn(T, args.batch, N) * 0.8 + 0.6).requires_grad_(True)
    g = torch.randn(T, args.batch, N)

    impls: dict[str, Callable] = {
        "ours torch (reference loop)": ours("torch"),
        "ours numba": ours("numba"),
        "ours cpu (fused, eager)": ours("cpu", compiled=False),
    }
    if args.ours_only:
        check_equivalence(x.detach(), impls)
        report(impls, x, g, args.reps)
        return
    impls.update(
        {
            "ours cpu (fused, compiled)": ours("cpu"),
            "SpikingJelly 2.0 LIFNode m": spikingjelly(),
            "snnTorch Leaky": snntorch(),
            "Norse LIFBoxCell loop": norse(),
        }
    )
    numba_cold, numba_warm = numba_first_calls(args.threads)
    start = time.perf_counter()
    fwd_bwd(impls["ours cpu (fused, compiled)"], x, g)
    first_call = time.perf_counter() - start
    check_equivalence(x.detach(), impls)
    print(
        f"first fwd+bwd call: ours numba {numba_cold:.1f} s with an empty Numba cache, {numba_warm:.1f} s "
        f"with a warm one (fresh processes); ours cpu compiled {first_call:.1f} s (this process)"
    )
    report(impls, x, g, args.reps)


def report(impls: dict[str, Callable], x: torch.Tensor, g: torch.Tensor, reps: int) -> None:
    """Time every implementation over ``reps`` interleaved rounds (after two warm-up calls) and print the table."""

    times: dict[str, list[float]] = {name: [] for name in impls}
    for fn in impls.values():  # warm-up
        for _ in range(2):
            fwd_bwd(fn, x, g)
    for _ in range(reps):
        for name, fn in impls.items():
            times[name].append(fwd_bwd(fn, x, g))

    sj_times = times.get("SpikingJelly 2.0 LIFNode m")
    sj = statistics.median(sj_times) if sj_times else None
    print(
        f"\nLIF fwd+bwd, T={x.shape[0]}, B={x.shape[1]}, {x.shape[2]} features, fp32, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {reps} interleaved rounds\n"
    )
    # every side runs torch ops on torch's threads; our numba backend sets Numba's to the same count
    numba_threads = min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    print(f"| {'implementation':<30} | threads | median ms | min ms | vs SpikingJelly |")
    print(f"|{'-' * 32}|---------|-----------|--------|-----------------|")
    for name, samples in times.items():
        med = statistics.median(samples)
        ratio = f"{sj / med:14.2f}x" if sj else f"{'n/a':>15}"
        threads = numba_threads if "numba" in name else torch.get_num_threads()
        print(f"| {name:<30} | {threads:7d} | {med * 1e3:9.2f} | {min(samples) * 1e3:6.2f} | {ratio} |")


if __name__ == "__main__":
    main()
