"""Prophesee RAW EVT 2.0 (Gen3 cameras), read and write.

Word layout and time rule: :mod:`neurodata.formats.kernels.evt2`. The decoder keeps the unwrapped time
base between blocks. Only ``.raw`` files announcing EVT 2.0 (or a Gen3 sensor) are read as EVT 2.0:
the ``.raw`` extension alone means EVT 3.0, so writing EVT 2.0 takes ``format="evt2"``.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from ..events import RecordingInfo
from .base import FormatSpec, Header
from .kernels import evt2 as kernels
from .prophesee_header import parse_raw_header, raw_format, sniff_fields
from .prophesee_writer import RawWriter
from .word_stream import WordStreamDecoder

NAME = "evt2"


def sniff(head: bytes) -> bool:
    return head.startswith(b"%") and raw_format(sniff_fields(head))[0] == NAME


def parse_header(fileobj: BinaryIO, source: str) -> Header:
    info, data_offset, t_offset = parse_raw_header(fileobj, source, NAME)
    return Header(info, data_offset, fields={"t_offset": t_offset})


class Evt2Decoder(WordStreamDecoder):
    name = "EVT 2.0"
    word_dtype = np.dtype("<u4")
    max_events_per_word = 1
    kernel = kernels.decode_numba

    def __init__(self, header: Header, source: str):
        state = kernels.new_state(header.fields.get("t_offset", 0))
        super().__init__(header.info.width, header.info.height, state, source)


class Evt2Writer(RawWriter):
    """Writes one TIME_HIGH word per change of ``t >> 6`` and one CD word per event."""

    name = "EVT 2.0"
    evt_version = "2.0"
    format_name = "EVT2"
    time_wrap = 1 << 34

    def __init__(self, fileobj: BinaryIO, info: RecordingInfo):
        super().__init__(fileobj, info)
        self.state = np.full(1, -1, dtype=np.int64)

    def encode(self, events: np.ndarray) -> bytes:
        t = events["t"] - self.t_offset
        start = int(self.state[0]) if self.state[0] >= 0 else int(t[0]) >> 6
        bridges = ((int(t[-1]) >> 6) - start) // (kernels.HALF_RANGE - 1) + 1
        out = np.empty(2 * len(events) + bridges, dtype="<u4")
        n = kernels.encode_numba(t, events["x"], events["y"], events["p"], self.state, out)
        return out[:n].tobytes()


SPEC = FormatSpec(
    name=NAME,
    description="Prophesee RAW EVT 2.0 (32-bit words; Gen3)",
    extensions=(),  # '.raw' defaults to EVT 3.0; EVT 2.0 files are recognised by their header
    sniff=sniff,
    parse_header=parse_header,
    make_decoder=Evt2Decoder,
    make_writer=Evt2Writer,
)
