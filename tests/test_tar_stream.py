"""The tar stream walker against Python's tarfile on archives in every header format it writes (ustar,
GNU long names, pax), and its refusals: truncated data, damaged headers, sparse and pax damage."""

from __future__ import annotations

import io
import os
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodata.datasets.tar_stream import TarFormatError, walk

LONG = "DvsGesture/" + "a_very_long_folder_name_" * 6 + "/user01_fluorescent_led_with_a_long_name.aedat"


def archive(fmt: int, members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        folder = tarfile.TarInfo("DvsGesture")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


MEMBERS = [
    ("DvsGesture/trials_to_train.txt", b"user01_led.aedat\n"),
    (LONG, os.urandom(70_001)),  # over 100 characters: a GNU long name or a pax path
    ("DvsGesture/empty.csv", b""),
    ("DvsGesture/user01_led.aedat", os.urandom(512 * 3)),  # a whole number of blocks: no padding
    ("DvsGesture/\u00e9v\u00e9nements.csv", b"class,startTime_usec,endTime_usec\n"),  # pax: a non-ASCII name
]


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["gnu", "pax"])
@pytest.mark.parametrize("read_every", [True, False], ids=["read", "skipped"])
def test_walk_matches_tarfile(fmt, read_every):
    raw = archive(fmt, MEMBERS)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        expected = [(m.name, m.type, m.offset_data, tar.extractfile(m).read() if m.isfile() else None) for m in tar]
    got = []
    for k, member in enumerate(walk(io.BytesIO(raw))):
        data = member.read() if member.info.isfile() and (read_every or k % 2) else None
        got.append((member.info.name, member.info.type, member.offset, data))
    for (name, kind, offset, data), (want_name, want_kind, want_offset, want_data) in zip(got, expected, strict=True):
        assert (name, kind, offset) == (want_name, want_kind, want_offset)
        assert data is None or data == want_data
    assert [g[0] for g in got] == ["DvsGesture"] + [name for name, _ in MEMBERS]


def test_truncated_inside_data_or_header_is_refused():
    raw = archive(tarfile.GNU_FORMAT, MEMBERS)
    for cut in (len(raw) // 2, 512 + 100, 700):
        with pytest.raises(TarFormatError, match="archive ends inside"):
            for member in walk(io.BytesIO(raw[:cut])):
                member.read()


def test_damaged_header_checksum_is_refused():
    raw = bytearray(archive(tarfile.GNU_FORMAT, MEMBERS))
    raw[512 + 10] ^= 0xFF  # the second header's name
    with pytest.raises(tarfile.HeaderError):
        list(walk(io.BytesIO(bytes(raw))))


def test_sparse_member_is_refused():
    info = tarfile.TarInfo("DvsGesture/sparse.aedat")
    info.type = tarfile.GNUTYPE_SPARSE
    block = info.tobuf(tarfile.GNU_FORMAT)
    with pytest.raises(TarFormatError, match="sparse"):
        list(walk(io.BytesIO(block + bytes(1024))))


def test_damaged_pax_record_is_refused():
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    payload = b"99 path=x\n"  # announces 99 bytes, holds 10
    info.size = len(payload)
    raw = info.tobuf(tarfile.USTAR_FORMAT) + payload + bytes(-len(payload) % 512) + bytes(1024)
    with pytest.raises(TarFormatError, match="pax"):
        list(walk(io.BytesIO(raw)))


@settings(max_examples=150, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=8), cut=st.integers(0, 10**6))
def test_fuzzed_streams_walk_or_raise_a_tar_error(flips, cut):
    raw = bytearray(archive(tarfile.PAX_FORMAT, MEMBERS))
    for at, xor in flips:
        raw[at % len(raw)] ^= xor
    try:
        for member in walk(io.BytesIO(bytes(raw[: len(raw) - cut % 2048]))):
            assert member.info.size >= 0
            member.read()
    except tarfile.TarError:
        pass  # HeaderError or TarFormatError: the caller names the archive
