"""The error raised for a missing, incomplete, corrupt or conflicting dataset cache, and the
warning for one whose chunks carry no checksums."""

from __future__ import annotations

import warnings

from ..errors import NeurodataError


class CacheError(NeurodataError):
    """A cache cannot be read, built or committed; the message names the store URL and the part at fault."""


class UncheckedCacheWarning(UserWarning):
    """Stored data written before chunk checksums existed (cache layout 3 or older, frames stored
    before it) is read: damage to its chunks goes undetected on read."""


_WARNED: set[str] = set()  # what this process has warned about (forked workers inherit it)


def warn_unchecked(url: str, what: str, rebuild: str) -> None:
    """Warn once per process and ``url`` that ``what`` (stored there) has no checksum per chunk;
    ``rebuild``: how to write it anew, checked."""
    if url in _WARNED:
        return
    _WARNED.add(url)
    warnings.warn(
        f"{url}: {what} stores no checksum per chunk, so reads cannot detect a damaged chunk; {rebuild}",
        UncheckedCacheWarning,
        stacklevel=4,
    )
