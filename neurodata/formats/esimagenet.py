"""ES-ImageNet samples: one ``.npz`` (zip) per sample with ``pos`` and ``neg`` arrays, read only.

Each array holds rows ``(row, col, t)`` (uint8) with ``t`` the bin index 1..8. Default ("raw")
convention, as a common framework reads it: x = col, y = row, p = 1 for ``pos`` and 0 for ``neg``,
t = the stored bin index, sensor 256x256, events stably sorted by t (``pos`` before ``neg`` within
a bin). :func:`esimagenet_events` also offers the authors' "centred" convention, which needs the
``a, b`` (resized image height, width) of the sample's label-file line.

Arrays are read member by member from the zip with the npy header checked first: object arrays
are refused (nothing is ever unpickled) and no member may announce more data than it holds.
"""

from __future__ import annotations

import io
import lzma
import struct
import zipfile
import zlib
from typing import BinaryIO

import numpy as np

from ..errors import FormatError
from ..events import RecordingInfo, make_events
from .base import FormatSpec, Header, WholeFileDecoder

ZIP_MAGIC = b"PK\x03\x04"
MEMBERS = ("pos", "neg")
SENSOR = 256
CROP = 224
CROP_START = 16  # the authors' loader keeps frame[16:240, 16:240] after centring
N_BINS = 8
# what zipfile and its decompressors raise on damaged archives (RuntimeError: "encrypted, password required")
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    EOFError,
    ValueError,
    OSError,
    NotImplementedError,
    RuntimeError,
)


def sniff(head: bytes) -> bool:
    """A zip whose first member is ``pos.npy`` or ``neg.npy`` (what ``np.savez_compressed`` writes).

    Args:
        head: The file's first bytes.
    """
    if not head.startswith(ZIP_MAGIC) or len(head) < 30:
        return False
    name_length = int.from_bytes(head[26:28], "little")
    return head[30 : 30 + name_length] in (b"pos.npy", b"neg.npy")


def parse_header(fileobj: BinaryIO, source: str) -> Header:
    """Check the zip magic; the sensor is always 256x256 and the events are read in one piece.

    Args:
        fileobj: The file, opened in binary mode and seekable.
        source: The file's name for error messages.

    Raises:
        FormatError: The file is not a zip.
    """
    fileobj.seek(0)
    if fileobj.read(4) != ZIP_MAGIC:
        raise FormatError(source, 0, "expected a zip (.npz) file starting with 'PK\\x03\\x04'")
    return Header(RecordingInfo(format="esimagenet", width=SENSOR, height=SENSOR), data_offset=0)


def read_member(archive: zipfile.ZipFile, name: str, source: str) -> np.ndarray:
    """Read ``<name>.npy`` as an (N, 3) integer array, refusing object arrays and oversized headers.

    Args:
        archive: The open ``.npz``.
        name: ``pos`` or ``neg``.
        source: The file's name for error messages.
    """
    try:
        member = archive.getinfo(f"{name}.npy")
    except KeyError:
        raise FormatError(
            source, 0, f"no '{name}.npy' member; the archive holds {archive.namelist()}"
        ) from None
    where = member.header_offset
    try:
        with archive.open(member) as stream:
            version = np.lib.format.read_magic(stream)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran_order, dtype = read_header(stream)
            if dtype.hasobject:
                raise FormatError(
                    source, where, f"member {name}.npy holds Python objects: refused (never unpickled)"
                )
            if dtype.kind not in "ui" or len(shape) != 2 or shape[1] != 3:
                raise FormatError(
                    source, where, f"member {name}.npy must be an (N, 3) integer array, found {dtype} {shape}"
                )
            n_bytes = shape[0] * 3 * dtype.itemsize
            if n_bytes > member.file_size:
                raise FormatError(
                    source, where, f"member {name}.npy announces {n_bytes} bytes but holds {member.file_size}"
                )
            data = stream.read(n_bytes)
    except FormatError:
        raise
    except ZIP_ERRORS as err:
        raise FormatError(source, where, f"member {name}.npy cannot be read: {err}") from None
    if len(data) != n_bytes:
        raise FormatError(source, where, f"member {name}.npy is truncated: {len(data)} of {n_bytes} bytes")
    rows = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran_order else "C")
    if rows.size and (
        rows.min() < 0
        or rows[:, :2].max() >= SENSOR
        or not np.all((rows[:, 2] >= 1) & (rows[:, 2] <= N_BINS))
    ):
        raise FormatError(
            source, where, f"member {name}.npy has values outside row/col 0..255, t 1..{N_BINS}"
        )
    return rows


def load_pos_neg(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``pos`` and ``neg`` arrays of an ES-ImageNet ``.npz`` held in memory.

    Args:
        data: The whole file.
        source: The file's name for error messages.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except ZIP_ERRORS as err:
        raise FormatError(source, 0, f"not a readable zip (.npz) archive: {err}") from None
    with archive:
        pos, neg = (read_member(archive, name, source) for name in MEMBERS)
    return pos, neg


def esimagenet_events(
    pos: np.ndarray,
    neg: np.ndarray,
    convention: str = "raw",
    a: int | None = None,
    b: int | None = None,
) -> np.ndarray:
    """Events from ES-ImageNet ``pos``/``neg`` rows ``(row, col, t)``, sorted by t (stable).

    ``"raw"``: x = col, y = row on a 256x256 sensor. ``"centred"``: the authors' loader, which shifts
    rows by ``(254 - a) // 2`` and columns by ``(254 - b) // 2`` and keeps the 224x224 window
    starting at 16; events outside it are dropped. In both, p = 1 for ``pos``, 0 for ``neg``, and
    t is the stored bin index 1..8 (the authors' frame index is t - 1).

    Args:
        pos: ON rows ``(row, col, t)``.
        neg: OFF rows ``(row, col, t)``.
        convention: ``'raw'`` or ``'centred'``.
        a: The resized image's height (``'centred'`` only).
        b: The resized image's width (``'centred'`` only).
    """
    rows = np.concatenate(
        [np.asarray(pos, np.int64).reshape(-1, 3), np.asarray(neg, np.int64).reshape(-1, 3)]
    )
    polarity = np.concatenate([np.ones(len(pos), np.uint8), np.zeros(len(neg), np.uint8)])
    y, x, t = rows[:, 0], rows[:, 1], rows[:, 2]
    if convention == "centred":
        if a is None or b is None:
            raise ValueError(
                "the centred convention needs the sample's a, b (image height, width) from its label line"
            )
        y = y + (254 - a) // 2 - CROP_START
        x = x + (254 - b) // 2 - CROP_START
        inside = (x >= 0) & (x < CROP) & (y >= 0) & (y < CROP)
        x, y, t, polarity = x[inside], y[inside], t[inside], polarity[inside]
    elif convention != "raw":
        raise ValueError(f"convention must be 'raw' or 'centred', got {convention!r}")
    order = np.argsort(t, kind="stable")
    return make_events(t[order], x[order], y[order], polarity[order])


def load_sample(data: bytes, source: str) -> np.ndarray:
    """The events of a whole ES-ImageNet ``.npz`` held in memory (the "raw" convention).

    Args:
        data: The whole file.
        source: The file's name for error messages.
    """
    return esimagenet_events(*load_pos_neg(data, source))


SPEC = FormatSpec(
    name="esimagenet",
    description="ES-ImageNet sample (.npz with pos/neg arrays of (row, col, t))",
    extensions=(".npz",),
    magic=ZIP_MAGIC,
    sniff=sniff,
    parse_header=parse_header,
    make_decoder=lambda header, source: WholeFileDecoder(load_sample, source),
)
