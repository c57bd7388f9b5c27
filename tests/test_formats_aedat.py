"""AEDAT 2.0 and 3.1: fixture ground truth, references vs Numba, block sizes, writers, traps, errors, fuzz."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import neurodata as nd
from neurodata.errors import FormatError
from neurodata.formats import aedat2, aedat31
from neurodata.formats.kernels import aedat2 as k2
from neurodata.formats.kernels import aedat31 as k31
from tests.fuzzing import MUTATIONS, assert_format_invariants, mutate

AEDAT2 = "aedat2/synthetic_cifar10dvs_dvs128.aedat"
AEDAT2_HEADER_ONLY = "aedat2/sample_aedat_header.aedat"
AEDAT31 = "aedat31/synthetic_user00_fluorescent.aedat"
FIXED_START = {"start_time": "2017-01-01 12:00:00 (TZ+0000)"}


@pytest.fixture(scope="module")
def truth(fixtures) -> np.ndarray:
    with np.load(fixtures / "synthetic_ground_truth.npz", allow_pickle=False) as z:
        return nd.make_events(z["t"], z["x"], z["y"], z["p"])


def data_bytes(path) -> np.ndarray:
    with nd.open_recording(path) as rec:
        offset = rec.header.data_offset
    return np.fromfile(path, dtype=np.uint8)[offset:]


def columns(events: np.ndarray) -> tuple:
    return tuple(events[f].astype(np.int64) for f in "txyp")


def assert_columns_equal(events: np.ndarray, cols: tuple) -> None:
    for name, got, want in zip("txyp", columns(events), cols):
        np.testing.assert_array_equal(got, want, err_msg=f"field {name}")


def trap_file(tmp_path, events, name="traps.aedat", packet_events=100) -> object:
    path = tmp_path / name
    traps = aedat31.Traps(special_every=2, invalid_every=3, spare_slots=2)
    aedat31.write_aedat31(path, events, nd.RecordingInfo("aedat31", extra=FIXED_START), packet_events, traps)
    return path


def long_events(truth: np.ndarray) -> np.ndarray:
    """The fixture's events shifted to straddle 2**31 us, so packets need eventTSOverflow = 1."""
    shifted = truth.copy()
    shifted["t"] += (1 << 31) - 300_000
    return shifted


# --- fixtures decode to the ground truth -----------------------------------------------------------


@pytest.mark.parametrize("name", [AEDAT2, AEDAT31])
def test_constructed_fixtures_match_ground_truth(fixtures, truth, name):
    events, info = nd.read(fixtures / name, return_info=True)
    np.testing.assert_array_equal(events, truth)
    assert (info.width, info.height) == (128, 128)
    assert events[:3].tolist() == [(0, 120, 97, 1), (457, 16, 71, 1), (834, 45, 124, 0)]
    assert events["t"][-1] == 589318


def test_aedat2_axis_convention_is_the_manifests(fixtures, truth):
    """MANIFEST: bit0 = 1 - p, bits 1-7 = 127 - x, bits 8-14 = y; checked on the raw words."""
    words = data_bytes(fixtures / AEDAT2).view(">u4").astype(np.int64)
    addr = words[0::2]
    np.testing.assert_array_equal(addr & 1, 1 - truth["p"])
    np.testing.assert_array_equal((addr >> 1) & 0x7F, 127 - truth["x"].astype(np.int64))
    np.testing.assert_array_equal((addr >> 8) & 0x7F, truth["y"])


def test_aedat2_header_only_fixture(fixtures):
    path = fixtures / AEDAT2_HEADER_ONLY
    events, info = nd.read(path, return_info=True)
    assert len(events) == 0 and events.dtype == nd.EVENT_DTYPE
    assert info.extra["chip"] == "davis346" and (info.width, info.height) == (346, 260)
    assert info.extra["aechip"] == "eu.seebetter.ini.chips.davis.Davis346red"
    assert info.extra["creation_time_ms"] == 1695355587880
    with nd.open_recording(path) as rec:
        assert rec.header.data_offset == path.stat().st_size == 599


def test_aedat31_header_fields(fixtures):
    info = nd.read(fixtures / AEDAT31, return_info=True)[1]
    assert info.format == "aedat31"
    assert info.extra["source_name"] == "DVS128" and info.extra["start_time"] == FIXED_START["start_time"]


# --- readable references agree with the Numba kernels ---------------------------------------------


def test_aedat2_dvs128_numba_matches_reference(fixtures):
    raw = data_bytes(fixtures / AEDAT2)
    assert_columns_equal(nd.read(fixtures / AEDAT2), k2.decode_dvs128_reference(raw))


def test_aedat31_numba_matches_reference(fixtures, tmp_path, truth):
    for path in (fixtures / AEDAT31, trap_file(tmp_path, long_events(truth))):
        assert_columns_equal(nd.read(path), k31.decode_reference(data_bytes(path)))


def davis_words(rng: np.random.Generator, n: int, width: int, height: int) -> np.ndarray:
    """Random DAVIS address/timestamp pairs: DVS events plus APS readouts, IMU samples, external inputs."""
    x = rng.integers(0, width, n)
    y = rng.integers(0, height, n)
    addr = (y << 22) | (x << 12) | (rng.integers(0, 2, n) << 11)
    kind = rng.integers(0, 4, n)
    addr = np.where(kind == 1, addr | (1 << 31) | rng.integers(0, 1 << 10, n), addr)  # APS / ADC readout
    addr = np.where(kind == 2, addr | (3 << 10), addr)  # IMU sample
    addr = np.where(kind == 3, (addr & ~0x7FF) | (1 << 10) | 3, addr)  # external input (rising edge)
    words = np.empty((n, 2), dtype=">u4")
    words[:, 0] = addr
    words[:, 1] = np.sort(rng.integers(0, 1 << 32, n))
    return words


def davis_file(tmp_path, fixtures, words: np.ndarray, name="davis.aedat"):
    path = tmp_path / name
    path.write_bytes((fixtures / AEDAT2_HEADER_ONLY).read_bytes() + words.tobytes())
    return path


def test_davis346_numba_matches_reference_and_skips_aps_imu(tmp_path, fixtures):
    words = davis_words(np.random.default_rng(1), 5000, 346, 260)
    path = davis_file(tmp_path, fixtures, words)
    events = nd.read(path)
    assert_columns_equal(events, k2.decode_davis_reference(words.view(np.uint8).ravel(), 346, 260))
    dvs = (words[:, 0] & ((1 << 31) | (1 << 10))) == 0
    assert len(events) == dvs.sum() and 0 < dvs.sum() < len(words)


def test_davis_address_fields_follow_jaer(tmp_path, fixtures):
    """jAER's DAVIS extractor: x = sizeX - 1 - bits12-21, y = bits22-30, p = bit11."""
    words = np.array([[(5 << 22) | (0 << 12) | (1 << 11), 10], [(259 << 22) | (345 << 12), 20]], dtype=">u4")
    events = nd.read(davis_file(tmp_path, fixtures, words))
    assert events.tolist() == [(10, 345, 5, 1), (20, 0, 259, 0)]


def test_davis_address_outside_sensor_names_offset(tmp_path, fixtures):
    words = np.array([[(1 << 22) | (1 << 12), 1], [(1 << 22) | (400 << 12), 2]], dtype=">u4")
    with pytest.raises(
        FormatError, match=r"davis\.aedat: at byte 607: .*outside the 346x260 davis346 sensor"
    ):
        nd.read(davis_file(tmp_path, fixtures, words))


def test_dvs128_external_events_are_skipped(tmp_path):
    events = nd.make_events([1, 2, 3], [0, 5, 127], [0, 6, 127], [1, 0, 1])
    path = tmp_path / "ext.aedat"
    nd.write(path, events, format="aedat2")
    words = (
        np.fromfile(path, np.uint8)[len(aedat2.header_bytes(nd.RecordingInfo("aedat2"))) :].view(">u4").copy()
    )
    words[2] |= 1 << 15  # mark the second record as an external (non-DVS) event
    path.write_bytes(aedat2.header_bytes(nd.RecordingInfo("aedat2")) + words.tobytes())
    np.testing.assert_array_equal(nd.read(path), events[[0, 2]])


def test_aedat2_chip_choice(tmp_path):
    body = np.zeros(2, ">u4").tobytes()
    (tmp_path / "none.aedat").write_bytes(b"#!AER-DAT2.0\r\n# no chip line\r\n" + body)
    assert nd.read(tmp_path / "none.aedat", return_info=True)[1].extra["chip"] == "dvs128"
    (tmp_path / "240.aedat").write_bytes(
        b"#!AER-DAT2.0\r\n# AEChip: eu.seebetter.ini.chips.davis.DAVIS240C\r\n" + body
    )
    assert nd.read(tmp_path / "240.aedat", return_info=True)[1].sensor_size == (240, 180, 2)
    (tmp_path / "old.aedat").write_bytes(
        b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.Tmpdiff128\r\n" + body
    )
    assert nd.read(tmp_path / "old.aedat", return_info=True)[1].extra["chip"] == "dvs128"
    (tmp_path / "cochlea.aedat").write_bytes(
        b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.cochlea.CochleaAMS1c\r\n"
    )
    with pytest.raises(FormatError, match=r"cochlea\.aedat: at byte 14: unsupported AEChip"):
        nd.read(tmp_path / "cochlea.aedat")


# --- any block size gives the same events ----------------------------------------------------------


@pytest.mark.parametrize("block", [1, 7, 28, 29, 1000, None])
@pytest.mark.parametrize("kind", ["aedat2", "aedat31", "aedat31-traps"])
def test_block_size_does_not_change_events(fixtures, tmp_path, truth, kind, block):
    path = {
        "aedat2": lambda: fixtures / AEDAT2,
        "aedat31": lambda: fixtures / AEDAT31,
        "aedat31-traps": lambda: trap_file(tmp_path, long_events(truth)[:700], packet_events=37),
    }[kind]()
    whole = nd.read(path)
    with nd.open_recording(path) as rec:
        parts = [chunk for chunk in rec.blocks(block_bytes=block or path.stat().st_size + 1)]
    np.testing.assert_array_equal(np.concatenate(parts) if parts else nd.make_events([], [], [], []), whole)


def test_decoder_waits_for_a_whole_packet(fixtures):
    """A block that ends inside a packet consumes only the whole packets before it (here: none)."""
    raw = data_bytes(fixtures / AEDAT31)
    decoder = aedat31.Aedat31Decoder(aedat31.Header(nd.RecordingInfo("aedat31", 128, 128), 0), "x")
    events, consumed = decoder.decode(raw[:100], 0, final=False)
    assert consumed == 0 and len(events) == 0
    events, consumed = decoder.decode(raw, 0, final=False)
    assert consumed == len(raw) and len(events) == 2042


def test_aedat31_event_outside_the_sensor_is_refused_with_its_offset(fixtures, tmp_path):
    """A DVS128 file whose valid event has x = 128 (a 15-bit field holds up to 32767): refused, naming
    the event's byte offset; x = 127 is the last column and reads."""
    raw = bytearray((fixtures / AEDAT31).read_bytes())
    header_end = raw.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    first_event = header_end + k31.PACKET_HEADER
    for x, ok in ((127, True), (128, False)):
        data = int.from_bytes(raw[first_event : first_event + 4], "little")
        data = (data & ((1 << 17) - 1)) | (x << 17) | 1
        raw[first_event : first_event + 4] = data.to_bytes(4, "little")
        path = tmp_path / f"x{x}.aedat"
        path.write_bytes(bytes(raw))
        if ok:
            assert nd.read(path)["x"][0] == 127
        else:
            with pytest.raises(FormatError, match=r"x=128, y=\d+ lies outside the 128x128 sensor") as err:
                nd.read(path)
            assert err.value.offset == first_event


# --- writers: round trips, layout, streaming ---------------------------------------------------------


def test_aedat2_round_trip(tmp_path, fixtures, truth):
    path = tmp_path / "out.aedat"
    nd.write(path, truth, format="aedat2")
    np.testing.assert_array_equal(nd.read(path), truth)
    # our header plus the fixture's own records: the writer encodes exactly as the fixture does
    assert (
        (path.read_bytes()[-16 * len(truth) // 2 :])
        == data_bytes(fixtures / AEDAT2).tobytes()[-16 * len(truth) // 2 :]
    )


def test_aedat2_round_trip_synthetic_full_range(tmp_path):
    rng = np.random.default_rng(2)
    n = 10_000
    events = nd.make_events(
        np.sort(rng.integers(0, 1 << 32, n)),
        rng.integers(0, 128, n),
        rng.integers(0, 128, n),
        rng.integers(0, 2, n),
    )
    events["t"][-1] = (1 << 32) - 1
    path = tmp_path / "full.aedat"
    with nd.open_writer(path, format="aedat2") as writer:
        for chunk in np.array_split(events, 7):
            writer.write(chunk)
    np.testing.assert_array_equal(nd.read(path), events)


@pytest.mark.parametrize("bad_t", [-1, 1 << 32])
def test_aedat2_writer_refuses_out_of_range_time(tmp_path, bad_t):
    events = nd.make_events(sorted([0, bad_t]), [1, 1], [1, 1], [1, 0])
    with pytest.raises(nd.NeurodataError, match=r"unsigned 32-bit timestamps"):
        nd.write(tmp_path / "bad.aedat", events, format="aedat2")
    assert list(tmp_path.iterdir()) == []


def test_aedat31_round_trip_with_overflow_and_packet_layout(tmp_path, truth):
    events = long_events(truth)
    path = tmp_path / "long.aedat"
    nd.write(
        path,
        events,
        nd.RecordingInfo("aedat31", extra={**FIXED_START, "packet_events": 500}),
        format="aedat31",
    )
    np.testing.assert_array_equal(nd.read(path), events)
    heads = packet_headers(data_bytes(path))
    assert set(heads["type"]) == {1} and set(heads["source"]) == {1} and set(heads["size"]) == {8}
    assert (heads["number"] <= 500).all() and heads["number"].sum() == len(events)
    epochs = events["t"] >> 31
    assert list(heads["ts_overflow"]) == [0] * -(-int((epochs == 0).sum()) // 500) + [1] * -(
        -int((epochs == 1).sum()) // 500
    )
    assert path.read_bytes().startswith(
        b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017-01-01 12:00:00 (TZ+0000)\r\n#!END-HEADER\r\n"
    )


def packet_headers(raw: np.ndarray) -> np.ndarray:
    heads, pos = [], 0
    while pos < len(raw):
        head = raw[pos : pos + 28].view(k31.HEADER_DTYPE)[0]
        heads.append(head)
        pos += 28 + int(head["size"]) * int(head["capacity"])
    return np.array(heads, dtype=k31.HEADER_DTYPE)


def test_aedat31_streaming_writes_equal_one_write(tmp_path, truth):
    events = long_events(truth)
    info = nd.RecordingInfo("aedat31", extra={**FIXED_START, "packet_events": 256})
    nd.write(tmp_path / "one.aedat", events, info, format="aedat31")
    with nd.open_writer(tmp_path / "many.aedat", info, format="aedat31") as writer:
        for chunk in np.array_split(events, [1, 2, 300, 301, 1500]):
            writer.write(chunk)
    assert (tmp_path / "one.aedat").read_bytes() == (tmp_path / "many.aedat").read_bytes()


def test_aedat31_writer_refuses_unsorted_and_out_of_layout(tmp_path):
    with pytest.raises(nd.NeurodataError, match="time-ordered"):
        nd.write(tmp_path / "a.aedat", nd.make_events([5, 1], [0, 0], [0, 0], [0, 1]), format="aedat31")
    with pytest.raises(nd.NeurodataError, match="x, y < 128"):
        nd.write(tmp_path / "b.aedat", nd.make_events([1], [200], [0], [0]), format="aedat31")
    assert list(tmp_path.iterdir()) == []


# --- the traps a reader must honour ---------------------------------------------------------------------


def test_trap_file_holds_the_traps_and_reads_back_exactly(tmp_path, truth):
    events = long_events(truth)
    path = trap_file(tmp_path, events)
    heads = packet_headers(data_bytes(path))
    polarity = heads[heads["type"] == 1]
    assert (heads["type"] == 0).sum() > 0  # special-event packets
    assert (polarity["capacity"] > polarity["number"]).all()  # unused slots with garbage
    assert (polarity["valid"] < polarity["number"]).all()  # invalidated events among the filled ones
    assert set(polarity["ts_overflow"]) == {0, 1}
    np.testing.assert_array_equal(nd.read(path), events)


# --- bad input: FormatError naming file and offset ------------------------------------------------------


def corrupt_first_packet(tmp_path, fixtures, field: str, value: int):
    raw = data_bytes(fixtures / AEDAT31).copy()
    head = raw[:28].view(k31.HEADER_DTYPE)
    head[field] = value
    path = tmp_path / f"bad_{field}.aedat"
    header = (fixtures / AEDAT31).read_bytes()[: -len(raw)]
    path.write_bytes(header + raw.tobytes())
    return path, len(header)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("size", -8, "non-positive eventSize"),
        ("size", 4, "must have eventSize 8"),
        ("capacity", -1, "negative eventCapacity"),
        ("number", 5000, "eventNumber is negative or exceeds eventCapacity"),
        ("ts_overflow", -3, "negative eventTSOverflow"),
        ("capacity", 1 << 30, "more than 2 GiB"),
        ("capacity", 3000, "packet runs past the end of the file: it needs 24028 bytes, 16364 are left"),
    ],
)
def test_corrupt_packet_header_names_offset(tmp_path, fixtures, field, value, message):
    path, offset = corrupt_first_packet(tmp_path, fixtures, field, value)
    with pytest.raises(FormatError, match=rf"bad_{field}\.aedat: at byte {offset}: .*{message}"):
        nd.read(path)


def test_negative_timestamp_of_a_valid_event_names_offset(tmp_path, fixtures):
    raw = data_bytes(fixtures / AEDAT31).copy()
    events = raw[28:].view(k31.POLARITY_DTYPE)
    events["ts"][10] = -5
    header = (fixtures / AEDAT31).read_bytes()[: -len(raw)]
    (tmp_path / "neg.aedat").write_bytes(header + raw.tobytes())
    offset = len(header) + 28 + 8 * 10
    with pytest.raises(
        FormatError, match=rf"neg\.aedat: at byte {offset}: valid polarity event has a negative timestamp"
    ):
        nd.read(tmp_path / "neg.aedat")
    events["data"][10] &= ~np.uint32(1)  # once invalidated, the event and its timestamp are ignored
    (tmp_path / "neg.aedat").write_bytes(header + raw.tobytes())
    assert len(nd.read(tmp_path / "neg.aedat")) == 2041


def test_truncated_files_name_offset(tmp_path, fixtures):
    data = (fixtures / AEDAT2).read_bytes()
    (tmp_path / "cut2.aedat").write_bytes(data[:-3])
    with pytest.raises(FormatError, match=rf"cut2\.aedat: at byte {len(data) - 8}: truncated record"):
        nd.read(tmp_path / "cut2.aedat")
    data = (fixtures / AEDAT31).read_bytes()
    (tmp_path / "cut31.aedat").write_bytes(data[:-5])
    with pytest.raises(FormatError, match=r"cut31\.aedat: at byte 105: packet runs past the end"):
        nd.read(tmp_path / "cut31.aedat")
    (tmp_path / "cuthead.aedat").write_bytes(data[:120])
    with pytest.raises(
        FormatError, match=r"cuthead\.aedat: at byte 105: truncated packet header: 15 bytes left"
    ):
        nd.read(tmp_path / "cuthead.aedat")


def test_header_without_end_marker(tmp_path):
    (tmp_path / "noend.aedat").write_bytes(b"#!AER-DAT3.1\r\n#Format: RAW\r\n\x01\x00\x01\x00" + bytes(40))
    with pytest.raises(
        FormatError, match=r"noend\.aedat: at byte 28: header ended without the '#!END-HEADER' line"
    ):
        nd.read(tmp_path / "noend.aedat")


def test_wrong_magic_and_random_bytes(tmp_path):
    (tmp_path / "v1.aedat").write_bytes(b"#!AER-DAT1.0\r\n" + bytes(12))
    with pytest.raises(FormatError, match=r"v1\.aedat: at byte 0: expected the AEDAT 2.0 magic"):
        nd.read(tmp_path / "v1.aedat")
    (tmp_path / "v31.aedat").write_bytes(b"#!AER-DAT2.0\r\n")
    with pytest.raises(FormatError, match=r"v31\.aedat: at byte 0: expected the AEDAT 3.1 magic"):
        nd.read(tmp_path / "v31.aedat", format="aedat31")
    (tmp_path / "noise.aedat").write_bytes(np.random.default_rng(3).bytes(4096))
    with pytest.raises(FormatError, match=r"noise\.aedat: at byte 0"):
        nd.read(tmp_path / "noise.aedat")


# --- fuzz: mutated fixtures decode or raise FormatError, nothing else ------------------------------------


@pytest.fixture(scope="module")
def fuzz_sources(fixtures, truth, tmp_path_factory) -> dict[str, bytes]:
    """Valid files to mutate: the fixtures, a DAVIS346 file with events, a multi-packet trap file."""
    folder = tmp_path_factory.mktemp("fuzz_sources")
    words = davis_words(np.random.default_rng(4), 300, 346, 260)
    sources = {name: (fixtures / name).read_bytes() for name in (AEDAT2, AEDAT2_HEADER_ONLY, AEDAT31)}
    sources["davis"] = davis_file(folder, fixtures, words).read_bytes()
    sources["traps"] = trap_file(folder, long_events(truth)[:400], packet_events=50).read_bytes()
    return sources


@pytest.mark.parametrize("name", [AEDAT2, AEDAT2_HEADER_ONLY, AEDAT31, "davis", "traps"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=MUTATIONS)
def test_fuzzed_files_decode_or_raise_format_error(fuzz_sources, tmp_path, name, ops):
    path = tmp_path / "fuzz.aedat"
    path.write_bytes(mutate(fuzz_sources[name], ops))
    decoded = []
    for block in (None, 29):
        try:
            with nd.open_recording(path) as rec:
                chunks = list(rec.blocks(block or 1 << 20))
                width, height = rec.info.width, rec.info.height
        except FormatError:
            continue
        events = np.concatenate([nd.events.empty_events(0), *chunks])
        assert_format_invariants(events, width, height, max_events=path.stat().st_size // 8)  # 8 bytes an event
        decoded.append(events)
    if len(decoded) == 2:
        np.testing.assert_array_equal(decoded[0], decoded[1])  # the block size changes nothing
