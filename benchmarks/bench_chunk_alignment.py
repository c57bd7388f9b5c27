"""Decompression per sample: samples back to back on a fixed grid of inner chunks (cache layout 1)
against chunks aligned with samples (layout 2).

Stored back to back, a sample spans the inner chunks (64 Ki events) its rows fall in, and its first
and last chunk also hold the neighbouring samples' events, which a reader decompresses and drops.
Layout 2 starts every sample at a chunk. Each column of each sample of CACHE (either layout) is
compressed as the cache compresses it (Blosc, same codec, level and filter, read from the array's
metadata), once cut on the back-to-back grid and once cut from the sample's own start (the last
chunk short: layout 2 pads it with zeros, which decompress at memset speed), and every sample's
chunks are decompressed in a random order on one thread. Only decompression is timed (what the
loaders' fused pass does with the rows is the same for both).

    PYTHONPATH=. /work/venv/bin/python benchmarks/bench_chunk_alignment.py CACHE [--split train] [--repeats 5]

CACHE is a local cache folder (for example one ``bench_loaders.py`` builds, or ``neurodata prepare``'s).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import zarr
from numcodecs import blosc

from neurodata.cache import open_cache
from neurodata.cache.rows import gather

SHUFFLES = {"noshuffle": blosc.NOSHUFFLE, "shuffle": blosc.SHUFFLE, "bitshuffle": blosc.BITSHUFFLE}


def blosc_settings(array: zarr.Array) -> tuple[bytes, int, int]:
    """(compressor name, level, shuffle) of a sharded event column's inner Blosc codec."""
    inner = array.metadata.codecs[0].codecs
    codec = next(c for c in inner if type(c).__name__ == "BloscCodec")
    return codec.cname.value.encode(), codec.clevel, SHUFFLES[codec.shuffle.value]


def compressed_chunks(
    column: np.ndarray, starts: list[int], stops: list[int], chunk: int, settings: tuple
) -> list[bytes]:
    """``column[start:stop]`` cut into pieces of at most ``chunk`` rows, each Blosc-compressed."""
    cname, level, shuffle = settings
    return [
        blosc.compress(np.ascontiguousarray(column[a : min(a + chunk, stop)]), cname, level, shuffle)
        for start, stop in zip(starts, stops)
        for a in range(start, stop, chunk)
    ]


def decompress_all(blobs: list[bytes], buffer: np.ndarray) -> None:
    for blob in blobs:
        blosc.decompress(blob, buffer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cache")
    parser.add_argument("--split", default="train")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    blosc.set_nthreads(1)
    group = zarr.open_group(args.cache, mode="r")[args.split]
    reader = open_cache(args.cache)[args.split]
    offsets, spans = reader.offsets, reader.sample_spans(range(reader.n_samples))
    n_samples, n_events = len(offsets) - 1, int(offsets[-1])
    chunk = group["t"].metadata.codecs[0].chunk_shape[0]  # the sharding codec's inner chunks
    order = np.random.default_rng(1).permutation(n_samples)
    layouts: dict[str, list[list[bytes]]] = {"back to back": [], "sample-aligned": []}
    buffers = []
    for name in reader.fields:  # t, x, y and p unless the times carry the polarities
        array = group[name]
        (column,) = gather([array[:]], 0, spans)  # the samples back to back
        settings = blosc_settings(array)
        grid = compressed_chunks(column, [0], [n_events], chunk, settings)
        layouts["back to back"].append(
            [
                [grid[k] for k in range(offsets[s] // chunk, (offsets[s + 1] - 1) // chunk + 1)]
                if offsets[s + 1] > offsets[s]
                else []
                for s in range(n_samples)
            ]
        )
        layouts["sample-aligned"].append(
            [
                compressed_chunks(column, [offsets[s]], [offsets[s + 1]], chunk, settings)
                for s in range(n_samples)
            ]
        )
        buffers.append(np.empty(chunk, dtype=column.dtype))
    print(
        f"{args.cache} [{args.split}]: {n_samples} samples, {n_events:,} events, chunks of {chunk} events\n"
    )
    print(f"{'layout':<16} {'bytes/event':>12} {'ms per sample':>14} {'first / this':>12}")
    times = {}
    for _ in range(args.repeats):
        for name, columns in layouts.items():
            start = time.perf_counter()
            for s in order:
                for per_sample, buffer in zip(columns, buffers):
                    decompress_all(per_sample[s], buffer)
            times.setdefault(name, []).append((time.perf_counter() - start) / n_samples * 1e3)
    grid_ms = statistics.median(times["back to back"])
    for name, columns in layouts.items():
        unique = {id(b): len(b) for per_sample in columns for blobs in per_sample for b in blobs}
        ms = statistics.median(times[name])
        print(f"{name:<16} {sum(unique.values()) / n_events:>12.3f} {ms:>14.3f} {grid_ms / ms:>11.2f}x")


if __name__ == "__main__":
    main()
