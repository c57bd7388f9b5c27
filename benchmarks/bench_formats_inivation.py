"""AEDAT 2.0 / 3.1 and N-MNIST .bin decoding: neurodata vs SpikingJelly and Tonic, side by side.

Run in the benchmark environment from the repository root:

    PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_formats_inivation.py

AEDAT files and the big N-MNIST file are generated with our own writers in a temporary folder
(events are random but realistic: sorted times, DVS128 / N-MNIST geometry); the many small N-MNIST
files are copies of the real N-MNIST sample in tests/data/fixtures (4,325 events), one file each, as
in an extracted dataset folder. Files are read once to warm the page cache, then decoded fully to
numpy by each reader in turn (ours and the peer's interleaved, repeated), reporting medians.
First-call latency is measured in fresh processes, with an empty and with a filled Numba cache.
``--nmnist-only`` runs the N-MNIST rows alone (Tonic only, no SpikingJelly).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import neurodata as nd
from neurodata.formats import aedat31
from tests.peer_readers import spikingjelly_functions

NMNIST_FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / "fixtures" / "nmnist" / "sample_nmnist.bin"
CIFAR10DVS_LOADER = (
    "_read_bits",
    "_skip_header",
    "_load_raw_events",
    "_parse_raw_address",
    "_load_events",
    "_load_origin_data",
)


def random_events(n: int, width: int, height: int, duration_us: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, duration_us, n))
    return nd.make_events(t, rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n))


def timed(fn, *args) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, result): CPU time leaves out the time other jobs
    on a shared machine held the core."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - start, time.process_time() - cpu, result


def compare(label: str, n_events: int, ours, peer, repeats: int, peer_repeats: int) -> dict:
    """Interleave ours and the peer's reader; both return the number of events they decoded.

    The row holds wall-time medians (``ours``, ``peer``) and CPU-time medians (``ours_cpu``, ``peer_cpu``).
    """
    ours_t, peer_t = [], []
    for i in range(max(repeats, peer_repeats)):
        if i < repeats:
            wall, cpu, n = timed(ours)
            assert n == n_events, (label, "ours", n, n_events)
            ours_t.append((wall, cpu))
        if peer is not None and i < peer_repeats:
            wall, cpu, n = timed(peer)
            peer_t.append((wall, cpu))
    row = {"label": label, "events": n_events}
    for side, times in (("ours", ours_t), ("peer", peer_t)):
        row[side] = statistics.median(t[0] for t in times) if times else None
        row[f"{side}_cpu"] = statistics.median(t[1] for t in times) if times else None
    return row


def warm(*paths: Path) -> None:
    for path in paths:
        path.read_bytes()


def print_table(rows: list[dict]) -> None:
    print("\n| case | threads ours / peer | events | ours s | ours M ev/s | peer s | peer M ev/s | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ours_rate = r["events"] / r["ours"] / 1e6
        if r["peer"] is None:
            print(f"| {r['label']} | 1 / - | {r['events']:,} | {r['ours']:.4f} | {ours_rate:.1f} | - | - | - |")
            continue
        peer_rate = r["events"] / r["peer"] / 1e6
        print(
            f"| {r['label']} | 1 / 1 | {r['events']:,} | {r['ours']:.4f} | {ours_rate:.1f} | {r['peer']:.4f} | "
            f"{peer_rate:.2f} | {r['peer'] / r['ours']:.1f}x |"
        )


def print_per_file(rows: list[dict], n_files: int) -> None:
    print("\n| case | files | ours us/file wall, CPU | Tonic us/file wall, CPU | speed-up wall, CPU |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        ours, peer = r["ours"] / n_files * 1e6, r["peer"] / n_files * 1e6
        ours_cpu, peer_cpu = r["ours_cpu"] / n_files * 1e6, r["peer_cpu"] / n_files * 1e6
        print(
            f"| {r['label']} | {n_files} | {ours:.1f}, {ours_cpu:.1f} | {peer:.1f}, {peer_cpu:.1f} | "
            f"{peer / ours:.2f}x, {peer_cpu / ours_cpu:.2f}x |"
        )


def nmnist_rows(tmp: Path, n_files: int, repeats: int, peer_repeats: int) -> tuple[list[dict], list[dict]]:
    """N-MNIST against Tonic's ``read_mnist_file``: (rows of many real small files, row of one big file)."""
    import tonic.io as tonic_io
    from tonic.io import events_struct as tonic_dtype

    files = []
    for i in range(n_files):
        files.append(tmp / f"n{i:05d}.bin")
        shutil.copyfile(NMNIST_FIXTURE, files[-1])
    big_events = random_events(5_000_000, 34, 34, 10_000_000, seed=4)
    big = tmp / "big.bin"
    nd.write(big, big_events)
    warm(*files, big)
    nd.read(big)  # compile or load the Numba kernel before timing

    def tonic_many():
        return sum(len(tonic_io.read_mnist_file(str(p), dtype=tonic_dtype)) for p in files)

    n_many = len(nd.read(NMNIST_FIXTURE)) * n_files
    print("N-MNIST ...", flush=True)
    many = [
        compare(
            f"N-MNIST {n_files} real files vs Tonic read_mnist_file, {label}",
            n_many,
            lambda fmt=fmt: sum(len(nd.read(p, format=fmt)) for p in files),
            tonic_many,
            repeats,
            repeats,
        )
        for label, fmt in (("nd.read(path)", None), ("nd.read(path, format='nmnist') (the dataset's call)", "nmnist"))
    ]
    one = compare(
        "N-MNIST one 5 M-event file vs Tonic read_mnist_file",
        len(big_events),
        lambda: len(nd.read(big)),
        lambda: len(tonic_io.read_mnist_file(str(big), dtype=tonic_dtype)),
        repeats,
        peer_repeats,
    )
    return many, [one]


def first_call_latency(path: Path, other: Path, fresh_cache: bool) -> tuple[float, float, float]:
    """In a new Python process: seconds for ``import neurodata``, the first read of ``path``, then of ``other``.

    The first read pays Numba's one-time start-up plus this format's kernels; the read of ``other``
    (another format) pays only its own kernels, so the two separate the costs.
    """
    code = (
        "import time; t0 = time.perf_counter(); import neurodata as nd; t1 = time.perf_counter(); "
        f"nd.read({str(path)!r}); t2 = time.perf_counter(); nd.read({str(other)!r}); "
        "print(t1 - t0, t2 - t1, time.perf_counter() - t2)"
    )
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    with tempfile.TemporaryDirectory() as cache:
        if fresh_cache:
            env["NUMBA_CACHE_DIR"] = cache
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
    import_s, read_s, other_s = map(float, out.stdout.split())
    return import_s, read_s, other_s


def aedat_rows(tmp: Path, args: argparse.Namespace) -> list[dict]:
    """AEDAT 3.1 and 2.0 against SpikingJelly and Tonic, on files generated in ``tmp``."""
    load_aedat_v3 = spikingjelly_functions("utils", ("load_aedat_v3",))["load_aedat_v3"]
    cifar10dvs = spikingjelly_functions("cifar10_dvs", CIFAR10DVS_LOADER)["_load_origin_data"]
    import tonic.io as tonic_io

    info = nd.RecordingInfo("aedat31", extra={"start_time": "2017-01-01 12:00:00 (TZ+0000)"})
    big = random_events(args.big_events, 128, 128, 120_000_000, seed=1)
    small = random_events(args.peer_events, 128, 128, 15_000_000, seed=2)
    paths = {}
    for name, events in (("big", big), ("small", small)):
        paths[f"a31-{name}"] = tmp / f"{name}31.aedat"
        aedat31.write_aedat31(paths[f"a31-{name}"], events, info, packet_events=4096)
        paths[f"a2-{name}"] = tmp / f"{name}2.aedat"
        nd.write(paths[f"a2-{name}"], events, format="aedat2")
    del big, small
    warm(*paths.values())
    for path in paths.values():
        nd.read(path)  # compile or load the Numba kernels before timing

    def tonic_dvs128(path):
        """The body of tonic.io.read_dvs_128, whose header unpacking crashes on every file."""
        version, start, _ = tonic_io.read_aedat_header_from_file(str(path))
        records = tonic_io.get_aer_events_from_file(str(path), version, start)
        addr, t = records["address"], records["timeStamp"]
        xytp = tonic_io.make_structured_array((addr >> 8) & 0x7F, (addr >> 1) & 0x7F, t, addr & 1)
        return len(xytp)

    n_small, n_big = args.peer_events, args.big_events
    cases = (  # label, events, our file, the peer's reader (None: ours only)
        ("AEDAT 3.1 vs SpikingJelly load_aedat_v3", n_small, "a31-small", lambda p: len(load_aedat_v3(p)["t"])),
        ("AEDAT 3.1 big file (ours only)", n_big, "a31-big", None),
        ("AEDAT 2.0 vs SpikingJelly CIFAR10-DVS loader", n_small, "a2-small", lambda p: len(cifar10dvs(p)["t"])),
        ("AEDAT 2.0 vs Tonic read_dvs_128 body", n_small, "a2-small", tonic_dvs128),
        ("AEDAT 2.0 big vs SpikingJelly CIFAR10-DVS loader", n_big, "a2-big", lambda p: len(cifar10dvs(p)["t"])),
    )
    rows = []
    for label, n_events, key, peer in cases:
        print(f"{label} ...", flush=True)
        path = paths[key]
        rows.append(
            compare(
                label,
                n_events,
                lambda path=path: len(nd.read(path)),
                None if peer is None else lambda path=path, peer=peer: peer(path),
                args.repeats,
                0 if peer is None else args.peer_repeats,
            )
        )
    return rows


def print_first_calls(tmp: Path) -> None:
    """First-call latencies in fresh processes, on a real N-MNIST file and AEDAT files of its events."""
    info = nd.RecordingInfo("aedat31", extra={"start_time": "2017-01-01 12:00:00 (TZ+0000)"})
    nmnist_sample = nd.read(NMNIST_FIXTURE)
    print(
        "\nfirst calls in a fresh process (median of 3): import neurodata, first nd.read of a 4,325-event file,"
    )
    print(
        "then the first nd.read of a file in another format (its kernels only: Numba is started by then)"
    )
    tiny = {
        "AEDAT 3.1": tmp / "tiny31.aedat",
        "AEDAT 2.0": tmp / "tiny2.aedat",
        "N-MNIST": NMNIST_FIXTURE,
    }
    aedat31.write_aedat31(tiny["AEDAT 3.1"], nmnist_sample, info)
    nd.write(tiny["AEDAT 2.0"], nmnist_sample, format="aedat2")
    others = {"AEDAT 3.1": "N-MNIST", "AEDAT 2.0": "AEDAT 3.1", "N-MNIST": "AEDAT 2.0"}
    for label, path in tiny.items():
        for fresh, cache_label in ((True, "empty Numba cache"), (False, "filled Numba cache")):
            runs = [first_call_latency(path, tiny[others[label]], fresh) for _ in range(3)]
            import_s, read_s, other_s = (statistics.median(r[i] for r in runs) for i in range(3))
            print(
                f"  {label}, {cache_label}: import {import_s:.2f} s, first read {read_s:.3f} s, "
                f"then {others[label]} {other_s:.3f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--big-events", type=int, default=16_000_000, help="events in the big AEDAT files (ours only)"
    )
    parser.add_argument(
        "--peer-events", type=int, default=2_000_000, help="events in the files both readers decode"
    )
    parser.add_argument(
        "--nmnist-files", type=int, default=1000, help="copies of the real N-MNIST sample (4,325 events each)"
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--peer-repeats", type=int, default=3)
    parser.add_argument("--nmnist-only", action="store_true", help="only the N-MNIST rows (Tonic only)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"generating files in {tmp} ...", flush=True)
        rows = [] if args.nmnist_only else aedat_rows(tmp, args)
        many, one = nmnist_rows(tmp, args.nmnist_files, args.repeats, args.peer_repeats)
        print_table(rows + many + one)
        print_per_file(many, args.nmnist_files)
        if not args.nmnist_only:
            print_first_calls(tmp)


if __name__ == "__main__":
    main()
