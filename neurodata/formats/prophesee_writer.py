"""The streaming-writer skeleton shared by the RAW (EVT 2.0/3.0) and DAT writers.

Each ``write(chunk)`` checks the chunk (time order continuing the previous chunk, coordinates that
fit the format and the declared geometry, times the format can hold), writes the header before the
first events, and hands the chunk to the format's encoder, whose state persists between chunks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import BinaryIO

import numpy as np

from ..errors import NeurodataError
from ..events import RecordingInfo, as_events
from .prophesee_header import TIME_OFFSET_KEY, format_header


class PropheseeWriter(ABC):
    """Subclasses set ``name``, ``max_coordinate`` and implement ``header`` and ``encode``.

    Args:
        fileobj: Binary file opened for writing; the header goes out with the first events.
        info: The recording's info; its width and height, when set, bound the coordinates and go
            into the header.
    """

    name = ""
    max_coordinate = 0

    def __init__(self, fileobj: BinaryIO, info: RecordingInfo):
        self.file = fileobj
        self.width = info.width
        self.height = info.height
        self.last_t: int | None = None

    @abstractmethod
    def header(self, first_t: int | None) -> bytes:
        """The header bytes, given ``first_t``, the first event's time in microseconds (None when there are no events)."""

    @abstractmethod
    def encode(self, events: np.ndarray) -> bytes:
        """Encode ``events``, a checked, time-ordered chunk (EVENT_DTYPE), continuing the previous one."""

    def check_times(self, t: np.ndarray) -> None:
        """Refuse times the format cannot hold: NeurodataError for a negative time.

        Args:
            t: One chunk's timestamps in microseconds, as given.
        """
        if int(t[0]) < 0:
            raise NeurodataError(f"{self.name} cannot store negative times (first t = {int(t[0])} us)")

    def write(self, events: np.ndarray) -> None:
        """Check ``events`` (see the module docstring), write the header before the first ones, encode them.

        Raises:
            NeurodataError: Times out of the format's range, or coordinates too large (the order
                is checked by :class:`~neurodata.writer.CheckedWriter`).
        """
        events = as_events(events)
        if events.size == 0:
            return
        t = events["t"]
        self.check_times(t)
        self._check_coordinates(events)
        if self.last_t is None:
            self.file.write(self.header(int(t[0])))
        self.last_t = int(t[-1])
        self.file.write(self.encode(events))

    def close(self) -> None:
        """Write the header of an empty recording when no events came; else there is nothing to flush."""
        if self.last_t is None:
            self.file.write(self.header(None))

    def _check_coordinates(self, events: np.ndarray) -> None:
        for axis, size in (("x", self.width), ("y", self.height)):
            largest = int(events[axis].max())
            if largest > self.max_coordinate:
                raise NeurodataError(
                    f"{self.name} holds {axis} <= {self.max_coordinate}; got {axis} = {largest}"
                )
            if size is not None and largest >= size:
                dimension = "width" if axis == "x" else "height"
                raise NeurodataError(
                    f"event {axis} = {largest} lies outside the recording's {dimension} {size}"
                )


class RawWriter(PropheseeWriter):
    """A RAW (EVT) writer: header ``% evt``, ``% format``/``% geometry`` when known, ``% end``.

    The data stores times within wraps of the format's time base (``time_wrap`` us) counted from
    the first event's wrap; whole wraps before the first event go into the header as
    ``% neurodata_time_offset_us``, so that our reader restores absolute times.

    Args:
        fileobj: Binary file opened for writing.
        info: The recording's info; width and height, when set, go into ``% format``/``% geometry``.
    """

    evt_version = ""
    format_name = ""
    time_wrap = 0
    max_coordinate = 2047
    # the encoding kernel and its sizes: words per event at most, bits below the TIME_HIGH field,
    # the span one TIME_HIGH step may jump, and the kernel's state length
    encode_kernel: Callable
    words_per_event = 0
    time_high_shift = 0
    half_range = 0
    state_size = 0
    word_dtype = "<u4"

    def __init__(self, fileobj: BinaryIO, info: RecordingInfo):
        super().__init__(fileobj, info)
        self.t_offset = 0
        self.state = np.full(self.state_size, -1, dtype=np.int64)

    def encode(self, events: np.ndarray) -> bytes:
        """EVT words for ``events`` (time-ordered, continuing the previous chunk), with TIME_HIGH words as needed."""
        t = events["t"] - self.t_offset
        start = int(self.state[0]) if self.state[0] >= 0 else int(t[0]) >> self.time_high_shift
        # TIME_HIGH words between events: a step of at most half_range - 1, plus (EVT 3.0) the 0xFFF and
        # 0 words of each wrap, which also cut a step; 3 per half range bounds both
        bridges = 3 * (((int(t[-1]) >> self.time_high_shift) - start) // (self.half_range - 1)) + 5
        out = np.empty(self.words_per_event * len(events) + bridges, dtype=self.word_dtype)
        n = type(self).encode_kernel(t, events["x"], events["y"], events["p"], self.state, out)
        return out[:n].tobytes()

    def header(self, first_t: int | None) -> bytes:
        """The ``%`` header; sets the time offset to the whole wraps before ``first_t`` (microseconds, or None)."""
        fields = [("evt", self.evt_version)]
        if self.width is not None and self.height is not None:
            fields.append(("format", f"{self.format_name};height={self.height};width={self.width}"))
            fields.append(("geometry", f"{self.width}x{self.height}"))
        self.t_offset = 0 if first_t is None else first_t // self.time_wrap * self.time_wrap
        if self.t_offset:
            fields.append((TIME_OFFSET_KEY, str(self.t_offset)))
        fields.append(("generated_by", "neurodata"))
        return format_header(fields, end_line=True)
