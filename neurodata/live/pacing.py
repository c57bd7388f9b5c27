"""Recordings played as a camera would send them: cut into packets by time, each released when its
time has come (``speed`` times faster), or as fast as possible; and the source that plays one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from ..reader import open_recording, rechunk_by_time
from .sources import LiveOptions, LiveSource

PACKET_US = 1000  # a camera's packets each span about a millisecond
PACKET_EVENTS = 4096
LONGEST_WAIT = 3600.0  # seconds waited at once for a packet's time (a very slow pace waits in slices)


class Packet(NamedTuple):
    """Events sent together, and the recording time (us) at which the packet is complete.

    Attributes:
        events: The packet's events.
        due_us: The recording time at which it is complete.
    """

    events: np.ndarray
    due_us: int


def packets(blocks: Iterator[np.ndarray], packet_us: int = PACKET_US, packet_events: int = PACKET_EVENTS) -> Iterator[Packet]:
    """Cut time-ordered event blocks into packets of at most ``packet_us`` and ``packet_events``.

    Parameters:
        blocks: event arrays in time order (a recording's chunks).
        packet_us: the longest time one packet spans.
        packet_events: the most events in one packet.
    """
    end = None
    for window in rechunk_by_time(blocks, packet_us, skip_empty=True):
        if not len(window):
            continue
        end = int(window["t"][0]) // packet_us * packet_us + packet_us if end is None else end
        due = max(end, int(window["t"][-1]) + 1)
        for start in range(0, len(window), packet_events):
            yield Packet(window[start : start + packet_events], due)
        end = due + packet_us


def paced(items: Iterator[Packet], speed: float | None, stopped: Callable[[float], bool]) -> Iterator[Packet]:
    """Release each packet of ``items`` when the recording time since the first has passed on the wall clock,
    divided by ``speed`` (None: no waiting). ``stopped(seconds)`` sleeps and says whether to end."""
    start_wall = start_t = None
    for packet in items:
        if speed is not None:
            if start_wall is None:
                start_wall, start_t = time.monotonic(), packet.due_us
            due = start_wall + (packet.due_us - start_t) / 1e6 / speed
            while (wait := due - time.monotonic()) > 0:  # in slices: a wait of years overflows the clock
                if stopped(min(wait, LONGEST_WAIT)):
                    return
        yield packet


def recording_packets(path: str, format: str | None = None, loop: bool = False) -> Iterator[Packet]:
    """The packets of the recording at ``path``, from its start; with ``loop``, again and again,
    each pass shifted in time to start 1 us after the previous pass ended.

    Parameters:
        path: any recording :func:`neurodata.open_recording` reads.
        format: its format, when the bytes and extension do not say.
        loop: repeat forever.
    """
    shift = 0
    while True:
        first = last = None
        with open_recording(path, format) as rec:
            for packet in packets(rec.chunks()):
                first = int(packet.events["t"][0]) if first is None else first
                if shift:
                    shifted = packet.events.copy()
                    shifted["t"] += shift
                    packet = Packet(shifted, packet.due_us + shift)
                last = int(packet.events["t"][-1])
                yield packet
        if not loop or last is None:
            return
        shift = last + 1 - first


class RecordingSource(LiveSource):
    """A recording played as a live source: at its own pace with ``realtime`` (times ``speed``),
    else as fast as it decodes.

    Args:
        path: The recording.
        options: The live options (``format``, ``realtime``, ``speed``, queue size).
    """

    def __init__(self, path: str, options: LiveOptions):
        super().__init__(path, options)
        with open_recording(path, options.format) as rec:
            self.info = rec.info

    def produce(self) -> None:
        """Decode the recording and emit its packets, paced when ``realtime``."""
        speed = self.options.speed if self.options.realtime else None
        for packet in paced(recording_packets(self.source, self.options.format), speed, self.wait):
            if self.stopping:
                return
            self.stats.packets += 1
            self.emit(packet.events, time.perf_counter_ns())
