"""Prophesee RAW EVT 2.0 (Gen3 cameras), read and write.

Word layout and time rule: :mod:`neurodata.formats.kernels.evt2`. The decoder keeps the unwrapped time
base between blocks. Only ``.raw`` files announcing EVT 2.0 (or a Gen3 sensor) are read as EVT 2.0:
the ``.raw`` extension alone means EVT 3.0, so writing EVT 2.0 takes ``format="evt2"``.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .base import FormatSpec
from .kernels import evt2 as kernels
from .prophesee_header import announces, raw_file_header
from .prophesee_writer import RawWriter
from .word_stream import RawDecoder

NAME = "evt2"


class Evt2Decoder(RawDecoder):
    """Decodes 32-bit EVT 2.0 words; the time base (TIME_HIGH) carries over from block to block."""

    name = "EVT 2.0"
    word_dtype = np.dtype("<u4")
    max_events_per_word = 1
    kernel = kernels.decode_numba
    new_state = staticmethod(kernels.new_state)


class Evt2Writer(RawWriter):
    """Writes one TIME_HIGH word per change of ``t >> 6`` and one CD word per event."""

    name = "EVT 2.0"
    evt_version = "2.0"
    format_name = "EVT2"
    time_wrap = 1 << 34
    encode_kernel = staticmethod(kernels.encode_numba)
    words_per_event = 2
    time_high_shift = 6
    half_range = kernels.HALF_RANGE
    state_size = 1
    word_dtype = "<u4"


SPEC = FormatSpec(
    name=NAME,
    description="Prophesee RAW EVT 2.0 (32-bit words; Gen3)",
    extensions=(),  # '.raw' defaults to EVT 3.0; EVT 2.0 files are recognised by their header
    magic=b"%",
    sniff=partial(announces, fmt=NAME),
    parse_header=partial(raw_file_header, fmt=NAME),
    make_decoder=Evt2Decoder,
    make_writer=Evt2Writer,
)
