"""Live event streams: receive, decode, frame and classify events as a camera sends them.

:func:`open` opens a DV network stream (``tcp://``, ``unix://``), faery's UDP formats (``udp://``),
RAW EVT 2.0/3.0 bytes from a pipe, standard input or a growing file, or a recording played at its
own pace; :class:`Replay` serves a recording the same ways; :func:`classify` runs an SNN on sliding
windows of a stream with its state carried across windows.
"""

from .replay import Replay, ReplayOptions
from .sources import LiveOptions, LiveSource, open
from .stats import LiveStats
from .urls import Endpoint, parse_endpoint


def __getattr__(name: str):
    if name == "classify":  # imported on use: it needs torch, which receiving alone does not
        from .inference import classify

        return classify
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Endpoint",
    "LiveOptions",
    "LiveSource",
    "LiveStats",
    "Replay",
    "ReplayOptions",
    "classify",
    "open",
    "parse_endpoint",
]
