"""The batched LZ4 frame kernel (`neurodata.formats.kernels.lz4_frames`) against python-lz4's
`lz4.frame.decompress`, which it replaces for AEDAT 4 / DV packets: the same bytes for every frame
option, the same frames refused, and the decoder's results unchanged where it falls back."""

from __future__ import annotations

import lz4.frame
import numpy as np
import pytest

import neurodata as nd
from neurodata.formats import aedat4
from neurodata.formats import aedat4_layout as layout
from neurodata.formats.kernels import aedat4 as kernels
from neurodata.formats.kernels import lz4_frames

pytestmark = pytest.mark.skipif(not lz4_frames.AVAILABLE, reason="python-lz4 does not export the LZ4F functions")


def packets(count: int, events_each: int = 500, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [
        layout.event_packet(
            nd.make_events(
                np.sort(rng.integers(0, 10**6, events_each)), rng.integers(0, 640, events_each),
                rng.integers(0, 480, events_each), rng.integers(0, 2, events_each),
            )
        )  # fmt: skip
        for _ in range(count)
    ]


def run(frames: list[bytes], room: int = 1 << 20):
    block = np.frombuffer(b"".join(frames), np.uint8)
    ends = np.cumsum([len(f) for f in frames]).astype(np.int64)
    starts = ends - np.array([len(f) for f in frames], np.int64)
    scratch = np.empty(room, np.uint8)
    located = np.empty((len(frames), 3), np.int64)
    how, done = lz4_frames.decompress_frames(lz4_frames.context(), block, starts, ends, scratch, located)
    return how, done, scratch, located


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"block_linked": False},
        {"content_checksum": True, "block_checksum": True},
        {"block_size": lz4.frame.BLOCKSIZE_MAX4MB, "store_size": False},
        {"compression_level": lz4.frame.COMPRESSIONLEVEL_MINHC},
    ],
)
def test_every_frame_option_decompresses_to_what_lz4_frame_gives(options):
    raw = packets(5)
    how, done, scratch, located = run([lz4.frame.compress(p, **options) for p in raw])
    assert (how, done) == (lz4_frames.DONE, 5)
    for packet, (status, pos, count) in zip(raw, located):
        want_status, want_pos, want_count = kernels.locate_numba(np.frombuffer(packet, np.uint8), 0, len(packet))
        assert status == want_status == kernels.OK and count == want_count == 500
        assert scratch[pos : pos + 16 * count].tobytes() == packet[want_pos : want_pos + 16 * count]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "checksum"])
def test_invalid_frames_stop_the_batch_where_lz4_frame_raises(damage):
    raw = packets(3)
    frames = [lz4.frame.compress(p, content_checksum=True) for p in raw]
    bad = bytearray(frames[1])
    if damage == "garbage":
        bad[4:20] = b"not an lz4 frame"
    elif damage == "truncated":
        del bad[len(bad) // 2 :]
    else:
        bad[-1] ^= 0xFF  # the content checksum no longer matches
    with pytest.raises(RuntimeError):
        lz4.frame.decompress(bytes(bad))
    how, done, _, _ = run([frames[0], bytes(bad), frames[2]])
    assert (how, done) == (lz4_frames.FAILED, 1)
    assert run(frames)[:2] == (lz4_frames.DONE, 3)  # this thread's context was reset: still usable


def test_a_frame_larger_than_the_room_left_stops_the_batch():
    frames = [lz4.frame.compress(p) for p in packets(3, events_each=4096)]  # 64 KiB each
    how, done, _, _ = run(frames, room=100_000)
    assert (how, done) == (lz4_frames.NO_ROOM, 1)


def test_decoder_falls_back_and_grows_its_room_for_well_compressed_packets(tmp_path, monkeypatch):
    """Identical events compress about 100-fold: a batch overflows the first room; the packet that
    does not fit is decompressed alone by lz4.frame and later batches get more room."""
    n = 4096 * 40
    events = nd.make_events(np.repeat(np.arange(40), 4096), np.full(n, 7), np.full(n, 9), np.ones(n))
    path = tmp_path / "steady.aedat4"
    nd.write(path, events, nd.RecordingInfo("aedat4", 640, 480, extra={"compression": "lz4", "packet_events": 4096}))
    with open(path, "rb") as f:
        header = aedat4.parse_header(f, str(path))
    body = np.frombuffer(path.read_bytes(), np.uint8)[header.data_offset :]
    monkeypatch.setattr(aedat4, "LZ4_ROOM", 200_000)  # less than a batch of these packets decompresses to
    monkeypatch.setattr(aedat4, "_SCRATCH", [])  # (no larger buffer kept from earlier decodes)
    results = []
    for kernel in (True, False):
        monkeypatch.setattr(lz4_frames, "AVAILABLE", kernel)
        decoder = aedat4.Aedat4Decoder(header, str(path))
        got, consumed = decoder.decode(body, header.data_offset, True)
        results.append(got)
        assert consumed == len(body)
        assert decoder.lz4_kernel is kernel
        assert (decoder.lz4_expansion > 4) is kernel  # the kernel ran out of room once, then had more
    np.testing.assert_array_equal(results[0], events)
    np.testing.assert_array_equal(results[1], events)


def test_packets_of_a_batch_unpack_in_one_call_as_one_by_one(tmp_path, monkeypatch):
    # the LZ4 batch's packets (one buffer, 8-aligned) are unpacked by one kernel call; the events, and
    # the error for an event outside the sensor (its packet's offset, its index), are the per-packet ones
    rng = np.random.default_rng(3)
    n = 37 * 300
    events = nd.make_events(np.sort(rng.integers(0, 10**6, n)), rng.integers(0, 639, n), rng.integers(0, 480, n), rng.integers(0, 2, n))
    events["x"][7 * 300 + 123] = 639  # in the 8th packet: outside once the sensor is made 639 wide
    path = tmp_path / "many.aedat4"
    nd.write(path, events, nd.RecordingInfo("aedat4", 640, 480, extra={"compression": "lz4", "packet_events": 300}))
    narrow = tmp_path / "narrow.aedat4"
    key = b'sizeX" type="int">640<'
    narrow.write_bytes(path.read_bytes().replace(key, b'sizeX" type="int">639<'))
    calls = []
    batched = kernels.unpack_packets_numba
    monkeypatch.setattr(kernels, "unpack_packets_numba", lambda *a: calls.append(len(a[2])) or batched(*a))
    results, errors = [], []
    for kernel in (True, False):
        monkeypatch.setattr(lz4_frames, "AVAILABLE", kernel)
        results.append(nd.read(path))
        with pytest.raises(nd.FormatError, match=r"event 123 of the packet at x=639, y=\d+ lies outside") as err:
            nd.read(narrow)
        errors.append((str(err.value), err.value.offset))
        assert bool(calls) is kernel and (not kernel or max(calls) > 1)
        calls.clear()
    np.testing.assert_array_equal(results[0], events)
    np.testing.assert_array_equal(results[1], events)
    assert errors[0] == errors[1]
