"""UDP (faery's formats) and RAW EVT byte streams as live sources: order, counters, incremental
decoding across arbitrary splits, growing files and pipes."""

from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np
import pytest
from live_helpers import camera_events, write_aedat4

import neurodata as nd
from neurodata import live
from neurodata.errors import FormatError
from neurodata.live.udp import UdpSender, encode_datagram
from neurodata.live.urls import UDP_FORMATS, parse_endpoint


def collect(src: live.LiveSource, count: int, timeout: float = 10) -> np.ndarray:
    """Wait until ``count`` events arrived (or ``timeout``), then stop and take them all."""
    deadline = time.monotonic() + timeout
    while src.stats.events < count and time.monotonic() < deadline:
        time.sleep(0.01)
    src.stop()
    return nd.events.concatenate(list(src.blocks()))


@pytest.mark.parametrize("udp_format", UDP_FORMATS)
def test_udp_every_event_once_in_order(udp_format):
    events = camera_events(20_000, seed=7, t0=0)
    with live.open(f"udp://127.0.0.1:0?format={udp_format}", width=346, height=260) as src:
        sender = UdpSender(parse_endpoint(f"udp://127.0.0.1:{src.address[1]}?format={udp_format}"), 500)
        for start in range(0, len(events), 2000):
            sender.send(events[start : start + 2000])
            time.sleep(0.002)
        sender.close()
        got = collect(src, len(events))
    assert np.array_equal(got, events)
    assert src.info.sensor_size == (346, 260, 2)
    assert src.stats.lost_datagrams == 0 and src.stats.out_of_order == 0


def test_udp_counts_truncated_and_out_of_order_datagrams():
    events = camera_events(300, seed=8, t0=0)
    with live.open("udp://127.0.0.1:0") as src:
        sock = UdpSender(parse_endpoint(f"udp://127.0.0.1:{src.address[1]}"), 100).sock
        first = encode_datagram(events[100:200], "t64_x16_y16_on8")
        sock.sendto(first, src.address)
        sock.sendto(first[:-5], src.address)  # truncated, and back in time: dropped
        sock.sendto(encode_datagram(events[:100], "t64_x16_y16_on8"), src.address)  # back in time
        sock.sendto(encode_datagram(events[200:], "t64_x16_y16_on8")[:-3], src.address)  # truncated
        got = collect(src, 199)
        sock.close()
    assert np.array_equal(got, np.concatenate([events[100:200], events[200:299]]))
    assert src.stats.truncated_datagrams == 2 and src.stats.out_of_order == 2


def test_udp_32_bit_times_unwrap():
    events = camera_events(4000, seed=9, t0=(1 << 32) - 1_000_000)  # crosses the 2**32 us wrap
    with live.open("udp://127.0.0.1:0?format=t32_x16_y15_on1") as src:
        UdpSender(parse_endpoint(f"udp://127.0.0.1:{src.address[1]}?format=t32_x16_y15_on1"), 100).send(events)
        got = collect(src, len(events))
    # the stream starts below 2**32 us, where the low 32 bits are the whole time; past the wrap the
    # receiver adds the 2**32 the format cut off
    assert (events["t"] >= 1 << 32).any()
    assert np.array_equal(got, events)


@pytest.fixture(scope="module")
def raw_bytes(tmp_path_factory) -> tuple[bytes, np.ndarray]:
    events = camera_events(30_000, seed=10, t0=0)
    path = tmp_path_factory.mktemp("raw") / "camera.raw"
    nd.write(path, events, nd.RecordingInfo("evt3", 346, 260))
    return path.read_bytes(), events


def feed(path: str, data: bytes, piece: int = 7919, pause: float = 0.001) -> threading.Thread:
    """Write ``data`` to ``path`` in odd-sized pieces (splitting words and headers anywhere)."""

    def run():
        with open(path, "ab", buffering=0) as f:
            for start in range(0, len(data), piece):
                f.write(data[start : start + piece])
                time.sleep(pause)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_raw_from_a_pipe_decodes_across_splits(tmp_path, raw_bytes):
    data, events = raw_bytes
    fifo = str(tmp_path / "camera.fifo")
    os.mkfifo(fifo)
    writer = feed(fifo, data)
    with live.open(fifo) as src:  # a pipe: RAW, its header names EVT 3.0
        got = nd.events.concatenate(list(src.chunks(n_events=1000)))
    writer.join(timeout=10)
    assert np.array_equal(got, events)
    assert src.info.format == "evt3" and src.info.width == 346


def test_raw_growing_file_with_follow(tmp_path, raw_bytes):
    data, events = raw_bytes
    path = str(tmp_path / "growing.raw")
    with open(path, "wb") as f:
        f.write(data[:101])  # the header is not even complete yet
    writer = feed(path, data[101:], piece=4099, pause=0.005)
    with live.open(path, follow=True, idle_timeout=1.0) as src:
        got = nd.events.concatenate(list(src.chunks()))
    writer.join(timeout=10)
    assert np.array_equal(got, events)


def test_headerless_raw_needs_format_and_reports_truncation(tmp_path, raw_bytes):
    data, events = raw_bytes
    body = data[data.index(b"% end\n") + len(b"% end\n") :]
    path = tmp_path / "body.raw"
    path.write_bytes(body + b"\x01")  # half a 16-bit word at the end
    with pytest.raises(nd.NeurodataError, match="pass format evt2 or evt3"):
        live.open(str(path), follow=True, idle_timeout=0.2)
    with live.open(str(path), format="evt3", width=346, height=260) as src:
        with pytest.raises(FormatError, match=rf"at byte {len(body)}: truncated EVT 3.0 data: 1 trailing bytes"):
            list(src.chunks())



def test_options_and_chunk_sizes_are_checked_when_given(tmp_path):
    """``realtime=True, speed=0`` was a ZeroDivisionError on the source's thread; a NaN time
    window gave one chunk of everything; a fractional event count a TypeError from slicing."""
    for options, said in (
        ({"realtime": True, "speed": 0}, "speed must be"),
        ({"speed": float("nan")}, "speed must be"),
        ({"connect_timeout": -1}, "connect_timeout must be"),
        ({"queue_events": 2.5}, "queue_events must be"),
    ):
        with pytest.raises(ValueError, match=said):
            live.LiveOptions(**options)
    path = write_aedat4(tmp_path / "r.aedat4", camera_events(1000))
    with live.open(path) as src:
        with pytest.raises(ValueError, match="time_window must be"):
            src.chunks(time_window=float("nan"))
        with pytest.raises(ValueError, match="n_events must be"):
            src.chunks(n_events=2.5)


def test_a_very_slow_pace_waits_in_slices_without_overflowing(monkeypatch):
    """``--speed 1e-300`` made the wait for the second packet overflow the clock (OverflowError)."""
    from neurodata.live import pacing

    asked: list[float] = []

    def stopped(seconds: float) -> bool:
        asked.append(seconds)
        return True  # stop at the first wait

    items = iter([pacing.Packet(None, 0), pacing.Packet(None, 1000)])
    assert len(list(pacing.paced(items, 1e-300, stopped))) == 1
    assert asked == [pacing.LONGEST_WAIT]


def test_udp_drops_at_the_end_of_a_burst_are_counted():
    """The kernel's drop count came only with a later datagram: drops at a burst's end (here, the
    whole overflow of a socket not read yet) were reported as 0 lost."""
    from live_helpers import free_port

    from neurodata.live.sources import LiveOptions
    from neurodata.live.udp import UdpSender, UdpSource
    from neurodata.live.urls import parse_endpoint

    endpoint = parse_endpoint(f"udp://127.0.0.1:{free_port(socket.SOCK_DGRAM)}")
    source = UdpSource(endpoint, LiveOptions())  # bound, not reading yet: the buffer overflows
    burst = nd.make_events(np.arange(100 * 20_000), np.ones(100 * 20_000, int), np.ones(100 * 20_000, int), np.ones(100 * 20_000, int))
    sender = UdpSender(endpoint)
    sender.send(burst)
    sender.close()
    source.start()
    seen = -1
    while source.stats.packets != seen:  # until nothing more arrives
        seen = source.stats.packets
        time.sleep(0.5)
    source.stop()
    received = sum(len(block) for block in source.blocks())
    source.close()
    assert received < len(burst)  # the test needs drops
    assert source.stats.lost_datagrams == (len(burst) - received) // 100
