"""ES-ImageNet .npz: conventions, detection, safety (no unpickling), bad archives and fuzz."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import neurodata as nd
from neurodata.errors import FormatError
from neurodata.formats.esimagenet import esimagenet_events, sniff
from tests.fuzzing import MUTATIONS, assert_format_invariants, mutate

POS = np.array([[20, 30, 2], [239, 17, 1], [100, 200, 8], [17, 239, 2]], dtype=np.uint8)
NEG = np.array([[21, 31, 1], [50, 60, 2]], dtype=np.uint8)


def sample(tmp_path, name="s.npz", pos=POS, neg=NEG):
    path = tmp_path / name
    with open(path, "wb") as fileobj:  # a file object: savez would append .npz to a bare name
        np.savez_compressed(fileobj, pos=pos, neg=neg)
    return path


def test_raw_convention(tmp_path):
    events, info = nd.read(sample(tmp_path), return_info=True)
    assert info.format == "esimagenet" and info.sensor_size == (256, 256, 2)
    # x = col, y = row, p = 1 for pos, t = stored bin; stable sort by t keeps pos before neg in a bin
    assert events.tolist() == [
        (1, 17, 239, 1),
        (1, 31, 21, 0),
        (2, 30, 20, 1),
        (2, 239, 17, 1),
        (2, 60, 50, 0),
        (8, 200, 100, 1),
    ]


def test_centred_convention_matches_authors_frame_indexing():
    """The authors' loader sets frame[t-1, pol, row+dx, col+dy] and keeps [16:240, 16:240]."""
    a, b = 200, 230
    events = esimagenet_events(POS, NEG, "centred", a=a, b=b)
    dx, dy = (254 - a) // 2, (254 - b) // 2
    frame = np.zeros((8, 2, 300, 300), np.uint8)  # 256 in their code, which fails on rows pushed past it
    for rows, channel in ((POS, 0), (NEG, 1)):
        r = rows.astype(int)
        frame[r[:, 2] - 1, channel, r[:, 0] + dx, r[:, 1] + dy] = 1
    authors = frame[:, :, 16:240, 16:240]
    ours = np.zeros_like(authors)
    ours[events["t"] - 1, 1 - events["p"], events["y"], events["x"]] = 1
    np.testing.assert_array_equal(ours, authors)
    # rows shift by 27 - 16, columns by 12 - 16: (239, 17) lands on row 250, (17, 239) on column 235, both cropped
    assert len(events) == authors.sum() == 4
    with pytest.raises(ValueError, match="needs the sample's a, b"):
        esimagenet_events(POS, NEG, "centred")
    with pytest.raises(ValueError, match="'raw' or 'centred'"):
        esimagenet_events(POS, NEG, "centered")


def test_detected_by_zip_magic_and_member_name(tmp_path):
    path = sample(tmp_path, "no_extension")
    assert sniff(path.read_bytes()[:4096])
    assert len(nd.read(path)) == 6
    other = io.BytesIO()
    np.savez_compressed(other, frames=np.zeros(3))
    assert not sniff(other.getvalue())


def test_object_arrays_are_refused_not_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez_compressed(path, pos=np.array([[1, 2, 3]], dtype=object), neg=NEG)
    with pytest.raises(FormatError, match=r"evil\.npz: at byte 0: member pos\.npy holds Python objects"):
        nd.read(path)


def test_missing_member_wrong_shape_and_values(tmp_path):
    path = tmp_path / "nopos.npz"
    np.savez_compressed(path, neg=NEG)
    with pytest.raises(FormatError, match=r"nopos\.npz: at byte 0: no 'pos\.npy' member"):
        nd.read(path, format="esimagenet")
    path = sample(tmp_path, "shape.npz", neg=np.zeros((4, 2), np.uint8))
    with pytest.raises(
        FormatError, match=r"shape\.npz: at byte \d+: member neg\.npy must be an \(N, 3\) integer array"
    ):
        nd.read(path)
    path = sample(tmp_path, "bins.npz", neg=np.array([[1, 1, 9]], np.uint8))
    with pytest.raises(FormatError, match=r"bins\.npz: .*neg\.npy has values outside .* t 1\.\.8"):
        nd.read(path)


def test_member_announcing_more_than_it_holds(tmp_path):
    """A doctored npy header must not make the reader allocate or read past the member."""
    buf = io.BytesIO()
    np.save(buf, POS)
    doctored = buf.getvalue().replace(b"(4, 3)", b"(9999999, 3)".ljust(6)[:12])
    path = tmp_path / "big.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pos.npy", doctored)
        archive.writestr("neg.npy", buf.getvalue())
    with pytest.raises(FormatError, match=r"big\.npz: at byte 0: member pos\.npy (announces|cannot be read)"):
        nd.read(path)


def test_truncated_archive(tmp_path):
    data = sample(tmp_path).read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"cut\.npz: at byte 0: not a readable zip"):
        nd.read(tmp_path / "cut.npz")


def test_empty_sample_and_block_sizes(tmp_path):
    empty = np.zeros((0, 3), np.uint8)
    assert len(nd.read(sample(tmp_path, "empty.npz", pos=empty, neg=empty))) == 0
    path = sample(tmp_path)
    for block in (1, 7, 1000):
        with nd.open_recording(path) as rec:
            np.testing.assert_array_equal(np.concatenate(list(rec.blocks(block))), nd.read(path))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=MUTATIONS)
def test_fuzzed_archives_decode_or_raise_format_error(tmp_path, ops):
    original = sample(tmp_path, "orig.npz").read_bytes()
    path = tmp_path / "fuzz.npz"
    path.write_bytes(mutate(original, ops))
    try:
        with nd.open_recording(path, format="esimagenet") as rec:
            events, width, height = rec.read(), rec.info.width, rec.info.height
    except FormatError:
        return
    assert_format_invariants(events, width, height)
