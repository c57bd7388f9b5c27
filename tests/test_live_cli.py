"""`neurodata live` and `neurodata replay` as a user runs them: real processes on loopback."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from live_helpers import HEIGHT, WIDTH, camera_events, write_aedat4
from run_helpers import tiny_run

import neurodata as nd

CLI = [sys.executable, "-m", "neurodata.cli"]


@pytest.fixture(scope="module")
def events() -> np.ndarray:
    return camera_events(40_000, seed=5)


@pytest.fixture(scope="module")
def recording(tmp_path_factory, events) -> str:
    return write_aedat4(tmp_path_factory.mktemp("cli") / "camera.aedat4", events)


class Server:
    """`neurodata replay` in a subprocess; ``url`` is what it printed it serves on."""

    def __init__(self, path: str, *options: str):
        self.proc = subprocess.Popen(
            [*CLI, "replay", path, "tcp://127.0.0.1:0", *options], stdout=subprocess.PIPE, text=True
        )
        line = self.proc.stdout.readline()
        self.url = re.search(r"on (tcp://\S+)", line).group(1)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def live_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "live", *args], capture_output=True, text=True, timeout=timeout)


def test_records_exactly_n_events(tmp_path, recording, events):
    out = tmp_path / "first.aedat4"
    with Server(recording, "--speed", "max") as server:
        done = live_cli(server.url, "--out", str(out), "--events", "12345", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["events"] == 12345 and result["stats"]["dropped_events"] == 0
    assert np.array_equal(nd.read(out), events[:12345])


def test_clean_end_of_stream_finishes_the_file(tmp_path, recording, events):
    out = tmp_path / "whole.raw"
    with Server(recording, "--speed", "max", "--compression", "zstd") as server:
        done = live_cli(server.url, "--out", str(out), "--no-reconnect")
    assert done.returncode == 0, done.stderr
    assert "events" in done.stdout and "latency" in done.stdout  # the stats line
    assert np.array_equal(nd.read(out), events)


def test_ctrl_c_keeps_a_finalised_file(tmp_path, recording, events):
    out = tmp_path / "partial.aedat4"
    with Server(recording, "--speed", "1") as server:
        proc = subprocess.Popen(
            [*CLI, "live", server.url, "--out", str(out), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert "receiving" in proc.stderr.readline()  # connected
        time.sleep(0.7)  # part of the 2 s recording
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=15)
    assert proc.returncode == 130
    result = json.loads(stdout)
    got = nd.read(out)
    assert result["interrupted"] and result["events"] == len(got)
    assert np.array_equal(got, events[: len(got)])


def test_duration_and_realtime_recording(tmp_path, recording, events):
    out = tmp_path / "timed.npz"
    done = live_cli(recording, "--realtime", "--speed", "0.25", "--out", str(out), "--duration", "3", "--json")
    assert done.returncode == 0, done.stderr
    got = nd.read(out)
    assert 0 < len(got) < len(events) and np.array_equal(got, events[: len(got)])
    assert not json.loads(done.stdout)["interrupted"]


def test_raw_from_stdin(tmp_path):
    small = camera_events(5000, seed=6, t0=0)
    raw = tmp_path / "camera.raw"
    nd.write(raw, small, nd.RecordingInfo("evt3", 346, 260))
    out = tmp_path / "from_stdin.npz"
    with open(raw, "rb") as stdin:
        done = subprocess.run(
            [*CLI, "live", "-", "--out", str(out)], stdin=stdin, capture_output=True, text=True, timeout=20
        )
    assert done.returncode == 0, done.stderr
    assert np.array_equal(nd.read(out), small)


def test_errors_are_one_line_exit_2(tmp_path):
    done = live_cli("tcp://127.0.0.1:1", "--no-reconnect", "--json")
    assert done.returncode == 2 and "cannot connect" in json.loads(done.stdout)["error"]
    done = live_cli("udp://127.0.0.1:9?format=bogus")
    assert done.returncode == 2 and "unknown UDP format 'bogus'" in done.stderr


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (("live", "foo://x:1"), r"foo://x:1: cannot open this URL \(Protocol not known: foo\)"),
        (("live", "tcp://[::1:47000"), r"tcp://\[::1:47000: not a valid URL \(Invalid IPv6 URL\)"),
        # a path or query was ignored, silently
        (("live", "tcp://127.0.0.1:9/cam?x=1"), r"tcp://127.0.0.1:9/cam\?x=1: a tcp:// URL takes no path '/cam', query key 'x'"),
        (("live", "udp://127.0.0.1:9?fromat=t64"), r"udp://127.0.0.1:9\?fromat=t64: a udp:// URL takes no query key 'fromat' \(only \?format=\)"),
        (("live", "udp://nonexistent.invalid:1"), r"udp://nonexistent.invalid:1\?format=\S+: cannot listen"),
        (("replay", "REC", "udp://nonexistent.invalid:1", "--speed", "max"), r"udp://nonexistent.invalid:1\?format=\S+: cannot send"),
        (("replay", "REC", "udp://127.0.0.1:0", "--speed", "max"), r"udp://127.0.0.1:0\?format=\S+: cannot send"),
    ],
)
def test_bad_urls_and_unusable_addresses_are_one_line_exit_2(recording, command, said):
    """Each was a traceback from urllib, fsspec or the socket calls, exit 1."""
    args = [recording if arg == "REC" else arg for arg in command]
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert re.fullmatch(rf"neurodata: error: {said}[^\n]*\n", done.stderr), done.stderr


def test_a_udp_port_in_use_is_one_line(tmp_path):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        done = live_cli(f"udp://127.0.0.1:{port}")
    assert done.returncode == 2 and "cannot listen" in done.stderr and "Traceback" not in done.stderr


def test_run_classifies_windows_as_the_library_does(tmp_path, recording, events, capsys):
    """In-process (a fresh process would spend the test importing torch): `live --run` prints one
    JSON prediction per window, the same as `classify` on the downsampled events."""
    from neurodata.cli.main import main
    from neurodata.live.inference import classify, load_run_model
    from neurodata.transforms import Downsample

    tiny_run(tmp_path)
    assert main(["live", recording, "--run", str(tmp_path), "--events", "10"]) == 2
    assert "give the live window's length with --window-us" in capsys.readouterr().err
    assert main(["live", recording, "--run", str(tmp_path), "--window-us", "200000", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"label"' in line]
    loaded = load_run_model(str(tmp_path), 200_000)
    shrink = Downsample(sensor_size=(346, 260, 2), target_size=(16, 16))
    expected = list(classify([shrink(events)], loaded.model, loaded.spec))
    assert len(lines) == len(expected) == 9  # 2 s of events, 200 ms windows, the last one incomplete
    assert [p["label"] for p in lines] == [p.label for p in expected]
    np.testing.assert_allclose([p["scores"] for p in lines], [p.scores for p in expected], rtol=1e-5)
    assert len({p["label"] for p in lines}) > 1 or max(max(p["scores"]) for p in lines) > 0


def test_what_cannot_work_is_refused_before_connecting_and_port_0_is_named(tmp_path):
    done = live_cli("tcp://127.0.0.1:1", "--out", str(tmp_path / "no" / "x.h5"))  # failed only after connecting
    assert done.returncode == 2 and f"{tmp_path / 'no'} does not exist" in done.stderr
    done = live_cli("tcp://127.0.0.1:1", "--hop-us", "5")  # was ignored without --run
    assert done.returncode == 2 and "give --run RUN_DIR with it" in done.stderr
    done = live_cli("udp://127.0.0.1:0", "--duration", "0.5", "--json")  # said port 0, never the one bound
    assert done.returncode == 0, done.stderr
    port = int(re.search(r"udp://127.0.0.1:(\d+)", json.loads(done.stdout)["source"]).group(1))
    assert port > 0 and f"receiving udp://127.0.0.1:{port}" in done.stderr


def test_a_stream_that_breaks_keeps_what_was_received(tmp_path, events):
    """A stream cut inside a packet without reconnecting: exit 2 naming the cause, and the events
    received before it in the output (the file was discarded before); nothing received: no file."""
    from test_live_dv import serve_bytes

    from neurodata.live.dv_protocol import PacketEncoder, stream_header

    encoder = PacketEncoder("lz4")
    packets = [encoder.encode(events[i : i + 1000]) for i in range(0, 5000, 1000)]
    port, _ = serve_bytes([stream_header(WIDTH, HEIGHT), *packets, packets[0][:20]])
    out = tmp_path / "rec.h5"
    done = live_cli(f"tcp://127.0.0.1:{port}", "--no-reconnect", "--out", str(out))
    assert done.returncode == 2, done.stderr
    assert re.search(r"stream ended 20 bytes into a packet; the 5,000 events received before are in ", done.stderr)
    np.testing.assert_array_equal(nd.read(out), events[:5000])
    done = live_cli("tcp://127.0.0.1:1", "--no-reconnect", "--out", str(tmp_path / "none.h5"))
    assert done.returncode == 2 and not (tmp_path / "none.h5").exists()


def test_a_block_the_writer_refuses_keeps_what_was_written(tmp_path):
    """Times that go back (here a second recording's words appended to a first) are refused by the
    output's writer; that error threw the whole recording away, where a broken stream keeps it."""
    first = camera_events(1_500_000, seed=6, t0=1_000_000, span_us=20_000_000)
    second = camera_events(1000, seed=7, t0=0, span_us=5000)
    nd.write(tmp_path / "first.raw", first, nd.RecordingInfo("evt3", 346, 260))
    nd.write(tmp_path / "second.raw", second, nd.RecordingInfo("evt3", 346, 260))
    words = (tmp_path / "second.raw").read_bytes()
    joined = tmp_path / "joined.raw"
    joined.write_bytes((tmp_path / "first.raw").read_bytes() + words[words.index(b"% end\n") + 6 :])
    out = tmp_path / "kept.aedat4"
    with open(joined, "rb") as stdin:
        done = subprocess.run(
            [*CLI, "live", "-", "--out", str(out)], stdin=stdin, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 2
    kept = re.search(r"the ([\d,]+) events received before are in", done.stderr)
    assert "stores time-ordered events only" in done.stderr and kept, done.stderr
    got = nd.read(out)
    assert len(got) == int(kept.group(1).replace(",", "")) > 0
    assert np.array_equal(got, first[: len(got)])
