"""Event Stream (.es) full-file decoding: neurodata vs faery, on the same files.

Run from the project root::

    PYTHONPATH=. /work/venv/bin/python benchmarks/bench_formats_es.py [--events 5e6] [--repeats 5]

Files: the DVS and color samples of the Event Stream specification (``tests/data/fixtures/es``), their
event bytes repeated after the header to about ``--events`` events (Event Stream stores time
differences, so repeated bytes keep time increasing); and an ATIS file written by faery from the
decoded DVS events, every other event an exposure measurement (which both readers skip). faery's
side is its Rust decoder plus the y flip and exposure filter its own file reader applies, so both
sides return the same events (checked). Interleaved rounds; medians of wall time; ratio = faery
time / our time (above 1: neurodata is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import neurodata as nd
from tests.faery_files import write_faery_atis

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "fixtures" / "es"
HEADER = 20


def tile_bytes(source: Path, target: str, n_events: int) -> None:
    """Repeat a file's event bytes after its header until it holds about ``n_events`` events."""
    data = source.read_bytes()
    copies = max(1, round(n_events / len(nd.read(source))))
    with open(target, "wb") as out:
        out.write(data[:HEADER] + data[HEADER:] * copies)


def read_faery(path: str) -> np.ndarray:
    """faery's Rust decoder, then what its file reader does: y flipped, exposure events dropped."""
    from faery import es

    with es.Decoder(path, 0) as decoder:
        height = decoder.dimensions[1]
        chunks = []
        for chunk in decoder:
            if "exposure" in chunk.dtype.names:
                chunk = chunk[~chunk["exposure"]]
            chunk["y"] = height - 1 - chunk["y"]
            chunks.append(chunk)
    return np.concatenate(chunks)


def same(theirs: np.ndarray, ours: np.ndarray) -> str:
    if len(theirs) != len(ours):
        return f"{len(theirs)} events, expected {len(ours)}"
    for field in "txy":
        if not np.array_equal(theirs[field].astype(np.int64), ours[field].astype(np.int64)):
            return f"{field} differs"
    return "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=float, default=5e6, help="events per file")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (median reported)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench-es-") as tmp:
        files = {name: os.path.join(tmp, f"{name}.es") for name in ("dvs", "color", "atis")}
        tile_bytes(FIXTURES / "dvs_sample.es", files["dvs"], int(args.events))
        tile_bytes(FIXTURES / "color_sample.es", files["color"], int(args.events))
        write_faery_atis(files["atis"], nd.read(files["dvs"]), (320, 240))
        print(f"{'file':6} {'events':>9} {'MB':>6} {'ours s':>7} {'faery s':>8} {'ratio':>6} {'threads ours/peer':>17}  check")
        for name, path in files.items():
            Path(path).read_bytes()  # warm the page cache
            walls: dict[str, list[float]] = {"ours": [], "faery": []}
            for _ in range(args.repeats + 1):  # the first round warms up (Numba, imports)
                for label, fn in (("ours", nd.read), ("faery", read_faery)):
                    start = time.perf_counter()
                    result = fn(path)
                    walls[label].append(time.perf_counter() - start)
                    if label == "ours":
                        ours = result
                    else:
                        check = same(result, ours)
            ours_s, faery_s = (statistics.median(walls[k][1:]) for k in ("ours", "faery"))
            size = os.path.getsize(path) / 1e6
            print(f"{name:6} {len(ours):9d} {size:6.1f} {ours_s:7.3f} {faery_s:8.3f} {faery_s / ours_s:5.2f}x {'1 / 1':>17}  {check}")


if __name__ == "__main__":
    main()
