"""Registry of event file formats and detection from header bytes.

Each format module defines ``SPEC``, a :class:`~neurodata.formats.base.FormatSpec` (or ``SPECS``, several). Detection asks
the formats whose ``magic`` the file starts with (and their ``sniff``) about its first bytes; formats
without a magic number (N-MNIST ``.bin``) are chosen by extension only when no magic matched.
"""

from __future__ import annotations

import importlib
import os
from typing import BinaryIO

from ..errors import NeurodataError, UnknownFormatError
from .base import FormatSpec

_MODULES = ("evt2", "evt3", "dat", "aedat2", "aedat31", "aedat4", "esimagenet", "nmnist", "columns", "es")
SNIFF_BYTES = 4096


def _load_specs() -> dict[str, FormatSpec]:
    specs = {}
    for module in _MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{module}":
                raise
            continue  # format module not written yet
        for spec in getattr(mod, "SPECS", None) or (mod.SPEC,):  # a module may define several
            specs[spec.name] = spec
    return specs


FORMATS: dict[str, FormatSpec] = _load_specs()


def get_format(name: str) -> FormatSpec:
    """The format called ``name`` (as listed by ``neurodata formats``)."""
    try:
        return FORMATS[name.lower()]
    except KeyError:
        raise NeurodataError(
            f"unknown format {name!r}; known formats: {', '.join(sorted(FORMATS))}"
        ) from None


def _by_first_byte() -> dict[bytes, tuple[FormatSpec, ...]]:
    """The formats with a magic, by its first byte, in registry order (the order sniffing tries them)."""
    table: dict[bytes, list[FormatSpec]] = {}
    for spec in FORMATS.values():
        if spec.magic:
            table.setdefault(spec.magic[:1], []).append(spec)
    return {first: tuple(specs) for first, specs in table.items()}


def _by_extension() -> dict[str, FormatSpec]:
    """The format each extension falls back to: the first in registry order that lists it."""
    table: dict[str, FormatSpec] = {}
    for spec in FORMATS.values():
        for ext in spec.extensions:
            table.setdefault(ext, spec)
    return table


_BY_FIRST_BYTE = _by_first_byte()
_BY_EXTENSION = _by_extension()


_NOT_BEFORE_AN_EXTENSION = "./" + os.sep + (os.altsep or "")  # splitext's extension needs a name before its dot


def extension(source: str) -> str:
    """The lower-case extension of a path or URL, without its ``?query``, as :func:`os.path.splitext` finds it.

    The usual name (``.../name.ext``, no query) is answered by one split, a dataset sample per call
    making :func:`os.path.splitext` count; any other goes through ``splitext``.

    Args:
        source: A local path or an fsspec URL.
    """
    before, _, ext = source.rpartition(".")
    # letters and digits after the last dot, and before it a character of the same name: splitext's answer
    if ext.isalnum() and before and before[-1] not in _NOT_BEFORE_AN_EXTENSION and "?" not in source:
        return "." + ext.lower()
    return os.path.splitext(source.split("?")[0])[1].lower()


def detect_format(fileobj: BinaryIO, source: str) -> FormatSpec:
    """Pick the format of an open file from its first bytes, falling back to the extension.

    Args:
        fileobj: The file, opened in binary mode and seekable (left at offset 0).
        source: The file's path or URL; its extension is the fallback.

    Raises:
        UnknownFormatError: Neither the first bytes nor the extension match a format.
    """
    fileobj.seek(0)
    head = fileobj.read(SNIFF_BYTES)
    fileobj.seek(0)
    return format_of(head, source)


def format_of(head: bytes, source: str) -> FormatSpec:
    """The format whose magic (and sniff) the first bytes of a file match, else the one its extension names.

    Only the formats whose magic starts with the first byte are asked, so a file with no magic
    (N-MNIST ``.bin``) reaches its extension after one lookup.

    Args:
        head: The file's first bytes: at least ``SNIFF_BYTES`` of them (or all of a shorter file), of
            which the sniffs see ``SNIFF_BYTES``; a whole file in memory will do, uncopied.
        source: The file's path or URL; its extension is the fallback.

    Raises:
        UnknownFormatError: Neither the first bytes nor the extension match a format.
    """
    for spec in _BY_FIRST_BYTE.get(head[:1], ()):
        if head.startswith(spec.magic) and (spec.sniff is None or spec.sniff(head[:SNIFF_BYTES])):
            return spec
    ext = extension(source)
    spec = _BY_EXTENSION.get(ext)
    if spec is None:
        raise UnknownFormatError(
            source, 0, f"no known event format recognises the first bytes {head[:16]!r} or the extension {ext!r}"
        )
    return spec


def writer_for_path(path: str, format: str | None = None) -> FormatSpec:
    """The writable format for an output path, by explicit name or by its extension."""
    if format:
        spec = get_format(format)
    else:
        ext = os.path.splitext(path)[1].lower()
        matches = [s for s in FORMATS.values() if ext in s.extensions and s.make_writer]
        if len(matches) != 1:
            options = ", ".join(s.name for s in matches) or "none"
            raise NeurodataError(
                f"{path}: extension {ext!r} does not name one writable format (candidates: {options}); pass format= "
                "(--out-format on the command line)"
            )
        spec = matches[0]
    if spec.make_writer is None:
        raise NeurodataError(f"format {spec.name!r} can be read but not written")
    return spec
