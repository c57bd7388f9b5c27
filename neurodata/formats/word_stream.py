"""Driving a word-by-word Numba decode kernel over byte blocks with bounded output memory.

Prophesee RAW and DAT data are streams of fixed-size little-endian words (2, 4 or 8 bytes) decoded
by a stateful kernel. A kernel has the signature::

    kernel(words, pos, state, out, width, height) -> (stop, n_events, status)

It decodes ``words[pos:]`` into the preallocated event array ``out`` and stops early, before the
word at index ``stop``, when the output could overflow (status ``OUTPUT_FULL``) or when that word
is corrupt (status ``FIRST_ERROR`` or above; see :mod:`neurodata.formats.kernels.status`). State
that spans words (time base, current row) lives in the int64 array ``state``, so blocks of any size
decode to the same events. This module loops the kernel until a block is consumed, without a
counting pre-pass: each output buffer is sized from the events-per-word rate seen so far (not from
the worst case, 12 events per EVT 3.0 word, which would reserve 12 times the memory), and a kernel
that fills it simply resumes in a new one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import FormatError
from ..events import join
from .kernels.status import FIRST_ERROR, UNKNOWN_TYPE, X_BEYOND_WIDTH, Y_BEYOND_HEIGHT
from .output import EventOutput, FreshArrays

NO_LIMIT = 1 << 16  # width/height passed to kernels when the geometry is unknown: never exceeded
MIN_OUTPUT = 4096


class WordStreamDecoder:
    """Base class: subclasses set the word type, the kernel, its state and the error messages.

    Args:
        width: Sensor width in pixels, or None when unknown (x then goes unchecked).
        height: Sensor height in pixels, or None when unknown.
        state: The kernel's int64 state array (updated as blocks are decoded).
        source: The file's name for error messages.
    """

    name = ""
    word_dtype = np.dtype("u1")
    max_events_per_word = 1
    kernel: Callable
    errors: dict[int, str] = {  # str.format fields: see describe_error
        UNKNOWN_TYPE: "unknown {name} word type {kind} in word {hex}",
        X_BEYOND_WIDTH: "{name} word {hex} puts an event at x >= the width {width}",
        Y_BEYOND_HEIGHT: "{name} word {hex} puts an event at y >= the height {height}",
    }

    def __init__(self, width: int | None, height: int | None, state: np.ndarray, source: str):
        self.source = source
        self.width = NO_LIMIT if width is None else width
        self.height = NO_LIMIT if height is None else height
        self.state = state
        self.events_per_word = 1.0  # typical of camera data; learned as decoding goes
        self.output: EventOutput = FreshArrays()  # where events go (live sources set an EventArena)

    @property
    def word_bytes(self) -> int:
        """Bytes per word (2, 4 or 8)."""
        return self.word_dtype.itemsize

    def decode(self, block: np.ndarray, offset: int, final: bool) -> tuple[np.ndarray, int]:
        """Decode the whole words of ``block`` (file bytes from ``offset``; ``final`` when the file ends
        with it), as :meth:`~neurodata.formats.base.Decoder.decode` specifies; a corrupt word raises
        FormatError at its offset."""
        usable = len(block) - len(block) % self.word_bytes
        words = block[:usable].view(self.word_dtype)  # may be unaligned: fine for Numba on x86/ARM64
        pieces = []
        pos = 0
        while pos < len(words):
            left = len(words) - pos
            estimate = max(int(left * self.events_per_word * 1.1), MIN_OUTPUT)
            out = self.output.take(min(estimate, left * self.max_events_per_word) + self.max_events_per_word)
            stop, n, status = type(self).kernel(words, pos, self.state, out, self.width, self.height)
            if status >= FIRST_ERROR:
                at = stop * self.word_bytes
                raise FormatError(self.source, offset + at, self.describe_error(status, block, at))
            if stop - pos >= MIN_OUTPUT:  # learn the rate from samples large enough to be typical
                self.events_per_word = min(self.max_events_per_word, max(n, 1) / (stop - pos))
            pieces.append(self.output.keep(out, n))
            pos = stop
        if final and usable != len(block):
            raise FormatError(
                self.source,
                offset + usable,
                f"truncated {self.name} data: {len(block) - usable} trailing bytes, words are {self.word_bytes} bytes",
            )
        return join(pieces), usable

    def describe_error(self, status: int, block: np.ndarray, at: int) -> str:
        """The message for an error status of the kernel, from ``errors`` (str.format fields below).

        Args:
            status: The kernel's error status.
            block: The block being decoded.
            at: Byte position of the faulty word in ``block``.
        """
        word = int.from_bytes(bytes(block[at : at + self.word_bytes]), "little")
        return self.errors.get(status, "corrupt {name} word {hex}").format(
            name=self.name,
            hex=f"0x{word:0{2 * self.word_bytes}x}",
            kind=hex(word >> (8 * self.word_bytes - 4)),
            width=self.width,
            height=self.height,
        )


class RawDecoder(WordStreamDecoder):
    """An EVT decoder: the kernel's state starts from the header's time offset (``new_state``).

    Args:
        header: What the format's ``parse_header`` returned (sensor size, ``fields["t_offset"]``).
        source: The file's name for error messages.
    """

    new_state: Callable[[int], np.ndarray]

    def __init__(self, header, source: str):
        state = type(self).new_state(header.fields.get("t_offset", 0))
        super().__init__(header.info.width, header.info.height, state, source)
