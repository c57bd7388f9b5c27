"""One sample's cache chunks checked, decompressed and written into its padded batch rows in one
Numba call without the GIL (``pad_events`` straight from the cache).

The Python path (:meth:`.shard_reader.ShardedRows.decompress` per chunk and column, then
:func:`.kernels.fill_row_chunk_numba`) pays a few microseconds of interpreter and wrapper work for
each of a sample's chunk columns. :func:`fill_row_numba` does the same steps for all of them: the
CRC32C of each stored chunk (where the cache has chunk checksums), the Blosc header's sizes, Blosc
decompression into the caller's one-chunk scratch buffers (the fill value for chunks never
written), then :func:`.kernels.fill_row_chunk_numba`. It calls the C functions of the libraries the
Python path already uses: ``blosc_decompress_ctx`` from numcodecs' Blosc extension and
``crc32c_value`` from google-crc32c's library, registered for Numba under their own names (as
:mod:`neurodata.formats.kernels.lz4_frames` does). Where a build does not export them (or pointers
are not 64-bit, or the machine is big endian), :data:`AVAILABLE` is False and readers keep the
Python path. A chunk that fails a check stops the kernel with a nonzero status; the caller then
reads the sample through the Python path, which raises the same error it always has (or reads the
sample where only the kernel's stricter check objected: a Blosc buffer whose stored size differs
from the bytes the cache holds for it).
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from collections.abc import Sequence

import numba
import numpy as np

from .kernels import fill_row_chunk_numba

OK, CRC_FAILED, WRONG_SIZE, NOT_DECOMPRESSED = 0, 1, 2, 3  # what a chunk column's check found
CHUNK_FIELDS = 3  # a chunk's row in the table: src, count, dst, then (address, length) per column
_PREFIX = "neurodata_row_kernel_"  # the names the C functions are registered under for Numba


def _crc32c_library() -> ctypes.CDLL:
    """google-crc32c's C library: the one its extension links (a wheel's bundled copy) or the system's."""
    import google_crc32c

    package = os.path.dirname(google_crc32c.__file__)
    bundled = sorted(glob.glob(os.path.join(package, os.pardir, "google_crc32c.libs", "libcrc32c*.so*")))
    return ctypes.CDLL(bundled[0] if bundled else "libcrc32c.so.1")


def _bind() -> bool:
    """Register ``blosc_decompress_ctx``, ``crc32c_value`` and ``memmove`` for Numba; False where
    a library does not export them, pointers are not 64-bit or the machine is big endian."""
    if ctypes.sizeof(ctypes.c_void_p) != 8 or sys.byteorder != "little":
        return False
    try:
        import llvmlite.binding as llvm
        import numcodecs.blosc

        functions = {
            "blosc_decompress_ctx": ctypes.CDLL(numcodecs.blosc.__file__).blosc_decompress_ctx,
            "crc32c_value": _crc32c_library().crc32c_value,
            "memmove": ctypes.memmove,
        }
        for name, function in functions.items():
            llvm.add_symbol(_PREFIX + name, ctypes.cast(function, ctypes.c_void_p).value)
        return True
    except (ImportError, OSError, AttributeError):
        return False


AVAILABLE = _bind()
_U64 = numba.types.uint64
# pointers travel as 64-bit integers (passed in the same registers as pointers on 64-bit ABIs)
_blosc_decompress_ctx = numba.types.ExternalFunction(
    _PREFIX + "blosc_decompress_ctx", numba.types.int32(_U64, _U64, _U64, numba.types.int32)
)
_crc32c_value = numba.types.ExternalFunction(_PREFIX + "crc32c_value", numba.types.uint32(_U64, _U64))
_memmove = numba.types.ExternalFunction(_PREFIX + "memmove", _U64(_U64, _U64, _U64))


@numba.njit(cache=True, nogil=True)
def decompress_chunk_numba(address, length, checked, fill, into, header):
    """One stored chunk column (``length`` bytes at ``address``; address 0: never written) into
    ``into`` (one whole chunk, contiguous), as :meth:`.shard_reader.ShardedRows.decompress` does;
    returns OK or the check that failed.

    Args:
        checked: The stored bytes end with the CRC32C of the bytes before them.
        fill: The column's fill value, for a chunk never written.
        header: Four uint32 of scratch (the Blosc header, or the stored CRC32C).
    """
    if address == 0:
        into[:] = fill
        return OK
    if checked:
        if length < 4:
            return CRC_FAILED
        length -= 4
        _memmove(header.ctypes.data, address + length, 4)
        if _crc32c_value(address, length) != header[0]:
            return CRC_FAILED
    if length < 16:
        return WRONG_SIZE
    _memmove(header.ctypes.data, address, 16)  # Blosc's header: sizes at bytes 4-8 and 12-16
    if header[1] != into.nbytes:
        return WRONG_SIZE
    if header[3] != length:  # the bytes Blosc would read are not the stored chunk's: never read past it
        return NOT_DECOMPRESSED
    if _blosc_decompress_ctx(address, into.ctypes.data, into.nbytes, 1) != into.nbytes:
        return NOT_DECOMPRESSED
    return OK


@numba.njit(cache=True, nogil=True)
def fill_row_numba(table, checked, fills, coded, x, y, p, packed, t_row, x_row, y_row, p_row, state):
    """The chunks of one sample (rows of ``table``, see :func:`chunk_table`) decompressed into the
    one-chunk buffers ``coded, x, y, p`` (``p`` is ``coded`` when ``packed``: the times carry the
    polarities, and the table has no p column) and written into the sample's padded rows as
    :func:`.kernels.fill_row_chunk_numba` does, ``state`` carrying ``[time sum, largest
    coordinate]``. Returns OK, or ``(k * 4 + column) * 4 + check`` for the first chunk column that
    failed a check (nothing of chunk ``k`` written then).

    Args:
        table: int64 rows of src, count, dst, then (address, length) per stored column.
        checked: The stored chunks end with their CRC32C.
        fills: The columns' fill values (int64, in stored column order).
        t_row: The sample's padded time row.
        x_row: Its padded x row.
        y_row: Its padded y row.
        p_row: Its padded polarity row.
    """
    header = np.empty(4, np.uint32)
    for k in range(table.shape[0]):
        row = table[k]
        status = decompress_chunk_numba(row[3], row[4], checked, fills[0], coded, header)
        column = 0
        if status == OK:
            column = 1
            status = decompress_chunk_numba(row[5], row[6], checked, fills[1], x, header)
        if status == OK:
            column = 2
            status = decompress_chunk_numba(row[7], row[8], checked, fills[2], y, header)
        if status == OK and not packed:
            column = 3
            status = decompress_chunk_numba(row[9], row[10], checked, fills[3], p, header)
        if status != OK:
            return (k * 4 + column) * 4 + status
        fill_row_chunk_numba(coded, x, y, p, packed, row[0], row[1], row[2], t_row, x_row, y_row, p_row, state)
    return OK


def chunk_table(chunks: Sequence, columns: int) -> np.ndarray:
    """The table :func:`fill_row_numba` reads: per chunk (an :class:`.event_chunks.EventChunk`),
    its rows' place (src, count, dst) and each of its ``columns`` stored columns' bytes as (address,
    length), address 0 for a chunk never written. The addresses stay valid while ``chunks`` hold
    their bytes."""
    table = np.zeros((len(chunks), CHUNK_FIELDS + 2 * columns), dtype=np.int64)
    for k, chunk in enumerate(chunks):
        row = [chunk.src, chunk.count, chunk.dst]
        for raw in chunk.raws:
            row += (0, 0) if raw is None else (np.frombuffer(raw, np.uint8).ctypes.data, len(raw))
        table[k] = row
    return table
