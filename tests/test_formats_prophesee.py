"""Prophesee RAW EVT 2.0 / EVT 3.0 and DAT: fixtures, references, block sizes, round trips, peers, errors."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurodata as nd
from neurodata.errors import FormatError
from neurodata.formats import FORMATS
from neurodata.formats.kernels import dat as dat_kernels
from neurodata.formats.kernels import evt2 as evt2_kernels
from neurodata.formats.kernels import evt3 as evt3_kernels
from neurodata.formats.prophesee_header import geometry, raw_format, split_header
from neurodata.reader import Recording
from tests.fuzzing import MUTATIONS, assert_format_invariants, mutate

MAX_EVENTS_PER_EVT3_WORD = evt3_kernels.MAX_EVENTS_PER_WORD
EVT2 = "evt2/evt2_sample.raw"
EVT3 = "evt3/evt3_sample.raw"
DAT = "dat/sample_ncars.dat"
GOLDEN = "evt3/evt3_sample.npy"


def data_bytes(path) -> tuple[bytes, bytes]:
    """(header, event data) of a fixture, split by our header parser."""
    raw = path.read_bytes()
    header = split_header(raw, at_eof=True)
    offset = header.data_offset + (2 if path.suffix == ".dat" else 0)
    return raw[:offset], raw[offset:]


def decode_in_blocks(fmt: str, path, block: int, limit: int | None = None) -> np.ndarray:
    """Feed a fixture's event data to a fresh decoder in blocks of ``block`` bytes, like the reader does."""
    spec = FORMATS[fmt]
    with open(path, "rb") as f:
        header = spec.parse_header(f, str(path))
    data = np.frombuffer(path.read_bytes(), np.uint8)[header.data_offset :][:limit]
    decoder = spec.make_decoder(header, str(path))
    parts, pending, offset = [], data[:0], header.data_offset
    for start in range(0, len(data), block):
        buf = np.concatenate([pending, data[start : start + block]])
        events, used = decoder.decode(buf, offset, final=start + block >= len(data))
        parts.append(events)
        pending, offset = buf[used:], offset + used
    return np.concatenate(parts)


def synthetic_long(seconds: float = 45.0, seed: int = 0) -> np.ndarray:
    """A time-ordered recording longer than two EVT 3.0 wraps, with bursts of many events per timestamp.

    Bursts of 1-40 events share one timestamp, some as runs of neighbouring pixels on one row (which
    the EVT 3.0 writer turns into vectors); one 9 s silence exceeds half the 24-bit time base.
    """
    rng = np.random.default_rng(seed)
    n_bursts = 4000
    gaps = rng.integers(0, 20000, n_bursts)
    gaps[n_bursts // 2] = 9_000_000
    burst_t = np.cumsum(gaps)
    burst_t = burst_t * int(seconds * 1e6) // int(burst_t[-1])
    sizes = rng.integers(1, 40, n_bursts)
    t = np.repeat(burst_t, sizes)
    row = np.repeat(rng.integers(0, 720, n_bursts), sizes)
    start = np.repeat(rng.integers(0, 1200, n_bursts), sizes)
    offset_in_burst = np.arange(len(t)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    x = start + offset_in_burst
    scattered = rng.random(len(t)) < 0.3
    x[scattered] = rng.integers(0, 1280, scattered.sum())
    p = np.repeat(rng.integers(0, 2, n_bursts), sizes)
    return nd.make_events(t, x, row, p)


# --- fixtures as listed in MANIFEST.md ------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fmt, count, first, size",
    [
        (
            EVT2,
            "evt2",
            539481,
            [(1317888, 237, 121, 1), (1317888, 246, 121, 1), (1317888, 248, 132, 1)],
            (640, 480),
        ),
        (
            EVT3,
            "evt3",
            219596,
            [(11718656, 874, 200, 0), (11718656, 806, 200, 1), (11718656, 882, 201, 0)],
            (1280, 720),
        ),
        (DAT, "dat", 2009, [(0, 25, 8, 0), (35, 67, 35, 0), (152, 56, 27, 1)], (None, None)),
    ],
)
def test_fixture_matches_manifest(fixtures, name, fmt, count, first, size):
    events, info = nd.read(fixtures / name, return_info=True)
    assert info.format == fmt
    assert len(events) == count
    assert events[:3].tolist() == first
    assert (info.width, info.height) == size
    assert np.all(np.diff(events["t"]) >= 0)
    if size[0] is not None:
        assert events["x"].max() < size[0] and events["y"].max() < size[1]


def test_geometry_sources_are_recorded(fixtures):
    _, info2 = nd.read(fixtures / EVT2, return_info=True)
    assert info2.extra["header"]["plugin_name"] == "hal_plugin_gen3_fx3"  # the only hint: no geometry line
    assert info2.extra["geometry_source"] == "inferred from plugin_name hal_plugin_gen3_fx3"
    _, info3 = nd.read(fixtures / EVT3, return_info=True)
    assert info3.extra["geometry_source"] == "inferred from plugin_name hal_plugin_gen41_evk3"
    _, info_dat = nd.read(fixtures / DAT, return_info=True)
    assert info_dat.extra["geometry_source"].startswith("unknown")
    assert info_dat.extra["event_type"] == "Event2D"


def test_evt2_and_dat_agree_with_expelliarmus(fixtures):
    from expelliarmus import Wizard

    for name, encoding in ((EVT2, "EVT2"), (DAT, "DAT")):
        theirs = Wizard(encoding=encoding).read(fixtures / name)
        ours = nd.read(fixtures / name)
        for field in "txyp":
            np.testing.assert_array_equal(ours[field], theirs[field])


def test_evt3_golden(fixtures):
    """Coordinates and polarities equal the golden decode exactly; its times carry expelliarmus' drift.

    The golden file is expelliarmus' own test output (it equals ``Wizard('EVT3').read``), and
    expelliarmus adds 4096 us whenever TIME_LOW decreases, on top of the TIME_HIGH words that already
    carry the step. The sample holds 11 such decreases: 2 at TIME_HIGH steps and 9 where, right after
    a TIME_HIGH, a TIME_LOW 3 or 11 us ahead is followed at once by the current one. So the golden
    times run 45 ms ahead by the end of this 9 ms recording and name time bases (t >> 12) that no
    TIME_HIGH word in the file holds.
    """
    golden = np.load(fixtures / GOLDEN, allow_pickle=False)
    ours = nd.read(fixtures / EVT3)
    for field in "xyp":
        np.testing.assert_array_equal(ours[field], golden[field])
    assert ours["t"][0] == golden["t"][0] == 11718656

    _, data = data_bytes(fixtures / EVT3)
    words = np.frombuffer(data, "<u2")
    time_low = words[words >> 12 == 6] & 0xFFF
    time_high = set((words[words >> 12 == 8] & 0xFFF).tolist())
    decreases = int(np.sum(np.diff(time_low.astype(np.int64)) < 0))
    assert decreases == 11
    drift = golden["t"] - ours["t"]
    assert np.all(drift % 4096 == 0) and np.all(np.diff(drift) >= 0)
    assert drift[-1] == 4096 * decreases
    assert set(np.unique(ours["t"] >> 12).tolist()) <= time_high == {2861, 2862, 2863}
    assert int(golden["t"][-1]) >> 12 not in time_high
    assert ours["t"][-1] == 2863 * 4096 + 609  # the last TIME_HIGH and TIME_LOW before the last events


def test_evt3_golden_is_expelliarmus_output(fixtures):
    from expelliarmus import Wizard

    golden = np.load(fixtures / GOLDEN, allow_pickle=False)
    theirs = Wizard(encoding="EVT3").read(fixtures / EVT3)
    np.testing.assert_array_equal(theirs["t"], golden["t"])


def test_evt3_agrees_with_faery_an_independent_decoder(fixtures):
    """faery (Rust) decodes the sample to our events: same x, y, p, and times within the 11 us by
    which faery delays backward TIME_LOW jitter to keep time monotone (we keep the file's times)."""
    evt = pytest.importorskip("faery", reason="faery (independent EVT 3.0 decoder) is not installed").evt
    with evt.Decoder(str(fixtures / EVT3), (1280, 720), None) as decoder:
        theirs = np.concatenate([packet["events"] for packet in decoder if "events" in packet])
    ours = nd.read(fixtures / EVT3)
    assert len(theirs) == len(ours)
    np.testing.assert_array_equal(theirs["x"], ours["x"])
    np.testing.assert_array_equal(theirs["y"], ours["y"])
    np.testing.assert_array_equal(theirs["on"].astype(np.uint8), ours["p"])
    lag = theirs["t"].astype(np.int64) - ours["t"]
    assert lag.min() >= 0 and lag.max() <= 11
    assert np.all(np.diff(theirs["t"].astype(np.int64)) >= 0)


# --- readable references against the Numba kernels -----------------------------------------------


def test_evt3_numba_matches_reference(fixtures):
    _, data = data_bytes(fixtures / EVT3)
    t, x, y, p = evt3_kernels.decode_reference(np.frombuffer(data, "<u2"), evt3_kernels.new_state())
    events = nd.read(fixtures / EVT3)
    for field, column in zip("txyp", (t, x, y, p)):
        np.testing.assert_array_equal(events[field], column)


def test_evt2_numba_matches_reference(fixtures):
    _, data = data_bytes(fixtures / EVT2)
    t, x, y, p = evt2_kernels.decode_reference(np.frombuffer(data, "<u4"), evt2_kernels.new_state())
    events = nd.read(fixtures / EVT2)
    for field, column in zip("txyp", (t, x, y, p)):
        np.testing.assert_array_equal(events[field], column)


def test_dat_numba_matches_reference(fixtures):
    _, data = data_bytes(fixtures / DAT)
    t, x, y, p = dat_kernels.decode_reference(np.frombuffer(data, "<u4").reshape(-1, 2))
    events = nd.read(fixtures / DAT)
    for field, column in zip("txyp", (t, x, y, p)):
        np.testing.assert_array_equal(events[field], column)


def test_references_agree_on_wraps_and_jitter():
    """Hand-made word streams exercising wrap counting and backward jitter, through both decoders."""
    evt3_words = np.array(
        [0x8FFE, 0x6FF0, 0x0005, 0x2001,  # t = 0xFFE_FF0, one event at (1, 5)
         0x8FFF, 0x6FFF, 0x2802,  # 0xFFF_FFF
         0x8000, 0x6003, 0x3010, 0x4A05,  # wrap: 2**24 + 3, vector at x 16, 18, 25, 27 (mask 0xA05)
         0x6001, 0x2003,  # TIME_LOW steps back 2 us: taken as written
         0x8FFE, 0x2004,  # TIME_HIGH back by 2 steps: jitter, not a wrap; TIME_LOW reset to 0
         0x8001, 0x6010, 0x5081, 0x2005],  # forward again within the same wrap; VECT_8 mask 0x81
        dtype="<u2",
    )  # fmt: skip
    t, x, y, p = evt3_kernels.decode_reference(evt3_words, evt3_kernels.new_state())
    wrap = 1 << 24
    assert t == [0xFFEFF0, 0xFFFFFF, wrap + 3, wrap + 3, wrap + 3, wrap + 3, wrap + 1, 0xFFE000,
                 wrap + 0x1010, wrap + 0x1010, wrap + 0x1010]  # fmt: skip
    assert x == [1, 2, 16, 18, 25, 27, 3, 4, 16 + 12 + 0, 16 + 12 + 7, 5]
    assert p == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    numba_events = decode_words("evt3", evt3_words.tobytes())
    assert numba_events["t"].tolist() == t and numba_events["x"].tolist() == x

    evt2_words = np.array(
        [0x8FFFFFFF, 0x1FC0_1005, 0x80000001, 0x0040_1006, 0x8FFFFFF0, 0x1000_0000], dtype="<u4"
    )  # wrap of 34-bit time, then a 17-step backward jitter
    t2, *_ = evt2_kernels.decode_reference(evt2_words, evt2_kernels.new_state())
    assert t2.tolist() == [(0xFFFFFFF << 6) + 0x3F, (1 << 34) + 64 + 1, (0xFFFFFF0 << 6)]
    assert decode_words("evt2", evt2_words.tobytes())["t"].tolist() == t2.tolist()


def test_events_without_time_base_or_on_exposure_rows_are_skipped():
    """As in OpenEB: no event before the first TIME_HIGH; X words after an EM row (type 1) are not CD."""
    evt3_words = np.array(
        [0x0005, 0x2001, 0x8001, 0x2002, 0x1007, 0x2003, 0x3000, 0x4FFF, 0x0006, 0x2804], "<u2"
    )
    events = decode_words("evt3", evt3_words.tobytes())
    assert events.tolist() == [(4096, 2, 5, 0), (4096, 4, 6, 1)]
    t, x, y, p = evt3_kernels.decode_reference(evt3_words, evt3_kernels.new_state())
    assert (t, x, y, p) == ([4096, 4096], [2, 4], [5, 6], [0, 1])
    evt2_words = np.array([0x1000_0801, 0x8000_0002, 0x0040_1003], "<u4")
    assert decode_words("evt2", evt2_words.tobytes()).tolist() == [(129, 2, 3, 0)]
    assert evt2_kernels.decode_reference(evt2_words, evt2_kernels.new_state())[0].tolist() == [129]


def decode_words(fmt: str, data: bytes, width: int | None = None, height: int | None = None) -> np.ndarray:
    header = nd.formats.base.Header(nd.RecordingInfo(format=fmt, width=width, height=height), 0)
    decoder = FORMATS[fmt].make_decoder(header, "words")
    events, used = decoder.decode(np.frombuffer(data, np.uint8), 0, final=True)
    assert used == len(data)
    return events


# --- block-size invariance -----------------------------------------------------------------------


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1000, 4097])
def test_evt3_block_size_invariance(fixtures, block):
    limit = 24000 if block < 1000 else None  # byte-sized blocks on a prefix: same boundaries, fast
    whole = decode_in_blocks("evt3", fixtures / EVT3, 1 << 30, limit)
    parts = decode_in_blocks("evt3", fixtures / EVT3, block, limit)
    np.testing.assert_array_equal(parts, whole)
    if limit:  # the prefix crosses TIME_HIGH/TIME_LOW pairs and vectors
        _, data = data_bytes(fixtures / EVT3)
        kinds = set((np.frombuffer(data[:limit], "<u2") >> 12).tolist())
        assert {0, 2, 3, 4, 5, 6, 8} <= kinds


@pytest.mark.parametrize("fmt, name", [("evt2", EVT2), ("dat", DAT)])
@pytest.mark.parametrize("block", [1, 3, 7, 1000])
def test_evt2_dat_block_size_invariance(fixtures, fmt, name, block):
    limit = 12000 if block < 1000 else None
    whole = decode_in_blocks(fmt, fixtures / name, 1 << 30, limit)
    np.testing.assert_array_equal(decode_in_blocks(fmt, fixtures / name, block, limit), whole)


@pytest.mark.parametrize("name", [EVT2, EVT3, DAT])
def test_reader_blocks_equal_whole_read(fixtures, name):
    whole = nd.read(fixtures / name)
    for block in (999, 65537):
        with nd.open_recording(fixtures / name) as rec:
            np.testing.assert_array_equal(np.concatenate(list(rec.blocks(block_bytes=block))), whole)


@pytest.mark.parametrize("fmt, name", [("evt3", EVT3), ("evt2", EVT2), ("dat", DAT)])
def test_kernel_stops_when_output_is_nearly_full_and_resumes(fixtures, fmt, name):
    """Small output buffers: each kernel call stops early, reports where, and the next call resumes."""
    kernels = {"evt3": evt3_kernels, "evt2": evt2_kernels, "dat": dat_kernels}[fmt]
    dtype = {"evt3": "<u2", "evt2": "<u4", "dat": "<u8"}[fmt]
    _, data = data_bytes(fixtures / name)
    words = np.frombuffer(data[: len(data) // 8 * 8], dtype)[:40000]
    state = kernels.new_state() if fmt != "dat" else np.zeros(1, np.int64)
    parts, pos, calls = [], 0, 0
    while pos < len(words):
        out = nd.events.empty_events(150)
        stop, n, status = kernels.decode_numba(words, pos, state, out, 1 << 16, 1 << 16)
        assert status == (0 if stop == len(words) else 1) and stop > pos
        parts.append(out[:n])
        pos, calls = stop, calls + 1
    assert calls > 10
    whole = nd.events.empty_events(len(words) * 12 + 12)
    state = kernels.new_state() if fmt != "dat" else np.zeros(1, np.int64)
    stop, n, status = kernels.decode_numba(words, 0, state, whole, 1 << 16, 1 << 16)
    assert (stop, status) == (len(words), 0)
    np.testing.assert_array_equal(np.concatenate(parts), whole[:n])


# --- writers and round trips ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, name, ext", [("evt2", EVT2, ".raw"), ("evt3", EVT3, ".raw"), ("dat", DAT, ".dat")]
)
def test_fixture_round_trip(fixtures, tmp_path, fmt, name, ext):
    events, info = nd.read(fixtures / name, return_info=True)
    path = tmp_path / f"copy{ext}"
    nd.write(path, events, info, format=fmt)
    back, info_back = nd.read(path, return_info=True)
    np.testing.assert_array_equal(back, events)
    assert info_back.format == fmt and (info_back.width, info_back.height) == (info.width, info.height)
    if fmt != "dat":  # the RAW fixtures' geometry was inferred; the copies declare it
        assert info_back.extra["geometry_source"] == "header (format)"


@pytest.mark.parametrize("fmt", ["evt2", "evt3", "dat"])
def test_streaming_writer_chunks_give_same_events(tmp_path, fmt):
    events = synthetic_long(seconds=45.0 if fmt != "dat" else 20.0)[:60000]
    info = nd.RecordingInfo(format=fmt, width=1280, height=720)
    whole = tmp_path / f"whole.{'dat' if fmt == 'dat' else 'raw'}"
    nd.write(whole, events, info, format=fmt)
    path = tmp_path / f"chunks.{'dat' if fmt == 'dat' else 'raw'}"
    with nd.open_writer(path, info, format=fmt) as writer:
        for start in range(0, len(events), 777):  # chunk edges split bursts of one timestamp
            writer.write(events[start : start + 777])
    np.testing.assert_array_equal(nd.read(path), events)
    if fmt != "evt3":  # no state is lost at chunk edges: the bytes are those of a single write
        assert path.read_bytes() == whole.read_bytes()


@pytest.mark.parametrize("fmt", ["evt2", "evt3"])
def test_long_recording_round_trip(tmp_path, fmt):
    events = synthetic_long()
    per_timestamp = np.unique(events["t"], return_counts=True)[1]
    assert events["t"][-1] > 40e6 and per_timestamp.max() >= 30 and np.mean(per_timestamp) > 10
    path = tmp_path / "long.raw"
    nd.write(path, events, nd.RecordingInfo(format=fmt, width=1280, height=720), format=fmt)
    np.testing.assert_array_equal(nd.read(path), events)
    if fmt == "evt3":
        _, data = data_bytes(path)
        words = np.frombuffer(data, "<u2")
        highs = (words[words >> 12 == 8] & 0xFFF).astype(np.int64)
        assert np.sum(np.diff(highs) < -2048) == 2  # two wraps of the 24-bit time base
        assert np.sum(words >> 12 == 4) > 1000  # vectors were used


@pytest.mark.parametrize("fmt, wrap", [("evt3", 1 << 24), ("evt2", 1 << 34)])
def test_round_trip_across_wraps_and_long_silences(tmp_path, fmt, wrap):
    """Times crossing the format's wrap, with silences longer than half and than a whole wrap."""
    t = np.array([5, wrap - 3, wrap + 2, wrap + wrap // 2 + 9, 4 * wrap + 1, 4 * wrap + 1], dtype=np.int64)
    events = nd.make_events(t, [1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 11], [1, 0, 1, 1, 0, 0])
    path = tmp_path / "wraps.raw"
    nd.write(path, events, format=fmt)
    back, info = nd.read(path, return_info=True)
    np.testing.assert_array_equal(back, events)
    assert "neurodata_time_offset_us" not in info.extra["header"]


@pytest.mark.parametrize(
    "t",
    [
        np.arange(0, 40_000_000, 10_000),  # no event in the last 4096 us before each wrap
        np.array([5, (1 << 24) - 3, (1 << 24) + 2, 3 * (1 << 23) + 9, 4 * (1 << 24) + 1, 4 * (1 << 24) + 1]),
    ],
    ids=["every-10ms", "long-silences"],
)
def test_faery_reads_our_evt3_across_wraps(tmp_path, t):
    """faery counts a wrap of the 24-bit time base only at TIME_HIGH 0xFFF -> 0. The writer wrote
    TIME_HIGH only where events were, so a recording with no event just before a wrap lost 16.8 s
    there in faery (322 of 2000 events wrong in the first case); every wrap is now written out."""
    faery = pytest.importorskip("faery", reason="faery (independent EVT 3.0 decoder) is not installed")
    events = nd.make_events(t, np.arange(len(t)) % 1280, np.arange(len(t)) % 720, np.arange(len(t)) % 2)
    path = tmp_path / "wraps.raw"
    nd.write(path, events, nd.RecordingInfo(format="evt3", width=1280, height=720), format="evt3")
    np.testing.assert_array_equal(nd.read(path), events)
    theirs = np.concatenate(list(faery.events_stream_from_file(path)))
    np.testing.assert_array_equal(theirs["t"].astype(np.int64), events["t"])
    np.testing.assert_array_equal(theirs["on"].astype(np.uint8), events["p"])


@pytest.mark.parametrize("fmt, wrap", [("evt3", 1 << 24), ("evt2", 1 << 34)])
def test_late_start_round_trip_uses_header_offset(tmp_path, fmt, wrap):
    t = np.array([3 * wrap + 5, 3 * wrap + 70000, 4 * wrap + 1], dtype=np.int64)
    events = nd.make_events(t, [1, 2, 3], [4, 5, 6], [1, 0, 1])
    path = tmp_path / "late.raw"
    nd.write(path, events, format=fmt)
    back, info = nd.read(path, return_info=True)
    np.testing.assert_array_equal(back, events)
    assert info.extra["header"]["neurodata_time_offset_us"] == str(3 * wrap)


def test_writer_refuses_what_the_format_cannot_hold(tmp_path):
    ok = nd.make_events([0, 1], [0, 1], [0, 1], [0, 1])
    with pytest.raises(nd.NeurodataError, match=r"DAT stores 32-bit times: t = 4294967296"):
        nd.write(tmp_path / "a.dat", nd.make_events([1, 1 << 32], [0, 0], [0, 0], [0, 0]))
    with pytest.raises(nd.NeurodataError, match="negative times"):
        nd.write(tmp_path / "a.dat", nd.make_events([-1, 0], [0, 0], [0, 0], [0, 0]))
    with pytest.raises(nd.NeurodataError, match="time-ordered"):
        nd.write(tmp_path / "a.raw", ok[::-1])
    with pytest.raises(nd.NeurodataError, match=r"x <= 2047"):
        nd.write(tmp_path / "a.raw", nd.make_events([0], [2048], [0], [0]), format="evt2")
    with pytest.raises(nd.NeurodataError, match="outside the recording's height 1"):
        nd.write(tmp_path / "a.raw", ok, nd.RecordingInfo(format="evt3", width=4, height=1))
    with pytest.raises(nd.NeurodataError, match="time-ordered"), nd.open_writer(tmp_path / "b.raw") as writer:
        writer.write(ok)
        writer.write(ok)  # the second chunk starts before the first one ended
    assert list(tmp_path.iterdir()) == []


def test_empty_recordings_round_trip(tmp_path):
    for fmt, ext in (("evt2", ".raw"), ("evt3", ".raw"), ("dat", ".dat")):
        path = tmp_path / f"empty_{fmt}{ext}"
        nd.write(
            path,
            nd.make_events([], [], [], []),
            nd.RecordingInfo(format=fmt, width=32, height=24),
            format=fmt,
        )
        events, info = nd.read(path, return_info=True)
        assert len(events) == 0 and info.format == fmt and (info.width, info.height) == (32, 24)


# --- agreement with expelliarmus on files we wrote -----------------------------------------------


@pytest.mark.parametrize("fmt, name", [("evt2", EVT2), ("dat", DAT), ("evt3", EVT3)])
def test_expelliarmus_reads_our_files(fixtures, tmp_path, fmt, name):
    from expelliarmus import Wizard

    events, info = nd.read(fixtures / name, return_info=True)
    if fmt == "evt3":  # short: one TIME_HIGH period, where expelliarmus' TIME_LOW rule is exact
        events = events[events["t"] < 2862 * 4096]
        assert len(events) > 50000
    path = tmp_path / ("ours.dat" if fmt == "dat" else "ours.raw")
    nd.write(path, events, info, format=fmt)
    theirs = Wizard(encoding=fmt.upper()).read(path)
    for field in "txyp":
        np.testing.assert_array_equal(theirs[field], events[field])


def test_long_evt3_end_time_ours_correct_expelliarmus_drifts(tmp_path):
    """On a 45 s recording expelliarmus' EVT 3.0 times drift by 4096 us per TIME_HIGH step."""
    from expelliarmus import Wizard

    events = synthetic_long()
    path = tmp_path / "long.raw"
    nd.write(path, events, nd.RecordingInfo(format="evt3", width=1280, height=720))
    ours = nd.read(path)
    theirs = Wizard(encoding="EVT3").read(path)
    assert ours["t"][-1] == events["t"][-1]
    np.testing.assert_array_equal(theirs["x"], events["x"])
    _, data = data_bytes(path)
    words = np.frombuffer(data, "<u2")
    time_low = (words[words >> 12 == 6] & 0xFFF).astype(np.int64)
    steps = int(np.sum(np.diff(time_low) < 0))
    assert steps > 1000
    # expelliarmus adds 4096 us at every TIME_LOW decrease, although each comes with a TIME_HIGH step
    assert theirs["t"][-1] == events["t"][-1] + 4096 * steps


# --- detection, headers and bad input ------------------------------------------------------------


@pytest.mark.parametrize(
    "header, expected, size",
    [
        (b"% format EVT3;height=480;width=640\n% end\n", "evt3", (640, 480)),
        (b"% evt 2.0\n% geometry 304x240\n", "evt2", (304, 240)),
        (b"% plugin_name hal_plugin_gen31_evk2\n", "evt2", (640, 480)),
        (b"% plugin_name hal_plugin_imx636_evk4\n% end\n", "evt3", (1280, 720)),
        (b"% sensor_generation 4.1\n", "evt3", (1280, 720)),
        (
            b"% Data file containing EventCD events.\n% Version 2\n% Width 346\n% Height 260\n\x0c\x08",
            "dat",
            (346, 260),
        ),
    ],
)
def test_detection_and_geometry_from_header(tmp_path, header, expected, size):
    path = tmp_path / "unnamed.bin"
    path.write_bytes(header)
    events, info = nd.read(path, return_info=True)
    assert info.format == expected and (info.width, info.height) == size and len(events) == 0


def test_header_without_format_uses_extension_and_says_so(tmp_path):
    path = tmp_path / "plain.raw"
    path.write_bytes(
        b"% Date 2020-01-01\n% end\n" + np.array([0x8001, 0x6002, 0x0003, 0x2004], "<u2").tobytes()
    )
    events, info = nd.read(path, return_info=True)
    assert events.tolist() == [(4096 + 2, 4, 3, 0)]
    assert "not stated in the header" in info.extra["format_source"]
    assert (info.width, info.height) == (None, None)


def test_data_starting_with_percent_byte_after_end_line(tmp_path):
    words = np.array([0x8000, 0x2025, 0x2025], "<u2")  # the second word starts with the bytes '% '
    path = tmp_path / "percent.raw"
    path.write_bytes(b"% evt 3.0\n% end\n" + words.tobytes())
    assert nd.read(path).tolist() == [(0, 37, 0, 0), (0, 37, 0, 0)]
    # without '% end' the '%'-line holding binary bytes is recognised as data, not header
    path.write_bytes(b"% evt 3.0\n" + np.array([0x2025, 0x8000, 0x2025], "<u2").tobytes())
    assert nd.read(path).tolist() == [(0, 37, 0, 0)]


def test_parse_helpers():
    assert raw_format({"format": "EVT21;height=320;width=320"}) == (
        "evt21",
        "format EVT21;height=320;width=320",
    )
    assert geometry({"geometry": "1280x720", "plugin_name": "hal_plugin_gen3_fx3"})[:2] == (1280, 720)
    assert geometry({"Width": "x", "Height": "2"})[0] is None
    assert geometry({"geometry": "99999999999x720"})[0] is None  # absurd sizes are not taken
    for spec in FORMATS.values():  # sniffing never raises, whatever the first bytes
        for head in (b"% evt 3.0\n% geometry 12", b"%\xff\x00", b"%" * 5000, b""):
            assert spec.sniff is None or spec.sniff(head) in (True, False)


def test_bad_time_offset_field(tmp_path):
    path = _write(tmp_path / "offset.raw", b"% evt 3.0\n% neurodata_time_offset_us \xb2\n% end\n")
    with pytest.raises(FormatError, match="neurodata_time_offset_us is '\xb2', not a whole number"):
        nd.read(path)


def test_header_without_end_is_refused_quickly(tmp_path):
    path = tmp_path / "endless.raw"
    path.write_bytes(b"% evt 3.0\n" + b"% padding line\n" * 80000)  # 1.2 MB of header, no data
    with pytest.raises(FormatError, match=r"endless\.raw: at byte 0: no end of the '%' header"):
        nd.read(path)
    path.write_bytes(b"% evt 3.0\n% geometry 1280x720")  # last header line never terminated
    with pytest.raises(FormatError, match=r"at byte 10: header line not terminated"):
        nd.read(path)


def test_truncated_files_name_offset(fixtures, tmp_path):
    for name, cut, word in ((EVT3, 1, 2), (EVT2, 3, 4), (DAT, 5, 8)):
        raw = (fixtures / name).read_bytes()
        bad = tmp_path / f"cut{(fixtures / name).suffix}"
        bad.write_bytes(raw[:-cut])
        size = len(raw) - cut
        with pytest.raises(FormatError, match=rf"cut\.\w+: at byte {size - (word - cut)}: truncated"):
            nd.read(bad)


def test_corrupt_words_name_offset(fixtures, tmp_path):
    header, data = data_bytes(fixtures / EVT3)
    corrupt = bytearray(data)
    corrupt[100:102] = np.array([0x9123], "<u2").tobytes()
    bad = tmp_path / "bad.raw"
    bad.write_bytes(header + corrupt)
    with pytest.raises(
        FormatError, match=rf"bad\.raw: at byte {len(header) + 100}: unknown EVT 3.0 word type 0x9"
    ):
        nd.read(bad)

    header2, data2 = data_bytes(fixtures / EVT2)
    corrupt2 = bytearray(data2)
    corrupt2[40:44] = np.array([(1 << 28) | (700 << 11) | 5], "<u4").tobytes()  # x = 700 on a 640-wide Gen3
    bad.write_bytes(header2 + corrupt2)
    with pytest.raises(
        FormatError,
        match=rf"at byte {len(header2) + 40}: EVT 2.0 word 0x1015e005 puts an event at x >= the width 640",
    ):
        nd.read(bad)
    corrupt2[40:44] = np.array([0x5000_0000], "<u4").tobytes()
    bad.write_bytes(header2 + corrupt2)
    with pytest.raises(FormatError, match="unknown EVT 2.0 word type 0x5"):
        nd.read(bad)

    vector = np.array([0x8000, 0x0010, 0x3278, 0x4801], "<u2").tobytes()  # base x 632, bit 11 -> x 643
    with pytest.raises(
        FormatError, match=r"at byte 6: EVT 3.0 word 0x4801 puts an event at x >= the width 640"
    ):
        decode_words("evt3", vector, width=640, height=480)
    assert len(decode_words("evt3", vector, width=644, height=480)) == 2

    bad_dat = tmp_path / "bad.dat"
    bad_dat.write_bytes(
        b"% Version 2\n% Width 10\n% Height 10\n\x0c\x08" + np.array([5, 3 | 12 << 14], "<u4").tobytes()
    )
    with pytest.raises(
        FormatError, match=r"bad\.dat: at byte 37: DAT record 0x0003000300000005 has y >= the height 10"
    ):
        nd.read(bad_dat)
    bad_dat.write_bytes(b"% Version 2\n\x0b\x08")
    with pytest.raises(FormatError, match="at byte 12: DAT event type 0x0b is not CD"):
        nd.read(bad_dat, format="dat")


def test_wrong_magic_and_random_bytes(tmp_path):
    rng = np.random.default_rng(1)
    noise = tmp_path / "noise.raw"
    noise.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(FormatError, match=r"noise\.raw: at byte \d+: unknown EVT 3.0 word type"):
        nd.read(noise)
    with pytest.raises(
        FormatError, match=r"v2\.raw: at byte 0: the header announces EVT2 \(evt 2\.0\), not EVT3"
    ):
        nd.read(_write(tmp_path / "v2.raw", b"% evt 2.0\n"), format="evt3")
    with pytest.raises(FormatError, match="file ends before the DAT event type"):
        nd.read(_write(tmp_path / "short.dat", b"% Version 2\n"))


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


# --- fuzzing: mutated real files give events or FormatError, nothing else ------------------------

_SAMPLES: dict[str, bytes] = {}


def fixture_sample(fixtures, name: str) -> bytes:
    """The header and the first 3000 bytes of event data of a fixture (kept small for speed)."""
    if name not in _SAMPLES:
        header, data = data_bytes(fixtures / name)
        _SAMPLES[name] = header + data[:3000]
    return _SAMPLES[name]


@pytest.mark.parametrize("fmt, name", [("evt2", EVT2), ("evt3", EVT3), ("dat", DAT)])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=MUTATIONS, block=st.sampled_from([1, 5, 64, 1 << 20]))
def test_fuzz_mutated_fixtures(fixtures, fmt, name, steps, block):
    data = mutate(fixture_sample(fixtures, name), steps)
    spec = FORMATS[fmt]
    assert all(FORMATS[other].sniff(data[:4096]) in (True, False) for other in ("evt2", "evt3", "dat"))
    try:
        header = spec.parse_header(io.BytesIO(data), f"fuzz.{fmt}")
        whole = Recording(io.BytesIO(data), f"fuzz.{fmt}", spec, header).read()
        in_blocks = Recording(io.BytesIO(data), f"fuzz.{fmt}", spec, spec.parse_header(io.BytesIO(data), "b"))
        blocks = list(in_blocks.blocks(block_bytes=block))
    except FormatError as err:
        assert err.source == f"fuzz.{fmt}" and err.offset is not None
        return
    np.testing.assert_array_equal(np.concatenate([whole[:0], *blocks]), whole)  # the block size changes nothing
    info = header.info
    if fmt == "evt2" and info.width is None:
        info = dataclasses.replace(info, width=2048, height=2048)  # 11-bit x and y fields
    per_event = {"evt2": 4, "evt3": 2 / MAX_EVENTS_PER_EVT3_WORD, "dat": 8}[fmt]
    assert_format_invariants(whole, info.width, info.height, int((len(data) - header.data_offset) / per_event))


@pytest.mark.parametrize("line", ["% format EVT3;height=0;width=0", "% format EVT3;height=-5;width=640"])
def test_a_header_size_that_is_no_sensor_is_named_not_ignored(tmp_path, line):
    """A stated size of 0 or less was read as "the header gives no geometry"."""
    words = np.array([0x8000, 0x6001, 0x0003, 0x2805], dtype="<u2")  # TIME_HIGH, TIME_LOW, y 3, x 5 ON
    path = tmp_path / "odd.raw"
    path.write_bytes(f"{line}\n% end\n".encode() + words.tobytes())
    events, info = nd.read(path, return_info=True)
    assert len(events) == 1 and info.width is None
    assert info.extra["geometry_source"].startswith("unknown: its format ")
    assert "is no sensor size" in info.extra["geometry_source"]


def test_a_time_offset_too_long_is_named_as_such(tmp_path):
    path = tmp_path / "offset.raw"
    path.write_bytes(b"% evt 3.0\n% neurodata_time_offset_us 9223372036854775000\n% end\n")
    with pytest.raises(nd.FormatError, match="not a whole number of up to 18 digits"):
        nd.read(path)
