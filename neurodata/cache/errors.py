"""The error raised for a missing, incomplete, corrupt or conflicting dataset cache."""

from __future__ import annotations

from ..errors import NeurodataError


class CacheError(NeurodataError):
    """A cache cannot be read, built or committed; the message names the store URL and the part at fault."""
