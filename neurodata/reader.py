"""Open any supported recording (path or fsspec URL) and stream it in bounded memory.

:func:`open_recording` detects the format from the header bytes, parses the header and returns a
:class:`Recording`; its :meth:`Recording.chunks` yields event arrays by event count or time
window while holding at most one read block plus one output chunk in memory.
:func:`read` returns a whole recording at once.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

import fsspec
import numpy as np

from .arguments import finite_number, whole_number
from .errors import FormatError, NeurodataError, PathNotFoundError
from .events import RecordingInfo, concatenate, join
from .formats import detect_format, format_of, get_format
from .formats.base import FormatSpec, Header
from .representations.kernels import first_at_or_after

DEFAULT_BLOCK_BYTES = 8 << 20
WHOLE_READ_LIMIT = 1 << 30
SMALL_FILE_BYTES = 64 << 20
FIRST_READ_BYTES = 256 << 10
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # O_BINARY: no newline translation on Windows


def _open_error(name: str, err: OSError) -> NeurodataError:
    """The one-line error for a source that cannot be opened or read."""
    if isinstance(err, FileNotFoundError):
        return PathNotFoundError(f"{name}: no such file")
    if isinstance(err, IsADirectoryError):
        return NeurodataError(f"{name}: is a directory, not a recording")
    return NeurodataError(f"{name}: cannot open ({err})")


def _open_binary(source: str | os.PathLike) -> tuple[BinaryIO, str]:
    name = os.fspath(source)
    try:
        if "://" in name:
            return fsspec.open(name, "rb").open(), name
        return open(name, "rb"), name
    except OSError as err:
        raise _open_error(name, err) from err
    except (ValueError, ImportError) as err:  # fsspec: a protocol it does not know, or whose package is missing
        raise NeurodataError(f"{name}: cannot open this URL ({err})") from None


def _read_small_local(name: str) -> bytes | None:
    """The whole content of a small local file, read in two system calls in the usual case.

    None for URLs and regular files of ``SMALL_FILE_BYTES`` or more, which the streaming path opens
    instead; pipes and devices (no size, no seeking) are read to their end. Used by :func:`read`,
    where one dataset sample per call makes every system call count: a file under
    ``FIRST_READ_BYTES`` (an N-MNIST sample) is read whole by the first ``read``, and a second that
    returns nothing shows its end, with no ``fstat`` (whose result costs as much as a read to build).
    """
    if "://" in name:
        return None
    try:
        fd = os.open(name, _OPEN_FLAGS)
    except OSError as err:
        raise _open_error(name, err) from err
    try:
        data = os.read(fd, FIRST_READ_BYTES)
        if len(data) < FIRST_READ_BYTES and not (more := os.read(fd, FIRST_READ_BYTES)):
            return data
        status = os.fstat(fd)
        if stat.S_ISREG(status.st_mode):
            if status.st_size >= SMALL_FILE_BYTES:
                return None
            os.lseek(fd, 0, os.SEEK_SET)  # read it again in one piece: no join of the parts
            data = os.read(fd, status.st_size + 1)  # one byte more than the size shows the end
            if len(data) == status.st_size:
                return data
            parts = [data]  # a short read, or the file changed since fstat: read on to the end
        else:
            parts = [data, more] if len(data) < FIRST_READ_BYTES else [data]
        while part := os.read(fd, DEFAULT_BLOCK_BYTES):
            parts.append(part)
        return b"".join(parts)
    except OSError as err:
        raise _open_error(name, err) from err
    finally:
        os.close(fd)


class Recording:
    """An open recording: its :class:`~neurodata.events.RecordingInfo` and a streaming decoder.

    Made by :func:`open_recording`, which passes ``fileobj`` (the open binary file, closed by
    :meth:`close`), ``source`` (its name in error messages), ``spec`` (the detected
    :class:`~neurodata.formats.base.FormatSpec`, kept as ``format``) and ``header`` (the parsed header).
    """

    def __init__(self, fileobj: BinaryIO, source: str, spec: FormatSpec, header: Header):
        self._file = fileobj
        self.source = source
        self.format = spec
        self.header = header
        self.position = header.data_offset  # file bytes decoded so far, for progress reporting

    @property
    def info(self) -> RecordingInfo:
        """Sensor size, format, time origin and the header's metadata."""
        return self.header.info

    def blocks(self, block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[np.ndarray]:
        """Decode the file ``block_bytes`` at a time, yielding the event array of each non-empty block."""
        decoder = self.format.make_decoder(self.header, self.source)
        self._file.seek(self.header.data_offset)
        offset = self.header.data_offset
        pending = b""
        want = block_bytes
        while True:
            data = self._file.read(want)
            final = len(data) < want
            buf = pending + data if pending else data
            block = np.frombuffer(buf, dtype=np.uint8)
            events, consumed = decoder.decode(block, offset, final)
            self.position = offset + consumed
            if events.size:
                yield events
            if final:
                if consumed != len(buf):
                    raise FormatError(
                        self.source, offset + consumed, "decoder stopped before the end of the file"
                    )
                return
            if consumed == 0:
                want *= 2  # a record larger than the block: read more before decoding again
            else:
                want = block_bytes
            pending = buf[consumed:]
            offset += consumed

    def chunks(
        self,
        n_events: int | None = None,
        time_window: int | None = None,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
    ) -> Iterator[np.ndarray]:
        """Yield event arrays of ``n_events`` events each, or covering ``time_window`` microseconds each.

        Time windows are half-open ``[t0 + k*w, t0 + (k+1)*w)`` with ``t0`` the first event's time;
        empty windows inside the recording are yielded as empty arrays so that window ``k`` is
        always the ``k``-th item. With neither argument, yields the decoder's natural blocks.
        ``block_bytes`` is how much of the file is decoded at a time.
        """
        if n_events is not None and time_window is not None:
            raise ValueError("give n_events or time_window, not both")
        if n_events is not None:
            n_events = whole_number("n_events", n_events, minimum=1)
        if time_window is not None:
            finite_number("time_window", time_window, above=0)
        blocks = self.blocks(block_bytes)
        if n_events is not None:
            return rechunk_by_count(blocks, n_events)
        if time_window is not None:
            return rechunk_by_time(blocks, time_window)
        return blocks

    @property
    def size(self) -> int | None:
        """Total file size in bytes, when the file object can tell."""
        return _file_size(self._file)

    def read(self) -> np.ndarray:
        """Decode the whole recording into one event array.

        A local file is decoded straight from a memory map in one call (no copy of the file into
        Python bytes); other sources are read in one block when their size is known.
        """
        mapped = self._memory_map()
        if mapped is not None:
            self.position = self.header.data_offset + len(mapped)
            return _decode_all(self.format, self.header, self.source, mapped)
        size = self.size
        remaining = None if size is None else size - self.header.data_offset
        # one read of exactly the rest of the file (+1 byte to see the end) when it fits comfortably
        block = (
            remaining + 1 if remaining is not None and remaining < WHOLE_READ_LIMIT else DEFAULT_BLOCK_BYTES
        )
        return concatenate(list(self.blocks(block)))

    def _memory_map(self) -> np.ndarray | None:
        """The event data as one read-only uint8 array without copying: a memory map of a local
        file, or the bytes of an in-memory file; None for other sources and for empty data."""
        if isinstance(self._file, io.BytesIO):
            data = np.frombuffer(self._file.getvalue(), dtype=np.uint8)[self.header.data_offset :]
            return data if len(data) else None
        if not isinstance(self._file, io.BufferedReader):
            return None
        size = os.fstat(self._file.fileno()).st_size
        if size <= self.header.data_offset:
            return None
        return np.memmap(self._file, dtype=np.uint8, mode="r", offset=self.header.data_offset)

    def close(self) -> None:
        """Close the file (also on leaving a ``with`` block)."""
        self._file.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _file_size(fileobj: BinaryIO) -> int | None:
    try:
        here = fileobj.tell()
        end = fileobj.seek(0, os.SEEK_END)
        fileobj.seek(here)
        return end
    except (OSError, ValueError):
        return None


def rechunk_by_count(blocks: Iterator[np.ndarray], n_events: int) -> Iterator[np.ndarray]:
    """Regroup ``blocks``, a stream of event arrays, into arrays of exactly ``n_events`` (the last
    may be shorter); parts that lie side by side in one array are joined as a view of it."""
    if n_events <= 0:
        raise ValueError(f"n_events must be positive, got {n_events}")
    parts: list[np.ndarray] = []
    held = 0
    for block in blocks:
        start = 0
        while start < len(block):
            take = min(n_events - held, len(block) - start)
            parts.append(block[start : start + take])
            held += take
            start += take
            if held == n_events:
                yield join(parts)
                parts, held = [], 0
    if held:
        yield join(parts)


def rechunk_by_time(blocks: Iterator[np.ndarray], time_window: int, skip_empty: bool = False) -> Iterator[np.ndarray]:
    """Regroup ``blocks``, a time-ordered stream of event arrays, into consecutive windows of
    ``time_window`` us; parts that lie side by side in one array are joined as a view of it.

    Args:
        blocks: Event arrays in time order.
        time_window: The windows' length in microseconds.
        skip_empty: Leave out the empty windows of a gap between events (their count is the gap's
            length over ``time_window``: without this, 10**9 for a gap of 10**12 us at 1 ms).
    """
    if time_window <= 0:
        raise ValueError(f"time_window must be positive, got {time_window}")
    parts: list[np.ndarray] = []
    end: int | None = None
    for block in blocks:
        if end is None and len(block):
            end = int(block["t"][0]) + time_window
        while len(block):
            assert end is not None
            cut = first_at_or_after(block["t"], end) if block["t"][-1] >= end else len(block)
            parts.append(block[:cut])
            block = block[cut:]
            if len(block):
                yield join(parts)
                parts = []
                end += time_window
                gap = int(block["t"][0]) - end
                if skip_empty and gap >= 0:
                    end += (gap // time_window + 1) * time_window
    if parts:
        yield join(parts)


def open_recording(source: str | os.PathLike, format: str | None = None) -> Recording:
    """Open a recording at a path or fsspec URL, detecting its format unless ``format`` names it.

    Args:
        source: A local path or an fsspec URL.
        format: A format name (see ``neurodata formats``); None detects it from the header and
            the file name.

    Returns:
        A :class:`Recording`, to use as a context manager or close.

    Raises:
        FormatError: The file is empty, of no known format, or its header is damaged (the
            message names the file and offset).
    """
    fileobj, name = _open_binary(source)
    return _open_fileobj(fileobj, name, format)


def _open_fileobj(fileobj: BinaryIO, name: str, format: str | None) -> Recording:
    try:
        if _file_size(fileobj) == 0:
            raise _empty_file_error(name)
        spec = get_format(format) if format else detect_format(fileobj, name)
        fileobj.seek(0)
        header = spec.parse_header(fileobj, name)
        header.info.source = name
        return Recording(fileobj, name, spec, header)
    except BaseException:
        fileobj.close()
        raise


def read(
    source: str | os.PathLike, format: str | None = None, return_info: bool = False
) -> np.ndarray | tuple[np.ndarray, RecordingInfo]:
    """Read a whole recording as a structured event array (``t, x, y, p``).

    Args:
        source: A local path or an fsspec URL.
        format: A format name; None detects it.
        return_info: Also return the recording's :class:`~neurodata.events.RecordingInfo`.

    Returns:
        The events (:data:`~neurodata.events.EVENT_DTYPE`), or ``(events, info)`` with
        ``return_info=True``, where ``info`` holds sensor size, format and time origin.
    """
    name = os.fspath(source)
    data = _read_small_local(name)  # small local file (e.g. one dataset sample): one read, then in memory
    if data is not None:
        events, info = _decode_in_memory(data, name, format, return_info)
    else:
        with _open_fileobj(_open_binary(name)[0], name, format) as rec:
            events, info = rec.read(), rec.info
    return (events, info) if return_info else events


def _decode_in_memory(
    data: bytes, name: str, format: str | None, with_info: bool
) -> tuple[np.ndarray, RecordingInfo | None]:
    """Decode a whole recording held in memory in one decoder call, as :meth:`Recording.read` decodes
    a mapped file, without the :class:`Recording` around it (one dataset sample per call makes it
    count); a header-less format without even a header or decoder, unless ``with_info``."""
    if not data:
        raise _empty_file_error(name)
    spec = get_format(format) if format else format_of(data, name)
    if spec.decode_whole is not None and not with_info:
        return spec.decode_whole(np.frombuffer(data, dtype=np.uint8), name), None
    header = spec.parse_header(io.BytesIO(data), name)
    header.info.source = name
    return _decode_all(spec, header, name, np.frombuffer(data, dtype=np.uint8)[header.data_offset :]), header.info


def _decode_all(spec: FormatSpec, header: Header, source: str, records: np.ndarray) -> np.ndarray:
    """The events of ``records``, all of a file's bytes after its header, in one decoder call."""
    events, _ = spec.make_decoder(header, source).decode(records, header.data_offset, True)
    return events


def _empty_file_error(name: str) -> FormatError:
    """No header and no records: a failed copy, not a recording of 0 events."""
    return FormatError(name, None, "empty file (0 bytes), not a recording")


def read_buffer(data: bytes, name: str, format: str | None = None) -> np.ndarray:
    """Decode a whole recording held in memory (e.g. an archive member) as :func:`read` decodes a file.

    Args:
        data: The recording's bytes, header included.
        name: What errors call it (``archive.zip:member.bin``); also used to detect the format.
        format: A format name; None detects it.

    Returns:
        The events (:data:`~neurodata.events.EVENT_DTYPE`).
    """
    return _decode_in_memory(data, name, format, with_info=False)[0]


def iter_chunks(
    source: str | os.PathLike,
    n_events: int | None = None,
    time_window: int | None = None,
    format: str | None = None,
) -> Iterator[np.ndarray]:
    """Stream a recording in chunks of ``n_events`` events or ``time_window`` microseconds.

    Args:
        source: A local path or an fsspec URL.
        n_events: Events per chunk (the last may be shorter).
        time_window: Microseconds per chunk, as :meth:`Recording.chunks`; give one of the two, or
            neither for the decoder's blocks.
        format: A format name; None detects it.
    """
    with open_recording(source, format) as rec:
        yield from rec.chunks(n_events=n_events, time_window=time_window)
