"""Prophesee DAT (v2) CD records: 8 bytes, little-endian ``u32 t`` then ``u32 w``.

x = w bits 0-13, y = w bits 14-27, p = w bit 28. Times are plain 32-bit microseconds (no wrap marker).
"""

from __future__ import annotations

import numba
import numpy as np

RECORD = 8
OUTPUT_FULL, X_BEYOND_WIDTH, Y_BEYOND_HEIGHT = 1, 3, 4
COORD_MASK = 0x3FFF
T_LIMIT = 1 << 32


def decode_reference(records: np.ndarray) -> tuple[np.ndarray, ...]:
    """Readable vectorised decoder: columns t, x, y, p of an (n, 2) array of uint32 (t, w)."""
    t, w = records[:, 0].astype(np.int64), records[:, 1]
    return t, w & COORD_MASK, (w >> 14) & COORD_MASK, (w >> 28) & 1


@numba.njit(cache=True, nogil=True)
def decode_numba(buf, pos, end, state, t, x, y, p, width, height):
    """Decode the records of ``buf[pos:end]`` (uint8) into the columns; stateless (``state`` unused).

    Returns (stop byte, events written, status) like the RAW kernels.
    """
    n = 0
    status = 0
    limit = len(t)
    while pos < end:
        if n >= limit:
            status = OUTPUT_FULL
            break
        ts = np.int64(buf[pos]) | (np.int64(buf[pos + 1]) << 8) | (np.int64(buf[pos + 2]) << 16)
        ts |= np.int64(buf[pos + 3]) << 24
        w = np.int64(buf[pos + 4]) | (np.int64(buf[pos + 5]) << 8) | (np.int64(buf[pos + 6]) << 16)
        w |= np.int64(buf[pos + 7]) << 24
        xx = w & COORD_MASK
        yy = (w >> 14) & COORD_MASK
        if xx >= width:
            status = X_BEYOND_WIDTH
            break
        if yy >= height:
            status = Y_BEYOND_HEIGHT
            break
        t[n] = ts
        x[n] = xx
        y[n] = yy
        p[n] = (w >> 28) & 1
        n += 1
        pos += RECORD
    return pos, n, status


@numba.njit(cache=True, nogil=True)
def encode_numba(t, x, y, p, out):
    """Encode events into ``out`` (uint32, two per event: t, then x | y << 14 | p << 28)."""
    for i in range(len(t)):
        out[2 * i] = t[i]
        out[2 * i + 1] = np.int64(x[i]) | (np.int64(y[i]) << 14) | (np.int64(p[i] != 0) << 28)
