"""Prophesee DAT (v2) CD records: 8 bytes, little-endian ``u32 t`` then ``u32 w``.

x = w bits 0-13, y = w bits 14-27, p = w bit 28. Times are plain 32-bit microseconds (no wrap marker).
"""

from __future__ import annotations

import numba
import numpy as np

from .status import DONE, OUTPUT_FULL, X_BEYOND_WIDTH, Y_BEYOND_HEIGHT

RECORD = 8
COORD_MASK = 0x3FFF
T_LIMIT = 1 << 32


def decode_reference(records: np.ndarray) -> tuple[np.ndarray, ...]:
    """Readable vectorised decoder: columns t, x, y, p of an (n, 2) array of uint32 (t, w).

    Args:
        records: The records as ``(t, w)`` rows.
    """
    t, w = records[:, 0].astype(np.int64), records[:, 1]
    return t, w & COORD_MASK, (w >> 14) & COORD_MASK, (w >> 28) & 1


@numba.njit(cache=True, nogil=True)
def decode_numba(records, pos, state, out, width, height):
    """Decode ``records[pos:]`` (each a little-endian uint64: t | w << 32) into the event array ``out``.

    Stateless (``state`` unused). Returns (stop record, events written, status) like the RAW kernels.

    Args:
        records: The records (uint64).
        pos: Index of the first record to decode.
        state: Unused (the word-stream kernel signature).
        out: EVENT_DTYPE output array.
        width: Bound on x (the sensor width, or a bound never reached when unknown).
        height: Bound on y, likewise.
    """
    n = 0
    status = DONE
    limit = len(out)
    end = len(records)
    while pos < end:
        if n >= limit:
            status = OUTPUT_FULL
            break
        record = records[pos]
        w = np.int64(record >> 32)
        xx = w & COORD_MASK
        yy = (w >> 14) & COORD_MASK
        if xx >= width:
            status = X_BEYOND_WIDTH
            break
        if yy >= height:
            status = Y_BEYOND_HEIGHT
            break
        event = out[n]
        event.t = np.int64(record & 0xFFFFFFFF)
        event.x = xx
        event.y = yy
        event.p = (w >> 28) & 1
        n += 1
        pos += 1
    return pos, n, status


@numba.njit(cache=True, nogil=True)
def encode_numba(t, x, y, p, out):
    """Encode events into ``out`` (uint32, two per event: t, then x | y << 14 | p << 28)."""
    for i in range(len(t)):
        out[2 * i] = t[i]
        out[2 * i + 1] = np.int64(x[i]) | (np.int64(y[i]) << 14) | (np.int64(p[i] != 0) << 28)
