"""Live ingestion on loopback: sustained receive + decode + framing, and latency under load.

The events (``--input``): by default a real 640x480 recording (the EVT 2.0 fixture) tiled end to
end with its clock sped up to 50 M events/s, so the stream and the frames have a camera's spatial
structure; ``random`` draws coordinates uniformly over the sensor instead (a harder case for the
framing's memory access, and for LZ4, than any camera gives).

* ``tcp``: a DV network stream (LZ4 packets of <= 4096 events / 1 ms, made by our replay's
  encoder) sent as fast as the socket takes it by a separate process; received by
  ``neurodata.live`` and cut into 10 ms windows, each framed with ``to_frame`` (receive + decode +
  framing); received by ``neurodata.live`` as decoded batches (receive + decode: the same work as
  the peer's); and by dv-processing's ``NetworkReader`` (batches only, no framing) when
  ``--peer-python`` names an environment that has it.
* ``pipe``: the same events as RAW EVT 3.0 bytes written into a FIFO by ``cat``, read by the live
  RAW source, windowed and framed the same way.
* ``latency``: the sender paces LZ4 packets at ``--rate`` events/s and stamps each packet's events
  with its send time (Unix us); the receiver cuts 1 ms windows and records, when each window is
  handed over, now minus the send time of its last event. p50/p99 reported.

    PYTHONPATH=. /work/venv/bin/python benchmarks/bench_live.py --events 20000000 \
        --peer-python /work/peerenv/bin/python
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

import neurodata as nd
from neurodata import live
from neurodata.live.dv_protocol import PacketEncoder, stream_header
from neurodata.live.pacing import packets
from neurodata.representations import to_frame

WIDTH, HEIGHT = 640, 480
WINDOW_US = 10_000


REAL_RECORDING = Path(__file__).resolve().parents[1] / "tests" / "data" / "fixtures" / "evt2" / "evt2_sample.raw"
UNIX_START = 1_700_000_000_000_000


def make_events(n: int, rate: float = 50e6) -> np.ndarray:
    """``n`` random events (uniform over the sensor) at ``rate`` events/s of recording time, Unix-time stamps."""
    rng = np.random.default_rng(0)
    t = UNIX_START + (np.arange(n) / rate * 1e6).astype(np.int64)
    return nd.make_events(t, rng.integers(0, WIDTH, n), rng.integers(0, HEIGHT, n), rng.integers(0, 2, n))


def real_events(n: int, rate: float = 50e6) -> np.ndarray:
    """``n`` events of a real 640x480 recording (the EVT 2.0 fixture, 0.54 M events over 50 ms),
    tiled end to end and its clock sped up to ``rate`` events/s, Unix-time stamps: a camera's
    spatial structure (what the framing's memory access sees) at the benchmark's rate."""
    recording = nd.read(REAL_RECORDING)
    span = int(recording["t"][-1] - recording["t"][0]) + 1
    speed_up = rate * span / 1e6 / len(recording)
    tiles = -(-n // len(recording))
    events = np.concatenate([recording] * tiles)[:n]
    elapsed = (events["t"] - recording["t"][0]) + np.repeat(np.arange(tiles) * span, len(recording))[:n]
    events["t"] = UNIX_START + (elapsed / speed_up).astype(np.int64)
    return events


def dv_stream_file(events: np.ndarray, folder: str) -> str:
    path = os.path.join(folder, "stream.dv")
    encoder = PacketEncoder("lz4")
    with open(path, "wb") as f:
        f.write(stream_header(WIDTH, HEIGHT, "lz4"))
        for packet in packets(iter([events])):
            f.write(encoder.encode(packet.events))
    return path


# --- the sending side (run in its own process) ----------------------------------------------


def send_file(port: int, path: str, close: bool) -> None:
    """Serve ``path``'s bytes once to the first client, as fast as the socket takes them; with
    ``close`` end the stream (our client ends there), else hold it open until the client hangs up
    (dv-processing's reader drops what it holds when the server closes first)."""
    with socket.create_server(("127.0.0.1", port)) as server:
        print("ready", flush=True)
        conn, _ = server.accept()
        with conn, open(path, "rb") as f:
            conn.sendfile(f)
            if close:
                conn.shutdown(socket.SHUT_WR)
            conn.recv(1)  # wait for the client to hang up


def send_paced(port: int, rate: float, seconds: float) -> None:
    """Send LZ4 packets of 4096 events at ``rate`` events/s, each stamped with its send time."""
    rng = np.random.default_rng(1)
    per_packet = 4096
    base = nd.make_events(
        np.zeros(per_packet, np.int64),
        rng.integers(0, WIDTH, per_packet),
        rng.integers(0, HEIGHT, per_packet),
        np.ones(per_packet, np.uint8),
    )
    encoder = PacketEncoder("lz4")
    with socket.create_server(("127.0.0.1", port)) as server:
        print("ready", flush=True)
        conn, _ = server.accept()
        with conn:
            conn.sendall(stream_header(WIDTH, HEIGHT, "lz4"))
            start = time.monotonic()
            sent = 0
            while time.monotonic() - start < seconds:
                due = start + sent / rate
                while time.monotonic() < due:
                    pass
                base["t"] = time.time_ns() // 1000
                conn.sendall(encoder.encode(base))
                sent += per_packet


def dv_reader(port: int, count: int) -> None:
    """dv-processing's NetworkReader: read ``count`` events; print the seconds it took, from before
    it connects (as ours are timed from before ``live.open`` connects)."""
    import dv_processing as dv

    start, cpu = time.perf_counter(), time.process_time()
    reader = dv.io.NetworkReader("127.0.0.1", port)
    got = 0
    while got < count:
        batch = reader.getNextEventBatch()
        if batch is None:
            if not reader.isRunning():
                break
            continue
        got += batch.size()
    print(time.perf_counter() - start, time.process_time() - cpu, got, flush=True)


# --- the receiving side ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sender(*args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc, port


class Run(NamedTuple):
    """One timed run: wall seconds, CPU seconds of the receiving process (all its threads), events."""

    seconds: float
    cpu: float
    events: int


def consume(source: str, frame: bool = True, **options) -> Run:
    """Receive, decode, cut 10 ms windows and frame each (with ``frame``; else take the decoded
    batches as they come, as NetworkReader hands them out)."""
    start, cpu = time.perf_counter(), time.process_time()
    n = 0
    with live.open(source, **options) as src:
        if frame:
            for window in src.chunks(time_window=WINDOW_US):
                if len(window):
                    to_frame(window, (WIDTH, HEIGHT, 2), n_time_bins=1)
                n += len(window)
        else:
            for batch in src.chunks():
                n += len(batch)
    return Run(time.perf_counter() - start, time.process_time() - cpu, n)


def bench_tcp(path: str, frame: bool = True) -> Run:
    proc, port = start_sender("file", path)
    try:
        return consume(f"tcp://127.0.0.1:{port}", frame, reconnect=False)
    finally:
        proc.wait(timeout=60)


def bench_dv_reader(peer_python: str, path: str, count: int) -> Run:
    proc, port = start_sender("hold", path)
    try:
        out = subprocess.run(
            [peer_python, __file__, "--dv-reader", str(port), str(count)],
            capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
    finally:
        proc.kill()
    seconds, cpu, got = out.stdout.split()
    return Run(float(seconds), float(cpu), int(got))


def bench_pipe(raw: str, folder: str) -> Run:
    fifo = os.path.join(folder, "camera.fifo")
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    with open(fifo + ".log", "wb") as log:
        cat = subprocess.Popen(["sh", "-c", f"cat '{raw}' > '{fifo}'"], stderr=log)
    try:
        return consume(fifo)
    finally:
        cat.wait(timeout=60)


def bench_latency(rate: float, seconds: float) -> dict:
    proc, port = start_sender("paced", str(rate), str(seconds))
    lat = []
    try:
        with live.open(f"tcp://127.0.0.1:{port}", reconnect=False) as src:
            for window in src.chunks(time_window=1000):
                if len(window):
                    lat.append(time.time_ns() / 1000 - int(window["t"][-1]))
            stats = src.stats
    finally:
        proc.wait(timeout=60)
    lat = np.array(lat[len(lat) // 10 :])  # after the first tenth: connection and JIT warm-up
    return {
        "events": stats.events,
        "rate": stats.events / seconds,
        "p50_ms": float(np.percentile(lat, 50)) / 1000,
        "p99_ms": float(np.percentile(lat, 99)) / 1000,
        "dropped": stats.dropped_events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate", type=float, default=10e6, help="events/s for the latency test")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the latency test")
    parser.add_argument("--peer-python", help="a Python with dv-processing, for its NetworkReader")
    parser.add_argument(
        "--input",
        choices=("real", "random"),
        default="real",
        help="real: a real recording tiled and sped up to 50 M ev/s (default); random: uniform random coordinates",
    )
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--dv-reader", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        port, kind, *rest = args.serve
        if kind in ("file", "hold"):
            send_file(int(port), rest[0], kind == "file")
        else:
            send_paced(int(port), float(rest[0]), float(rest[1]))
        return
    if args.dv_reader:
        dv_reader(*args.dv_reader)
        return

    events = real_events(args.events) if args.input == "real" else make_events(args.events)
    with tempfile.TemporaryDirectory() as folder:
        stream = dv_stream_file(events, folder)
        raw = os.path.join(folder, "camera.raw")
        nd.write(raw, events, nd.RecordingInfo("evt3", WIDTH, HEIGHT))
        del events
        consume(raw, format="evt3")  # JIT warm-up of the decoders and the framing
        bench_tcp(stream)
        runs: dict[str, list[Run]] = {"tcp": [], "tcp_batches": [], "pipe": [], "dv": []}
        for _ in range(args.repeats):  # interleaved
            runs["tcp"].append(bench_tcp(stream))
            runs["tcp_batches"].append(bench_tcp(stream, frame=False))
            runs["pipe"].append(bench_pipe(raw, folder))
            if args.peer_python:
                runs["dv"].append(bench_dv_reader(args.peer_python, stream, args.events))
        print(f"{args.events:,} {args.input} events, {os.path.getsize(stream) / 1e6:.0f} MB DV/LZ4 stream, "
              f"{os.path.getsize(raw) / 1e6:.0f} MB EVT 3.0; medians of {args.repeats}; "
              f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        print("M ev/s: events over wall seconds; M ev/CPU-s: over the CPU seconds of the receiving process, "
              "all its threads (the one-core rate)")  # fmt: skip
        # "cores": CPU over wall seconds, how many cores a side kept busy (ours: the source's receive +
        # decode thread and the caller's framing; NetworkReader: its receive thread and the caller's)
        rates, cpu_rates = {}, {}
        for name, label in (("tcp", "neurodata tcp:// LZ4 + 10 ms frames"),
                            ("tcp_batches", "neurodata tcp:// LZ4 (batches)"),
                            ("pipe", "neurodata RAW pipe + 10 ms frames"),
                            ("dv", "dv-processing NetworkReader (batches)")):  # fmt: skip
            if runs[name]:
                seconds = statistics.median(r.seconds for r in runs[name])
                cpu = statistics.median(r.cpu for r in runs[name])
                counts = {r.events for r in runs[name]}
                rates[name], cpu_rates[name] = args.events / seconds / 1e6, args.events / cpu / 1e6
                print(f"{label:40s} {cpu / seconds:4.2f} cores {seconds:6.3f} s {rates[name]:6.1f} M ev/s  "
                      f"{cpu:6.3f} CPU-s {cpu_rates[name]:6.1f} M ev/CPU-s  events {sorted(counts)}")  # fmt: skip
        if "dv" in rates:
            print(f"neurodata / NetworkReader, wall (CPU): framed {rates['tcp'] / rates['dv']:.2f}x "
                  f"({cpu_rates['tcp'] / cpu_rates['dv']:.2f}x), batches, the same work, "
                  f"{rates['tcp_batches'] / rates['dv']:.2f}x ({cpu_rates['tcp_batches'] / cpu_rates['dv']:.2f}x)")  # fmt: skip
    lat = bench_latency(args.rate, args.seconds)
    print(f"latency at {lat['rate'] / 1e6:.1f} M ev/s sent over {args.seconds} s: p50 {lat['p50_ms']:.2f} ms, "
          f"p99 {lat['p99_ms']:.2f} ms, dropped {lat['dropped']}")  # fmt: skip


if __name__ == "__main__":
    main()
