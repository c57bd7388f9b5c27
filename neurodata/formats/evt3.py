"""Prophesee RAW EVT 3.0 (Gen4/Gen4.1, IMX636 cameras), read and write.

Word layout and time rule: :mod:`neurodata.formats.kernels.evt3`. The decoder keeps the row, vector
base, polarity and unwrapped time base between blocks, so a block may end anywhere.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .base import FormatSpec
from .kernels import evt3 as kernels
from .prophesee_header import announces, raw_file_header
from .prophesee_writer import RawWriter
from .word_stream import RawDecoder

NAME = "evt3"


class Evt3Decoder(RawDecoder):
    """Decodes 16-bit EVT 3.0 words; the row, vector base, polarity and time base carry over from block to block."""

    name = "EVT 3.0"
    word_dtype = np.dtype("<u2")
    max_events_per_word = kernels.MAX_EVENTS_PER_WORD
    kernel = kernels.decode_numba
    new_state = staticmethod(kernels.new_state)


class Evt3Writer(RawWriter):
    """Writes TIME_HIGH/TIME_LOW, ADDR_Y, ADDR_X and VECT_BASE_X + VECT_12 words (see the kernel)."""

    name = "EVT 3.0"
    evt_version = "3.0"
    format_name = "EVT3"
    time_wrap = 1 << 24
    encode_kernel = staticmethod(kernels.encode_numba)
    words_per_event = 4
    time_high_shift = 12
    half_range = kernels.HALF_RANGE
    state_size = 3
    word_dtype = "<u2"


SPEC = FormatSpec(
    name=NAME,
    description="Prophesee RAW EVT 3.0 (16-bit words; Gen4.1, IMX636)",
    extensions=(".raw",),
    magic=b"%",
    sniff=partial(announces, fmt=NAME),
    parse_header=partial(raw_file_header, fmt=NAME),
    make_decoder=Evt3Decoder,
    make_writer=Evt3Writer,
)
