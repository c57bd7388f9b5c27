"""Training step of zoo models: ours (snn.models) vs SpikingJelly 2.0's equivalent network.

    cd <repo> && PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_train_cpu.py [--batch 16] [--reps 5]
    cd <repo> && PYTHONPATH=. python benchmarks/bench_train_cpu.py --device cuda     # batch 64, + SEW-ResNet-18

One step = forward of a [T, B, 2, H, W] batch, MSE between the time-averaged output and the one-hot
label (SpikingJelly's DVS Gesture recipe), backward, Adam step. Workloads:

* ``dvsgesture``: the DVS128 Gesture CNN (PLIF paper), T=16, 128x128, 11 classes. Ours:
  ``snn.models.build("dvsgesture-net")`` (PLIF, ATan(2), detach_reset, hard reset to 0, neurons on
  ``backend="auto"``: the fused CPU loops, Triton on CUDA). SpikingJelly:
  ``parametric_lif_net.DVSGestureNet(channels=128, spiking_neuron=ParametricLIFNode,
  surrogate_function=ATan(), detach_reset=True)`` with ``step_mode='m'`` (its plain-torch CPU path).
* ``sew-resnet18`` (``--device cuda`` default, or ``--models``): SEW-ResNet-18 ADD with IF neurons,
  T=4, 128x128; SpikingJelly's ``sew_resnet18(cnf="ADD", spiking_neuron=IFNode)`` with a 2-channel stem.

Before timing, both networks get the same weights and must give the same output on a small input
(eval mode; else the script stops). Ours and SpikingJelly's steps alternate round by round; the
table reports medians of wall time and of process CPU time (the machine may be shared) and the
ratio SpikingJelly / ours. ``--compile`` also times ours under ``torch.compile`` of the whole model;
``--plain`` also times ours run module by module on contiguous tensors (no channels_last
convolutions, no fused neuron + max-pool: the model before those CPU optimisations), same weights;
``--bf16`` also times ours under ``torch.autocast`` to bfloat16 (a separate, labelled row: not the
fp32 comparison, and SpikingJelly could autocast too).
"""

from __future__ import annotations

import argparse
import copy
import functools
import resource
import statistics
import sys
import time
import types
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

import snn.models as zoo
from snn import layers
from snn.sequential import SpikingSequential

CONFIGS = {  # workload -> (our build name, options, T)
    "dvsgesture": ("dvsgesture-net", {}, 16),
    "sew-resnet18": ("sew-resnet18", {"connect": "ADD"}, 4),
}


def spikingjelly_net(workload: str) -> nn.Module:
    """SpikingJelly's equivalent network in multi-step mode."""
    if "torchvision" not in sys.modules:  # its resnet module imports torchvision for weight downloads only
        stub = types.ModuleType("torchvision")
        stub.models = types.ModuleType("torchvision.models")
        stub.models.utils = types.ModuleType("torchvision.models.utils")
        stub.models.utils.load_state_dict_from_url = None
        sys.modules.update(
            {
                "torchvision": stub,
                "torchvision.models": stub.models,
                "torchvision.models.utils": stub.models.utils,
            }
        )
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    from spikingjelly.activation_based.model import parametric_lif_net, sew_resnet

    common = {"surrogate_function": surrogate.ATan(alpha=2.0), "detach_reset": True}
    if workload == "dvsgesture":
        net = parametric_lif_net.DVSGestureNet(
            channels=128, spiking_neuron=neuron.ParametricLIFNode, **common
        )
    else:
        net = sew_resnet.sew_resnet18(num_classes=11, cnf="ADD", spiking_neuron=neuron.IFNode, **common)
        net.conv1 = layer.Conv2d(2, 64, 7, 2, 3, bias=False)
    functional.set_step_mode(net, "m")
    return net


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Load ``source``'s state into ``target`` by order (the two networks register tensors alike)."""
    src, dst = source.state_dict(), target.state_dict()
    if [v.shape for v in src.values()] != [v.shape for v in dst.values()]:
        raise SystemExit("state dicts differ in layout; the networks are not equivalent")
    target.load_state_dict(dict(zip(dst, src.values(), strict=True)))


def check_equivalence(ours: nn.Module, theirs: nn.Module, reset: Callable, size: int, device: str) -> None:
    """Same weights, same input, same output (eval mode). Exact on CPU; on CUDA the two libraries'
    kernels round differently, so a rare spike flip is reported instead of stopping the run."""
    x = torch.randint(0, 3, (4, 1, 2, size, size), device=device).float()
    ours.eval(), theirs.eval()
    with torch.no_grad():
        reset()
        a, b = ours(x), theirs(x)  # both per-step [T, B, classes]
    ours.train(), theirs.train()
    diff = float((a - b).abs().max())
    message = f"equivalence on a [4, 1, 2, {size}, {size}] input: max |output difference| {diff:.2g}"
    if not torch.allclose(a, b, rtol=1e-4, atol=1e-5) and device == "cpu":
        raise SystemExit(message + ": the networks differ")
    print(message)


def plain_layout(net: nn.Module) -> nn.Module:
    """A copy of our ``net`` on contiguous tensors, module by module (the pre-channels_last model)."""
    net = copy.deepcopy(net)
    for module in net.modules():
        if isinstance(module, layers.Conv2d):
            module.weight.data = module.weight.data.contiguous()
            module._forward_folded = functools.partial(nn.Conv2d.forward, module)
        if isinstance(module, SpikingSequential):
            module.__class__ = nn.Sequential
    return net


def make_step(
    net: nn.Module,
    reset: Callable,
    x: torch.Tensor,
    target: torch.Tensor,
    autocast: torch.dtype | None = None,
) -> Callable:
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        reset()
        with torch.autocast(x.device.type, dtype=autocast, enabled=autocast is not None):
            out = net(x)
        loss = F.mse_loss(out.mean(0).float(), target)
        loss.backward()
        optimizer.step()

    return step


def timed(step: Callable, device: str) -> tuple[float, float]:
    if device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_workload(workload: str, args) -> None:
    name, options, steps = CONFIGS[workload]
    steps = args.T or steps
    device = args.device
    torch.manual_seed(0)
    ours = zoo.build(name, **options).to(device)
    from spikingjelly.activation_based import functional

    theirs = spikingjelly_net(workload).to(device)
    copy_weights(ours, theirs)
    check_equivalence(ours, theirs, lambda: functional.reset_net(theirs), 128, device)

    x = torch.randint(0, 3, (steps, args.batch, 2, 128, 128), device=device).float()
    target = F.one_hot(torch.randint(0, 11, (args.batch,), device=device), 11).float()
    impls = {
        "ours (snn.models)": make_step(ours, lambda: None, x, target),
        "SpikingJelly 2.0": make_step(theirs, lambda: functional.reset_net(theirs), x, target),
    }
    if args.plain:
        impls["ours, contiguous and unfused"] = make_step(plain_layout(ours), lambda: None, x, target)
    if args.bf16:
        impls["ours, bf16 autocast (not fp32)"] = make_step(
            copy.deepcopy(ours), lambda: None, x, target, autocast=torch.bfloat16
        )
    if args.compile:
        compiled = torch.compile(zoo.build(name, **options).to(device), dynamic=False)
        impls["ours + torch.compile(model)"] = make_step(compiled, lambda: None, x, target)

    first = {}
    for label, step in impls.items():  # warm-up; the first call includes compilation
        first[label] = timed(step, device)[0]
        for _ in range(args.warmup - 1):
            step()
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in impls}
    peak_gib: dict[str, float] = {}
    for _ in range(args.reps):
        for label, step in impls.items():
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            samples[label].append(timed(step, device))
            if device == "cuda":
                peak_gib[label] = torch.cuda.max_memory_allocated() / 2**30

    threads = torch.get_num_threads() if device == "cpu" else "-"  # every side's torch ops share them
    sj_wall = statistics.median(w for w, _ in samples["SpikingJelly 2.0"])
    sj_cpu = statistics.median(c for _, c in samples["SpikingJelly 2.0"])
    print(
        f"\n{workload}: training step (fwd + bwd + Adam), T={steps}, batch {args.batch}, 2x128x128, fp32, "
        f"{device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {args.reps} interleaved rounds"
    )
    print(
        "| implementation | threads | first call s | median wall s | median CPU s | SpikingJelly / ours (wall) | (CPU) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, rows in samples.items():
        wall = statistics.median(w for w, _ in rows)
        cpu = statistics.median(c for _, c in rows)
        print(
            f"| {label} | {threads} | {first[label]:.2f} | {wall:.3f} | {cpu:.3f} | {sj_wall / wall:.2f}x | {sj_cpu / cpu:.2f}x |"
        )
    if peak_gib:
        print("peak GPU memory per step: " + ", ".join(f"{k} {v:.1f} GiB" for k, v in peak_gib.items()))
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"peak resident memory of the process (both networks): {peak:.1f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch", type=int, default=None, help="default 16 on cpu, 64 on cuda")
    parser.add_argument("--T", type=int, default=None, help="time steps (default per workload: 16, SEW 4)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed steps (default 1 on cpu, 3 on cuda)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--models", nargs="+", choices=sorted(CONFIGS), default=None)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of our whole model")
    parser.add_argument("--bf16", action="store_true", help="also time ours under bfloat16 autocast")
    parser.add_argument(
        "--plain",
        action="store_true",
        help="also time our model on contiguous tensors, unfused (the old layout)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.batch = args.batch or (64 if args.device == "cuda" else 16)
    args.warmup = args.warmup or (3 if args.device == "cuda" else 1)
    models = args.models or (["dvsgesture", "sew-resnet18"] if args.device == "cuda" else ["dvsgesture"])
    for workload in models:
        run_workload(workload, args)


if __name__ == "__main__":
    main()
