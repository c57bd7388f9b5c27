"""N-MNIST / N-Caltech101 ``.bin`` (ATIS TD records, no header), read and write."""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from ..errors import FormatError, NeurodataError
from ..events import RecordingInfo, empty_events
from .base import FormatSpec, Header
from .kernels import nmnist as kernels

RECORD = 5
MAX_COORD = 255


def parse_header(fileobj: BinaryIO, source: str) -> Header:
    return Header(RecordingInfo(format="nmnist"), data_offset=0)


class NmnistDecoder:
    def __init__(self, header: Header, source: str):
        self.source = source
        self.t_offset = 0

    def decode(self, block: np.ndarray, offset: int, final: bool) -> tuple[np.ndarray, int]:
        usable = len(block) // RECORD * RECORD
        if final and usable != len(block):
            raise FormatError(
                self.source,
                offset + usable,
                f"truncated record: {len(block) - usable} trailing bytes, records are {RECORD} bytes",
            )
        out = empty_events(usable // RECORD)
        n, self.t_offset = kernels.decode_numba(block[:usable], self.t_offset, out)
        return out[:n], usable


class NmnistWriter:
    def __init__(self, fileobj: BinaryIO, info: RecordingInfo):
        self.file = fileobj
        self.t_offset = 0
        self.last_t = 0

    def write(self, events: np.ndarray) -> None:
        if events.size == 0:
            return
        t = events["t"]
        if int(t[0]) < self.last_t or np.any(np.diff(t) < 0):
            raise NeurodataError("N-MNIST .bin stores time-ordered events only; sort the events by t first")
        if int(events["x"].max()) > MAX_COORD or int(events["y"].max()) >= kernels.OVERFLOW_Y:
            raise NeurodataError("N-MNIST .bin holds x <= 255 and y < 240")
        self.last_t = int(t[-1])
        markers = max(0, (self.last_t - self.t_offset) >> 13) + 1
        out = np.empty(RECORD * (len(events) + markers), dtype=np.uint8)
        n, self.t_offset = kernels.encode_numba(t, events["x"], events["y"], events["p"], self.t_offset, out)
        self.file.write(out[:n].tobytes())

    def close(self) -> None:
        pass


SPEC = FormatSpec(
    name="nmnist",
    description="N-MNIST / N-Caltech101 ATIS .bin (5-byte records)",
    extensions=(".bin",),
    sniff=lambda head: False,  # no magic number: chosen by extension
    parse_header=parse_header,
    make_decoder=NmnistDecoder,
    make_writer=NmnistWriter,
)
