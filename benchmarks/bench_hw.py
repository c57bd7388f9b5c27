"""Chip exporters on CPU: checking a Speck mapping of a DVS-Gesture-sized IAF network (target: under 5 s).

    cd <repo> && PYTHONPATH=. python benchmarks/bench_hw.py [--reps 20]

The network takes 2 x 128 x 128 events and has 7 DYNAP-CNN layers (5 convolution layers, 4 with
sum pooling, then 2 Linear layers, 11 classes), filling 7 of Speck's 9 cores; its 129 k float
parameters are random. ``hw.speck.check`` computes shapes and memories by formula
and assigns cores; ``hw.speck.export`` also discretizes the weights (8 bits) and thresholds.
Both are timed ``--reps`` times (wall and process CPU time); the medians are printed.
There is no peer: sinabs' mapper needs samna and a Speck device definition.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import snn
from hw import speck
from snn import layers

INPUT = (2, 128, 128)


def dvs_gesture_iaf() -> torch.nn.Sequential:
    """A DVS-Gesture-sized IAF network that fits Speck (checked before timing)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        layers.Conv2d(2, 16, 2, stride=2),
        snn.IF(),
        layers.Conv2d(16, 16, 3, padding=1),
        layers.BatchNorm2d(16),
        snn.IF(),
        layers.AvgPool2d(2),
        layers.Conv2d(16, 32, 3, padding=1),
        snn.IF(),
        layers.AvgPool2d(2),
        layers.Conv2d(32, 64, 3, padding=1),
        snn.IF(),
        layers.AvgPool2d(2),
        layers.Conv2d(64, 64, 3, padding=1),
        snn.IF(),
        layers.AvgPool2d(2),
        layers.Flatten(),
        layers.Linear(64 * 4 * 4, 64),
        snn.IF(),
        layers.Linear(64, 11),
        snn.IF(),
    ).eval()


def timed(fn: Callable[[], object], reps: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn`` over ``reps`` calls."""
    wall, cpu = [], []
    for _ in range(reps):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    net = dvs_gesture_iaf()
    report = speck.check(net, INPUT)
    if not report.ok:
        raise SystemExit(f"the benchmark network does not fit: {report.violations}")
    cores = [layer.core for layer in report.layers]
    print(
        f"network: {sum(p.numel() for p in net.parameters())} parameters, {len(report.layers)} layers on cores {cores}"
    )
    print("| operation | wall median (ms) | CPU median (ms) | target |")
    print("|---|---|---|---|")
    for name, fn in (
        ("speck.check", lambda: speck.check(net, INPUT)),
        ("speck.export", lambda: speck.export(net, INPUT)),
    ):
        wall, cpu = timed(fn, args.reps)
        print(f"| {name} | {wall * 1e3:.2f} | {cpu * 1e3:.2f} | < 5000 ms |")


if __name__ == "__main__":
    main()
