"""Event Stream 2.x (.es): the spec's example files, faery in both directions, the reference decoder,
streaming, errors that name the offset, and fuzzing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurodata as nd
from neurodata.errors import FormatError, NeurodataError
from neurodata.events import RecordingInfo, empty_events, make_events
from neurodata.formats import FORMATS
from neurodata.formats.kernels import es as kernels
from neurodata.reader import Recording
from tests.faery_files import write_faery_atis
from tests.fuzzing import MUTATIONS, assert_format_invariants, mutate

DVS = "es/dvs_sample.es"
COLOR = "es/color_sample.es"
GENERIC = "es/generic.es"
SAMPLES = {DVS: (kernels.DVS, 8966), COLOR: (kernels.COLOR, 5619), GENERIC: (kernels.GENERIC, 70)}


def faery_module():
    return pytest.importorskip("faery", reason="`faery` (Rust event I/O, 21 MB) is only in the benchmark env")


def random_events(n: int, width: int = 640, height: int = 480, seed: int = 0) -> np.ndarray:
    """Time-ordered events with gaps from 0 to 1000 us (many over the 127 us of one DVS time byte)."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.choice([0, 1, 126, 127, 128, 300, 1000], n)) + 5
    return make_events(t, rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n))


def decode_in_blocks(data: bytes, block: int) -> np.ndarray:
    spec = FORMATS["es"]
    recording = Recording(io.BytesIO(data), "blocks.es", spec, spec.parse_header(io.BytesIO(data), "blocks.es"))
    return np.concatenate([empty_events(0), *recording.blocks(block_bytes=block)])


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_decode_like_the_reference(fixtures, name):
    kind, count = SAMPLES[name]
    data = (fixtures / name).read_bytes()
    recording = nd.open_recording(fixtures / name)
    assert recording.info.extra == {"version": "2.0.0", "stream_type": kernels.TYPE_NAMES[kind]}
    events = recording.read()
    offset = 16 if kind == kernels.GENERIC else 20
    t, x, y, p, _, used = kernels.decode_reference(data[offset:], kind, 0, recording.info.height or 0)
    assert len(events) == count and used == len(data) - offset
    for field, column in zip("txyp", (t, x, y, p)):
        np.testing.assert_array_equal(events[field], column)
    assert np.all(np.diff(events["t"]) >= 0)


@pytest.mark.parametrize("name", [DVS, COLOR])
def test_samples_equal_faery(fixtures, name):
    """faery's reader (which, like ours, turns the file's bottom-up y into top-down rows) agrees."""
    faery = faery_module()
    ours = nd.read(fixtures / name)
    if name == DVS:
        theirs = np.concatenate(list(faery.events_stream_from_file(fixtures / name)))
        np.testing.assert_array_equal(theirs["on"].astype(np.uint8), ours["p"])
    else:  # faery's stream reader refuses color: its low-level decoder gives the file's y
        with faery.es.Decoder(fixtures / name, 0) as decoder:
            theirs = np.concatenate(list(decoder))
        theirs["y"] = 240 - 1 - theirs["y"]
    np.testing.assert_array_equal(theirs["t"].astype(np.int64), ours["t"])
    np.testing.assert_array_equal(theirs["x"], ours["x"])
    np.testing.assert_array_equal(theirs["y"], ours["y"])


def test_y_axis_is_flipped_from_the_file(fixtures):
    data = (fixtures / DVS).read_bytes()
    first = data[20:]
    while first[0] == 0xFF:
        first = first[1:]
    y_file = first[3] | first[4] << 8
    assert nd.read(fixtures / DVS)["y"][0] == 240 - 1 - y_file


def test_generic_times_equal_faery(fixtures):
    faery = faery_module()
    with faery.es.Decoder(fixtures / GENERIC, 0) as decoder:
        theirs = np.concatenate(list(decoder))
    ours = nd.read(fixtures / GENERIC)
    np.testing.assert_array_equal(theirs["t"].astype(np.int64), ours["t"])
    assert not ours["x"].any() and not ours["y"].any() and not ours["p"].any()


def test_round_trip_and_faery_reads_our_files(tmp_path):
    events = random_events(5000)
    info = RecordingInfo(format="es", width=640, height=480)
    nd.write(tmp_path / "ours.es", events, info=info)
    np.testing.assert_array_equal(nd.read(tmp_path / "ours.es"), events)
    faery = pytest.importorskip("faery", reason="`faery` is only in the benchmark env")
    theirs = np.concatenate(list(faery.events_stream_from_file(tmp_path / "ours.es")))
    np.testing.assert_array_equal(theirs["t"].astype(np.int64), events["t"])
    np.testing.assert_array_equal(theirs["y"], events["y"])
    np.testing.assert_array_equal(theirs["on"], events["p"] == 1)


@pytest.mark.parametrize("event_type", ["dvs", "atis"])
def test_we_read_files_faery_writes(tmp_path, event_type):
    faery = faery_module()
    events = random_events(3000, 320, 240, seed=1)
    theirs = np.zeros(len(events), dtype=faery.EVENTS_DTYPE)
    for field in "txy":
        theirs[field] = events[field]
    theirs["on"] = events["p"] == 1
    path = tmp_path / "faery.es"
    if event_type == "dvs":
        faery.events_stream_from_array(theirs, (320, 240)).to_file(path, zero_t0=False)
    else:  # every other event an exposure measurement, which readers skip
        events = write_faery_atis(path, events, (320, 240))
    np.testing.assert_array_equal(nd.read(path), events)


def test_streaming_writer_chunks_and_block_sizes(tmp_path):
    events = random_events(4000)
    info = RecordingInfo(format="es", width=640, height=480)
    with nd.open_writer(tmp_path / "chunks.es", info=info) as writer:
        for chunk in np.array_split(events, 7):
            writer.write(chunk)
    data = (tmp_path / "chunks.es").read_bytes()
    nd.write(tmp_path / "whole.es", events, info=info)
    assert data == (tmp_path / "whole.es").read_bytes()
    for block in (1, 3, 5, 1000):
        np.testing.assert_array_equal(decode_in_blocks(data, block), events)


def test_empty_recording_round_trips(tmp_path):
    nd.write(tmp_path / "empty.es", make_events([], [], [], []), info=RecordingInfo(format="es", width=4, height=3))
    recording = nd.open_recording(tmp_path / "empty.es")
    assert len(recording.read()) == 0 and (recording.info.width, recording.info.height) == (4, 3)


def test_writer_refusals(tmp_path):
    with pytest.raises(NeurodataError, match="sensor size"):
        nd.write(tmp_path / "a.es", random_events(3))
    info = RecordingInfo(format="es", width=10, height=10)
    with pytest.raises(NeurodataError, match="outside"):
        nd.write(tmp_path / "b.es", make_events([0], [10], [0], [1]), info=info)
    with pytest.raises(NeurodataError, match="shift_time=True"):
        nd.write(tmp_path / "d.es", make_events([1_700_000_000_000_000], [0], [0], [1]), info=info)
    nd.write(tmp_path / "e.es", make_events([1_700_000_000_000_000], [0], [0], [1]), info=info, shift_time=True)
    assert nd.read(tmp_path / "e.es")["t"].tolist() == [0]
    with pytest.raises(NeurodataError, match="time-ordered"):
        nd.write(tmp_path / "c.es", make_events([5, 4], [0, 0], [0, 0], [1, 1]), info=info)


def header(kind: int, version: int = 2, size: bytes = bytes((4, 0, 3, 0))) -> bytes:
    return b"Event Stream" + bytes((version, 0, 0, kind)) + size


@pytest.mark.parametrize(
    "data, offset, message",
    [
        (header(1, version=1), 12, "version 1.0.0"),
        (header(3), 15, "display"),
        (header(9), 15, "type 9"),
        (header(1)[:18], 18, "width and height"),
        (header(1) + bytes((0x02, 4, 0, 0, 0)), 20, "x = 4 >= the width 4"),
        (header(1) + bytes((0xFF, 0x02, 0, 0, 3, 0)), 21, "y = 3 >= the height 3"),
        (header(1) + bytes((0x02, 1, 0, 0, 0, 0x04, 1)), 25, "ends inside a DVS event"),
        (header(0, size=b"") + bytes((5,)) + bytes([0xFF] * 9) + b"\x00", 16, "size bytes"),
        (header(0, size=b"") + bytes((5, 0x08, 1)), 16, "ends inside a generic event"),
    ],
)
def test_errors_name_the_offset(tmp_path, data, offset, message):
    path = tmp_path / "bad.es"
    path.write_bytes(data)
    with pytest.raises(FormatError, match=message) as err:
        nd.read(path)
    assert err.value.offset == offset


def test_detection_by_magic(tmp_path):
    path = tmp_path / "recording.bin"
    nd.write(path, random_events(10), info=RecordingInfo(format="es", width=640, height=480), format="es")
    assert nd.open_recording(path).info.format == "es"


_SAMPLES: dict[str, bytes] = {}


@pytest.mark.parametrize("name", list(SAMPLES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=MUTATIONS, block=st.sampled_from([1, 5, 64, 1 << 20]))
def test_fuzz_mutated_samples(fixtures, name, steps, block):
    if name not in _SAMPLES:
        _SAMPLES[name] = (fixtures / name).read_bytes()[:3000]
    data = mutate(_SAMPLES[name], steps)
    spec = FORMATS["es"]
    try:
        head = spec.parse_header(io.BytesIO(data), "fuzz.es")
        whole = Recording(io.BytesIO(data), "fuzz.es", spec, head).read()
        blocks = list(Recording(io.BytesIO(data), "fuzz.es", spec, spec.parse_header(io.BytesIO(data), "b")).blocks(block))
    except FormatError as err:
        assert err.source == "fuzz.es" and err.offset is not None
        return
    np.testing.assert_array_equal(np.concatenate([whole[:0], *blocks]), whole)
    per_event = 2 if head.fields["kind"] == kernels.GENERIC else 5
    assert_format_invariants(whole, head.info.width, head.info.height, (len(data) - head.data_offset) // per_event)
