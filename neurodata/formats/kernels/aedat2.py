"""AEDAT 2.0 (jAER) records: big-endian ``u32 address, u32 timestamp`` pairs, 8 bytes each.

Two address layouts, chosen by the chip named in the file header:

* DVS128: bit0 = polarity type (raw 1 = OFF), bits1-7 = x mirrored (x = 127 - raw),
  bits8-14 = y (origin bottom-left, as jAER shows it), bit15 = external event (skipped).
* DAVIS240/346: bit31 set = APS/ADC readout (skipped), bit10 set = IMU sample or external input
  (skipped), y = bits22-30, x = bits12-21 mirrored (x = width - 1 - raw, what jAER's DAVIS
  extractor does), p = bit11. An address outside the sensor is corrupt data: the kernels report it.
"""

from __future__ import annotations

import numba
import numpy as np

RECORD = 8
DVS128_SIZE = 128
DVS128_EXTERNAL = 1 << 15
DAVIS_APS = 1 << 31
DAVIS_SPECIAL = 1 << 10  # IMU sample (3 << 10 in the 2-bit type field) or external input (1 << 10)


def _words(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = buf[: len(buf) // RECORD * RECORD].view(">u4").astype(np.int64)
    return pairs[0::2], pairs[1::2]


def decode_dvs128_reference(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Readable numpy decoder of DVS128 records: columns t, x, y, p of the DVS events.

    Args:
        buf: The records' bytes (uint8); a trailing partial record is ignored.
    """
    addr, t = _words(buf)
    keep = (addr & DVS128_EXTERNAL) == 0
    addr, t = addr[keep], t[keep]
    return t, 127 - ((addr >> 1) & 0x7F), (addr >> 8) & 0x7F, 1 - (addr & 1)


def decode_davis_reference(
    buf: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Readable numpy decoder of DAVIS records (APS and IMU/external words dropped).

    Assumes every DVS address lies inside the ``width`` x ``height`` sensor.

    Args:
        buf: The records' bytes (uint8); a trailing partial record is ignored.
        width: Sensor width in pixels (x is mirrored within it).
        height: Sensor height in pixels.
    """
    addr, t = _words(buf)
    keep = (addr & (DAVIS_APS | DAVIS_SPECIAL)) == 0
    addr, t = addr[keep], t[keep]
    return t, width - 1 - ((addr >> 12) & 0x3FF), (addr >> 22) & 0x1FF, (addr >> 11) & 1


@numba.njit(cache=True, nogil=True, inline="always")
def _be_u32(buf, i):
    return (
        (np.int64(buf[i]) << 24)
        | (np.int64(buf[i + 1]) << 16)
        | (np.int64(buf[i + 2]) << 8)
        | np.int64(buf[i + 3])
    )


@numba.njit(cache=True, nogil=True)
def decode_dvs128_numba(buf, t, x, y, p):
    """Decode whole DVS128 records of ``buf`` into preallocated columns; returns the event count.

    Args:
        buf: The records' bytes (uint8); a trailing partial record is ignored.
        t: Output timestamps in microseconds (int64), one slot per record.
        x: Output x (uint16), one slot per record.
        y: Output y (uint16), one slot per record.
        p: Output polarities (uint8, 1 = ON), one slot per record.
    """
    n = 0
    for i in range(len(buf) // RECORD):
        b = RECORD * i
        addr = _be_u32(buf, b)
        if addr & DVS128_EXTERNAL:
            continue
        t[n] = _be_u32(buf, b + 4)
        x[n] = 127 - ((addr >> 1) & 0x7F)
        y[n] = (addr >> 8) & 0x7F
        p[n] = 1 - (addr & 1)
        n += 1
    return n


@numba.njit(cache=True, nogil=True)
def decode_davis_numba(buf, width, height, t, x, y, p):
    """Decode whole DAVIS records of ``buf`` into preallocated columns.

    Returns (event count, index of the first record whose DVS address lies outside the sensor or -1);
    decoding stops at such a record.

    Args:
        buf: The records' bytes (uint8); a trailing partial record is ignored.
        width: Sensor width in pixels (x is mirrored within it).
        height: Sensor height in pixels.
        t: Output timestamps in microseconds (int64), one slot per record.
        x: Output x (uint16), one slot per record.
        y: Output y (uint16), one slot per record.
        p: Output polarities (uint8, 1 = ON), one slot per record.
    """
    n = 0
    for i in range(len(buf) // RECORD):
        b = RECORD * i
        addr = _be_u32(buf, b)
        if addr & (DAVIS_APS | DAVIS_SPECIAL):
            continue
        raw_x = (addr >> 12) & 0x3FF
        yy = (addr >> 22) & 0x1FF
        if raw_x >= width or yy >= height:
            return n, i
        t[n] = _be_u32(buf, b + 4)
        x[n] = width - 1 - raw_x
        y[n] = yy
        p[n] = (addr >> 11) & 1
        n += 1
    return n, -1


def encode_dvs128(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """DVS128 records (big-endian address, timestamp) as bytes; inputs must already be in range.

    Args:
        t: Timestamps in microseconds, in ``[0, 2**32)``.
        x: Columns 0..127.
        y: Rows 0..127.
        p: Polarities 0 (OFF) or 1 (ON).
    """
    out = np.empty((len(t), 2), dtype=">u4")
    out[:, 0] = (
        (y.astype(np.uint32) << 8) | ((127 - x.astype(np.uint32)) << 1) | (1 - (p.astype(np.uint32) & 1))
    )
    out[:, 1] = t
    return out.view(np.uint8).ravel()
