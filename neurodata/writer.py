"""Write event arrays to any writable format, atomically: readers never see a half-written file.

A full disk raises :class:`~neurodata.diskspace.DiskFullError` naming the output (the temporary file
is removed, an earlier file at the path stays); :func:`estimated_bytes` sizes an output beforehand,
for a caller that checks the free space first (``neurodata convert``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
from collections.abc import Callable, Iterator
from typing import BinaryIO, NamedTuple

import numpy as np

from .errors import NeurodataError
from .events import RecordingInfo, as_events
from .export import EXPORTS, HDF5_CHUNK
from .formats import writer_for_path
from .formats.base import Writer
from .localfs import atomic_output

MakeWriter = Callable[[BinaryIO, RecordingInfo], Writer]
# events written to memory to size an output (estimated_bytes): a whole HDF5 chunk, whose
# preallocation would otherwise inflate the estimate
ESTIMATE_EVENTS = HDF5_CHUNK


class OutputFormat(NamedTuple):
    """What :func:`open_writer` writes to a path: the format's ``name``, ``make_writer``, its
    writer's constructor (called with the open file and the recording's info), and
    ``time_ordered``, whether the format stores time-ordered events only (every event format; not
    the column exports)."""

    name: str
    make_writer: MakeWriter
    time_ordered: bool = True


def output_format(path: str | os.PathLike, format: str | None = None) -> OutputFormat:
    """The format written to ``path``: a column export for ``.npz``/``.h5`` (named by the extension),
    else the event format named by ``format`` or by the extension (``.raw`` is ``evt3``)."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if format is None and ext in EXPORTS:
        return OutputFormat(ext.lstrip("."), EXPORTS[ext], time_ordered=False)
    spec = writer_for_path(path, format)
    return OutputFormat(spec.name, spec.make_writer)


class TimeShiftedWriter:
    """Subtracts the first event's time from every event, so the output starts at t = 0.

    The inner writer is created at the first event, with ``time_origin`` moved by the same amount,
    so a format that stores an absolute origin still places the events where they were.

    ``fileobj`` is the open output file, ``info`` the recording's facts and ``make_writer`` the
    format's writer constructor (see :class:`OutputFormat`).
    """

    def __init__(self, fileobj: BinaryIO, info: RecordingInfo, make_writer: MakeWriter):
        self.file = fileobj
        self.info = info
        self.make_writer = make_writer
        self.writer: Writer | None = None
        self.t0 = 0

    def write(self, events: np.ndarray) -> None:
        """Write ``events`` shifted by the first event's time (the inner writer starts with them)."""
        if self.writer is None:
            if events.size == 0:
                return
            self.t0 = int(events["t"][0])
            origin = None if self.info.time_origin is None else self.info.time_origin + self.t0
            self.writer = self.make_writer(self.file, dataclasses.replace(self.info, time_origin=origin))
        shifted = events.copy()
        shifted["t"] -= self.t0
        self.writer.write(shifted)

    def close(self) -> None:
        """Finish the output (an empty file of the format when no event came)."""
        if self.writer is None:  # no events: an empty file of the format
            self.writer = self.make_writer(self.file, self.info)
        self.writer.close()

    def abort(self) -> None:
        """Give the output up: let the inner writer, if made, release what it holds."""
        if self.writer is not None:
            abandon(self.writer)


class CheckedWriter:
    """The front of every writer :func:`open_writer` makes: refuses a polarity other than 0 (OFF) or
    1 (ON) before the format's writer sees it (every format stores one bit, and column exports read
    back ``p > 0``, so a channel index 2 would come back as ON in some formats and OFF in others),
    refuses events out of time order for the event formats, and names the output in the format's
    own refusals.

    ``writer`` is the format's writer (or a :class:`TimeShiftedWriter`), ``name`` the format's name,
    ``path`` the output (None: nothing to name, e.g. a size estimate written to memory),
    ``time_ordered`` whether the format stores time-ordered events only.
    """

    def __init__(self, writer: Writer, name: str, path: str | None, time_ordered: bool = True):
        self.writer = writer
        self.name = name
        self.path = path
        self.time_ordered = time_ordered
        self.written = 0
        self.last_t: int | None = None

    def write(self, events: np.ndarray) -> None:
        """Write ``events`` after converting them (:func:`~neurodata.events.as_events`: Tonic's
        records and -1/+1 polarities; ValueError for a value a column cannot hold) and checking their
        polarities (NeurodataError naming the output and the first bad event).

        Args:
            events: A structured array with ``t, x, y, p`` fields.
        """
        events = as_events(events)
        with _naming(self.path):
            if len(events) and int(events["p"].max()) > 1:
                index = int(np.argmax(events["p"] > 1))
                raise NeurodataError(
                    f"{self.name} stores polarity 0 (OFF) or 1 (ON); event {self.written + index} has "
                    f"p = {int(events['p'][index])} (map the polarity channels to 0/1 first)"
                )
            if self.time_ordered and len(events):
                self._check_order(events["t"])
            self.writer.write(events)
        self.written += len(events)

    def _check_order(self, t: np.ndarray) -> None:
        """Refuse times earlier than the time before them (in this chunk or the previous one)."""
        earlier = np.flatnonzero(t[1:] < t[:-1]) + 1
        if self.last_t is not None and int(t[0]) < self.last_t:
            earlier = np.array([0])
        if len(earlier):
            index = int(earlier[0])
            raise NeurodataError(
                f"{self.name} stores time-ordered events only; event {self.written + index} (t = "
                f"{int(t[index])}) is earlier than the one before it (sort the events by t first)"
            )
        self.last_t = int(t[-1])

    def close(self) -> None:
        """Finish the output."""
        with _naming(self.path):
            self.writer.close()

    def abort(self) -> None:
        """Give the output up (see :func:`abandon`)."""
        abandon(self.writer)


@contextlib.contextmanager
def _naming(path: str | None) -> Iterator[None]:
    """Put ``path`` before the message of a plain NeurodataError raised in the block that does not
    name it yet (a format's refusal); other errors go on unchanged."""
    try:
        yield
    except NeurodataError as err:
        message = str(err)
        if type(err) is NeurodataError and path is not None and path not in message:
            raise NeurodataError(f"{path}: {message}") from None
        raise


def abandon(writer: Writer) -> None:
    """Let a writer whose output is given up (an error came while writing) release what it holds:
    its ``abort()`` where it has one (column exports hold a spool folder or an open HDF5 file)."""
    abort = getattr(writer, "abort", None)
    if abort is not None:
        abort()


@contextlib.contextmanager
def _abandoned_on_error(writer: Writer) -> Iterator[None]:
    """Abandon ``writer`` (see :func:`abandon`) when the block raises, then let the error go on."""
    try:
        yield
    except BaseException:
        abandon(writer)
        raise


def _make_writer(
    fileobj: BinaryIO, info: RecordingInfo, chosen: OutputFormat, shift_time: bool, path: str | None = None
) -> Writer:
    with _naming(path):  # a format refusing the info at once (Event Stream without a sensor size)
        inner = TimeShiftedWriter(fileobj, info, chosen.make_writer) if shift_time else chosen.make_writer(fileobj, info)
    return CheckedWriter(inner, chosen.name, path, chosen.time_ordered)


def estimated_bytes(
    path: str | os.PathLike,
    sample: np.ndarray,
    n_events: float,
    info: RecordingInfo | None = None,
    format: str | None = None,
    shift_time: bool = False,
) -> int:
    """About the bytes ``n_events`` events like ``sample`` take written to ``path`` (format and options
    as :func:`open_writer`): the first :data:`ESTIMATE_EVENTS` of ``sample`` written to memory, scaled.

    Parameters:
        path: the output file (its extension picks the format when ``format`` is None).
        sample: events representative of the rest (e.g. the first chunk read).
        n_events: how many events the output will hold (an estimate).
        info, format, shift_time: as :func:`open_writer`.
    """
    sample = as_events(sample[:ESTIMATE_EVENTS])
    if not len(sample):
        return 0
    chosen = output_format(path, format)
    buffer = io.BytesIO()
    writer = _make_writer(buffer, info or RecordingInfo(format=chosen.name), chosen, shift_time, os.fspath(path))
    with _abandoned_on_error(writer):
        writer.write(sample)
    writer.close()
    return int(buffer.getbuffer().nbytes * n_events / len(sample))


@contextlib.contextmanager
def open_writer(
    path: str | os.PathLike,
    info: RecordingInfo | None = None,
    format: str | None = None,
    shift_time: bool = False,
) -> Iterator[Writer]:
    """A streaming writer: call ``.write(chunk)`` repeatedly; the file appears whole on exit. Each
    chunk is converted as :func:`write` converts its events.

    Parameters:
        path: the output file; its folder must exist (else
            :class:`~neurodata.errors.PathNotFoundError`, also a ``FileNotFoundError``).
        info: sensor size and time origin for formats that store them.
        format: the event format; default chosen from the extension (see :func:`output_format`).
            ``.npz`` and ``.h5`` paths get plain column exports (arrays t, x, y, p).
        shift_time: subtract the first event's time from all times, so the output starts at 0
            (for Unix-time recordings written to formats with a bounded time field, like N-MNIST).
    """
    path = os.fspath(path)
    chosen = output_format(path, format)
    info = info or RecordingInfo(format=chosen.name)
    with atomic_output(path) as fileobj:
        writer = _make_writer(fileobj, info, chosen, shift_time, path)
        with _abandoned_on_error(writer):
            yield writer
        writer.close()


def write(
    path: str | os.PathLike,
    events: np.ndarray,
    info: RecordingInfo | None = None,
    format: str | None = None,
    shift_time: bool = False,
) -> None:
    """Write ``events`` to ``path`` in ``format`` (default: chosen from the extension).

    Parameters:
        path: the output file, written atomically (nothing appears on failure).
        events: a structured array with ``t, x, y, p`` fields (converted by
            :func:`~neurodata.events.as_events`).
        info: sensor size, time origin and metadata for the header; None: unknown.
        format: an event format name, or None to choose by the extension (``.npz``/``.h5`` are
            column exports; ``.raw`` is ``evt3``).
        shift_time: make the output start at t = 0 (see :func:`open_writer`).
    """
    with open_writer(path, info, format, shift_time) as writer:
        writer.write(events)
