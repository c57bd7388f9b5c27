"""Registry of event file formats and detection from header bytes.

Each format module defines ``SPEC``, a :class:`~neurodata.formats.base.FormatSpec` (or ``SPECS``, several). Detection asks
every format's ``sniff`` about the first bytes of the file; formats without a magic number (N-MNIST
``.bin``) are chosen by extension only when no magic matched.
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
    for spec in FORMATS.values():
        if spec.sniff(head):
            return spec
    ext = os.path.splitext(source.split("?")[0])[1].lower()
    for spec in FORMATS.values():
        if ext in spec.extensions:
            return spec
    raise UnknownFormatError(
        source, 0, f"no known event format recognises the first bytes {head[:16]!r} or the extension {ext!r}"
    )


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
                f"{path}: extension {ext!r} does not name one writable format (candidates: {options}); pass format="
            )
        spec = matches[0]
    if spec.make_writer is None:
        raise NeurodataError(f"format {spec.name!r} can be read but not written")
    return spec
