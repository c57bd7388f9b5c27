"""DataLoader workers' batch memory: the reusable memfd pool (``neurodata.loaders.shm_pool``) against
torch's fresh shared-memory segment per batch, same data, same collate functions, one run.

Data: the loader benchmark's cache (``bench_loaders.py``: 160 DVS128-sized samples from the EVT 2/3
fixtures, 100-300 k events each, frames T = 16 precomputed), built into a temporary folder. Each
case reads ``--epochs`` epochs of batches of 16 through 2 persistent fork workers after an untimed
warm-up epoch; the cases alternate ``--repeats`` times and medians are printed.

    PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_worker_memory.py [--epochs 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).parent))
import bench_loaders as bl  # noqa: E402

from neurodata.cache import CacheBuilder, build_cache  # noqa: E402
from neurodata.loaders import load, pad_events, shm_pool, stack_dense  # noqa: E402
from neurodata.loaders.precompute import precompute  # noqa: E402

SAMPLES = 160


def samples_per_second(dataset, collate, order: list[int], epochs: int) -> float:
    loader = DataLoader(
        dataset,
        batch_size=16,
        sampler=order,
        num_workers=2,
        collate_fn=collate,
        multiprocessing_context="fork",
        persistent_workers=True,
    )
    for _ in loader:  # warm-up: workers start, their pools fill
        pass
    start = time.perf_counter()
    for _ in range(epochs):
        for _ in loader:
            pass
    return len(order) * epochs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_worker_memory_"))
    try:
        url = str(work / "bench.zarr")
        bl.prepare_stream(SAMPLES)
        builder = CacheBuilder(
            url, "bench", {"sensor_size": list(bl.SENSOR)}, {"train": SAMPLES // bl.PER_PART}
        )
        build_cache(builder, partial(bl.make_part, SAMPLES), workers=2)
        precompute(url, bl.frame_spec(), workers=2, progress=False)
        order = np.random.default_rng(1).permutation(SAMPLES).tolist()
        data = {
            "events (pad_events)": (load(url), pad_events),
            "frames T=16 int32 (stack_dense)": (load(url, representation=bl.frame_spec()), stack_dense),
        }
        pooled = shm_pool.worker_pool
        memories = {"reusable pool": pooled, "torch, fresh per batch": lambda: None}
        rates: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for memory, pool_of in memories.items():
                shm_pool.worker_pool = pool_of  # forked workers inherit the choice
                for name, (dataset, collate) in data.items():
                    rate = samples_per_second(dataset, collate, order, args.epochs)
                    rates.setdefault((name, memory), []).append(rate)
        shm_pool.worker_pool = pooled
        print("| batches of 16, 2 persistent workers | worker memory | samples/s | pool / torch |")
        print("|---|---|---:|---:|")
        for name in data:
            torch_rate = statistics.median(rates[(name, "torch, fresh per batch")])
            for memory in memories:
                rate = statistics.median(rates[(name, memory)])
                print(f"| {name} | {memory} | {rate:.0f} | {rate / torch_rate:.2f}x |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
