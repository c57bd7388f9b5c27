"""What checking each chunk's CRC32C costs a loader: the same reads with the check on and off.

Builds the loader benchmark's cache (``bench_loaders.py``: DVS128-sized samples of 100-300 k events
at 128x128, default zstd codec, cache layout 4), then reads every sample through ``load`` (the
direct shard reader), one at a time and in padded batches of 16, with each event column's check
on and off in turn (the same stored bytes: Blosc reads a chunk's size from its header, so the 4
CRC bytes after it do not disturb it). The on and off passes alternate, in one process on one
decode thread, and this process's CPU time per sample is compared, which moves less than wall time
with other tenants' load; medians of ``--repeats`` pairs.

    PYTHONPATH=. /work/venv/bin/python benchmarks/bench_chunk_crc.py [--samples 48] [--repeats 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from bench_loaders import PER_PART, SENSOR, make_part, prepare_stream

from neurodata.cache import CacheBuilder, build_cache
from neurodata.loaders import load, pad_events


def one_pass(dataset, order: list[int]) -> float:
    """CPU milliseconds per sample to read every sample one at a time, then in batches of 16."""
    start = time.process_time()
    for i in order:
        dataset[i]
    for k in range(0, len(order), 16):
        pad_events(dataset.__getitems__(order[k : k + 16]))
    return (time.process_time() - start) / (2 * len(order)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one decode thread: CPU time is the work itself
    work = Path(tempfile.mkdtemp(prefix="bench_chunk_crc_"))
    try:
        url = str(work / "bench.zarr")
        prepare_stream(args.samples)
        attrs = {"sensor_size": list(SENSOR)}
        builder = CacheBuilder(url, "bench", attrs, {"train": -(-args.samples // PER_PART)})
        build_cache(builder, partial(make_part, args.samples))
        dataset = load(url)
        columns = dataset.pipeline.source.columns.columns
        assert all(rows.checked for rows in columns)
        order = np.random.default_rng(1).permutation(args.samples).tolist()
        one_pass(dataset, order)  # warm: shard indexes, kernels, page cache
        times: dict[bool, list[float]] = {True: [], False: []}
        for repeat in range(args.repeats):
            for checked in (True, False) if repeat % 2 else (False, True):
                for rows in columns:
                    rows.checked = checked
                times[checked].append(one_pass(dataset, order))
        for checked, values in times.items():
            print(
                f"CRC32C check {'on ' if checked else 'off'}: {statistics.median(values):.3f} ms CPU per "
                f"sample (min {min(values):.3f}, max {max(values):.3f})"
            )
        on, off = statistics.median(times[True]), statistics.median(times[False])
        print(f"cost of the check: {100 * (on / off - 1):+.1f} % CPU per sample read")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
