"""Prophesee RAW EVT 3.0 (Gen4/Gen4.1, IMX636 cameras), read and write.

Word layout and time rule: :mod:`neurodata.formats.kernels.evt3`. The decoder keeps the row, vector
base, polarity and unwrapped time base between blocks, so a block may end anywhere.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from .base import FormatSpec, Header
from .kernels import evt3 as kernels
from .prophesee_header import parse_raw_header, raw_format, sniff_fields
from .prophesee_writer import RawWriter
from .word_stream import RawDecoder

NAME = "evt3"


def sniff(head: bytes) -> bool:
    """True for a ``%`` header that announces EVT 3.0 (or a sensor generation that streams it).

    Args:
        head: The file's first bytes.
    """
    return head.startswith(b"%") and raw_format(sniff_fields(head))[0] == NAME


def parse_header(fileobj: BinaryIO, source: str) -> Header:
    """Read the ``%`` header: geometry, and the time offset our writer records (``fields["t_offset"]``).

    Args:
        fileobj: The file, opened in binary mode and seekable.
        source: The file's name for error messages.

    Raises:
        FormatError: The header announces another encoding, or is malformed.
    """
    info, data_offset, t_offset = parse_raw_header(fileobj, source, NAME)
    return Header(info, data_offset, fields={"t_offset": t_offset})


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
    sniff=sniff,
    parse_header=parse_header,
    make_decoder=Evt3Decoder,
    make_writer=Evt3Writer,
)
