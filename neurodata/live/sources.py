"""The live source contract and :func:`open`, which picks a source by what the name looks like.

A source receives and decodes on its own thread and hands event blocks to the consumer through a
:class:`~neurodata.live.queueing.DropOldestQueue`; the consumer iterates :meth:`LiveSource.chunks`.
"""

from __future__ import annotations

import abc
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..arguments import finite_number, whole_number
from ..events import RecordingInfo
from ..reader import rechunk_by_count, rechunk_by_time
from .queueing import DEFAULT_QUEUE_EVENTS, Block, Closed, DropOldestQueue
from .stats import LiveStats
from .urls import is_url, parse_endpoint

POLL_SECONDS = 0.1  # how often blocking waits look at the stop flag


@dataclass(frozen=True)
class LiveOptions:
    """How a source is opened (every field has a default; :func:`open` takes them as keywords).

    Attributes:
        format: ``evt2``/``evt3`` for RAW bytes without a header (pipes, ``-``), or a recording's format.
        follow: keep reading a file that is still growing (like ``tail -f``).
        realtime: play a recording at its own pace (else as fast as it decodes).
        speed: with ``realtime``, the pace multiplier (2 = twice as fast).
        reconnect: reconnect with back-off after a reset, truncated or refused TCP connection.
        connect_timeout: seconds to keep trying the first connection (and each reconnection).
        idle_timeout: with ``follow``, seconds without new bytes after which the file counts as ended
            (None: wait until stopped).
        queue_events: the most decoded events held for a slow consumer (oldest dropped beyond).
        width, height: the sensor size for sources that do not carry it (UDP, headerless RAW).
    """

    format: str | None = None
    follow: bool = False
    realtime: bool = False
    speed: float = 1.0
    reconnect: bool = True
    connect_timeout: float = 10.0
    idle_timeout: float | None = None
    queue_events: int = DEFAULT_QUEUE_EVENTS
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        finite_number("speed", self.speed, above=0)
        finite_number("connect_timeout", self.connect_timeout, above=0)
        if self.idle_timeout is not None:
            finite_number("idle_timeout", self.idle_timeout, above=0)
        whole_number("queue_events", self.queue_events, minimum=1)
        for name in ("width", "height"):
            if getattr(self, name) is not None:
                whole_number(name, getattr(self, name), minimum=1)


class LiveSource(abc.ABC):
    """An open live stream: ``info``, ``chunks()``, ``stats``, ``stop()``; a context manager.

    Subclasses set ``info`` in their constructor (after any handshake) and implement
    :meth:`produce`, which runs on the receiving thread and calls :meth:`emit`; they may override
    :meth:`interrupt` to unblock a blocking read when :meth:`stop` is called.

    Args:
        source: What is read (path, URL or address), for messages and the thread's name.
        options: The live options.
    """

    info: RecordingInfo

    def __init__(self, source: str, options: LiveOptions):
        self.source = source
        self.options = options
        self.stats = LiveStats()
        self.queue = DropOldestQueue(options.queue_events, self.stats)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the receiving side ---

    def start(self) -> LiveSource:
        """Start the receiving thread (:func:`open` calls this)."""
        self.stats.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"neurodata-live {self.source}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.produce()
        except BaseException as err:  # handed to the consumer, raised there
            self.queue.close(err)
        else:
            self.queue.close()

    @abc.abstractmethod
    def produce(self) -> None:
        """Receive and decode until the stream ends or :attr:`stopping`; runs on its own thread."""

    def emit(self, events: np.ndarray, received_ns: int) -> None:
        """Hand decoded events to the consumer (``received_ns``: ``time.perf_counter_ns`` at arrival)."""
        if len(events):
            self.stats.events += len(events)
            self.queue.put(Block(events, received_ns))

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when :meth:`stop` was called meanwhile."""
        return self._stopping.wait(seconds)

    def interrupt(self) -> None:  # noqa: B027 - a default hook: sources whose reads poll the flag need none
        """Unblock the receiving thread's blocking read (default: nothing; reads poll the flag)."""

    # --- the consuming side ---

    def blocks(self) -> Iterator[np.ndarray]:
        """Event blocks as they were decoded, until the stream ends; an error of the receiving
        thread (a malformed stream, a lost connection without reconnection) is raised here."""
        while True:
            item = self.queue.get(timeout=POLL_SECONDS)
            if item is None:
                continue
            if isinstance(item, Closed):
                if item.error is not None:
                    raise item.error
                return
            yield item.events

    def chunks(self, n_events: int | None = None, time_window: int | None = None) -> Iterator[np.ndarray]:
        """Yield arrays of ``n_events`` events, or windows of ``time_window`` microseconds (as
        :meth:`neurodata.Recording.chunks` does), or the decoded blocks as they come.

        Parameters:
            n_events: events per chunk (the last may be shorter).
            time_window: microseconds per chunk; a window is yielded once a later event arrives.
        """
        if n_events is not None and time_window is not None:
            raise ValueError("give n_events or time_window, not both")
        if n_events is not None:
            return rechunk_by_count(self.blocks(), whole_number("n_events", n_events, minimum=1))
        if time_window is not None:
            finite_number("time_window", time_window, above=0)
            return rechunk_by_time(self.blocks(), time_window)
        return self.blocks()

    def stop(self) -> None:
        """Ask the receiving thread to end; :meth:`blocks` then ends after what was received."""
        self._stopping.set()
        self.interrupt()

    def close(self) -> None:
        """Stop and wait (briefly) for the receiving thread."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open(source: str, **options) -> LiveSource:  # noqa: A001 - the package's entry point, like io.open
    """Open a live source; use as a context manager like :func:`neurodata.open_recording`.

    Parameters:
        source: ``tcp://HOST:PORT`` or ``unix:///PATH`` (a DV network stream; the server listens),
            ``udp://HOST:PORT?format=t64_x16_y16_on8|t32_x16_y15_on1`` (bound here), ``-`` (RAW
            EVT bytes on standard input), a pipe or growing RAW file (``format=``, ``follow=``), or
            any recording (played at its own pace with ``realtime=True``).
        **options: the fields of :class:`LiveOptions`.
    """
    opts = LiveOptions(**options)
    if is_url(source):
        endpoint = parse_endpoint(source)
        if endpoint.scheme == "udp":
            from .udp import UdpSource

            return UdpSource(endpoint, opts).start()
        from .tcp import DvClient

        return DvClient(endpoint, opts).start()
    raw_bytes = opts.format in ("evt2", "evt3") and not opts.realtime  # a RAW file at its pace: a recording
    if source == "-" or opts.follow or _is_pipe(source) or raw_bytes:
        from .raw_stream import RawStreamSource

        return RawStreamSource(source, opts).start()
    from .pacing import RecordingSource

    return RecordingSource(source, opts).start()


def _is_pipe(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False
