"""N-MNIST / N-Caltech101 ATIS records: 5 bytes, big-endian fields.

byte0 = x, byte1 = y, byte2 bit7 = p, byte2 bits0-6 + byte3 + byte4 = 23-bit timestamp.
A record with y == 240 marks a timestamp overflow: it is dropped and 2**13 us is added to every
later timestamp (what the dataset authors' reader does).
"""

from __future__ import annotations

import numba
import numpy as np

from .nmnist_vector import AVAILABLE as VECTOR_AVAILABLE
from .nmnist_vector import GROUP, decode_three

OVERFLOW_Y = 240
OVERFLOW_STEP = 1 << 13
T_BITS = 23


def decode_reference(
    buf: np.ndarray, t_offset: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Readable numpy decoder: returns columns t, x, y, p and the time offset after the buffer.

    Args:
        buf: The records' bytes (uint8); a trailing partial record is ignored.
        t_offset: Microseconds added by the overflow markers before ``buf``.
    """
    rec = buf[: len(buf) // 5 * 5].reshape(-1, 5).astype(np.int64)
    is_overflow = rec[:, 1] == OVERFLOW_Y
    offsets = t_offset + OVERFLOW_STEP * np.cumsum(is_overflow)
    keep = ~is_overflow
    t = ((rec[:, 2] & 0x7F) << 16 | rec[:, 3] << 8 | rec[:, 4]) + offsets
    new_offset = int(offsets[-1]) if len(offsets) else t_offset
    return t[keep], rec[keep, 0], rec[keep, 1], rec[keep, 2] >> 7, new_offset


@numba.njit(cache=True, nogil=True, inline="always")
def _put_record(buf, b, t_offset, event):
    """Decode the (non-overflow) record at byte ``b`` of ``buf`` into ``event``."""
    # all five bytes are loaded before the first store: the compiler cannot tell ``event`` from
    # ``buf`` apart, and would reload each byte after every store otherwise
    x, y, high, mid, low = buf[b], buf[b + 1], buf[b + 2], buf[b + 3], buf[b + 4]
    event.t = ((np.int64(high) & 0x7F) << 16 | np.int64(mid) << 8 | np.int64(low)) + t_offset
    event.x = x
    event.y = y
    event.p = high >> 7


@numba.njit(cache=True, nogil=True)
def decode_numba(buf, t_offset, out):
    """Decode whole records of ``buf`` into the event array ``out``; returns (n_events, t_offset)."""
    n_records = len(buf) // 5
    # Up to the first overflow record (in recordings under 8.4 s: all of them), event i is record i:
    # three at a time by vector shuffles while the time offset is 0, then a loop without the
    # compaction's running index, which the compiler keeps tighter.
    n = 0
    if VECTOR_AVAILABLE and t_offset == 0:
        out_bytes = out.view(np.uint8)
        # decode_three reads 16 bytes from record n and writes 48 from event n: 4 records must remain
        while n + GROUP + 1 <= n_records and not decode_three(buf, 5 * n, out_bytes, 13 * n):
            n += GROUP
    while n < n_records and buf[5 * n + 1] != OVERFLOW_Y:
        _put_record(buf, 5 * n, t_offset, out[n])
        n += 1
    for i in range(n, n_records):
        if buf[5 * i + 1] == OVERFLOW_Y:
            t_offset += OVERFLOW_STEP
            continue
        _put_record(buf, 5 * i, t_offset, out[n])
        n += 1
    return n, t_offset


@numba.njit(cache=True, nogil=True)
def encode_numba(t, x, y, p, t_offset, out):
    """Encode events into ``out`` (uint8), inserting overflow records when ``t`` outgrows 23 bits.

    Returns (bytes written, t_offset). ``out`` must hold 5 bytes per event plus 5 per overflow.

    Args:
        t: Timestamps in microseconds, sorted, at least ``t_offset``.
        x: Columns 0..255.
        y: Rows 0..239.
        p: Polarities 0/1.
        t_offset: Microseconds covered by the overflow markers already written.
        out: Output bytes.
    """
    limit = np.int64(1) << T_BITS
    n = 0
    for i in range(len(t)):
        while t[i] - t_offset >= limit:
            out[n] = 0
            out[n + 1] = OVERFLOW_Y
            out[n + 2] = 0
            out[n + 3] = 0
            out[n + 4] = 0
            n += 5
            t_offset += OVERFLOW_STEP
        rel = t[i] - t_offset
        out[n] = x[i]
        out[n + 1] = y[i]
        out[n + 2] = (p[i] << 7) | ((rel >> 16) & 0x7F)
        out[n + 3] = (rel >> 8) & 0xFF
        out[n + 4] = rel & 0xFF
        n += 5
    return n, t_offset
