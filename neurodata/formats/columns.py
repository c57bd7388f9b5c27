"""Column files, read back: ``.npz`` and HDF5 holding 1-D arrays ``t, x, y, p``.

These are what ``neurodata convert``/``simulate`` export (:mod:`neurodata.export`), and also what
other tools write per sample: SpikingJelly's ``events_np`` folders are ``np.savez(_compressed)``
files with the same four keys. Readers are strict: nothing is unpickled (``allow_pickle=False``),
the four columns must be 1-D integer (or boolean) arrays of one length, x/y must fit uint16, and a
polarity is ON when positive (so 0/1, -1/+1 and booleans all read). Our own files also restore the
:class:`~neurodata.events.RecordingInfo` (sensor size, source) stored beside the columns.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import BinaryIO

import numpy as np

from ..errors import FormatError
from ..events import RecordingInfo, make_events
from ..export import COLUMNS, Hdf5Writer, NpzWriter
from .base import FormatSpec, Header, WholeFileDecoder

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
INFO_FIELDS = ("width", "height", "source", "time_origin")


def sniff_npz(head: bytes) -> bool:
    """A zip whose first member is ``t.npy`` (our exports and SpikingJelly's ``events_np`` files).

    Args:
        head: The file's first bytes.
    """
    if not head.startswith(ZIP_MAGIC) or len(head) < 30:
        return False
    name_length = int.from_bytes(head[26:28], "little")
    return head[30 : 30 + name_length] == b"t.npy"


def _info(format: str, stored: dict) -> RecordingInfo:
    values = {k: stored.get(k) for k in INFO_FIELDS}
    return RecordingInfo(format=format, extra=stored.get("extra") or {}, **values)


def _events(columns: dict[str, np.ndarray], source: str) -> np.ndarray:
    """Validated columns -> an event array."""
    missing = [name for name in COLUMNS if name not in columns]
    if missing:
        raise FormatError(source, 0, f"no column(s) {missing}; the file holds {sorted(columns)}")
    arrays = {name: np.asarray(columns[name]) for name in COLUMNS}
    n = len(arrays["t"])
    for name, array in arrays.items():
        if array.ndim != 1 or len(array) != n:
            raise FormatError(source, 0, f"column {name!r} has shape {array.shape}, expected ({n},) like 't'")
        if array.dtype.kind not in "uib":
            raise FormatError(source, 0, f"column {name!r} holds {array.dtype}, expected integers")
    for name in ("x", "y"):
        column = arrays[name]
        if n and (column.min() < 0 or column.max() > np.iinfo(np.uint16).max):
            raise FormatError(source, 0, f"column {name!r} has values outside 0..65535")
    return make_events(arrays["t"], arrays["x"], arrays["y"], arrays["p"] > 0)


def parse_npz_header(fileobj: BinaryIO, source: str) -> Header:
    """The recording info stored in an ``.npz``'s ``info.npy`` member (defaults when absent).

    Args:
        fileobj: The archive, opened in binary mode and seekable.
        source: The file's name for error messages.

    Raises:
        FormatError: The file is not a readable zip archive.
    """
    stored = {}
    try:
        with zipfile.ZipFile(fileobj) as archive:
            if "info.npy" in archive.namelist():
                with archive.open("info.npy") as member:
                    stored = json.loads(str(np.load(member, allow_pickle=False)))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError) as err:
        raise FormatError(source, 0, f"not a readable .npz archive: {err}") from None
    return Header(_info("npz", stored if isinstance(stored, dict) else {}), data_offset=0)


# what h5py raises on damaged files (a corrupted superblock size gives OverflowError, found by fuzzing)
DAMAGED_HDF5 = (OSError, RuntimeError, KeyError, TypeError, ValueError, OverflowError)


def parse_hdf5_header(fileobj: BinaryIO, source: str) -> Header:
    """The recording info stored in an HDF5 file's root attributes.

    Args:
        fileobj: The file, opened in binary mode and seekable.
        source: The file's name for error messages.

    Raises:
        FormatError: h5py cannot open the file.
    """
    import h5py

    try:
        with h5py.File(fileobj, "r") as h5:
            stored = {k: v.item() if isinstance(v, np.generic) else v for k, v in h5.attrs.items()}
    except DAMAGED_HDF5 as err:
        raise FormatError(source, 0, f"not a readable HDF5 file: {err}") from None
    try:
        stored["extra"] = json.loads(stored.get("extra", "{}"))
    except (TypeError, ValueError):
        stored["extra"] = {}
    return Header(_info("hdf5", stored), data_offset=0)


def load_npz(data: bytes, source: str) -> np.ndarray:
    """The events of an ``.npz``'s ``t, x, y, p`` columns, validated (see the module docstring).

    Args:
        data: The whole file.
        source: The file's name for error messages.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return _events({name: archive[name] for name in archive.files if name in COLUMNS}, source)
    except FormatError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError) as err:
        raise FormatError(source, 0, f"cannot read the .npz columns: {err}") from None


def load_hdf5(data: bytes, source: str) -> np.ndarray:
    """The events of an HDF5 file's ``t, x, y, p`` datasets, validated (see the module docstring).

    Args:
        data: The whole file.
        source: The file's name for error messages.
    """
    import h5py

    try:
        with h5py.File(io.BytesIO(data), "r") as h5:
            return _events({name: h5[name][()] for name in COLUMNS if name in h5}, source)
    except FormatError:
        raise
    except DAMAGED_HDF5 as err:
        raise FormatError(source, 0, f"cannot read the HDF5 columns: {err}") from None


SPECS = (
    FormatSpec(
        name="npz",
        description="column export: .npz of 1-D arrays t, x, y, p (also SpikingJelly's events_np files)",
        extensions=(".npz",),
        magic=ZIP_MAGIC,
        sniff=sniff_npz,
        parse_header=parse_npz_header,
        make_decoder=lambda header, source: WholeFileDecoder(load_npz, source),
        make_writer=NpzWriter,
    ),
    FormatSpec(
        name="hdf5",
        description="column export: HDF5 datasets t, x, y, p",
        extensions=(".h5", ".hdf5"),
        magic=HDF5_MAGIC,
        sniff=None,
        parse_header=parse_hdf5_header,
        make_decoder=lambda header, source: WholeFileDecoder(load_hdf5, source),
        make_writer=Hdf5Writer,
    ),
)
