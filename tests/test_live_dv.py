"""The DV network stream, our two sides: `neurodata.live.Replay` serving and the `tcp://`/`unix://`
client receiving, for every compression; bad streams; reconnection after a reset."""

from __future__ import annotations

import socket
import struct
import threading
import time

import numpy as np
import pytest
from live_helpers import HEIGHT, WIDTH, camera_events, free_port, receive_all, replaying, write_aedat4

from neurodata import live
from neurodata.errors import FormatError, NeurodataError
from neurodata.live.dv_protocol import PacketEncoder, stream_header
from neurodata.reader import rechunk_by_time


@pytest.fixture(scope="module")
def events() -> np.ndarray:
    return camera_events(30_000)


@pytest.fixture(scope="module")
def recording(tmp_path_factory, events) -> str:
    return write_aedat4(tmp_path_factory.mktemp("live") / "camera.aedat4", events)


@pytest.mark.parametrize("compression", ["none", "lz4", "lz4_high", "zstd", "zstd_high"])
def test_every_event_arrives_once_in_order(recording, events, compression):
    with replaying(recording, speed=None, compression=compression, linger=0) as replay:
        got, src = receive_all(str(replay.endpoint), reconnect=False)
    assert np.array_equal(got, events)
    assert (src.info.width, src.info.height) == (WIDTH, HEIGHT)
    assert src.info.extra["compression"] == compression
    assert src.stats.events == len(events) and src.stats.dropped_events == 0


def test_unix_socket_and_each_client_from_the_start(tmp_path, recording, events):
    target = f"unix://{tmp_path}/camera.sock"
    with replaying(recording, target, speed=None, linger=0):
        first, _ = receive_all(target, reconnect=False)
        second, _ = receive_all(target, reconnect=False)
    assert np.array_equal(first, events) and np.array_equal(second, events)


def test_paced_replay_takes_the_recordings_time(tmp_path):
    short = camera_events(2000, span_us=400_000)
    path = write_aedat4(tmp_path / "short.aedat4", short)
    with replaying(path, speed=2.0, linger=0) as replay:
        start = time.monotonic()
        got, _ = receive_all(str(replay.endpoint), reconnect=False)
        took = time.monotonic() - start
    assert np.array_equal(got, short)
    assert took >= 0.15  # 0.4 s of recording at twice its pace: at least most of 0.2 s


def serve_bytes(
    payloads: list[bytes], reset: bool = False, until: threading.Event | None = None
) -> tuple[int, threading.Thread]:
    """A one-connection TCP server that sends ``payloads`` then closes (with a reset if asked; once
    ``until`` is set when given: a stalled sender)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def run():
        with listener:
            conn, _ = listener.accept()
            with conn:
                for payload in payloads:
                    conn.sendall(payload)
                if until is not None:
                    until.wait(10)
                if reset:
                    time.sleep(0.3)  # let the client read what was sent before the reset
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_wrong_identifier_names_the_offset():
    header = bytearray(stream_header(WIDTH, HEIGHT))
    header[8:12] = b"NOPE"
    port, _ = serve_bytes([bytes(header)])
    with pytest.raises(FormatError, match=r"at byte 8: invalid IOHeader: .*file identifier b'NOPE'"):
        live.open(f"tcp://127.0.0.1:{port}", reconnect=False, connect_timeout=5)


def test_an_aedat4_file_sent_raw_is_not_a_dv_stream(recording):
    with open(recording, "rb") as f:
        port, _ = serve_bytes([f.read(4096)])
    with pytest.raises(FormatError, match="at byte 0: IOHeader size .* exceeds"):
        live.open(f"tcp://127.0.0.1:{port}", reconnect=False, connect_timeout=5)


def test_garbage_packet_size_names_the_offset(events):
    header = stream_header(WIDTH, HEIGHT)
    good = PacketEncoder("lz4").encode(events[:100])
    port, _ = serve_bytes([header, good, struct.pack("<ii", 0, 1 << 30)])
    with pytest.raises(FormatError, match=rf"at byte {len(header) + len(good)}: packet size 1073741824"):
        receive_all(f"tcp://127.0.0.1:{port}", reconnect=False)


def test_undecodable_payload_is_counted_and_skipped(events):
    header = stream_header(WIDTH, HEIGHT)
    encoder = PacketEncoder("lz4")
    bad = struct.pack("<ii", 0, 12) + b"not an lz4!!"
    port, _ = serve_bytes([header, encoder.encode(events[:100]), bad, encoder.encode(events[100:250])])
    got, src = receive_all(f"tcp://127.0.0.1:{port}", reconnect=False)
    assert np.array_equal(got, events[:250])
    assert src.stats.skipped_packets == 1 and src.stats.packets == 3


def test_truncated_stream_without_reconnect_names_the_packet(events):
    header = stream_header(WIDTH, HEIGHT)
    packet = PacketEncoder("none").encode(events[:100])
    port, _ = serve_bytes([header, packet[:50]])
    with pytest.raises(NeurodataError, match=rf"at byte {len(header)}: stream ended 50 bytes into a packet"):
        receive_all(f"tcp://127.0.0.1:{port}", reconnect=False)


def test_reset_mid_stream_reconnects(recording, events):
    """The first server dies mid-packet with a reset; the client reconnects to the replay that
    takes over the port and records it whole."""
    header = stream_header(WIDTH, HEIGHT)
    packet = PacketEncoder("lz4").encode(events[:100])
    port, first = serve_bytes([header, packet, packet[:20]], reset=True)

    def take_over():
        first.join(timeout=10)
        with replaying(recording, f"tcp://127.0.0.1:{port}", speed=None, linger=0):
            time.sleep(3)

    thread = threading.Thread(target=take_over, daemon=True)
    thread.start()
    got, src = receive_all(f"tcp://127.0.0.1:{port}", connect_timeout=5)
    thread.join(timeout=10)
    assert src.stats.reconnects == 1
    assert np.array_equal(got[:100], events[:100]) and np.array_equal(got[100:], events)


def test_refused_connection_without_reconnect_is_one_clear_error():
    port = free_port()
    with pytest.raises(NeurodataError, match=rf"tcp://127.0.0.1:{port}: cannot connect"):
        live.open(f"tcp://127.0.0.1:{port}", reconnect=False)


def test_slow_consumer_keeps_memory_bounded(recording, events):
    with replaying(recording, speed=None, linger=0) as replay:
        with live.open(str(replay.endpoint), reconnect=False, queue_events=5000) as src:
            time.sleep(1.5)  # let the whole stream arrive while nobody consumes
            # the bound, or one decoded block alone (a 4 MiB read can decode to more than 5000 events)
            queue = src.queue
            held, blocks = queue.held_events, queue.held_blocks
            assert held <= 5000 or blocks == 1, (held, blocks)
            got = np.concatenate(list(src.chunks()))
    stats = src.stats
    assert stats.dropped_events > 0 and stats.dropped_blocks > 0
    assert len(got) + stats.dropped_events == len(events)
    assert np.array_equal(got, events[-len(got) :])  # the oldest were dropped, the newest kept


def test_loop_serves_the_recording_again_later_in_time(tmp_path):
    short = camera_events(3000, seed=4, span_us=100_000)
    path = write_aedat4(tmp_path / "short.aedat4", short)
    with replaying(path, speed=None, loop=True) as replay:
        with live.open(str(replay.endpoint), reconnect=False) as src:
            got = next(iter(src.chunks(n_events=3 * len(short))))
    shift = int(short["t"][-1]) + 1 - int(short["t"][0])
    for k in range(3):
        part = got[k * len(short) : (k + 1) * len(short)]
        assert np.array_equal(part["t"], short["t"] + k * shift)
        assert np.array_equal(part[["x", "y", "p"]], short[["x", "y", "p"]])


# --- the source thread ends with the stream ---------------------------------------------------


def many_packets(events: np.ndarray, compression: str = "lz4") -> bytes:
    """The IOHeader and packets of 100 events each, as one piece."""
    encoder = PacketEncoder(compression)
    packets = [encoder.encode(events[i : i + 100]) for i in range(0, len(events), 100)]
    return stream_header(WIDTH, HEIGHT, compression) + b"".join(packets)


def live_threads(port: int) -> list[threading.Thread]:
    """The threads still running for the source at ``port``."""
    return [t for t in threading.enumerate() if t.name.startswith("neurodata-live") and f":{port}" in t.name]


def test_closing_while_the_sender_stalls_ends_the_source_thread(events):
    stalled = threading.Event()
    port, _ = serve_bytes([many_packets(events[:6000])], until=stalled)
    src = live.open(f"tcp://127.0.0.1:{port}", reconnect=False)
    try:
        blocks = src.chunks()
        got = [next(blocks)]
        while sum(map(len, got)) < 6000:
            got.append(next(blocks))
        assert np.array_equal(np.concatenate(got), events[:6000])
        assert live_threads(port)  # still connected, waiting for the stalled sender
        src.close()
        assert not live_threads(port)
    finally:
        stalled.set()


@pytest.mark.parametrize("cut", [False, True])
def test_the_source_thread_ends_when_the_sender_disconnects(events, cut):
    encoder = PacketEncoder("zstd")
    tail = [encoder.encode(events[:100])[:30]] if cut else []  # a disconnect inside a packet, or at a boundary
    port, _ = serve_bytes([many_packets(events[:6000], "zstd"), *tail])
    src = live.open(f"tcp://127.0.0.1:{port}", reconnect=False)
    got = []
    try:
        if cut:
            with pytest.raises(NeurodataError, match=r"stream ended 30 bytes into a packet"):
                got.extend(src.chunks())
        else:
            got.extend(src.chunks())
        assert not live_threads(port)  # ended before the source reported the end, not at close
    finally:
        src.close()
    assert np.array_equal(np.concatenate(got), events[:6000]) and src.stats.skipped_packets == 0


def test_a_payload_that_expands_past_the_limit_is_skipped_not_decompressed(events, monkeypatch):
    """An LZ4 frame of a few MB that expands to GB (zeros compress 250:1) drove the client to 6 GB."""
    import lz4.frame

    from neurodata.formats import aedat4

    monkeypatch.setattr(aedat4, "MAX_DECOMPRESSED", 1 << 20)
    bomb = lz4.frame.compress(b"\0" * (8 << 20))
    with pytest.raises(ValueError, match="it expands beyond 1 MiB"):
        aedat4._lz4_decompress(np.frombuffer(bomb, np.uint8))
    header = stream_header(WIDTH, HEIGHT)
    encoder = PacketEncoder("lz4")
    port, _ = serve_bytes([header, encoder.encode(events[:100]), struct.pack("<ii", 0, len(bomb)) + bomb])
    got, src = receive_all(f"tcp://127.0.0.1:{port}", reconnect=False)
    assert np.array_equal(got, events[:100])
    assert src.stats.skipped_packets == 1


def test_a_unix_target_that_is_not_a_socket_is_refused_and_kept(tmp_path, recording):
    notes = tmp_path / "notes.txt"
    notes.write_text("important")  # was deleted, to put the socket there (so was a recording)
    with pytest.raises(NeurodataError, match=r"notes.txt exists and is not a socket; not replacing it"):
        live.Replay(recording, f"unix://{notes}")
    assert notes.read_text() == "important"


def test_a_damaged_recording_resets_its_clients_and_fails_the_server(tmp_path):
    """A packet that does not decompress, far into the file: the client got the events before it
    and a clean end (exit 0, the rest silently missing); the server printed a thread's traceback."""
    many = camera_events(200_000, span_us=4_000_000)
    path = tmp_path / "damaged.aedat4"
    write_aedat4(path, many)
    data = bytearray(path.read_bytes())
    middle = int(len(data) * 0.8)
    data[middle : middle + 4000] = bytes(4000)
    path.write_bytes(bytes(data))
    replay = live.Replay(str(path), "tcp://127.0.0.1:0", live.ReplayOptions(speed=None, linger=0))
    failure: list[BaseException] = []

    def serve():
        try:
            replay.serve()
        except NeurodataError as error:
            failure.append(error)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with pytest.raises(NeurodataError, match="stream ended .* bytes into a packet"):
        receive_all(str(replay.endpoint), reconnect=False)
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(failure) == 1 and isinstance(failure[0], FormatError)
    assert str(failure[0]).startswith(f"{path}: at byte ")


def test_stop_disconnects_a_client_that_stopped_reading(tmp_path):
    many = camera_events(300_000, span_us=4_000_000)
    path = write_aedat4(tmp_path / "many.aedat4", many)
    with replaying(path, speed=None, linger=60) as replay:
        stalled = socket.create_connection((replay.endpoint.host, replay.endpoint.port))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(t.name.endswith("(_send_dv)") for t in threading.enumerate()):
            time.sleep(0.01)
        time.sleep(0.3)  # the sender fills the socket's buffers and blocks
    deadline = time.monotonic() + 3  # the sending thread blocked (in sendall, or waiting to linger) before
    while time.monotonic() < deadline and any(t.name.endswith("(_send_dv)") for t in threading.enumerate()):
        time.sleep(0.05)
    left = [t.name for t in threading.enumerate() if t.name.endswith("(_send_dv)")]
    stalled.close()
    assert not left


def test_a_gap_in_the_recording_is_skipped_not_cut_into_empty_windows(monkeypatch):
    """Each empty millisecond of a gap was a window: 10**9 of them for 10**12 us, at 100 % CPU."""
    from neurodata.live import pacing

    windows = []

    def counted(*args, **kwargs):
        for window in rechunk_by_time(*args, **kwargs):
            windows.append(len(window))
            assert len(windows) < 10, "empty windows of the gap are being made"
            yield window

    monkeypatch.setattr(pacing, "rechunk_by_time", counted)
    blocks = [nd_events([0, 1]), nd_events([10**12, 10**12 + 5])]
    got = list(pacing.packets(iter(blocks)))
    assert [p.events["t"].tolist() for p in got] == [[0, 1], [10**12, 10**12 + 5]]
    assert [p.due_us for p in got] == [1000, 10**12 + 6]
    assert windows == [2, 2]


def nd_events(times: list[int]) -> np.ndarray:
    import neurodata as nd

    return nd.make_events(times, [0] * len(times), [0] * len(times), [1] * len(times))


def test_stopping_while_reconnecting_ends_the_stream_with_what_arrived(events):
    """``live --duration 3`` against a server that went away: the stop came during the reconnect
    back-off and raised "cannot connect", so the CLI exited 2 and wrote none of the 10 events."""
    header = stream_header(WIDTH, HEIGHT)
    packet = PacketEncoder("lz4").encode(events[:10])
    port, _ = serve_bytes([header, packet, PacketEncoder("none").encode(events[10:20])[:30]])
    with live.open(f"tcp://127.0.0.1:{port}", connect_timeout=30) as src:
        timer = threading.Timer(1.0, src.stop)
        timer.start()
        got = list(src.chunks())
        timer.cancel()
    assert np.array_equal(np.concatenate(got), events[:10])
