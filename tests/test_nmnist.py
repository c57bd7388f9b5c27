"""N-MNIST .bin: fixture decode, reference agreement, chunking, overflow markers and round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurodata as nd
from neurodata.errors import FormatError
from neurodata.events import empty_events
from neurodata.formats.kernels import nmnist as kernels


def test_fixture_matches_manifest(fixtures):
    events, info = nd.read(fixtures / "nmnist" / "sample_nmnist.bin", return_info=True)
    assert info.format == "nmnist"
    assert len(events) == 4325
    assert events[:3].tolist() == [(654, 7, 15, 1), (2999, 19, 18, 0), (3017, 21, 17, 0)]
    assert events["t"].min() == 654 and events["t"].max() == 311175
    assert events["x"].max() < 34 and events["y"].max() < 34


def test_numba_matches_reference(fixtures):
    raw = np.fromfile(fixtures / "nmnist" / "sample_nmnist.bin", dtype=np.uint8)
    t, x, y, p, _ = kernels.decode_reference(raw, 0)
    events = nd.read(fixtures / "nmnist" / "sample_nmnist.bin")
    np.testing.assert_array_equal(events["t"], t)
    np.testing.assert_array_equal(events["x"], x)
    np.testing.assert_array_equal(events["y"], y)
    np.testing.assert_array_equal(events["p"], p)


def _decode_with_kernel(raw: np.ndarray, t_offset: int) -> tuple[np.ndarray, int]:
    out = empty_events(len(raw) // 5)
    n, t_offset = kernels.decode_numba(raw[: len(raw) // 5 * 5], t_offset, out)
    return out[:n], t_offset


@pytest.mark.parametrize("t_offset", [0, 3 << 13])
def test_kernel_matches_reference_around_the_vector_groups(t_offset):
    """The kernel decodes three records at a time by vector shuffles while the time offset is 0:
    every record count around the groups' edges, with an overflow marker at any record (or none),
    must give the reference's events and offset."""
    rng = np.random.default_rng(7)
    for n_records in range(0, 15):
        for marker in [None, *range(n_records)]:
            raw = rng.integers(0, 256, 5 * n_records, dtype=np.uint8)
            raw[1::5][raw[1::5] == kernels.OVERFLOW_Y] = 0
            if marker is not None:
                raw[5 * marker + 1] = kernels.OVERFLOW_Y
            events, offset = _decode_with_kernel(raw, t_offset)
            t, x, y, p, offset_ref = kernels.decode_reference(raw, t_offset)
            assert offset == offset_ref, (n_records, marker)
            for name, column in zip("txyp", (t, x, y, p), strict=True):
                np.testing.assert_array_equal(events[name], column, err_msg=f"{name} {n_records} {marker}")


def test_kernel_matches_reference_on_many_markers():
    rng = np.random.default_rng(8)
    raw = rng.integers(0, 256, 5 * 5000, dtype=np.uint8)
    raw[1::5][rng.random(5000) < 0.01] = kernels.OVERFLOW_Y
    events, offset = _decode_with_kernel(raw, 0)
    t, x, y, p, offset_ref = kernels.decode_reference(raw, 0)
    assert offset == offset_ref > 0
    np.testing.assert_array_equal(events["t"], t)
    np.testing.assert_array_equal(events[["x", "y", "p"]].tolist(), np.stack([x, y, p], axis=1).tolist())


@pytest.mark.parametrize("block", [1, 4, 5, 7, 4096])
def test_block_size_does_not_change_events(fixtures, block):
    path = fixtures / "nmnist" / "sample_nmnist.bin"
    whole = nd.read(path)
    with nd.open_recording(path) as rec:
        parts = np.concatenate(list(rec.blocks(block_bytes=block)))
    np.testing.assert_array_equal(parts, whole)


def test_overflow_markers_round_trip(tmp_path):
    t = np.array([0, 10, (1 << 23) - 1, (1 << 23) + 5, 3 << 23], dtype=np.int64)
    events = nd.make_events(t, [1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [1, 0, 1, 0, 1])
    path = tmp_path / "long.bin"
    nd.write(path, events)
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 5)
    assert (raw[:, 1] == 240).sum() > 0  # the writer had to insert overflow markers
    np.testing.assert_array_equal(nd.read(path), events)
    # the readable reference agrees with the Numba decoder on the marker-laden file
    t_ref, *_ = kernels.decode_reference(raw.ravel(), 0)
    np.testing.assert_array_equal(t_ref, t)


def test_truncated_file_names_offset(tmp_path, fixtures):
    data = (fixtures / "nmnist" / "sample_nmnist.bin").read_bytes()
    bad = tmp_path / "cut.bin"
    bad.write_bytes(data[:-2])
    with pytest.raises(FormatError, match=r"cut\.bin: at byte 21620: truncated record"):
        nd.read(bad)


def test_one_call_read_matches_the_decoder_path(tmp_path, fixtures):
    """nd.read decodes a .bin in one call (no header, no decoder) unless asked for the info: the events
    and the errors are those of the streaming decoder."""
    path = fixtures / "nmnist" / "sample_nmnist.bin"
    events, info = nd.read(path, return_info=True)
    np.testing.assert_array_equal(nd.read(path), events)
    with nd.open_recording(path) as rec:
        np.testing.assert_array_equal(np.concatenate(list(rec.blocks(block_bytes=4096))), events)
    assert info.format == "nmnist" and info.source == str(path)
    bad = tmp_path / "cut.bin"
    bad.write_bytes(path.read_bytes()[:-3])
    def streamed():
        with nd.open_recording(bad) as rec:
            return rec.read()

    messages = []
    for call in (lambda: nd.read(bad), lambda: nd.read(bad, return_info=True), streamed):
        with pytest.raises(FormatError) as caught:
            call()
        messages.append(str(caught.value))
    assert len(set(messages)) == 1 and "at byte 21620: truncated record: 2 trailing bytes" in messages[0]


def test_writer_rejects_unsorted(tmp_path):
    events = nd.make_events([5, 1], [0, 0], [0, 0], [0, 1])
    with pytest.raises(nd.NeurodataError, match="time-ordered"):
        nd.write(tmp_path / "x.bin", events)
    assert not (tmp_path / "x.bin").exists()
    assert list(tmp_path.iterdir()) == []  # the atomic writer left no temporary file behind


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_decode_or_fail_cleanly(fixtures, tmp_path, data):
    raw = bytearray((fixtures / "nmnist" / "sample_nmnist.bin").read_bytes()[:2000])
    for _ in range(data.draw(st.integers(0, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    path = tmp_path / "mutated.bin"
    path.write_bytes(bytes(raw[:cut]))
    try:
        events = nd.read(path)
    except FormatError as err:
        assert "mutated.bin" in str(err) and (cut % 5 != 0 or cut == 0)  # 0 bytes: "empty file"
    else:
        assert cut % 5 == 0 and 0 < cut and len(events) <= cut // 5
