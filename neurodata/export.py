"""Column exports: ``.npz`` (arrays t, x, y, p) and HDF5 ``.h5``, written in a streaming fashion.

These are not event *formats* with a byte-level decoder; they are the plain-array targets of
``neurodata convert``. Both writers follow the :class:`~neurodata.formats.base.Writer` protocol
so the same streaming loop feeds them; memory stays bounded by spooling columns to temporary
files (npz) or appending to resizable datasets (HDF5).
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .events import EVENT_DTYPE, RecordingInfo

COLUMNS = EVENT_DTYPE.names
HDF5_CHUNK = 1 << 18


class NpzWriter:
    """Writes an uncompressed ``.npz`` with one 1-D array per event field, plus ``info`` as JSON.

    Args:
        fileobj: Binary file opened for writing (seekable: a zip archive is written on :meth:`close`).
        info: The recording's metadata, stored as JSON in the member ``info.npy``.
    """

    def __init__(self, fileobj: BinaryIO, info: RecordingInfo):
        self.file = fileobj
        self.info = info
        self.spool = Path(tempfile.mkdtemp(prefix="neurodata-npz-"))
        self.parts = {name: open(self.spool / name, "wb") for name in COLUMNS}
        self.count = 0

    def write(self, events: np.ndarray) -> None:
        """Append events to the columns spooled in a temporary folder.

        Args:
            events: Structured array of :data:`~neurodata.events.EVENT_DTYPE`, in time order.
        """
        for name in COLUMNS:
            self.parts[name].write(np.ascontiguousarray(events[name]).tobytes())
        self.count += len(events)

    def close(self) -> None:
        """Write the archive (one ``.npy`` member per column, then ``info.npy``) and delete the spool."""
        try:
            for part in self.parts.values():
                part.close()
            with zipfile.ZipFile(self.file, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                for name in COLUMNS:
                    header = {"descr": EVENT_DTYPE[name].str, "fortran_order": False, "shape": (self.count,)}
                    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array_header_2_0(member, header)
                        with open(self.spool / name, "rb") as column:
                            shutil.copyfileobj(column, member, 1 << 22)
                info = json.dumps(self.info.to_dict(), default=str)
                archive.writestr("info.npy", _npy_bytes(np.array(info)))
        finally:
            shutil.rmtree(self.spool, ignore_errors=True)

    def abort(self) -> None:
        """Give the output up (an error came while writing): close and delete the spool."""
        for part in self.parts.values():
            part.close()
        shutil.rmtree(self.spool, ignore_errors=True)


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


class Hdf5Writer:
    """Writes an HDF5 file with resizable, chunked datasets ``t, x, y, p`` and the info as attributes.

    Args:
        fileobj: Binary file opened for writing, handed to ``h5py.File``.
        info: The recording's metadata: its fields become file attributes, ``extra`` as JSON.
    """

    def __init__(self, fileobj: BinaryIO, info: RecordingInfo):
        import h5py

        self.h5 = h5py.File(fileobj, "w")
        self.columns = {
            name: self.h5.create_dataset(
                name, shape=(0,), maxshape=(None,), dtype=EVENT_DTYPE[name], chunks=(HDF5_CHUNK,)
            )
            for name in COLUMNS
        }
        for key, value in info.to_dict().items():
            if value is not None and key != "extra":
                self.h5.attrs[key] = value
        self.h5.attrs["extra"] = json.dumps(info.extra, default=str)

    def write(self, events: np.ndarray) -> None:
        """Append events to the datasets (grown by ``len(events)``).

        Args:
            events: Structured array of :data:`~neurodata.events.EVENT_DTYPE`, in time order.
        """
        n = len(events)
        if n == 0:
            return
        for name, column in self.columns.items():
            start = column.shape[0]
            column.resize((start + n,))
            column[start:] = events[name]

    def close(self) -> None:
        """Close the HDF5 file (``fileobj`` itself stays open)."""
        self.h5.close()

    def abort(self) -> None:
        """Give the output up (an error came while writing): close the HDF5 file while ``fileobj``
        is still open (h5py left holding a closed file object crashed the interpreter at exit)."""
        self.h5.close()


EXPORTS = {".npz": NpzWriter, ".h5": Hdf5Writer, ".hdf5": Hdf5Writer}
