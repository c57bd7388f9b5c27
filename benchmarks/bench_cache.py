"""Dataset cache benchmark: write speed (1 and 2 workers), read speed, bytes/event, against Tonic's
DiskCachedDataset format (one HDF5 file per sample, lzf), on realistic event data.

Data: the EVT 2.0 (640x480, decoded by expelliarmus) and EVT 3.0 (1280x720, golden decode) fixture
recordings, each tiled end to end with increasing time offsets into a long stream and cut into samples.
A recording is longer than a compression chunk, so no chunk holds a repeated copy of the same events.
Two shapes of dataset: "large" samples (50-200 k events, DVS-Gesture-like) and "small" samples
(2-6 k events, N-MNIST-sized, but with 640x480 sensors' statistics).

    PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_cache.py [--events 30e6] [--repeats 3]

Timings are medians over repeats, runs interleaved (ours, peer, ours, peer, ...); the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from neurodata.cache import CacheBuilder, PartData, build_cache, cache_info, open_cache
from neurodata.events import make_events

FIXTURES = Path(
    os.environ.get("NEURODATA_FIXTURES", Path(__file__).resolve().parents[1] / "tests" / "data" / "fixtures")
)
SAMPLES_PER_PART = {"large": 16, "small": 512}
SAMPLE_SIZES = {"large": (50_000, 200_000), "small": (2_000, 6_000)}

_STREAM: dict[str, np.ndarray] = {}  # per process: the tiled stream and the sample boundaries
_BOUNDS: dict[str, np.ndarray] = {}


def load_recordings() -> list[np.ndarray]:
    import expelliarmus

    evt2 = expelliarmus.Wizard(encoding="evt2").read(str(FIXTURES / "evt2" / "evt2_sample.raw"))
    evt3 = np.load(FIXTURES / "evt3" / "evt3_sample.npy", allow_pickle=False)
    return [make_events(r["t"], r["x"], r["y"], r["p"]) for r in (evt2, evt3)]


def make_stream(n_events: int) -> np.ndarray:
    """Tile the recordings (alternating) until ``n_events``, shifting each copy after the previous one."""
    recordings = load_recordings()
    pieces, total, clock, k = [], 0, 0, 0
    while total < n_events:
        rec = recordings[k % len(recordings)].copy()
        rec["t"] += clock - rec["t"][0]
        clock = int(rec["t"][-1]) + 1000
        pieces.append(rec)
        total += len(rec)
        k += 1
    return np.concatenate(pieces)[:n_events]


def prepare(shape: str, n_events: int) -> tuple[int, int]:
    """Build the stream and the sample cut points in this process (inherited by forked workers)."""
    stream = make_stream(n_events)
    lo, hi = SAMPLE_SIZES[shape]
    sizes = np.random.default_rng(0).integers(lo, hi, n_events // lo + 1)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    bounds = bounds[bounds < n_events]
    _STREAM[shape], _BOUNDS[shape] = stream, np.append(bounds, n_events)
    n_samples = len(_BOUNDS[shape]) - 1
    return n_samples, -(-n_samples // SAMPLES_PER_PART[shape])


def sample_events(shape: str, i: int) -> np.ndarray:
    b = _BOUNDS[shape]
    return _STREAM[shape][b[i] : b[i + 1]]


def make_part(shape: str, split: str, index: int) -> PartData:
    n = len(_BOUNDS[shape]) - 1
    first = index * SAMPLES_PER_PART[shape]
    ids = range(first, min(n, first + SAMPLES_PER_PART[shape]))
    return PartData.from_samples((sample_events(shape, i), i % 11, f"sample{i}") for i in ids)


def ours_write(shape: str, url: str, n_parts: int, workers: int, codec: str = "lz4") -> float:
    from functools import partial

    builder = CacheBuilder(
        url, f"bench-{shape}", {"sensor_size": [1280, 720, 2]}, {"train": n_parts}, codec=codec
    )
    start = time.perf_counter()
    build_cache(builder, partial(make_part, shape), workers=workers)
    return time.perf_counter() - start


def ours_read(url: str, batch: int | None) -> tuple[float, int]:
    """Read every sample: one by one (``batch`` None) or in contiguous batches of samples."""
    start = time.perf_counter()
    split = open_cache(url)["train"]
    n = 0
    if batch is None:
        for i in range(split.n_samples):
            n += len(split.sample(i)[0])
    else:
        for first in range(0, split.n_samples, batch):
            events, _ = split.events(first, first + batch)
            n += len(events)
    return time.perf_counter() - start, n


def tonic_write(shape: str, folder: str, n_samples: int) -> float:
    from tonic.cached_dataset import save_to_disk_cache

    os.makedirs(folder)
    start = time.perf_counter()
    for i in range(n_samples):
        save_to_disk_cache(sample_events(shape, i), i % 11, file_path=os.path.join(folder, f"{i}_0.hdf5"))
    return time.perf_counter() - start


def tonic_read(folder: str, n_samples: int) -> tuple[float, int]:
    from tonic.cached_dataset import load_from_disk_cache

    start = time.perf_counter()
    n = 0
    for i in range(n_samples):
        events, _ = load_from_disk_cache(os.path.join(folder, f"{i}_0.hdf5"))
        n += len(events)
    return time.perf_counter() - start, n


def folder_bytes(folder: str) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def check_equal(url: str, shape: str, n_samples: int) -> None:
    split = open_cache(url)["train"]
    for i in np.linspace(0, n_samples - 1, 20).astype(int):
        assert np.array_equal(split.sample(int(i))[0], sample_events(shape, int(i))), f"sample {i} differs"


def run(shape: str, n_events: int, repeats: int, tmp: str) -> list[tuple]:
    n_samples, n_parts = prepare(shape, n_events)
    times: dict[str, list[float]] = {k: [] for k in ("w1", "w2", "wz", "tw", "rs", "rb", "tr")}
    size_ours = size_zstd = size_tonic = 0
    for r in range(repeats):
        zstd_url = os.path.join(tmp, f"{shape}-{r}-zstd.zarr")
        times["wz"].append(ours_write(shape, zstd_url, n_parts, 1, codec="zstd"))
        size_zstd = cache_info(zstd_url)["bytes_on_disk"]
        shutil.rmtree(zstd_url)
        for workers in (1, 2):
            url = os.path.join(tmp, f"{shape}-{r}-{workers}.zarr")
            times[f"w{workers}"].append(ours_write(shape, url, n_parts, workers))
        folder = os.path.join(tmp, f"{shape}-{r}-tonic")
        times["tw"].append(tonic_write(shape, folder, n_samples))
        if r == 0:
            check_equal(url, shape, n_samples)
            size_ours = cache_info(url)["bytes_on_disk"]
            size_tonic = folder_bytes(folder)
        for key, batch in (("rs", None), ("rb", 64)):
            seconds, n = ours_read(url, batch)
            assert n == n_events
            times[key].append(seconds)
        seconds, n = tonic_read(folder, n_samples)
        assert n == n_events
        times["tr"].append(seconds)
        for workers in (1, 2):
            shutil.rmtree(os.path.join(tmp, f"{shape}-{r}-{workers}.zarr"))
        shutil.rmtree(folder)
    med = {k: statistics.median(v) for k, v in times.items()}
    mev = n_events / 1e6
    label = f"{shape} ({n_samples} samples, {mev:.0f} M events)"
    return [
        (label, "write, 1 worker", "1 / 1", mev / med["w1"], mev / med["tw"], med["tw"] / med["w1"]),
        (label, "write, 2 workers", "2 / 1", mev / med["w2"], None, med["tw"] / med["w2"]),
        (label, "write, 1 worker, codec=zstd", "1 / 1", mev / med["wz"], None, med["tw"] / med["wz"]),
        (label, "read, sample(i) each", "1 / 1", mev / med["rs"], mev / med["tr"], med["tr"] / med["rs"]),
        (label, "read, events() 64 samples", "1 / 1", mev / med["rb"], None, med["tr"] / med["rb"]),
        (label, "bytes/event on disk", "-", size_ours / n_events, size_tonic / n_events, size_tonic / size_ours),
        (
            label,
            "bytes/event on disk, codec=zstd",
            "-",
            size_zstd / n_events,
            size_tonic / n_events,
            size_tonic / size_zstd,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=float, default=30e6, help="events in the 'large' dataset")
    parser.add_argument("--small-events", type=float, default=5e6, help="events in the 'small' dataset")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        rows += run("large", int(args.events), args.repeats, tmp)
        rows += run("small", int(args.small_events), args.repeats, tmp)
    print(
        f"\nmedians of {args.repeats} runs; speeds in M events/s; ratio = ours / tonic (bytes: tonic / ours); "
        "each process decodes and encodes on one thread, Tonic in the calling one\n"
    )
    print("| dataset | measure | processes ours / tonic | neurodata cache | tonic DiskCachedDataset | ratio |")
    print("|---|---|---|---|---|---|")
    for label, what, procs, ours, peer, ratio in rows:
        if what.startswith("bytes"):
            print(f"| {label} | {what} | {procs} | {ours:.2f} | {peer:.2f} | {ratio:.1f}x smaller |")
        else:
            peer_text = f"{peer:.1f}" if peer is not None else "-"
            print(f"| {label} | {what} | {procs} | {ours:.1f} | {peer_text} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
