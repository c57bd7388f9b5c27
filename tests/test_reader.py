"""The generic streaming driver: chunking by count and by time, detection, exports, errors."""

from __future__ import annotations

import os
import re
import threading
import time

import fsspec
import h5py
import numpy as np
import pytest

import neurodata as nd
from neurodata import reader
from neurodata.formats import FORMATS, extension, format_of
from neurodata.reader import rechunk_by_count, rechunk_by_time
from neurodata.representations.kernels import first_at_or_after
from neurodata.synthetic import rotating_bar


@pytest.fixture(scope="module")
def bar_file(tmp_path_factory):
    events = rotating_bar(width=64, height=64, duration_us=200_000, step_us=1000)
    path = tmp_path_factory.mktemp("bar") / "bar.bin"
    nd.write(path, events, format="nmnist")
    return path, events


def _blocks(events, sizes):
    out, start = [], 0
    for size in sizes:
        out.append(events[start : start + size])
        start += size
    out.append(events[start:])
    return out


@pytest.mark.parametrize("n", [1, 7, 1000, 10**9])
def test_chunks_by_count_have_exact_sizes(bar_file, n):
    path, events = bar_file
    chunks = list(nd.iter_chunks(path, n_events=n))
    assert all(len(c) == n for c in chunks[:-1]) and 0 < len(chunks[-1]) <= n
    np.testing.assert_array_equal(np.concatenate(chunks), events)


@pytest.mark.parametrize("window", [1, 999, 10_000, 10**9])
def test_chunks_by_time_are_half_open_windows(bar_file, window):
    path, events = bar_file
    chunks = list(nd.iter_chunks(path, time_window=window))
    t0 = events["t"][0]
    for k, chunk in enumerate(chunks):
        if len(chunk):
            assert chunk["t"].min() >= t0 + k * window and chunk["t"].max() < t0 + (k + 1) * window
    assert len(chunks) == (events["t"][-1] - t0) // window + 1
    np.testing.assert_array_equal(np.concatenate(chunks), events)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"n_events": 2.5}, "n_events must be a whole number, got 2.5"),
        ({"n_events": 0}, "n_events must be positive, got 0"),
        ({"n_events": True}, "n_events must be a whole number, got True"),
        ({"time_window": float("nan")}, "time_window must be finite, got nan"),
        ({"time_window": -1}, "time_window must be positive, got -1"),
        ({"time_window": "10"}, "time_window must be a number, got '10'"),
    ],
)
def test_chunk_sizes_are_checked_by_name_at_the_call(bar_file, arguments, message):
    """Checked when ``chunks`` is called, not at the first item (a NaN window gave one chunk of
    everything; 2.5 events a TypeError from inside the slicing)."""
    with nd.open_recording(bar_file[0]) as recording:
        with pytest.raises(ValueError, match=re.escape(message)):
            recording.chunks(**arguments)


def test_a_whole_float_chunk_size_counts_like_the_int(bar_file):
    path, events = bar_file
    assert [len(c) for c in nd.iter_chunks(path, n_events=1000.0)] == [len(c) for c in nd.iter_chunks(path, n_events=1000)]


def test_rechunking_ignores_input_block_boundaries():
    events = rotating_bar(width=32, height=32, duration_us=50_000, step_us=500)
    for sizes in ([1, 2, 3], [len(events) // 2], [0, 0, 5, 0]):
        blocks = _blocks(events, sizes)
        by_count = list(rechunk_by_count(iter(blocks), 100))
        assert [len(c) for c in by_count] == [
            len(c) for c in np.array_split(events, range(100, len(events), 100))
        ]
        by_time = list(rechunk_by_time(iter(blocks), 5000))
        np.testing.assert_array_equal(np.concatenate(by_time), events)
        assert all(len(c) == len(ref) for c, ref in zip(by_time, rechunk_by_time(iter([events]), 5000)))


def test_time_windows_cut_where_argmax_of_the_time_test_does_even_out_of_order():
    # the window cut scans for the first event at or after the window's end (no boolean copy of
    # the block): the same index as np.argmax(t >= end), also on a block whose times go back
    rng = np.random.default_rng(5)
    events = nd.make_events(rng.integers(0, 1000, 5000).cumsum(), np.zeros(5000), np.zeros(5000), np.zeros(5000))
    events["t"][2500:2600] -= 200_000  # a stretch back in time (a timestamp reset, reordered packets)
    column = events["t"]  # a strided view of the records
    for end in [*rng.integers(0, int(column.max()) + 2000, 50), *column[[0, 100, 2550, 4999]], int(column.max()) + 1]:
        expected = int(np.argmax(column >= end)) if (column >= end).any() else len(column)
        assert first_at_or_after(column, end) == expected
    windows = list(rechunk_by_time(iter(_blocks(events, [700, 1300, 3000])), 20_000))
    np.testing.assert_array_equal(np.concatenate(windows), events)
    # the windows the whole array gives, cut with argmax
    expected, start, end = [], 0, int(column[0]) + 20_000
    while True:
        rest = column[start:]
        if not (rest >= end).any():
            expected.append(len(rest))
            break
        cut = int(np.argmax(rest >= end))
        expected.append(cut)
        start, end = start + cut, end + 20_000
    assert [len(window) for window in windows] == expected


def test_rechunk_rejects_non_positive_sizes():
    with pytest.raises(ValueError):
        list(rechunk_by_count(iter([]), 0))
    with pytest.raises(ValueError):
        list(rechunk_by_time(iter([]), -5))


def test_npz_and_h5_exports_hold_the_columns(bar_file, tmp_path):
    path, events = bar_file
    with nd.open_recording(path) as rec, nd.open_writer(tmp_path / "e.npz", rec.info) as writer:
        for chunk in rec.chunks(n_events=333):
            writer.write(chunk)
    with np.load(tmp_path / "e.npz", allow_pickle=False) as z:
        for name in "txyp":
            np.testing.assert_array_equal(z[name], events[name])
            assert z[name].dtype == nd.EVENT_DTYPE[name]
    nd.write(tmp_path / "e.h5", events)
    with h5py.File(tmp_path / "e.h5") as h5:
        for name in "txyp":
            np.testing.assert_array_equal(h5[name][:], events[name])


def test_fsspec_url_reads_like_a_path(bar_file):
    path, events = bar_file
    np.testing.assert_array_equal(nd.read(f"file://{path}"), events)
    with fsspec.open("memory://bar.bin", "wb") as f:
        f.write(path.read_bytes())
    np.testing.assert_array_equal(nd.read("memory://bar.bin"), events)


def test_unknown_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(nd.FormatError, match=r"notes\.txt: at byte 0: no known event format"):
        nd.read(bad)
    with pytest.raises(nd.NeurodataError, match="no such file"):
        nd.read(tmp_path / "missing.bin")
    with pytest.raises(nd.NeurodataError, match="unknown format 'nope'"):
        nd.read(bad, format="nope")


def _write_in_two_pieces(fifo, data: bytes) -> None:
    """Write ``data`` to a pipe in two writes 50 ms apart: a reader's first read gets the first piece only."""
    with open(fifo, "wb") as pipe:
        pipe.write(data[: len(data) // 2])
        pipe.flush()
        time.sleep(0.05)
        pipe.write(data[len(data) // 2 :])


def test_read_of_large_and_special_files_streams_them(bar_file, tmp_path, monkeypatch):
    """Small files are read in one call, large ones memory-mapped and pipes to their end: same events."""
    path, events = bar_file
    with monkeypatch.context() as patch:
        patch.setattr(reader, "SMALL_FILE_BYTES", 16)  # the bar file counts as large: memory-mapped
        np.testing.assert_array_equal(nd.read(path), events)
    fifo = tmp_path / "bar.fifo"
    os.mkfifo(fifo)
    for first_read in (reader.FIRST_READ_BYTES, 16):  # the file and the pipe fit the first read, or not
        with monkeypatch.context() as patch:
            patch.setattr(reader, "FIRST_READ_BYTES", first_read)
            np.testing.assert_array_equal(nd.read(path), events)
            writer = threading.Thread(target=_write_in_two_pieces, args=(fifo, path.read_bytes()))
            writer.start()
            try:
                np.testing.assert_array_equal(nd.read(fifo, format="nmnist"), events)
            finally:
                writer.join()
    with pytest.raises(nd.NeurodataError, match=r"is a directory, not a recording"):
        nd.read(tmp_path)


def test_as_events_accepts_tonic_style_arrays():
    tonic = np.zeros(3, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    tonic["t"] = [1, 2, 3]
    tonic["p"] = [1, -1, 0]
    events = nd.as_events(tonic)
    assert events.dtype == nd.EVENT_DTYPE
    assert events["p"].tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="lacks field"):
        nd.as_events(np.zeros(2, dtype=[("t", "<i8")]))


def test_a_file_grown_since_its_size_was_taken_is_read_to_its_end(bar_file, monkeypatch):
    """A file that the first read fills is sized by fstat and read again; when it has grown since (a
    recording still being written), the reader reads on to the end instead of trusting the size."""
    path, events = bar_file
    real_fstat = os.fstat

    class Stale:  # what fstat said a moment before the last 500 bytes were written
        def __init__(self, status):
            self.st_mode, self.st_size = status.st_mode, status.st_size - 500

    monkeypatch.setattr(reader, "FIRST_READ_BYTES", 16)
    monkeypatch.setattr(reader.os, "fstat", lambda fd: Stale(real_fstat(fd)))
    np.testing.assert_array_equal(nd.read(path), events)


def test_detection_asks_the_formats_whose_magic_the_file_starts_with():
    """A magic alone decides where a format has no further sniff; a file whose first byte is some
    magic's first byte but not the magic (an N-Caltech101 .bin whose first x is 35, '#') goes on to
    its extension; neither match is one clear error."""
    for name in ("aedat2", "aedat31", "aedat4", "es", "hdf5"):
        spec = FORMATS[name]
        assert format_of(spec.magic + bytes(8), "recording.unknown") is spec
    for first in (b"#", b"%", b"P", b"E", b"\x89"):
        assert format_of(first + b"\x05\x90\x10\x00", "image_0001.bin").name == "nmnist"
    assert format_of(b"% evt 3.0\n% end\n", "x.bin").name == "evt3"  # the header wins over the extension
    with pytest.raises(nd.FormatError, match=r"notes\.txt: at byte 0: no known event format"):
        format_of(b"#!AER-DAT9", "notes.txt")


NAMES = "a.bin /x/y.BIN .bin ..bin a. a /a.b/c dir/.hidden.raw a..b / x/.. x/. a.b.c ./file.npz a/.b.c a/..b.c ..."
URLS = ["s3://b/k/x.aedat4?version=3", "s3://b/x.bin?v=1.2", "memory://bar.bin", "C:\\d\\e.h5"]


@pytest.mark.parametrize("source", [*NAMES.split(), "a/b.", "x.tar.gz", "a.b/..", "a/.b", "x.b-c", "N1.Aedat4", "", *URLS])
def test_extension_is_what_splitext_finds(source):
    assert extension(source) == os.path.splitext(source.split("?")[0])[1].lower()
