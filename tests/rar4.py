"""Build RAR 4.x archives with stored (uncompressed) members, for extraction tests.

No free tool writes RAR, so tests make their own from the format's published layout (RAR 3.x/4.x
technote: marker block, archive header, one file header + data per member, end block; header CRC is
the low 16 bits of CRC32 over the header after the CRC field; paths use ``\\`` as the separator on
every host, which is how bsdtar, unar and 7z all read them). Reading them is left to real tools
(bsdtar, unar, 7z), which is what the extraction tests exercise.
"""

from __future__ import annotations

import struct
import zlib

MARKER = b"Rar!\x1a\x07\x00"
HOST_UNIX = 3
STORE = 0x30
LONG_BLOCK = 0x8000
DIRECTORY = 0x00E0
DOS_TIME_2020_01_01 = (40 << 25) | (1 << 21) | (1 << 16)


def _block(head_type: int, flags: int, body: bytes) -> bytes:
    header = struct.pack("<BHH", head_type, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(header) & 0xFFFF) + header


def _member(name: str, data: bytes, mode: int, directory: bool) -> bytes:
    encoded = name.replace("/", "\\").encode()
    fields = struct.pack(
        "<IIBIIBBHI",
        len(data),
        len(data),
        HOST_UNIX,
        zlib.crc32(data),
        DOS_TIME_2020_01_01,
        29,
        STORE,
        len(encoded),
        mode,
    )
    flags = LONG_BLOCK | (DIRECTORY if directory else 0)
    return _block(0x74, flags, fields + encoded) + data


def rar4(members: list[tuple[str, bytes | None, str]]) -> bytes:
    """``members``: ``(name, data, kind)`` with kind ``"file"``, ``"dir"`` (data None) or ``"symlink"``
    (data is the link target). Returns the archive's bytes."""
    out = [MARKER, _block(0x73, 0, bytes(6))]
    for name, data, kind in members:
        if kind == "dir":
            out.append(_member(name, b"", 0o40755, directory=True))
        elif kind == "symlink":
            out.append(_member(name, data, 0o120777, directory=False))
        else:
            out.append(_member(name, data, 0o100644, directory=False))
    out.append(_block(0x7B, 0x4000, b""))
    return b"".join(out)
