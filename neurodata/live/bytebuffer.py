"""A growable receive buffer that sockets and pipes read into directly (``recv_into``/``readinto``),
so incoming bytes are copied once before decoding; decoded bytes are dropped from its front."""

from __future__ import annotations

import numpy as np


class ByteBuffer:
    """Bytes received but not yet decoded, and the stream offset of the first of them.

    Parameters:
        capacity: the initial size; the buffer doubles when a record does not fit.
    """

    def __init__(self, capacity: int = 4 << 20):
        self.data = bytearray(capacity)
        self.filled = 0
        self.offset = 0

    def space(self, at_least: int = 1 << 16) -> memoryview:
        """Writable room after the held bytes (grown to ``at_least`` bytes when smaller)."""
        if len(self.data) - self.filled < at_least:
            bigger = bytearray(max(2 * len(self.data), self.filled + at_least))
            bigger[: self.filled] = self.data[: self.filled]
            self.data = bigger  # a new object: numpy views of the old one stay valid
        return memoryview(self.data)[self.filled :]

    def commit(self, n: int) -> None:
        """Count ``n`` bytes just written into :meth:`space` as held."""
        self.filled += n

    def view(self) -> np.ndarray:
        """The held bytes as a uint8 array (valid until the next :meth:`consume` or :meth:`space`)."""
        return np.frombuffer(self.data, dtype=np.uint8, count=self.filled)

    def consume(self, n: int) -> None:
        """Drop the first ``n`` held bytes (decoded), moving the rest to the front."""
        if n:
            rest = self.filled - n
            self.data[:rest] = self.data[n : self.filled]
            self.filled = rest
            self.offset += n

    def reset(self) -> None:
        """Forget everything, for a new stream (a reconnection)."""
        self.filled = 0
        self.offset = 0
