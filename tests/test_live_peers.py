"""Interoperability with the cameras' own software: iniVation's dv-processing 2.0.4 (its
``NetworkWriter`` feeding our client, its ``NetworkReader`` reading our replay) and faery 0.7.1's
UDP formats in both directions.

dv-processing's network constructors block while holding Python's GIL, so its side runs in its own
process (tests/live_peer.py). Run where the peers are installed (``.ci/run``'s peer environment).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import peer_missing
from live_helpers import HEIGHT, WIDTH, camera_events, free_port, receive_all, replaying, write_aedat4

import neurodata as nd
from neurodata import live

PEER_ENV = "the peer tests' environment: .ci/run makes it, see docs/testing.md"
PEER_SCRIPT = str(Path(__file__).with_name("live_peer.py"))
N_EVENTS = 20_000


@pytest.fixture(scope="module")
def dv_processing():
    if importlib.util.find_spec("dv_processing") is None:
        peer_missing(f"dv-processing is not installed here ({PEER_ENV})")


@pytest.fixture(scope="module")
def faery():
    try:
        import faery
    except ImportError:
        peer_missing(f"faery is not installed here ({PEER_ENV})")
    return faery


@pytest.fixture(scope="module")
def events() -> np.ndarray:
    return camera_events(N_EVENTS, seed=3)


@pytest.mark.parametrize("compression", ["none", "lz4", "lz4_high", "zstd", "zstd_high"])
def test_our_client_receives_what_network_writer_sends(dv_processing, tmp_path, events, compression):
    np.savez(tmp_path / "events.npz", **{k: events[k] for k in "txyp"}, width=WIDTH, height=HEIGHT)
    port = free_port()
    writer = subprocess.Popen(
        [sys.executable, PEER_SCRIPT, "write", str(port), compression, str(tmp_path / "events.npz")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "listening"
        got, src = receive_all(f"tcp://127.0.0.1:{port}", reconnect=False)
        assert writer.wait(timeout=20) == 0
    finally:
        writer.kill()
    assert np.array_equal(got, events)
    assert (src.info.width, src.info.height) == (WIDTH, HEIGHT)
    assert src.info.extra["compression"] == compression


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_network_reader_receives_our_replay(dv_processing, tmp_path, events, compression):
    path = write_aedat4(tmp_path / "camera.aedat4", events)
    with replaying(path, speed=None, compression=compression) as replay:
        out = tmp_path / "read.npz"
        subprocess.run(
            [sys.executable, PEER_SCRIPT, "read", str(replay.endpoint.port), str(N_EVENTS), str(out)],
            check=True,
            timeout=30,
        )
    with np.load(out, allow_pickle=False) as z:
        peer = z["events"]
        assert (int(z["width"]), int(z["height"])) == (WIDTH, HEIGHT)
    got = nd.make_events(peer["timestamp"], peer["x"], peer["y"], peer["polarity"])
    assert np.array_equal(got, events)


def faery_array(events: np.ndarray, faery) -> np.ndarray:
    out = np.zeros(len(events), dtype=faery.EVENTS_DTYPE)
    out["t"], out["x"], out["y"], out["on"] = events["t"], events["x"], events["y"], events["p"] != 0
    return out


@pytest.mark.parametrize("udp_format", live.urls.UDP_FORMATS)
def test_faery_sends_to_our_udp_source(faery, events, udp_format):
    sent = events.copy()
    sent["t"] -= sent["t"][0]  # faery's 32-bit format sends the low bits of time
    with live.open(f"udp://127.0.0.1:0?format={udp_format}") as src:
        stream = faery.events_stream_from_array(faery_array(sent, faery), (WIDTH, HEIGHT))
        stream.to_udp(src.address, format=udp_format)
        deadline = time.monotonic() + 10
        while src.stats.events < len(sent) and time.monotonic() < deadline:
            time.sleep(0.02)
        src.stop()
        got = nd.events.concatenate(list(src.blocks()))
    assert np.array_equal(got, sent)
    assert src.stats.out_of_order == 0 and src.stats.truncated_datagrams == 0


@pytest.mark.parametrize("udp_format", live.urls.UDP_FORMATS)
def test_faery_receives_our_replay(faery, tmp_path, events, udp_format):
    sent = events.copy()
    sent["t"] -= sent["t"][0]
    path = write_aedat4(tmp_path / "camera.aedat4", sent)
    port = free_port(socket.SOCK_DGRAM)
    stream = faery.events_stream_from_udp((WIDTH, HEIGHT), ("127.0.0.1", port), format=udp_format)
    received: list[np.ndarray] = []

    def listen():
        count = 0
        for packet in stream:
            received.append(packet.copy())
            count += len(packet)
            if count >= len(sent):
                return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(0.3)  # faery binds on its thread
    # UDP has no flow control: at 20x real time (20,000 datagrams/s) faery's Python iterator, sharing
    # the GIL with the replay thread, lost 10-50 % of them on a slower machine. 2x (2,000/s) kept every one.
    live.Replay(path, f"udp://127.0.0.1:{port}?format={udp_format}", live.ReplayOptions(speed=2)).serve()
    thread.join(timeout=10)
    got = np.concatenate(received)
    assert np.array_equal(got["t"], sent["t"]) and np.array_equal(got["x"], sent["x"])
    assert np.array_equal(got["y"], sent["y"]) and np.array_equal(got["on"], sent["p"] != 0)

