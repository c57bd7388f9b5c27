"""Error types that carry where the problem is, so users see the file, offset or URL at fault."""

from __future__ import annotations


class NeurodataError(Exception):
    """Base class for every error neurodata raises on purpose; the CLI prints these without traceback."""


class FormatError(NeurodataError, ValueError):
    """A file does not follow its format: names the source, the byte offset and what was expected.

    Args:
        source: The file's path or URL, or None for an unnamed stream (shown as ``<stream>``).
        offset: Byte offset in ``source`` where the problem is, or None when it is not one place.
        message: What was found and what was expected.
    """

    def __init__(self, source: str | None, offset: int | None, message: str):
        self.source = source
        self.offset = offset
        self.message = message
        where = source or "<stream>"
        if offset is not None:
            where += f": at byte {offset}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self):  # raised in pool workers (prepare's decoders), re-raised in their parent
        return type(self), (self.source, self.offset, self.message)


class UnknownFormatError(FormatError):
    """No decoder recognises the file's header bytes (and the extension does not settle it)."""



class PathNotFoundError(NeurodataError, FileNotFoundError):
    """A file to read, or the folder to write a file into, does not exist; the message names the
    user's path (never a temporary file), and ``except FileNotFoundError`` still catches it."""


class CannotWriteError(NeurodataError, PermissionError):
    """A file cannot be created where asked (no permission, a read-only or virtual filesystem); the
    message names the user's path, and ``except PermissionError`` (or ``OSError``) still catches it."""
