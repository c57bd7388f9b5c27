"""AEDAT 4.0 full decode to numpy: neurodata vs the `aedat` (Rust) and `faery` (Rust) packages.

Writes a large LZ4 file with neurodata's writer (the DVXplorer fixture tiled in time, or random
events when the fixtures are absent) into a temporary folder, warms the page cache, then decodes
it ``--repeats`` times with every reader, interleaved, and prints medians, M events/s and ratios.
Finally measures first-call latency (import + decode of the small fixture) in fresh processes.
Every row states the threads its reader decodes on: ours decompresses on a pool of 2 threads by
default, `aedat` and `faery` on the calling thread; the ``speed of ... vs this reader`` column is
given against both of our rows, so the ``1 thread`` column is the same-threads comparison.

    cd /work/wt-aedat4 && PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_formats_aedat4.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import neurodata as nd
from neurodata.formats import aedat4

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / "fixtures" / "aedat4" / "sample.aedat4"


def make_events(n: int) -> np.ndarray:
    """``n`` events: the real DVXplorer sample repeated back to back in time (random if absent)."""
    if FIXTURE.exists():
        base = nd.read(FIXTURE)
        reps = -(-n // len(base))
        span = int(base["t"][-1] - base["t"][0]) + 1
        events = np.concatenate([base] * reps)[:n]
        events["t"] += (np.arange(len(events)) // len(base)) * span
        return events
    rng = np.random.default_rng(0)
    t = 1_600_000_000_000_000 + np.cumsum(rng.integers(0, 3, n))
    return nd.make_events(t, rng.integers(0, 320, n), rng.integers(0, 240, n), rng.integers(0, 2, n))


def read_neurodata(path: str, workers: int) -> np.ndarray:
    aedat4.WORKERS = workers
    return nd.read(path)


def read_aedat(path: str) -> np.ndarray:
    import aedat

    return np.concatenate([packet["events"] for packet in aedat.Decoder(path) if "events" in packet])


def read_faery(path: str) -> np.ndarray:
    import faery

    return np.concatenate(list(faery.events_stream_from_file(path)))


def same_events(ours: np.ndarray, theirs: np.ndarray) -> bool:
    return (
        len(ours) == len(theirs)
        and np.array_equal(ours["t"], theirs["t"].astype(np.int64))
        and np.array_equal(ours["x"], theirs["x"])
        and np.array_equal(ours["y"], theirs["y"])
        and np.array_equal(ours["p"] == 1, theirs["on"] if "on" in theirs.dtype.names else theirs["p"] == 1)
    )


def first_call_latency(path: Path) -> tuple[float, float]:
    """Seconds for ``import neurodata`` and then the first ``nd.read(path)``, in a fresh interpreter."""
    code = (
        "import time; t0 = time.perf_counter(); import neurodata as nd; t1 = time.perf_counter(); "
        f"nd.read({str(path)!r}); print(t1 - t0, time.perf_counter() - t1)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    import_s, read_s = map(float, out.stdout.split())
    return import_s, read_s


def compare(title: str, path: str, events: np.ndarray, readers: dict, repeats: int) -> None:
    """Check every reader against ``events``, time them interleaved, print a table of medians.

    ``readers``: name -> (threads it decodes on, function); the ratios are against the first
    reader and against the first one-thread reader (the same-threads comparison)."""
    Path(path).read_bytes()  # warm the page cache
    for name, (_, function) in readers.items():  # the warm-up run doubles as the correctness check
        assert same_events(events, function(path)), f"{name} decoded different events"
    names = list(readers)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:  # rotate the order
            start = time.perf_counter()
            readers[name][1](path)
            times[name].append(time.perf_counter() - start)
    ours = statistics.median(times[names[0]])
    # the same-threads reference: our first one-thread row, when it is not the first row already
    single = next((n for n in names[1:] if readers[n][0] == 1 and n.startswith("neurodata")), None)
    extra = f" of {single} vs this |" if single else ""
    print(f"\n{title}, median of {repeats}\n")
    print(f"| reader | threads | median ms | M events/s | speed of {names[0]} vs this |{extra}")
    print("|---|---:|---:|---:|---:|" + ("---:|" if single else ""))
    for name in names:
        median = statistics.median(times[name])
        same = f" {median / statistics.median(times[single]):.2f}x |" if single else ""
        print(
            f"| {name} | {readers[name][0]} | {median * 1e3:.1f} | {len(events) / median / 1e6:.1f} "
            f"| {median / ours:.2f}x |{same}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=float, default=30e6)
    parser.add_argument("--packet-events", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fixture-repeats", type=int, default=101)
    args = parser.parse_args()
    threads = max(2, aedat4.WORKERS)
    readers = {
        f"neurodata ({threads} threads)": (threads, lambda p: read_neurodata(p, threads)),
        "neurodata (1 thread)": (1, lambda p: read_neurodata(p, 1)),
    }
    for name, function in (("aedat", read_aedat), ("faery", read_faery)):
        try:
            __import__(name)
            readers[name] = (1, function)
        except ImportError as err:
            print(f"skipping {name}: {err}")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bench.aedat4")
        events = make_events(int(args.events))
        info = nd.RecordingInfo(
            "aedat4", 320, 240, extra={"compression": "lz4", "packet_events": args.packet_events}
        )
        start = time.perf_counter()
        nd.write(path, events, info)
        write_s = time.perf_counter() - start
        size_mb = os.path.getsize(path) / 1e6
        title = f"{len(events) / 1e6:.1f} M events, LZ4, {args.packet_events} events/packet, {size_mb:.0f} MB (written in {write_s:.2f} s)"
        compare(title, path, events, readers, args.repeats)
        del events
    if FIXTURE.exists():
        title = "DV's own file: the 112k-event DVXplorer fixture (LZ4, ~900 events/packet, IMU packets)"
        # below the pool's threshold: ours decodes it on the calling thread, as the peers do
        small = {
            name.replace(f"({threads} threads)", "(default)"): (1, f)
            for name, (_, f) in readers.items()
            if name != "neurodata (1 thread)"
        }
        compare(title, str(FIXTURE), nd.read(FIXTURE), small, args.fixture_repeats)
        latencies = [first_call_latency(FIXTURE) for _ in range(3)]
        imports, reads = (statistics.median(x) for x in zip(*latencies))
        print(
            f"\nfirst call in a fresh process, median of 3 (Numba cache warm): import neurodata {imports:.2f} s, "
            f"then the first nd.read of the fixture {reads:.2f} s"
        )


if __name__ == "__main__":
    main()
