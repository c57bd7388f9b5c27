"""Read speed and size of finished caches side by side, e.g. one stored narrow (int32 times, uint8
coordinates, LZ4HC) and the same events stored wide (int64, uint16, LZ4) by an earlier version.

    PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_cache_read.py CACHE [CACHE ...] [--repeats 5]

Every split is read completely through :func:`neurodata.cache.open_cache` twice per repeat: one
``sample(i)`` at a time, and ``events()`` over 16 samples per call. Runs are interleaved over the
caches and medians reported (M events/s); the machine is shared. The caches must hold the same
events (checked: event counts and a checksum of the decoded events).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import zlib
from pathlib import Path

from neurodata.cache import open_cache


def read_all(url: str, batch: int | None) -> tuple[float, int, int]:
    """Seconds, events and CRC32 of the decoded events, reading every split in order."""
    start = time.perf_counter()
    n, crc = 0, 0
    for split in open_cache(url).splits.values():
        if batch is None:
            chunks = (split.sample(i)[0] for i in range(split.n_samples))
        else:
            chunks = (split.events(i, i + batch)[0] for i in range(0, split.n_samples, batch))
        for events in chunks:
            n += len(events)
            crc = zlib.crc32(events.tobytes(), crc)
    return time.perf_counter() - start, n, crc


def describe(url: str) -> str:
    attrs = open_cache(url).attrs
    meta = json.loads((Path(url) / next(iter(attrs["splits"])) / "t" / "zarr.json").read_text())
    inner = meta["codecs"][0]["configuration"]["codecs"][1]["configuration"]
    size = sum(f.stat().st_size for f in Path(url).rglob("*") if f.is_file())
    n = sum(s["n_events"] for s in attrs["splits"].values())
    dtypes = attrs.get("event_dtypes", {"t": "<i8", "x": "<u2", "y": "<u2", "p": "|u1"})
    stored = "/".join(dtypes[f].lstrip("<|") for f in ("t", "x", "y", "p") if f in dtypes)  # no p: in t
    return f"{stored} {inner['cname']}, {size / n:.2f} bytes/event"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("caches", nargs="+")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for url in args.caches:
        read_all(url, 16)  # untimed: Numba loads or compiles the kernel variant for this cache's dtypes
    runs = {(url, batch): [] for url in args.caches for batch in (None, 16)}
    for _ in range(args.repeats):
        for (url, batch), results in runs.items():
            results.append(read_all(url, batch))
    checks = {(n, crc) for results in runs.values() for _, n, crc in results}
    if len(checks) != 1:
        raise SystemExit(f"the caches decode to different events: {checks}")
    print(f"medians of {args.repeats} interleaved runs, M events/s\n")
    print("| cache | stored as | sample(i) | events(), 16 samples |")
    print("|---|---|---:|---:|")
    for url in args.caches:
        rates = [statistics.median(n / s for s, n, _ in runs[url, batch]) / 1e6 for batch in (None, 16)]
        print(f"| {url} | {describe(url)} | {rates[0]:.0f} | {rates[1]:.0f} |")


if __name__ == "__main__":
    main()
