"""Shared pieces of the live tests: camera-like events, free ports and a replay server on a thread."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import numpy as np

import neurodata as nd
from neurodata import live

WIDTH, HEIGHT = 346, 260
UNIX_T0 = 1_700_000_000_000_000  # DV streams carry Unix time in microseconds


def camera_events(n: int, seed: int = 0, span_us: int = 2_000_000, t0: int = UNIX_T0) -> np.ndarray:
    """``n`` random events on a DAVIS346 sensor over ``span_us`` microseconds, in time order."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(t0, t0 + span_us, n))
    return nd.make_events(t, rng.integers(0, WIDTH, n), rng.integers(0, HEIGHT, n), rng.integers(0, 2, n))


def write_aedat4(path, events: np.ndarray) -> str:
    nd.write(path, events, nd.RecordingInfo("aedat4", WIDTH, HEIGHT))
    return str(path)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def replaying(path: str, target: str = "tcp://127.0.0.1:0", **options) -> Iterator[live.Replay]:
    """A :class:`neurodata.live.Replay` serving on a thread, stopped and joined on exit."""
    replay = live.Replay(path, target, live.ReplayOptions(**options))
    thread = threading.Thread(target=replay.serve, daemon=True)
    thread.start()
    try:
        yield replay
    finally:
        replay.stop()
        thread.join(timeout=5)


def receive_all(source: str, timeout: float = 15.0, **options) -> tuple[np.ndarray, live.LiveSource]:
    """Every event of a live source until it ends (a stop after ``timeout`` seconds fails the test)."""
    with live.open(source, **options) as src:
        timer = threading.Timer(timeout, src.stop)
        timer.start()
        try:
            events = nd.events.concatenate(list(src.chunks()))
        finally:
            timer.cancel()
        assert not src.stopping, f"{source} did not end within {timeout} s"
    return events, src
