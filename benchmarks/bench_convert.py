"""ANN-to-SNN conversion: ours (snn.convert.ann_to_snn) vs SpikingJelly 2.0's ann2snn, side by side.

    cd <repo> && PYTHONPATH=. /work/peerenv/bin/python benchmarks/bench_convert.py [--reps 5] [--threads 1]
    cd <repo> && PYTHONPATH=. python benchmarks/bench_convert.py --ours-only     # no SpikingJelly needed

Three parts, each on the same ANN for both converters:

1. accuracy per T on scikit-learn's digits (tests/convert_digits.py: an MLP with BatchNorm1d and a
   CNN with BatchNorm2d and average pooling, ReLU, trained seeded), both converted with mode "max"
   from the same 512 training images; SpikingJelly's ``RateCodingRecipe(mode="max")`` (IF soft
   reset between two VoltageScalers), evaluated as its example does (single-step loop, reset_net,
   cumulative outputs); ours with ``accuracy_vs_timesteps``. Also a CNN with max pooling (our
   cumulative max pool; SpikingJelly has no spike max pool, its converter leaves ``nn.MaxPool2d``
   on spikes), for the accuracy cost of the max-pooling method.
2. images/s of the converted digits CNN at the same T on CPU, batch ``--batch``: ours (one
   multi-step call, Numba IF kernels) vs SpikingJelly's (T single-step calls after reset_net);
   medians over ``--reps`` interleaved rounds.
3. conversion time of a ResNet-18 (torchvision's layout, BasicBlock [2, 2, 2, 2], written here;
   32x32 inputs) with a 512-image calibration set.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time

import torch
from torch import nn

from snn.convert import accuracy_vs_timesteps, ann_to_snn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from convert_digits import MODELS, accuracy, load_digits, train  # noqa: E402

TIMESTEPS = (1, 2, 4, 8, 16, 32, 64)


def spikingjelly_convert(ann: nn.Module, calibration: torch.Tensor) -> nn.Module:
    from spikingjelly.activation_based import ann2snn

    recipe = ann2snn.RateCodingRecipe(dataloader=[(calibration, None)], mode="max")
    return ann2snn.FXConverter(recipe=recipe).convert(copy.deepcopy(ann)).eval()


def spikingjelly_run(model: nn.Module, x: torch.Tensor, steps: int) -> torch.Tensor:
    """Per-step outputs ``[T, B, classes]``: the single-step loop of SpikingJelly's example."""
    from spikingjelly.activation_based import functional

    functional.reset_net(model)
    return torch.stack([model(x) for _ in range(steps)])


def spikingjelly_curve(model: nn.Module, batches, timesteps=TIMESTEPS) -> dict[int, float]:
    correct, total = dict.fromkeys(timesteps, 0), 0
    with torch.no_grad():
        for x, y in batches:
            running = spikingjelly_run(model, x, max(timesteps)).cumsum(0)
            for t in timesteps:
                correct[t] += int((running[t - 1].argmax(-1) == y).sum())
            total += len(y)
    return {t: correct[t] / total for t in timesteps}


def maxpool_cnn(kind: str) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(12, 24, 3, padding=1), nn.BatchNorm2d(24), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(96, 10),
    )  # fmt: skip


def accuracy_table(peer: bool) -> None:
    digits = load_digits()
    calibration = digits.train_x[:512]
    batches = digits.test_batches()
    print("| model | ANN | converter | " + " | ".join(f"T={t}" for t in TIMESTEPS) + " |")
    print("|---|---|---|" + "---|" * len(TIMESTEPS))
    for name, make in [*MODELS.items(), ("cnn+maxpool", maxpool_cnn)]:
        ann = train(make("relu"), digits)
        ann_accuracy = accuracy(ann, digits)
        curves = {"ours": accuracy_vs_timesteps(ann_to_snn(ann, calibration), batches, TIMESTEPS)}
        if peer:
            curves["SpikingJelly"] = spikingjelly_curve(spikingjelly_convert(ann, calibration), batches)
        for label, curve in curves.items():
            cells = " | ".join(f"{100 * curve[t]:.1f}" for t in TIMESTEPS)
            print(f"| {name} | {100 * ann_accuracy:.1f} | {label} | {cells} |", flush=True)


def throughput(peer: bool, steps: int, batch: int, reps: int) -> None:
    digits = load_digits()
    ann = train(MODELS["cnn"]("relu"), digits, epochs=2)
    x = digits.test_x[:batch]
    ours = ann_to_snn(ann, digits.train_x[:512])
    runs = {"ours": lambda: ours(x.unsqueeze(0).expand(steps, *x.shape))}
    if peer:
        theirs = spikingjelly_convert(ann, digits.train_x[:512])
        runs["SpikingJelly"] = lambda: spikingjelly_run(theirs, x, steps)
    times: dict[str, list[float]] = {name: [] for name in runs}
    with torch.no_grad():
        for run in runs.values():
            run()  # warm-up: Numba kernel load, allocator
        for _ in range(reps):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    rates = {name: batch / statistics.median(t) for name, t in times.items()}
    for name, rate in rates.items():
        ratio = f", {rate / rates['SpikingJelly']:.2f}x SpikingJelly" if "SpikingJelly" in rates else ""
        # both sides run torch ops on torch's threads; ours' Numba kernels follow the same count
        print(f"images/s at T={steps}, batch {batch}, {torch.get_num_threads()} threads: {name} {rate:,.0f}{ratio}")


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block: two 3x3 convolutions with batch norm, one ReLU module used twice."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


def resnet18(num_classes: int = 10) -> nn.Module:
    """torchvision's ResNet-18 layout (7x7 stem, max pool, [2, 2, 2, 2] basic blocks, average pool, fc)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)]
    layers.append(nn.MaxPool2d(3, 2, 1))
    inplanes = 64
    for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes)]
        inplanes = planes
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers).eval()


def conversion_time(peer: bool, reps: int, images: int) -> None:
    torch.manual_seed(0)
    ann = resnet18()
    calibration = torch.rand(images, 3, 32, 32)
    runs = {"ours": lambda: ann_to_snn(ann, calibration.split(128))}
    if peer:
        runs["SpikingJelly"] = lambda: spikingjelly_convert(ann, calibration)
    for name, run in runs.items():
        seconds = statistics.median(_timed(run) for _ in range(reps))
        print(
            f"ResNet-18 conversion, {images} calibration images 3x32x32, {torch.get_num_threads()} threads: "
            f"{name} {seconds:.2f} s"
        )


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours-only", action="store_true", help="skip SpikingJelly")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: shared machines)")
    parser.add_argument("--steps", type=int, default=32, help="T for the images/s comparison")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--images", type=int, default=512, help="calibration images for the ResNet-18")
    parser.add_argument("--parts", default="accuracy,throughput,conversion")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peer = not args.ours_only
    if peer:
        try:
            import spikingjelly.activation_based.ann2snn  # noqa: F401
        except ImportError:
            sys.exit("SpikingJelly 2.0 is not installed here: run with /work/peerenv/bin/python or --ours-only")
    parts = args.parts.split(",")
    if "accuracy" in parts:
        accuracy_table(peer)
    if "throughput" in parts:
        throughput(peer, args.steps, args.batch, args.reps)
    if "conversion" in parts:
        conversion_time(peer, max(1, args.reps // 2), args.images)


if __name__ == "__main__":
    main()
