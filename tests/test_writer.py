"""The writing front end every format goes through: polarity checks, and outputs given up on an error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import neurodata as nd
from neurodata.errors import NeurodataError
from neurodata.events import RecordingInfo, make_events
from neurodata.formats import FORMATS

WRITABLE = sorted(name for name, spec in FORMATS.items() if spec.make_writer is not None)
EXPORTS = [".npz", ".h5"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("target", [*WRITABLE, *EXPORTS])
def test_a_polarity_past_one_is_refused_by_every_format(tmp_path, target):
    """Every format stores one polarity bit: p = 2 came back ON from some formats and OFF from others."""
    events = make_events([0, 1, 2], [3, 3, 3], [1, 2, 2], [0, 1, 2])
    path = tmp_path / ("out" + target if target.startswith(".") else "out.bin")
    format = None if target.startswith(".") else target
    info = RecordingInfo(format=format or target.lstrip("."), width=8, height=8)
    with pytest.raises(NeurodataError, match=r"stores polarity 0 \(OFF\) or 1 \(ON\); event 2 has p = 2"):
        nd.write(path, events, info=info, format=format)
    assert not path.exists()
    with pytest.raises(NeurodataError, match="event 3 has p = 2"):  # counted over the chunks written
        with nd.open_writer(path, info=info, format=format) as writer:
            writer.write(events[:2])
            writer.write(make_events([3, 4, 5], [3, 3, 3], [1, 1, 1], [1, 1, 2])[[0, 2]])
            writer.write(events)
    assert not path.exists()


TONIC_RECORD = np.dtype([("x", "<i8"), ("y", "<i8"), ("p", "<i8"), ("t", "<i8")])


def _target(tmp_path, target: str):
    path = tmp_path / ("out" + target if target.startswith(".") else "out.bin")
    format = None if target.startswith(".") else target
    return path, format, RecordingInfo(format=format or target.lstrip("."), width=34, height=34)


@pytest.mark.parametrize("target", [*WRITABLE, *EXPORTS])
def test_the_streaming_writer_converts_chunks_as_write_does(tmp_path, target):
    """``open_writer(...).write(chunk)`` passed Tonic's records on unconverted: AEDAT 2.0/4.0, N-MNIST,
    npz and h5 wrote OFF events (p = -1) as ON, and npz dumped int64 columns under a uint16 header
    (x = [1, 2] came back [1, 0])."""
    events = np.zeros(4, TONIC_RECORD)
    events["x"], events["y"], events["p"], events["t"] = [1, 2, 33, 0], [3, 4, 0, 33], [-1, 1, 1, -1], [10, 20, 30, 40]
    expected = nd.events.as_events(events)
    path, format, info = _target(tmp_path, target)
    with nd.open_writer(path, info=info, format=format) as writer:
        writer.write(events[:1])
        writer.write(events[1:])
    got = nd.read(path)
    assert np.array_equal(got[["x", "y", "p"]], expected[["x", "y", "p"]])
    assert np.array_equal(got["t"] - got["t"][0], expected["t"] - expected["t"][0])


@pytest.mark.parametrize("target", [*WRITABLE, *EXPORTS])
@pytest.mark.parametrize("column, value", [("x", -1), ("y", 70_000)])
def test_the_streaming_writer_refuses_coordinates_no_column_holds(tmp_path, target, column, value):
    """Through ``open_writer`` h5 clipped x = 70000 to 65535, N-MNIST wrapped x = -1 to 255, AEDAT 2.0
    dropped the event and AEDAT 4.0 wrote a file our reader refused; now every format refuses them."""
    events = np.zeros(2, TONIC_RECORD)
    events["t"], events["p"] = [0, 1], [1, 0]
    events[column][1] = value
    path, format, info = _target(tmp_path, target)
    with pytest.raises(ValueError, match=f"{column}"):
        with nd.open_writer(path, info=info, format=format) as writer:
            writer.write(events)
    assert not path.exists()


@pytest.mark.parametrize("target", WRITABLE)
def test_every_event_format_refuses_events_out_of_time_order(tmp_path, target):
    """AEDAT 4.0 and 2.0 wrote unsorted events without a word (faery then read AEDAT 4.0 times
    [500, 500, 500, 500] for [500, 100, 300, 200]); the order is now checked once, in front of every
    event format, within a chunk and across chunks."""
    path, format, info = _target(tmp_path, target)
    events = make_events([500, 100, 300, 200], [1, 2, 3, 4], [1, 1, 1, 1], [1, 0, 1, 0])
    with pytest.raises(NeurodataError, match=r"stores time-ordered events only; event 1 \(t = 100\) is earlier"):
        nd.write(path, events, info=info, format=format)
    assert not path.exists()
    with pytest.raises(NeurodataError, match=r"event 2 \(t = 300\) is earlier"):
        with nd.open_writer(path, info=info, format=format) as writer:
            writer.write(events[:0])  # an empty chunk changes nothing
            writer.write(make_events([400, 500], [1, 2], [1, 1], [1, 0]))
            writer.write(events[2:3])
    assert not path.exists()


@pytest.mark.parametrize("suffix", EXPORTS)
def test_column_exports_keep_events_in_the_order_given(tmp_path, suffix):
    """npz and h5 are plain columns: unsorted events are written and read back as they were."""
    events = make_events([500, 100, 300, 200], [1, 2, 3, 4], [1, 1, 1, 1], [1, 0, 1, 0])
    nd.write(tmp_path / ("out" + suffix), events)
    assert np.array_equal(nd.read(tmp_path / ("out" + suffix)), events)


def test_aedat31_names_a_negative_first_time(tmp_path):
    """A negative first time was refused as "out of time order" (the order check began at 0)."""
    events = make_events([-5, 3], [1, 2], [1, 1], [1, 0])
    with pytest.raises(NeurodataError, match="AEDAT 3.1 timestamps are non-negative, got t = -5"):
        nd.write(tmp_path / "out.aedat", events, format="aedat31")


@pytest.mark.parametrize("suffix", EXPORTS)
def test_an_error_while_exporting_leaves_nothing_and_exits_cleanly(tmp_path, suffix):
    """An error inside ``open_writer``: no output, no spool folder left, and the interpreter exits
    cleanly (h5py left holding the closed temporary file crashed it at exit)."""
    spool = tmp_path / "tmp"
    spool.mkdir()
    script = textwrap.dedent(
        f"""
        import neurodata as nd
        from neurodata.events import make_events
        try:
            with nd.open_writer({str(tmp_path / ("out" + suffix))!r}) as writer:
                writer.write(make_events([0, 1], [0, 1], [0, 1], [1, 0]))
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            print("interrupted")
        """
    )
    env = {**os.environ, "TMPDIR": str(spool), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "interrupted", done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert not (tmp_path / ("out" + suffix)).exists()
    assert list(spool.iterdir()) == []


def test_n_mnist_refuses_a_recording_with_no_events(tmp_path):
    """Its files have no header: the 0-byte file written before did not read back (an empty file is
    no recording); formats with a header write and read back no events."""
    empty = make_events([], [], [], [])
    with pytest.raises(NeurodataError, match="N-MNIST .bin cannot hold a recording with no events"):
        nd.write(tmp_path / "empty.bin", empty)
    assert not (tmp_path / "empty.bin").exists()
    nd.write(tmp_path / "empty.raw", empty, info=RecordingInfo(format="evt3", width=8, height=8))
    assert len(nd.read(tmp_path / "empty.raw")) == 0


def test_a_formats_refusal_names_the_output(tmp_path):
    """The writers' own refusals (here: Event Stream needs the sensor size; N-MNIST times past 2**32 us)
    came without the file they were about."""
    events = make_events([0, 1], [3, 3], [1, 2], [0, 1])
    out = tmp_path / "out.es"
    with pytest.raises(NeurodataError, match=f"^{re.escape(str(out))}: Event Stream files store the sensor size"):
        nd.write(out, events)
    late = make_events([0, 2**33], [3, 3], [1, 2], [0, 1])
    with pytest.raises(NeurodataError, match=f"^{re.escape(str(tmp_path / 'late.bin'))}: N-MNIST .bin stores times"):
        nd.write(tmp_path / "late.bin", late)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
