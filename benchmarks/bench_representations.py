"""Representations and filters: neurodata vs Tonic 1.7 and SpikingJelly, same inputs, one process.

    cd <repo> && PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_representations.py [--repeats 5]

Inputs: synthetic events (seeded) uniform over the sensor, time-sorted over one second (the worst
case for cache locality), and the real 1280x720 EVT3 fixture (its golden decode, evt3_sample.npy,
219596 events over 54 ms) repeated back to back 5 times (~1.1 M events) when the fixtures exist. Each
library gets its native event layout (ours: EVENT_DTYPE; Tonic: its x/y/p int16 + t int64 record;
SpikingJelly: a dict of int64 columns). Runs interleave ours and the peer's, call by call (each
call finds the caches as the other library left them), or with ``--block N`` in blocks of N calls
in a row (warm, as a loop over samples runs); the table shows medians, events per second and the
speed ratio. Numba kernels are compiled (or loaded from the
on-disk cache) before timing; the first-call latency of a fresh process is printed separately.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import types
from functools import partial
from pathlib import Path

import numpy as np
import tonic.transforms as TT

import neurodata.transforms as NT
from neurodata.events import as_events, make_events
from neurodata.representations._parallel import frame_threads

EVT3_GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "data" / "fixtures" / "evt3" / "evt3_sample.npy"

TONIC_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("p", "<i2"), ("t", "<i8")])


def load_spikingjelly_utils():
    """SpikingJelly's datasets/__init__ needs torchvision (absent here); its frame code does not."""
    import spikingjelly

    if importlib.util.find_spec("torchvision") is None:
        stub = types.ModuleType("torchvision")
        stub.transforms = types.ModuleType("torchvision.transforms")
        sys.modules.update({"torchvision": stub, "torchvision.transforms": stub.transforms})
    package = types.ModuleType("spikingjelly.datasets")
    package.__path__ = [str(Path(spikingjelly.__file__).parent / "datasets")]
    sys.modules["spikingjelly.datasets"] = package
    return importlib.import_module("spikingjelly.datasets.utils")


def synthetic(n: int, width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(
        np.sort(rng.integers(0, 1_000_000, n)),
        rng.integers(0, width, n),
        rng.integers(0, height, n),
        rng.integers(0, 2, n),
    )


def real_1280x720(repeats: int = 5) -> np.ndarray | None:
    """The EVT3 fixture's events, repeated ``repeats`` times one after another in time."""
    if not EVT3_GOLDEN.exists():
        return None
    base = as_events(np.load(EVT3_GOLDEN, allow_pickle=False))
    base["t"] -= base["t"][0]
    span = int(base["t"][-1]) + 1
    parts = []
    for k in range(repeats):
        part = base.copy()
        part["t"] += k * span
        parts.append(part)
    return np.concatenate(parts)


def as_tonic(events: np.ndarray) -> np.ndarray:
    out = np.empty(len(events), TONIC_DTYPE)
    for name in "txyp":
        out[name] = events[name]
    return out


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process): CPU time leaves out the time other jobs on a
    shared machine held the core, so it is the steadier of the two here."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def compare(ours, peer, repeats: int, block: int = 1) -> tuple[float, float, float, float]:
    """Medians (ours wall, peer wall, ours CPU, peer CPU) of interleaved runs.

    ``block`` 1 alternates call by call: each call finds the caches as the other library's call
    left them. ``block`` > 1 alternates blocks: one untimed call, then ``block`` timed calls in a
    row, as a loop over samples makes them (its input and output memory warm).
    """
    ours()  # warm: Numba dispatch, page cache
    peer()
    a, b = [], []
    for _ in range(repeats):
        for times, call in ((a, ours), (b, peer)):
            if block > 1:
                call()
            times.extend(timed(call) for _ in range(block))
    return tuple(statistics.median(x[k] for x in runs) for k in (0, 1) for runs in (a, b))


def first_call_latency() -> float:
    """Time of the first ToFrame call in a fresh interpreter (Numba cache load or compile)."""
    import subprocess

    code = (
        "import time, numpy as np;from neurodata.events import make_events;import neurodata.transforms as T;"
        "e = make_events(np.arange(100), np.zeros(100), np.zeros(100), np.zeros(100));"
        "s = time.perf_counter(); T.ToFrame((4, 4, 2), n_time_bins=3)(e); print(time.perf_counter() - s)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--block", type=int, default=1, help="calls in a row per side and round (1: alternate call by call)"
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--filter-events", type=int, default=100_000, help="Tonic's filters are Python loops")
    args = parser.parse_args()
    sj = load_spikingjelly_utils()
    rows = []

    def row(name, n, ours, peer, repeats=args.repeats, peer_name="tonic", threads=1):
        """Time two zero-argument callables (built with functools.partial) side by side; ``threads``: ours."""
        rows.append((name, peer_name, threads, n, *compare(ours, peer, repeats, args.block)))
        print(f"  {name:<34} done", file=sys.stderr)

    inputs = [
        (128, 128, 20, "", synthetic(args.events, 128, 128)),
        (1280, 720, 10, "", synthetic(args.events, 1280, 720)),
    ]
    real = real_1280x720()
    if real is not None:
        inputs.append((1280, 720, 10, " evt3", real))
    for width, height, n_bins, label_suffix, ev in inputs:
        size = (width, height, 2)
        tev = as_tonic(ev)
        n = len(ev)
        tag = f"{width}x{height}{label_suffix}"
        duration = int(ev["t"][-1] - ev["t"][0]) + 1
        for label, spec in (
            ("time_window", {"time_window": duration // n_bins}),
            ("event_count", {"event_count": n // n_bins}),
            ("n_time_bins", {"n_time_bins": n_bins}),
        ):
            row(
                f"ToFrame {label} {tag}",
                n,
                partial(NT.ToFrame(size, **spec), ev),
                partial(TT.ToFrame(size, **spec), tev),
                threads=frame_threads(None, n, n_bins, n_bins * 2 * height * width * 4),  # ToFrame's default (int32)
            )
        if width != 128:
            continue
        cols = {name: ev[name].astype(np.int64) for name in "txyp"}
        for split_by in ("number", "time"):
            ours = partial(NT.ToFrame(size, frames_number=n_bins, split_by=split_by), ev)
            peer = partial(sj.integrate_events_by_fixed_frames_number, cols, split_by, n_bins, height, width)
            row(f"frames_number {split_by} {tag}", n, ours, peer, peer_name="spikingjelly")
        row(
            f"ToVoxelGrid 10 {tag}",
            n,
            partial(NT.ToVoxelGrid(size, 10), ev),
            partial(TT.ToVoxelGrid(size, 10), tev),
        )
        surface = {"dt": 50_000, "tau": 10_000}
        ours, peer = (
            partial(NT.ToTimesurface(size, **surface), ev),
            partial(TT.ToTimesurface(size, **surface), tev),
        )
        row(f"ToTimesurface dt=50ms {tag}", n, ours, peer)
        small, tsmall = ev[: args.filter_events], tev[: args.filter_events]
        repeats = max(3, args.repeats // 2)
        ours, peer = (
            partial(NT.Denoise(filter_time=10_000), small),
            partial(TT.Denoise(filter_time=10_000), tsmall),
        )
        row(f"Denoise {tag}", len(small), ours, peer, repeats)
        ours, peer = (
            partial(NT.RefractoryPeriod(delta=1_000), small),
            partial(TT.RefractoryPeriod(delta=1_000), tsmall),
        )
        row(f"RefractoryPeriod {tag}", len(small), ours, peer, repeats)

    print(
        f"\nmedians of {args.repeats} interleaved rounds (filters: {max(3, args.repeats // 2)}), "
        + ("call by call" if args.block == 1 else f"each a block of {args.block} calls in a row per side")
        + "; CPU time, wall ratio last; "
        "the peer runs on the calling thread, ours too but for ToFrame (its default threads)"
    )
    print(
        f"| {'case':<33} | {'peer':<12} | threads ours / peer | {'events':>9} | {'ours ms':>8} | {'peer ms':>8} | {'ours Mev/s':>10} "
        f"| {'peer Mev/s':>10} | {'ratio':>6} | {'wall ratio':>10} |"
    )
    print("|" + "|".join("-" * w for w in (35, 14, 21, 11, 10, 10, 12, 12, 8, 12)) + "|")
    for name, peer_name, threads, n, wall_a, wall_b, a, b in rows:
        print(
            f"| {name:<33} | {peer_name:<12} | {str(threads) + ' / 1':<19} | {n:>9} | {a * 1e3:>8.2f} | {b * 1e3:>8.2f} | {n / a / 1e6:>10.1f} "
            f"| {n / b / 1e6:>10.2f} | {b / a:>5.1f}x | {wall_b / wall_a:>9.1f}x |"
        )
    print(f"\nfirst ToFrame call in a fresh process (Numba cache load): {first_call_latency() * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
