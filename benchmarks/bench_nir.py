"""NIR export of the zoo's SEW-ResNet-18: ``hw.nir.to_nir`` time (target: under 5 s on CPU), then write and import.

    cd <repo> && PYTHONPATH=. python benchmarks/bench_nir.py [--reps 5] [--size 128] [--threads 1]

Model: ``snn.models.build("sew-resnet18", stem="small", connect="ADD")`` (DVS128 Gesture geometry:
2 x 128 x 128 input, 11 classes; IF neurons, average pooling), in eval mode; the export folds its
batch norm into the convolutions. Timed, each as the median of ``--reps`` runs: ``to_nir`` (trace,
shapes on the meta device, nodes with per-neuron parameter arrays), ``nir.write`` to a temporary
file (gzip, NIR's default) and ``hw.nir.from_nir`` of that file (read, type check, modules). The
first export is reported apart (imports and first-call costs). No peer exports this model:
SpikingJelly's exporter needs its own modules and Norse's and snnTorch's their own neurons.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nir
import torch

import hw.nir as hn
import snn


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--size", type=int, default=128, help="input height and width")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = snn.models.build("sew-resnet18", stem="small", connect="ADD", input_size=args.size).eval()
    shape = (2, args.size, args.size)
    first = timed(lambda: hn.to_nir(model, shape))
    graph = hn.to_nir(model, shape)
    times: dict[str, list[float]] = {"to_nir": [], "nir.write": [], "from_nir": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sew.nir"
        for _ in range(args.reps):
            times["to_nir"].append(timed(lambda: hn.to_nir(model, shape)))
            times["nir.write"].append(timed(lambda: nir.write(path, graph)))
            times["from_nir"].append(timed(lambda: hn.from_nir(path)))
        size_mb = path.stat().st_size / 1e6
    print(f"sew-resnet18 stem=small connect=ADD, input {shape}: {len(graph.nodes)} nodes, {len(graph.edges)} edges, file {size_mb:.1f} MB")
    print(f"first to_nir: {first:.2f} s")
    for name, values in times.items():
        print(f"{name:10s} median {statistics.median(values):.2f} s  (min {min(values):.2f}, max {max(values):.2f}, {len(values)} runs)")


if __name__ == "__main__":
    main()
