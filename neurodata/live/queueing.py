"""The bounded hand-over between a source's receiving thread and its consumer.

The queue holds event blocks up to a total number of events. When a block arrives and the queue
is full, the oldest blocks are dropped (the freshest data matters most to a live consumer) and
counted in the source's :class:`~neurodata.live.stats.LiveStats`, so memory stays bounded however
slow the consumer is.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import NamedTuple

import numpy as np

from .stats import LiveStats

DEFAULT_QUEUE_EVENTS = 16 << 20  # 16 M events, 272 MB at 17 bytes per event


class Block(NamedTuple):
    """Events decoded together and the ``time.perf_counter_ns`` at which their bytes arrived.

    Attributes:
        events: The decoded events.
        received_ns: When their bytes arrived.
    """

    events: np.ndarray
    received_ns: int


class Closed(NamedTuple):
    """The end marker: ``error`` is None for a clean end of the stream."""

    error: BaseException | None


class DropOldestQueue:
    """A single-producer, single-consumer queue bounded by its total number of events.

    Parameters:
        max_events: the most events held at once; a single larger block is still accepted alone.
        stats: where dropped blocks and events are counted and delivery latencies recorded.
    """

    def __init__(self, max_events: int, stats: LiveStats):
        if max_events <= 0:
            raise ValueError(f"max_events must be positive, got {max_events}")
        self.max_events = max_events
        self.stats = stats
        self._items: collections.deque[Block] = collections.deque()
        self._held = 0
        self._closed: Closed | None = None
        self._ready = threading.Condition()

    @property
    def held_events(self) -> int:
        """Events waiting in the queue now."""
        return self._held

    @property
    def held_blocks(self) -> int:
        """Blocks waiting in the queue now (one, when a single block larger than the bound is held)."""
        return len(self._items)

    def put(self, block: Block) -> None:
        """Append ``block``, first dropping the oldest blocks that would overflow the bound."""
        with self._ready:
            while self._items and self._held + len(block.events) > self.max_events:
                old = self._items.popleft()
                self._held -= len(old.events)
                self.stats.dropped_blocks += 1
                self.stats.dropped_events += len(old.events)
            self._items.append(block)
            self._held += len(block.events)
            self._ready.notify()

    def close(self, error: BaseException | None = None) -> None:
        """Mark the end of the stream; the consumer gets the blocks still held, then the end (raising
        ``error`` there when given)."""
        with self._ready:
            self._closed = Closed(error)
            self._ready.notify()

    def get(self, timeout: float | None = None) -> Block | Closed | None:
        """The next block, the :class:`Closed` marker once drained, or None after ``timeout`` seconds."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._items or self._closed, timeout):
                return None
            if not self._items:
                return self._closed
            block = self._items.popleft()
            self._held -= len(block.events)
        self.stats.record_latency((time.perf_counter_ns() - block.received_ns) / 1000)
        return block
