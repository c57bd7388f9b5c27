"""Write event arrays to any writable format, atomically: readers never see a half-written file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np

from .events import RecordingInfo, as_events
from .export import EXPORTS
from .formats import writer_for_path
from .formats.base import Writer
from .localfs import atomic_output


@contextlib.contextmanager
def open_writer(
    path: str | os.PathLike, info: RecordingInfo | None = None, format: str | None = None
) -> Iterator[Writer]:
    """A streaming writer: call ``.write(chunk)`` repeatedly; the file appears whole on exit.

    ``.npz`` and ``.h5`` paths get plain column exports (arrays t, x, y, p); other paths get the
    event format named by ``format`` or by the extension.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if format is None and ext in EXPORTS:
        make_writer = EXPORTS[ext]
    else:
        make_writer = writer_for_path(path, format).make_writer
    info = info or RecordingInfo(format=ext.lstrip("."))
    with atomic_output(path) as fileobj:
        writer = make_writer(fileobj, info)
        yield writer
        writer.close()


def write(
    path: str | os.PathLike,
    events: np.ndarray,
    info: RecordingInfo | None = None,
    format: str | None = None,
) -> None:
    """Write ``events`` to ``path`` in ``format`` (default: chosen from the extension)."""
    with open_writer(path, info, format) as writer:
        writer.write(as_events(events))
