"""AEDAT 4.0: fixtures, reference vs Numba, block-size invariance, round trips, peers, errors, fuzz."""

from __future__ import annotations

import functools
import io
import struct

import lz4.frame
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurodata as nd
from neurodata.errors import FormatError
from neurodata.events import empty_events
from neurodata.formats import aedat4
from neurodata.formats import aedat4_layout as layout
from neurodata.formats import flatbuffers as fb
from neurodata.formats.aedat4_writer import Aedat4Writer
from neurodata.formats.kernels import aedat4 as kernels
from tests.fuzzing import assert_format_invariants

COMPRESSIONS = ["none", "lz4", "lz4_high", "zstd", "zstd_high"]


def sample(fixtures):
    return fixtures / "aedat4" / "sample.aedat4"


def random_events(n: int, seed: int = 0, width: int = 640, height: int = 480) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = 1_700_000_000_000_000 + np.cumsum(rng.integers(0, 50, n))
    return nd.make_events(t, rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n))


def write(path, events, compression="lz4", packet_events=1000, width=640, height=480):
    info = nd.RecordingInfo(
        "aedat4", width, height, extra={"compression": compression, "packet_events": packet_events}
    )
    nd.write(path, events, info)
    return path


def packets(path):
    """(file offset, stream id, payload) of every packet, walked independently of the decoder."""
    with nd.open_recording(path) as rec:
        start, end = rec.header.data_offset, rec.header.fields["end"]
    data = path.read_bytes()
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        stream, size = struct.unpack_from("<ii", data, pos)
        yield pos, stream, data[pos + 8 : pos + 8 + size]
        pos += 8 + size
    assert pos == end


# --- fixtures ----------------------------------------------------------------------------------


def test_sample_matches_manifest(fixtures):
    events, info = nd.read(sample(fixtures), return_info=True)
    assert info.format == "aedat4"
    assert len(events) == 111954
    assert events[:3].tolist() == [
        (1605537493718345, 154, 204, 0),
        (1605537493718348, 149, 206, 0),
        (1605537493718349, 148, 199, 1),
    ]
    assert (info.width, info.height) == (320, 240)
    assert info.time_origin == 0  # t is already Unix time in microseconds
    assert info.extra["streams"] == {0: "EVTS", 2: "IMUS", 3: "TRIG"}
    assert info.extra["compression"] == "lz4"
    assert events["x"].max() < 320 and events["y"].max() < 240
    assert np.all(np.diff(events["t"]) >= 0)


def test_sample_has_a_file_data_table_that_is_not_read_as_packets(fixtures):
    with nd.open_recording(sample(fixtures)) as rec:
        end = rec.header.fields["end"]
    data = sample(fixtures).read_bytes()
    assert 0 < end < len(data)
    table = fb.root(lz4.frame.decompress(data[end:]), b"FTAB", size_prefixed=True)
    rows = table.tables(0)
    offsets = [row.scalar(0, "q", -1) for row in rows]
    assert sorted(offsets) == [pos + 8 for pos, _, _ in packets(sample(fixtures))]  # DV points at payloads


@pytest.mark.parametrize("name", ["test_data_gray16.aedat4", "test_data_unknown_then_gray16.aedat4"])
def test_frames_only_files_give_zero_events(fixtures, name):
    events, info = nd.read(fixtures / "aedat4" / name, return_info=True)
    assert len(events) == 0 and events.dtype == nd.EVENT_DTYPE
    assert info.extra["streams"] == {0: "FRME"}
    assert info.extra["event_stream"] is None and info.width is None


def unpack_numba(packet: bytes) -> tuple[np.ndarray, ...]:
    """Run both Numba kernels on one decompressed packet, returning the columns they fill."""
    buf = np.frombuffer(packet, dtype=np.uint8)
    status, pos, count = kernels.locate_numba(buf, 0, len(buf))
    assert status == kernels.OK
    out = empty_events(count)
    assert kernels.unpack_numba(kernels.struct_view(buf, pos, count), out, 0, 1 << 16, 1 << 16) == -1
    return out["t"], out["x"], out["y"], out["p"]


def test_numba_matches_reference(fixtures):
    refs = []
    for _, stream, payload in packets(sample(fixtures)):
        if stream == 0:
            packet = lz4.frame.decompress(payload)
            ref = kernels.unpack_reference(packet)
            for ours, theirs in zip(unpack_numba(packet), ref):
                np.testing.assert_array_equal(ours, theirs)
            refs.append(ref)
    events = nd.read(sample(fixtures))
    for i, name in enumerate("txyp"):
        np.testing.assert_array_equal(events[name], np.concatenate([r[i] for r in refs]))


@settings(max_examples=200, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 7)), min_size=1, max_size=3))
def test_numba_and_reference_validate_packets_alike(flips):
    """Bit flips in the flatbuffer head: both locators accept with the same answer or both reject."""
    packet = bytearray(layout.event_packet(random_events(3)))
    for pos, bit in flips:
        packet[pos] ^= 1 << bit
    buf = np.frombuffer(bytes(packet), dtype=np.uint8)
    status, pos, count = kernels.locate_numba(buf, 0, len(buf))
    try:
        expected = kernels.locate_reference(bytes(packet))
    except fb.FlatBufferError:
        assert status != kernels.OK
    else:
        assert status == kernels.OK and (pos, count) == expected


@pytest.mark.parametrize("block", [1, 7, 100, 4097, 65536])
def test_block_size_does_not_change_events(fixtures, block):
    whole = nd.read(sample(fixtures))
    with nd.open_recording(sample(fixtures)) as rec:
        parts = list(rec.blocks(block_bytes=block))
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    if block == 65536:  # each block yields only its own whole packets: memory follows the block size
        assert len(parts) > 10 and max(map(len, parts)) < 20_000


# --- writing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_round_trip_per_compression(tmp_path, compression):
    events = random_events(5003)
    path = write(tmp_path / "rt.aedat4", events, compression, packet_events=999)
    back, info = nd.read(path, return_info=True)
    np.testing.assert_array_equal(back, events)
    assert (info.width, info.height, info.extra["compression"]) == (640, 480, compression)
    sizes = [
        len(kernels.unpack_reference(_decompress(payload, compression))[0]) for _, _, payload in packets(path)
    ]
    assert sizes == [999] * 5 + [8]


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_thread_pool_path_matches_serial(tmp_path, monkeypatch, compression):
    events = random_events(30_000)
    path = write(tmp_path / "many.aedat4", events, compression, packet_events=97)  # 310 packets
    monkeypatch.setattr(aedat4, "WORKERS", 3)
    np.testing.assert_array_equal(nd.read(path), events)
    monkeypatch.setattr(aedat4, "WORKERS", 1)
    np.testing.assert_array_equal(nd.read(path), events)


@pytest.mark.parametrize("dense_first", [False, True])
def test_output_estimate_grows_or_trims(tmp_path, dense_first):
    """The output is sized from the first packets' compression ratio: a file whose ratio changes
    tenfold (random events vs repeated ones) must still decode exactly, in both orders."""
    noisy = random_events(4000)
    steady = nd.make_events(
        noisy["t"][-1] + np.arange(1, 40_001), np.full(40_000, 7), np.full(40_000, 9), np.ones(40_000)
    )
    events = np.concatenate([steady, noisy] if dense_first else [noisy, steady])
    events["t"] = np.sort(events["t"])
    path = write(tmp_path / "ratio.aedat4", events, "lz4", packet_events=100)
    back = nd.read(path)
    np.testing.assert_array_equal(back, events)
    assert back.base is None or len(back.base) <= len(back) * 9 // 8  # no large hidden slack


def _decompress(payload: bytes, compression: str) -> bytes:
    return (
        aedat4._decompressor(layout.COMPRESSIONS[compression])(payload) if compression != "none" else payload
    )


def test_streaming_writer_chunks_and_inferred_geometry(tmp_path, fixtures):
    events = nd.read(sample(fixtures))
    path = tmp_path / "chunks.aedat4"
    with nd.open_writer(path, nd.RecordingInfo("aedat4", extra={"compression": "zstd"})) as writer:
        for chunk in np.array_split(events, 7):
            writer.write(chunk)
    back, info = nd.read(path, return_info=True)
    np.testing.assert_array_equal(back, events)
    assert (info.width, info.height) == (int(events["x"].max()) + 1, int(events["y"].max()) + 1)


def test_empty_write_gives_valid_empty_file(tmp_path):
    path = write(tmp_path / "empty.aedat4", empty_events(0))
    events, info = nd.read(path, return_info=True)
    assert len(events) == 0 and (info.width, info.height) == (640, 480)


def test_file_data_table_lists_written_packets(tmp_path):
    events = random_events(2500)
    path = write(tmp_path / "table.aedat4", events, "zstd", packet_events=1000)
    with nd.open_recording(path) as rec:
        end = rec.header.fields["end"]
    table = fb.root(_decompress(path.read_bytes()[end:], "zstd"), b"FTAB", size_prefixed=True)
    rows = [
        (r.scalar(0, "q", -1), r.scalar(2, "q", -1), r.scalar(3, "q", -1), r.scalar(4, "q", -1))
        for r in table.tables(0)
    ]
    offsets = [pos + 8 for pos, _, _ in packets(path)]
    t = events["t"]
    assert rows == [
        (offsets[0], 1000, t[0], t[999]),
        (offsets[1], 1000, t[1000], t[1999]),
        (offsets[2], 500, t[2000], t[2499]),
    ]


def test_unseekable_output_has_no_table(tmp_path):
    class Unseekable(io.BytesIO):
        def seekable(self) -> bool:
            return False

    events = random_events(300)
    out = Unseekable()
    writer = Aedat4Writer(out, nd.RecordingInfo("aedat4", 640, 480, extra={"compression": "lz4"}))
    writer.write(events)
    writer.close()
    path = tmp_path / "stream.aedat4"
    path.write_bytes(out.getvalue())
    with nd.open_recording(path) as rec:
        assert rec.header.fields["end"] is None
        np.testing.assert_array_equal(rec.read(), events)


def test_writer_rejects_bad_options_and_events(tmp_path):
    with pytest.raises(nd.NeurodataError, match="compression 'brotli'"):
        write(tmp_path / "a.aedat4", random_events(10), "brotli")
    with pytest.raises(nd.NeurodataError, match="outside the 64 x 48 sensor"):
        write(tmp_path / "b.aedat4", random_events(10), width=64, height=48)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_aedat_package_reads_our_files(tmp_path, compression):
    aedat = pytest.importorskip(
        "aedat", reason="the `aedat` package (iniVation-independent Rust reader) is not installed"
    )
    events = random_events(3001)
    path = write(tmp_path / "peer.aedat4", events, compression, packet_events=512)
    decoder = aedat.Decoder(path)
    assert decoder.id_to_stream() == {0: {"type": "events", "width": 640, "height": 480}}
    theirs = np.concatenate([packet["events"] for packet in decoder if "events" in packet])
    np.testing.assert_array_equal(theirs["t"].astype(np.int64), events["t"])
    np.testing.assert_array_equal(theirs["x"], events["x"])
    np.testing.assert_array_equal(theirs["y"], events["y"])
    np.testing.assert_array_equal(theirs["on"], events["p"] == 1)


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_faery_reads_our_files(tmp_path, compression):
    faery = pytest.importorskip(
        "faery", reason="`faery` (Rust event I/O, 21 MB) is only in the benchmark env"
    )
    events = random_events(2000)
    path = write(tmp_path / "faery.aedat4", events, compression, packet_events=700)
    stream = faery.events_stream_from_file(path)
    assert stream.dimensions() == (640, 480)
    theirs = np.concatenate(list(stream))
    np.testing.assert_array_equal(theirs["t"].astype(np.int64), events["t"])
    np.testing.assert_array_equal(theirs["x"], events["x"])
    np.testing.assert_array_equal(theirs["y"], events["y"])
    np.testing.assert_array_equal(theirs["on"], events["p"] == 1)


def test_aedat_package_agrees_on_fixture(fixtures):
    aedat = pytest.importorskip(
        "aedat", reason="the `aedat` package (iniVation-independent Rust reader) is not installed"
    )
    theirs = np.concatenate([p["events"] for p in aedat.Decoder(sample(fixtures)) if "events" in p])
    ours = nd.read(sample(fixtures))
    np.testing.assert_array_equal(theirs["t"].astype(np.int64), ours["t"])
    np.testing.assert_array_equal(theirs["on"], ours["p"] == 1)


def test_several_event_streams_first_by_default_or_selected(tmp_path):
    """A hand-built file with EVTS streams 3 (64x48) and 1 (640x480) interleaved, and an IMU stream 2."""
    one, three = random_events(700, seed=1), random_events(500, seed=3, width=64, height=48)
    xml = layout.description_xml(640, 480, "lz4").decode()
    node = xml[xml.index('        <node name="0"') : xml.index("    </node>\n</dv>")]
    streams = [node.replace('"0"', '"1"').replace("/0/", "/1/")]
    streams.append(
        node.replace('"0"', '"3"').replace("/0/", "/3/").replace(">640<", ">64<").replace(">480<", ">48<")
    )
    streams.append('        <node name="2"><attr key="typeIdentifier" type="string">IMUS</attr></node>\n')
    xml = xml.replace(node, "".join(streams)).encode()
    body = b""
    for part in range(2):
        for stream, events in ((3, three), (2, None), (1, one)):
            packet = (
                b"imu data" if events is None else layout.event_packet(events[part * 350 : (part + 1) * 350])
            )
            payload = lz4.frame.compress(packet)
            body += struct.pack("<ii", stream, len(payload)) + payload
    path = corrupt(tmp_path, layout.MAGIC + layout.io_header(1, -1, xml) + body, "multi.aedat4")
    events, info = nd.read(path, return_info=True)
    np.testing.assert_array_equal(events, one)
    assert (info.width, info.height, info.extra["event_stream"]) == (640, 480, 1)
    with nd.open_recording(path) as rec:
        aedat4.select_stream(rec.header, 3)
        assert (rec.info.width, rec.info.height) == (64, 48)
        np.testing.assert_array_equal(rec.read(), three)
        with pytest.raises(
            nd.NeurodataError, match=r"stream 2 is not an event stream; event streams: \[1, 3\]"
        ):
            aedat4.select_stream(rec.header, 2)


def pose_stream_file(tmp_path):
    """Our writer's header plus a stream of a type no peer knows (POSE), and one event packet."""
    xml = layout.description_xml(640, 480, "lz4").decode()
    pose = '        <node name="5"><attr key="typeIdentifier" type="string">POSE</attr></node>\n'
    xml = xml.replace("    </node>\n</dv>", pose + "    </node>\n</dv>").encode()
    events = random_events(100)
    payload = lz4.frame.compress(layout.event_packet(events))
    data = layout.MAGIC + layout.io_header(1, -1, xml) + struct.pack("<ii", 0, len(payload)) + payload
    return corrupt(tmp_path, data, "pose.aedat4"), events


def test_unknown_stream_types_are_skipped_not_fatal(tmp_path):
    """Deliberate difference: `aedat` and `faery` refuse a description with an unknown stream type."""
    path, events = pose_stream_file(tmp_path)
    got, info = nd.read(path, return_info=True)
    np.testing.assert_array_equal(got, events)
    assert info.extra["streams"] == {0: "EVTS", 5: "POSE"}


def test_aedat_package_refuses_unknown_stream_types(tmp_path):
    aedat = pytest.importorskip(
        "aedat", reason="the `aedat` package (iniVation-independent Rust reader) is not installed"
    )
    with pytest.raises(Exception, match="unsupported stream type"):
        aedat.Decoder(pose_stream_file(tmp_path)[0])


# --- live stream body --------------------------------------------------------------------------


def test_stream_prefix_and_body_decode_in_small_pieces(tmp_path):
    events = random_events(4000)
    path = write(tmp_path / "live.aedat4", events, "lz4", packet_events=700)
    with nd.open_recording(path) as rec:
        end = rec.header.fields["end"]
    stream = path.read_bytes()[len(layout.MAGIC) : end]  # what DV sends: no magic line, no table
    assert aedat4.parse_stream_header(stream[:10]) is None
    header, consumed = aedat4.parse_stream_header(stream)
    assert header.info.width == 640 and header.fields["end"] is None
    decoder = aedat4.Aedat4Decoder(header, "<live>")
    got, pending, offset = [], b"", consumed
    for i in range(consumed, len(stream), 333):
        buf = pending + stream[i : i + 333]
        out, used = decoder.decode(np.frombuffer(buf, np.uint8), offset, final=False)
        got.append(out)
        pending, offset = buf[used:], offset + used
    assert pending == b""
    np.testing.assert_array_equal(np.concatenate(got), events)
    cut = np.frombuffer(stream[consumed:-3], np.uint8)  # the connection dropped mid-packet
    with pytest.raises(FormatError, match=r"<live>: at byte \d+: truncated packet: \d+ bytes left"):
        aedat4.Aedat4Decoder(header, "<live>").decode(cut, consumed, final=True)


# --- bad input ---------------------------------------------------------------------------------


def corrupt(tmp_path, data: bytes, name="bad.aedat4"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_wrong_magic(tmp_path, fixtures):
    data = sample(fixtures).read_bytes()
    with pytest.raises(FormatError, match=r"bad\.aedat4: at byte 0: expected the AEDAT 4\.0 magic"):
        nd.read(corrupt(tmp_path, b"#!AER-DAT3.1\r\n" + data[14:]), format="aedat4")


@pytest.mark.parametrize(
    "cut, message",
    [
        (16, "at byte 14: file ends before the IOHeader size"),
        (500, "at byte 18: file ends 1834 bytes into"),
        (500000, "at byte 500000: file truncated: it ends before its FileDataTable"),
    ],
)
def test_truncated_file(tmp_path, fixtures, cut, message):
    data = sample(fixtures).read_bytes()
    with pytest.raises(FormatError, match=message):
        nd.read(corrupt(tmp_path, data[:cut]), format="aedat4")


def test_truncated_packet_without_table(tmp_path):
    path = write(tmp_path / "t.aedat4", random_events(100), "none")
    data = path.read_bytes()
    with nd.open_recording(path) as rec:
        start, end = rec.header.data_offset, rec.header.fields["end"]
    header = layout.io_header(0, -1, layout.description_xml(640, 480, "none"))
    cut = layout.MAGIC + header + data[start : end - 3]
    with pytest.raises(
        FormatError,
        match=rf"at byte {len(layout.MAGIC) + len(header)}: packet of 1640 bytes runs past the end of the file",
    ):
        nd.read(corrupt(tmp_path, cut))


def test_io_header_offset_outside_buffer(tmp_path, fixtures):
    data = bytearray(sample(fixtures).read_bytes())
    struct.pack_into("<I", data, 18, 0xFFFF0000)  # root table offset far past the header
    with pytest.raises(FormatError, match=r"at byte 18: invalid IOHeader: table position 4294901764 outside"):
        nd.read(corrupt(tmp_path, bytes(data)))


def test_unknown_compression(tmp_path):
    events = random_events(10)
    data = write(tmp_path / "ok.aedat4", events, "none").read_bytes()
    header = layout.io_header(0, -1, layout.description_xml(640, 480, "none"))
    bad = layout.MAGIC + layout.io_header(9, -1, layout.description_xml(640, 480, "none"))
    rest = data[len(layout.MAGIC) + len(header) :]
    with pytest.raises(FormatError, match="at byte 14: unknown compression 9"):
        nd.read(corrupt(tmp_path, bad + rest))


def test_payload_that_does_not_decompress(tmp_path, fixtures):
    data = bytearray(sample(fixtures).read_bytes())
    first = next(packets(sample(fixtures)))[0]
    data[first + 8 : first + 12] = b"XXXX"  # destroy the LZ4 frame magic of the first packet
    with pytest.raises(FormatError, match=rf"at byte {first}: payload is not one valid LZ4 frame"):
        nd.read(corrupt(tmp_path, bytes(data)))


@pytest.mark.parametrize(
    "size, message",
    [(-8, "negative packet size -8"), (1 << 30, "packet of 1073741824 bytes runs past the FileDataTable")],
)
def test_bad_packet_size(tmp_path, fixtures, size, message):
    data = bytearray(sample(fixtures).read_bytes())
    first = next(packets(sample(fixtures)))[0]
    struct.pack_into("<i", data, first + 4, size)
    with pytest.raises(FormatError, match=rf"at byte {first}: {message}"):
        nd.read(corrupt(tmp_path, bytes(data)))


def test_unknown_stream_id(tmp_path, fixtures):
    data = bytearray(sample(fixtures).read_bytes())
    first = next(packets(sample(fixtures)))[0]
    struct.pack_into("<i", data, first, 7)
    with pytest.raises(FormatError, match=rf"at byte {first}: packet for stream 7, expected one of"):
        nd.read(corrupt(tmp_path, bytes(data)))


def test_event_packet_with_vector_past_its_end(tmp_path):
    path = write(tmp_path / "v.aedat4", random_events(50), "none")
    data = bytearray(path.read_bytes())
    pos, _, payload = next(packets(path))
    start, _ = kernels.locate_reference(payload)
    struct.pack_into("<I", data, pos + 8 + start - 4, 10**6)  # the element count
    with pytest.raises(
        FormatError, match=rf"at byte {pos}: invalid EventPacket: expected an event vector inside"
    ):
        nd.read(corrupt(tmp_path, bytes(data)))


def test_random_bytes_after_magic(tmp_path):
    junk = np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    with pytest.raises(FormatError, match="bad.aedat4"):
        nd.read(corrupt(tmp_path, layout.MAGIC + junk))


def test_flatbuffer_reader_rejects_out_of_range_offsets():
    buf = fb.build({0: fb.Scalar("i", 5), 2: b"hello"}, b"TEST")
    table = fb.root(buf, b"TEST", size_prefixed=True)
    assert table.scalar(0, "i", 0) == 5 and table.string(2) == b"hello" and table.scalar(1, "q", -1) == -1
    with pytest.raises(fb.FlatBufferError, match="identifier"):
        fb.root(buf, b"NOPE", size_prefixed=True)
    string_offset = table.field_pos(2, 4)
    broken = bytearray(buf)
    struct.pack_into("<I", broken, string_offset, 1 << 20)
    with pytest.raises(fb.FlatBufferError, match="past the buffer end"):
        fb.root(bytes(broken), b"TEST", size_prefixed=True).string(2)


FUZZ_SOURCES = [
    "sample.aedat4",
    "test_data_gray16.aedat4",
    "test_data_unknown_then_gray16.aedat4",
    "none",
    "zstd",
]


@functools.lru_cache
def written_file(compression: str) -> bytes:
    """A small file from our writer (with a FileDataTable), so fuzzing also covers zstd and raw payloads."""
    out = io.BytesIO()
    writer = Aedat4Writer(
        out, nd.RecordingInfo("aedat4", 640, 480, extra={"compression": compression, "packet_events": 300})
    )
    writer.write(random_events(1000))
    writer.close()
    return out.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_files_give_events_or_format_error(tmp_path_factory, fixtures, data):
    source = data.draw(st.sampled_from(FUZZ_SOURCES))
    raw = bytearray(
        written_file(source) if source in COMPRESSIONS else (fixtures / "aedat4" / source).read_bytes()
    )
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "truncate", "splice"]))
        pos = data.draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "truncate":
            del raw[pos:]
        else:
            src = data.draw(st.integers(0, len(raw) - 1))
            length = data.draw(st.integers(1, 64))
            raw[pos : pos + length] = raw[src : src + length]
        if not raw:
            raw = bytearray(b"#")
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.aedat4"
    path.write_bytes(bytes(raw))
    block = data.draw(st.sampled_from([333, 8 << 20]))
    try:
        with nd.open_recording(path, format="aedat4") as rec:
            events = np.concatenate(
                [rec.read()] if block > 1000 else list(rec.blocks(block)) or [empty_events(0)]
            )
            width, height = rec.info.width, rec.info.height
    except FormatError:
        return
    assert_format_invariants(events, width, height)


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_event_outside_the_described_sensor_is_refused(tmp_path, compression):
    """An event at x = 639 fits the 640-wide sensor the stream describes; the same bytes with the
    description edited to 639 columns put it outside: refused, naming the packet's offset."""
    events = random_events(500, width=640, height=480)
    events["x"][200], events["y"][200] = 639, 479
    path = tmp_path / "edge.aedat4"
    nd.write(path, events, nd.RecordingInfo("aedat4", 640, 480, extra={"compression": compression}))
    np.testing.assert_array_equal(nd.read(path), events)
    for field, size in (("sizeX", b"640"), ("sizeY", b"480")):
        raw = path.read_bytes()
        key = field.encode() + b'" type="int">' + size + b"<"
        assert raw.count(key) == 1
        narrowed = raw.replace(key, key[: -len(size) - 1] + str(int(size) - 1).encode() + b"<")
        (tmp_path / "narrow.aedat4").write_bytes(narrowed)
        with pytest.raises(FormatError, match="lies outside the (639x480|640x479) sensor") as err:
            nd.read(tmp_path / "narrow.aedat4")
        assert err.value.offset is not None


def test_a_given_width_is_kept_when_the_height_is_not(tmp_path):
    """With height None the writer took both sides from the largest coordinates (640 came back 5)."""
    events = nd.make_events([0, 1], [1, 4], [2, 6], [1, 0])
    nd.write(tmp_path / "w.aedat4", events, nd.RecordingInfo(format="aedat4", width=640, height=None))
    info = nd.read(tmp_path / "w.aedat4", return_info=True)[1]
    assert (info.width, info.height) == (640, 7)
