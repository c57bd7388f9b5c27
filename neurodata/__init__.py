"""neurodata: fast, correct event-camera data: decoders, datasets, representations and loaders."""

from . import _source_layout
from .errors import FormatError, NeurodataError, PathNotFoundError
from .events import EVENT_DTYPE, RecordingInfo, as_events, make_events
from .reader import Recording, iter_chunks, open_recording, read
from .writer import open_writer, write

__version__ = "0.1.0"  # the one source: pyproject.toml reads it (``dynamic = ["version"]``)

_source_layout.install()


def __getattr__(name: str):
    """``neurodata.load`` is imported on first use: it pulls in torch, which plain decoding never needs."""
    if name == "load":
        from .loaders import load

        return load
    raise AttributeError(f"module 'neurodata' has no attribute {name!r}")


__all__ = [
    "EVENT_DTYPE",
    "FormatError",
    "NeurodataError",
    "PathNotFoundError",
    "Recording",
    "RecordingInfo",
    "as_events",
    "iter_chunks",
    "load",
    "make_events",
    "open_recording",
    "open_writer",
    "read",
    "write",
]
