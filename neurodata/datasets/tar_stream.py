"""Walk the members of a tar byte stream, front to back, reading each member's data in one call.

``tarfile``'s stream mode copies every member's bytes several times (joined from 10 KiB reads, then
sliced); reading big recordings out of a compressed archive, that cost as much as inflating it.
Headers are still parsed by ``tarfile.TarInfo.frombuf`` (checksums, base-256 sizes, the ustar
prefix); this module follows GNU long names and pax ``path``/``size`` records itself, and refuses
GNU sparse members (no dataset ships them; their data is not the file's bytes).
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator
from typing import BinaryIO, NamedTuple

BLOCK = 512
_SKIP_CHUNK = 1 << 20
_MAX_READ = 64 << 20
_EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)


class TarFormatError(tarfile.TarError):
    """The stream is not a readable tar: truncated, or a member this reader does not take."""


class StreamMember(NamedTuple):
    """One member met in the stream.

    Attributes:
        info: Its header, with the name and size that long-name and pax records gave it.
        offset: Where its data starts in the (decompressed) stream, in bytes.
        read: Returns its data; call it before asking for the next member, or the data is skipped.
    """

    info: tarfile.TarInfo
    offset: int
    read: Callable[[], bytes]


def walk(stream: BinaryIO) -> Iterator[StreamMember]:
    """Each member of the tar ``stream`` in order (directories, links and special files included: the
    caller decides what to refuse).

    Args:
        stream: The archive's decompressed bytes, read sequentially.

    Raises:
        TarFormatError: The stream ends inside a header or a member's data, or holds a sparse member.
        tarfile.HeaderError: A damaged header (its checksum does not match).
    """
    position = 0
    long_name: str | None = None
    pax: dict[str, str] = {}
    while True:
        block = _read_exact(stream, BLOCK, allow_eof=True)
        if not block or block == bytes(BLOCK):
            return  # the end-of-archive marker (or, as tarfile accepts, the stream's end at a header)
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        position += BLOCK
        padded = -(-info.size // BLOCK) * BLOCK
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK) or info.type in _EXTENDED:
            data = _read_exact(stream, padded)[: info.size]
            position += padded
            if info.type == tarfile.GNUTYPE_LONGNAME:
                long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif info.type != tarfile.XGLTYPE and info.type != tarfile.GNUTYPE_LONGLINK:
                pax = _pax_records(data)
            continue
        if info.type == tarfile.GNUTYPE_SPARSE:
            raise TarFormatError(f"member {info.name!r} is a GNU sparse file, which is not read")
        if long_name is not None:
            info.name = long_name
        if "path" in pax:
            info.name = pax["path"]
        if "size" in pax:
            info.size = int(pax["size"])
            padded = -(-info.size // BLOCK) * BLOCK
        long_name, pax = None, {}
        taken = False

        def read(size: int = info.size, name: str = info.name) -> bytes:
            nonlocal taken
            taken = True
            data = _read_exact(stream, size, what=f"member {name!r}")
            _read_exact(stream, -size % BLOCK, what=f"member {name!r}")
            return data

        yield StreamMember(info, position, read)
        if not taken:
            _skip(stream, padded, info.name)
        position += padded


def _pax_records(data: bytes) -> dict[str, str]:
    """The ``key=value`` records of a pax extended header (``"<length> <key>=<value>\\n"`` each)."""
    records, at = {}, 0
    try:
        while at < len(data):
            space = data.index(b" ", at)
            length = int(data[at:space])
            if length <= space - at or at + length > len(data) or data[at + length - 1] != 0x0A:
                raise ValueError(length)  # a record must end, with its newline, inside the header
            key, _, value = data[space + 1 : at + length - 1].partition(b"=")
            records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
            at += length
        if "size" in records and int(records["size"]) < 0:
            raise ValueError(records["size"])
    except ValueError:
        raise TarFormatError(f"damaged pax header record at byte {at}") from None
    return records


def _read_exact(stream: BinaryIO, size: int, allow_eof: bool = False, what: str = "a header") -> bytes:
    """``size`` bytes of ``stream``, read in pieces of at most :data:`_MAX_READ` (a damaged header may
    claim terabytes: nothing is allocated before the bytes arrive)."""
    pieces, got = [], 0
    while got < size:
        more = stream.read(min(size - got, _MAX_READ))
        if not more:
            if allow_eof and not got:
                return b""
            raise TarFormatError(f"archive ends inside {what} ({got} of {size} bytes)")
        pieces.append(more)
        got += len(more)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _skip(stream: BinaryIO, size: int, name: str) -> None:
    while size > 0:
        chunk = stream.read(min(size, _SKIP_CHUNK))
        if not chunk:
            raise TarFormatError(f"archive ends inside member {name!r}")
        size -= len(chunk)
