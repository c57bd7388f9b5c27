"""How hard network reads insist, shared by downloads (:mod:`neurodata.datasets.download`) and remote
cache reads (:mod:`neurodata.cache.fetch`): a :class:`RetryPolicy` of timeouts and back-off, and
:func:`unreachable`, which tells a host that cannot be reached at all (DNS failure, connection
refused) from a transient fault (reset, timeout, cut body) worth retrying.

A leaf module, like :mod:`neurodata.localfs`: it imports nothing from neurodata.
"""

from __future__ import annotations

import socket
import urllib.error
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Timing of network reads from one URL.

    Parameters:
        retries: transient failures in a row before giving up (an attempt that delivered new bytes
            resets the count).
        backoff: the first sleep between attempts, in seconds; it doubles after each failure.
        max_backoff: the longest sleep, in seconds.
        give_up_after: seconds a URL may keep failing without delivering a new byte (attempts and
            sleeps included) before it is given up, however many retries remain.
        timeout: seconds any single network operation (connect, each read) may take; a stalled
            server is a transient failure after this long.
    """

    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    give_up_after: float = 300.0
    timeout: float = 60.0

    def delay(self, attempt: int) -> float:
        """The sleep before retry number ``attempt`` (from 1)."""
        return min(self.max_backoff, self.backoff * 2 ** (attempt - 1))


def unreachable(exc: BaseException) -> str | None:
    """Why ``exc`` means the host cannot be reached at all, or None for any other failure.

    Recognises the standard library's errors (``socket.gaierror``, ``ConnectionRefusedError``, also
    wrapped in ``urllib.error.URLError``) and, through their ``__cause__``/``os_error`` chain, those
    of fsspec backends (aiohttp's connector errors wrap the same ``OSError``).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return f"the host name does not resolve ({current.strerror or current})"
        if isinstance(current, ConnectionRefusedError):
            return "the connection was refused"
        if isinstance(current, urllib.error.URLError) and isinstance(current.reason, BaseException):
            current = current.reason
            continue
        nested = getattr(current, "os_error", None)
        current = nested if isinstance(nested, BaseException) else (current.__cause__ or current.__context__)
    return None


DEFAULT_RETRY = RetryPolicy()
"""The policy used when a caller gives none."""
