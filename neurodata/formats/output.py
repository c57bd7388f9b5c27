"""Where decoders put the events they decode: a fresh array per request (the default), or
consecutive rows of a shared arena, so that arrays decoded one after another lie side by side in
memory and :func:`neurodata.events.join` regroups them without copying (the live sources' windows).

A decoder asks for room with ``take(n)`` (uninitialised rows), fills the first rows and hands
them out with ``keep(room, n)``; only the most recent ``take`` may be kept.
"""

from __future__ import annotations

import sys
from typing import Protocol

import numpy as np

from ..events import empty_events

ARENA_ROWS = 1 << 21  # 26 MiB of events per arena array


class EventOutput(Protocol):
    """Room for decoded events (see the module docstring)."""

    def take(self, n: int) -> np.ndarray:
        """Room for ``n`` events (uninitialised)."""

    def keep(self, room: np.ndarray, n: int) -> np.ndarray:
        """The first ``n`` rows of ``room`` (the latest :meth:`take`), handed out."""


class FreshArrays:
    """A new array for each request; when more than an eighth of the room would go unused, what is
    kept is the room itself shrunk in place (so a generous size estimate pins no memory, and the
    events are not copied: a whole file's events can be hundreds of MB)."""

    def take(self, n: int) -> np.ndarray:
        """A new uninitialised array of ``n`` events."""
        return empty_events(n)

    def keep(self, room: np.ndarray, n: int) -> np.ndarray:
        """``room[:n]``; or, when the rest would waste more than an eighth of ``room``, ``room``
        shrunk to ``n`` rows by ``realloc`` (which gives the tail back without copying the events).
        ``room`` is the decoder's own array from :meth:`take`: no view of it may exist."""
        if len(room) - n > n // 8:
            room.resize(n, refcheck=False)  # refcheck would count the decoder's own references
            return room
        return room[:n]


class EventArena:
    """Hands out consecutive rows of large event arrays: each :meth:`keep` follows the previous
    one in memory until an array is full, then the next array starts. The array filled before is
    reused when no view of it is left (its pages are already mapped: no page faults, no zeroing by
    the kernel), else a new one is made; so memory is the events still held plus two arrays.

    Parameters:
        rows: events per arena array (a larger request gets an array of its own size).
    """

    def __init__(self, rows: int = ARENA_ROWS):
        self.rows = rows
        self.array = empty_events(0)
        self.spare = empty_events(0)
        self.used = 0

    def take(self, n: int) -> np.ndarray:
        """Room for ``n`` events right after those kept so far (in the next array when they do not fit)."""
        if self.used + n > len(self.array):
            size = max(self.rows, n)
            # only this attribute and getrefcount's argument refer to an array no view is left of
            reuse = len(self.spare) >= size and sys.getrefcount(self.spare) == 2
            self.array, self.spare = self.spare if reuse else empty_events(size), self.array
            self.used = 0
        return self.array[self.used : self.used + n]

    def keep(self, room: np.ndarray, n: int) -> np.ndarray:
        """The first ``n`` rows of ``room``; the rest of it is offered again by the next :meth:`take`."""
        self.used += n
        return room[:n]
