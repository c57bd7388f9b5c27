"""neurodata: fast, correct event-camera data: decoders, datasets, representations and loaders."""

from . import _source_layout
from ._lazy import lazy_names
from .errors import FormatError, NeurodataError, PathNotFoundError

__version__ = "0.1.0"  # the one source: pyproject.toml reads it (``dynamic = ["version"]``)

_source_layout.install()


# Public names imported on first use: the decoders pull in Numba and ``load`` pulls in torch, which
# ``neurodata --help`` (and plain decoding, for torch) never needs.
_LAZY = {
    "EVENT_DTYPE": ".events",
    "RecordingInfo": ".events",
    "as_events": ".events",
    "make_events": ".events",
    "Recording": ".reader",
    "iter_chunks": ".reader",
    "open_recording": ".reader",
    "read": ".reader",
    "read_buffer": ".reader",
    "open_writer": ".writer",
    "write": ".writer",
    "load": ".loaders",
}
__getattr__, __dir__ = lazy_names(globals(), _LAZY)

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
    "read_buffer",
    "write",
]
