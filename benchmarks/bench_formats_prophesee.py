"""Prophesee EVT 2.0 / EVT 3.0 / DAT full-file decoding: neurodata vs expelliarmus vs faery.

Run from the project root in the benchmark environment::

    PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_formats_prophesee.py [--events 20e6] [--repeats 5]

The EVT 3.0 recordings (``tests/data/fixtures/evt3/*.raw`` and any given with ``--evt3``) are tiled
as they are: their own event words repeated to about ``--events`` events, TIME_HIGH moved on by the
recording's span in each copy (see ``tile_evt3_bytes``), so the word mix is the sensor's. The EVT 2.0
and DAT fixtures are tiled in time and re-encoded by our writers. Files go to a temporary folder;
the page cache is warmed;
then every decoder reads each whole file to numpy, in interleaved rounds so that the load of a
shared machine hits all of them alike. The table gives medians of wall time and of process CPU time
(robust when other jobs share the cores), M events/s and the ratio ours/peer. Every peer output is
checked against the events that were written. "neurodata" is the public API (``neurodata.read``, the
block-level decoder behind ``Recording``); "neurodata mmap" feeds the same decoder a memory map of
the file instead of a copy (a proposed ``Recording.read`` change). Finally, first-call latency:
import plus first read of each fixture in a fresh process, with an empty Numba cache and again with
the cache that the first process wrote.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

import neurodata as nd
from neurodata.formats import FORMATS
from neurodata.formats.kernels.time_base import unwrap_highs
from neurodata.formats.prophesee_header import split_header

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "fixtures"
SOURCES = {"evt2": "evt2/evt2_sample.raw", "evt3": "evt3/evt3_sample.raw", "dat": "dat/sample_ncars.dat"}
JITTER_LAG_US = 11  # faery's largest delay of backward TIME_LOW jitter on real EVT 3.0 data
EXTENSIONS = {"evt2": ".raw", "evt3": ".raw", "dat": ".dat"}


def tile(events: np.ndarray, n_events: int) -> np.ndarray:
    """Repeat a recording in time until it holds about ``n_events`` events."""
    copies = max(1, round(n_events / len(events)))
    span = int(events["t"][-1] - events["t"][0]) + 1
    out = np.tile(events, copies)
    shift = np.repeat(np.arange(copies, dtype=np.int64) * span, len(events))
    out["t"] += shift - events["t"][0]
    return out


class TiledBytes(NamedTuple):
    """A recording's bytes repeated ``copies`` times, each copy ``shift_us`` later than the previous."""

    data: bytes
    copies: int
    shift_us: int


def tile_evt3_bytes(source: Path, n_events: int) -> TiledBytes:
    """A real EVT 3.0 recording's own bytes repeated to about ``n_events`` events.

    The header is kept and the event words are repeated unchanged except the TIME_HIGH words, which
    each copy moves on by the recording's span (in TIME_HIGH steps, wrapping the 12-bit field like a
    camera), so time keeps increasing and the word mix stays the sensor's.
    """
    raw = source.read_bytes()
    offset = split_header(raw, at_eof=True).data_offset
    words = np.frombuffer(raw[offset:], dtype="<u2")
    is_high = (words >> 12) == 8
    highs = unwrap_highs(words[is_high] & 0xFFF, None, 0xFFF)
    span = int(highs[-1] - highs[0]) + 1
    copies = max(1, round(n_events / len(nd.read(source))))
    tiled = np.tile(words, copies)
    shifted = highs[None, :] + span * np.arange(copies, dtype=np.int64)[:, None]
    tiled[np.tile(is_high, copies)] = 0x8000 | (shifted.ravel() & 0xFFF)
    return TiledBytes(raw[:offset] + tiled.tobytes(), copies, span << 12)


def read_ours(path: str) -> np.ndarray:
    return nd.read(path)


def read_ours_mmap(path: str) -> np.ndarray:
    """The same block decoder, fed a read-only memory map of the whole event data (no copy)."""
    with nd.open_recording(path) as rec:
        data = np.memmap(path, dtype=np.uint8, mode="r")[rec.header.data_offset :]
        decoder = rec.format.make_decoder(rec.header, rec.source)
        events, _ = decoder.decode(data, rec.header.data_offset, final=True)
    return events


def read_expelliarmus(fmt: str):
    from expelliarmus import Wizard

    wizard = Wizard(encoding=fmt.upper())
    return wizard.read


def read_faery(path: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """faery's Rust decoder; ``size`` is its fallback for headers without the geometry."""
    from faery import evt

    with evt.Decoder(path, size, None) as decoder:
        return np.concatenate([packet["events"] for packet in decoder if "events" in packet])


def same_events(theirs: np.ndarray, truth: np.ndarray) -> str:
    """'ok', or what differs (count, first differing field, end-time error)."""
    if len(theirs) != len(truth):
        return f"{len(theirs)} events, expected {len(truth)}"
    p_name = "on" if "on" in (theirs.dtype.names or ()) else "p"
    for field, name in (("t", "t"), ("x", "x"), ("y", "y"), ("p", p_name)):
        a, b = theirs[name].astype(np.int64), truth[field].astype(np.int64)
        if field == "t" and len(a) and 0 <= (a - b).min() and (a - b).max() <= JITTER_LAG_US:
            late = int((a - b).max())
            return f"ok (t up to {late} us late: faery delays backward TIME_LOW jitter)" if late else "ok"
        if not np.array_equal(a, b):
            first = int(np.argmax(a != b))
            detail = f"{field} differs from event {first}"
            if field == "t":
                detail += f"; end time off by {int(a[-1] - b[-1])} us"
            return detail
    return "ok"


def timed(fn, arg) -> tuple[float, float, np.ndarray]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(arg)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def first_call_latency(cache_dir: str) -> list[tuple[str, float, float]]:
    """Seconds for import + first read of each fixture in a fresh process: cold cache, then warm."""
    paths = [str(FIXTURES / name) for name in SOURCES.values()]
    code = (
        "import time; t0 = time.perf_counter(); import neurodata as nd; "
        f"[nd.read(path) for path in {paths!r}]; print(time.perf_counter() - t0)"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    runs = []
    for label in ("empty Numba cache", "cache from the previous process"):
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        runs.append((label, float(out.stdout.strip().splitlines()[-1])))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=float, default=20e6, help="events per generated file")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (median reported)")
    parser.add_argument("--evt3", nargs="*", default=[], type=Path, help="more real EVT 3.0 recordings to tile")
    args = parser.parse_args()

    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-prophesee-") as tmp:
        rows = []
        inputs = [(fmt, FIXTURES / name) for fmt, name in SOURCES.items() if fmt != "evt3"]
        inputs += [("evt3", path) for path in sorted((FIXTURES / "evt3").glob("*.raw")) + args.evt3]
        for index, (fmt, source) in enumerate(inputs):
            events, info = nd.read(source, return_info=True)
            path = os.path.join(tmp, f"big_{index}_{fmt}{EXTENSIONS[fmt]}")
            if fmt == "evt3":  # the sensor's own bytes, repeated
                tiled = tile_evt3_bytes(Path(source), int(args.events))
                Path(path).write_bytes(tiled.data)
                truth = np.tile(events, tiled.copies)
                truth["t"] += np.repeat(np.arange(tiled.copies, dtype=np.int64) * tiled.shift_us, len(events))
            else:  # tiled events re-encoded by our writer
                truth = tile(events, int(args.events))
                nd.write(path, truth, info, format=fmt)
            Path(path).read_bytes()  # warm the page cache
            size_mb = os.path.getsize(path) / 1e6
            decoders = {"neurodata": read_ours, "neurodata mmap": read_ours_mmap}
            decoders["expelliarmus"] = read_expelliarmus(fmt)
            if fmt != "dat":
                decoders["faery"] = functools.partial(read_faery, size=(info.width, info.height))
            walls = {k: [] for k in decoders}
            cpus = {k: [] for k in decoders}
            checks = {}
            for _ in range(args.repeats + 1):  # the first round warms up (Numba compile, imports)
                for label, fn in decoders.items():
                    wall, cpu, result = timed(fn, path)
                    walls[label].append(wall)
                    cpus[label].append(cpu)
                    checks[label] = same_events(result, truth)
                    del result
            for label in decoders:
                rows.append(
                    (
                        f"{FORMATS[fmt].name} {Path(source).stem}",
                        size_mb,
                        len(truth),
                        label,
                        walls[label][1:],
                        cpus[label][1:],
                        checks[label],
                    )
                )
            print(f"{fmt} {Path(source).name}: {len(truth) / 1e6:.1f} M events, {size_mb:.0f} MB done")

        print()
        # every decoder here (ours: one Numba kernel) runs on the calling thread
        header = f"{'format':24} {'decoder':15} {'threads':>7} {'wall s':>7} {'M ev/s':>7} {'cpu s':>7} {'M ev/s':>7} {'ours/peer (wall, cpu)':>22}  check"
        print(header)
        print("-" * len(header))
        ours = {}
        for fmt, _, n, label, wall, cpu, check in rows:
            wall_s, cpu_s = statistics.median(wall), statistics.median(cpu)
            if label == "neurodata":
                ours[fmt] = (wall_s, cpu_s)
            ratio = (
                ""
                if label.startswith("neurodata")
                else f"{wall_s / ours[fmt][0]:.2f}x, {cpu_s / ours[fmt][1]:.2f}x"
            )
            print(
                f"{fmt:24} {label:15} {1:7d} {wall_s:7.3f} {n / wall_s / 1e6:7.1f} {cpu_s:7.3f} {n / cpu_s / 1e6:7.1f} "
                f"{ratio:>22}  {check}"
            )
        print(
            "\nratio = peer time / our time (above 1: neurodata is faster); medians of",
            args.repeats,
            "rounds",
        )

        print("\nfirst-call latency (fresh process: import neurodata + read the three fixtures)")
        for label, seconds in first_call_latency(os.path.join(tmp, "numba-cache")):
            print(f"  {label:32} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
