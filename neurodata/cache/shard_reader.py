"""Row ranges of the cache's sharded Zarr v3 arrays, read straight from the shard bytes: the read
side of the shard format :mod:`.shards` writes.

zarr-python decodes each inner chunk as its own asyncio task handed to a thread, and on object
stores fetches each inner chunk with its own request; for a 200 k-event sample that costs several
times the decompression on local disk, and 16 requests per sample remotely. The cache's arrays
have one simple layout, checked here from each array's ``zarr.json`` before it is used
(:func:`shard_layout`): ``sharding_indexed`` over the first axis only, inner codecs ``bytes``
(little endian) + ``blosc``, then ``crc32c`` in cache layout 4 (older caches have none), index
``bytes`` + ``crc32c`` at the end of the shard. For such arrays
:func:`fetch_spans` fetches row ranges of several arrays at once in two batched rounds of a
:class:`~.fetch.Fetcher`: the shard indexes not seen yet (then kept), then one byte span per
(array, shard) covering the needed inner chunks; :meth:`ShardedRows.assemble` then
Blosc-decompresses them, each chunk only after its CRC32C matched (where the chunks carry one).
Any other layout returns None from :func:`open_rows`, and the caller reads through zarr. A damaged
shard (index failing its CRC32C, a chunk failing its own, a short read, a chunk that does not
decompress to its size, a shard file gone after its index was read) is a CacheError naming the
array, and the shard or chunk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
from numcodecs import blosc

from .errors import CacheError
from .fetch import Fetcher, Request, merged_requests
from .shards import CRC_BYTES, crc_matches
from .shards import EMPTY as MISSING  # offset and length of an inner chunk that was never written
from .store import Location

INDEX_ENTRY = 16  # bytes per inner chunk in a shard index: little-endian uint64 offset and length
BLOSC_HEADER = 16  # holds the decompressed size at bytes 4-8 (little endian)


class ShardLayout(NamedTuple):
    """What a supported array's ``zarr.json`` says about its stored shards.

    Attributes:
        shape: The array's shape (sharded along the first axis).
        shard_rows: Rows per shard.
        chunk_rows: Rows per inner chunk.
        dtype: The stored dtype, little endian.
        checked: Each inner chunk ends with the CRC32C of its compressed bytes.
    """

    shape: tuple[int, ...]
    shard_rows: int
    chunk_rows: int
    dtype: np.dtype
    checked: bool


def shard_layout(meta: dict[str, Any]) -> ShardLayout | None:
    """The layout of an array from its ``zarr.json`` when it is the supported one, else None.

    Args:
        meta: The array's parsed ``zarr.json``.
    """
    try:
        shape = tuple(meta["shape"])
        shard = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
        (codec,) = meta["codecs"]
        config = codec["configuration"]
        inner = tuple(config["chunk_shape"])
        names = [c["name"] for c in config["codecs"]]
        index_names = [c["name"] for c in config["index_codecs"]]
        endian = {
            c.get("configuration", {}).get("endian", "little")
            for c in config["codecs"] + config["index_codecs"]
            if c["name"] == "bytes"
        }
        separator = meta["chunk_key_encoding"]["configuration"].get("separator", "/")
        ok = (
            codec["name"] == "sharding_indexed"
            and names in (["bytes", "blosc"], ["bytes", "blosc", "crc32c"])
            and index_names == ["bytes", "crc32c"]
            and config.get("index_location", "end") == "end"
            and endian <= {"little"}
            and meta["chunk_key_encoding"]["name"] == "default"
            and separator == "/"
            and len(shape) >= 1
            and shard[1:] == inner[1:] == shape[1:]
            and shard[0] % inner[0] == 0
            and not meta.get("storage_transformers")
        )
        dtype = np.dtype(meta["data_type"]).newbyteorder("<")
    except (KeyError, TypeError, ValueError):
        return None
    return ShardLayout(shape, shard[0], inner[0], dtype, names[-1] == "crc32c") if ok else None


class Piece(NamedTuple):
    """Rows ``[start, stop)`` of a read, held by the inner chunk ``chunk`` (its first row ``row0``);
    ``data``: the chunk's compressed bytes, None where it holds only the fill value."""

    row0: int
    start: int
    stop: int
    chunk: int
    data: memoryview | None


Span = tuple[int, memoryview]  # a fetched byte span of a shard: (its first byte's offset, its bytes)
Blobs = dict[int, Span | None]  # shard -> its fetched span, None: the shard is absent (all fill value)


class ShardedRows:
    """Layout and shard indexes of one supported array at ``folder`` (its store key); the I/O is
    :func:`fetch_spans`'s. ``where`` names the array in errors about its chunks (default: ``folder``).

    Args:
        folder: The array's store key.
        layout: What :func:`shard_layout` found.
        fill: The array's fill value (rows of absent chunks).
        where: How errors name the array.
    """

    def __init__(self, folder: str, layout: ShardLayout, fill: Any, where: str | None = None):
        self.folder = folder
        self.where = where or folder
        self.shape, self.shard_rows, self.chunk_rows, self.dtype, self.checked = layout
        self.fill = fill
        self.row_items = int(np.prod(self.shape[1:], dtype=np.int64))
        self.chunks_per_shard = self.shard_rows // self.chunk_rows
        # per shard, (offset, nbytes) of each inner chunk as Python ints (cheaper than numpy scalars for
        # the few entries a read looks at); None: the shard is absent (all fill value)
        self.indexes: dict[int, list[tuple[int, int]] | None] = {}

    def shard_path(self, shard: int) -> str:
        """The store key of stored shard number ``shard``."""
        return "/".join([self.folder, "c", str(shard), *(["0"] * (len(self.shape) - 1))])

    def shards(self, start: int, stop: int) -> range:
        """The shards holding rows ``[start, stop)`` (none when ``stop <= start``)."""
        return range(start // self.shard_rows, -(-stop // self.shard_rows)) if stop > start else range(0)

    def index_request(self, shard: int) -> Request:
        """The request for the index (and its CRC32C) at the end of shard number ``shard``."""
        return Request(self.shard_path(shard), -(self.chunks_per_shard * INDEX_ENTRY + CRC_BYTES), None)

    def set_index(self, shard: int, raw: bytes | None) -> None:
        """Parse a shard's index from the bytes at its end (None: the shard is not stored).

        Args:
            shard: The shard's number.
            raw: What :meth:`index_request` fetched, None for a missing shard file.
        """
        if raw is None:
            self.indexes[shard] = None
            return
        n = self.chunks_per_shard * INDEX_ENTRY
        if len(raw) != n + CRC_BYTES or not crc_matches(raw):
            raise CacheError(f"{self.shard_path(shard)}: shard index is truncated or fails its CRC32C")
        self.indexes[shard] = [
            tuple(entry) for entry in np.frombuffer(raw[:n], dtype="<u8").reshape(-1, 2).tolist()
        ]

    def _chunks(self, shard: int, start: int, stop: int) -> tuple[int, int]:
        """First and last inner chunk of ``shard`` holding rows of ``[start, stop)``."""
        base = shard * self.shard_rows
        lo, hi = max(start, base), min(stop, base + self.shard_rows)
        return (lo - base) // self.chunk_rows, (hi - 1 - base) // self.chunk_rows

    def span(self, shard: int, start: int, stop: int) -> tuple[int, int] | None:
        """The byte range of the shard covering the needed inner chunks (None: nothing stored).

        Args:
            shard: The shard's number (its index read).
            start: First row needed.
            stop: One past the last row needed.
        """
        index = self.indexes[shard]
        if index is None:
            return None
        first, last = self._chunks(shard, start, stop)
        present = [(offset, length) for offset, length in index[first : last + 1] if offset != MISSING]
        if not present:
            return None
        return min(offset for offset, _ in present), max(offset + length for offset, length in present)

    def pieces(self, start: int, stop: int, blobs: Blobs) -> Iterator[Piece]:
        """The inner chunks holding rows ``[start, stop)``, in order, with their compressed bytes
        sliced out of each shard's fetched span (no copies).

        Args:
            start: First row.
            stop: One past the last row.
            blobs: The fetched spans (:func:`fetch_spans`).
        """
        for shard in self.shards(start, stop):
            first, last = self._chunks(shard, start, stop)
            blob = blobs.get(shard)
            index = self.indexes[shard]
            for chunk in range(first, last + 1):
                row0 = shard * self.shard_rows + chunk * self.chunk_rows
                a, b = max(start, row0), min(stop, row0 + self.chunk_rows)
                offset, length = (MISSING, 0) if index is None else index[chunk]
                data = None
                if offset != MISSING and blob is not None:
                    data = blob[1][offset - blob[0] : offset + length - blob[0]]
                yield Piece(row0, a, b, shard * self.chunks_per_shard + chunk, data)

    def payload(self, raw: memoryview, chunk: int) -> memoryview:
        """Stored inner chunk ``chunk``'s compressed bytes: with chunk checksums, ``raw`` less the
        CRC32C after them, once it matched (a CacheError naming the chunk where it does not)."""
        if not self.checked:
            return raw
        if not crc_matches(raw):
            raise CacheError(
                f"{self.where}: chunk {chunk} (rows {chunk * self.chunk_rows}-{(chunk + 1) * self.chunk_rows}) "
                "fails its CRC32C: the cache is damaged; rebuild it"
            )
        return raw[: len(raw) - CRC_BYTES]

    def decompress(self, raw: memoryview | None, into: np.ndarray, chunk: int) -> None:
        """Inner chunk ``chunk`` (``chunk_rows`` rows, flat) into ``into``, its CRC32C checked
        first (:meth:`payload`); the fill value for None.

        Args:
            raw: The chunk's stored bytes, or None.
            into: Flat output of ``chunk_rows`` items.
            chunk: The chunk's number (for errors).
        """
        if raw is None:
            into[:] = self.fill
            return
        raw = self.payload(raw, chunk)
        if len(raw) < BLOSC_HEADER or int.from_bytes(raw[4:8], "little") != into.nbytes:
            raise CacheError(f"{self.where}: chunk {chunk} does not decompress to {into.nbytes} bytes")
        try:
            blosc.decompress(raw, into)
        except (RuntimeError, ValueError) as error:
            raise CacheError(f"{self.where}: chunk {chunk} does not decompress: {error}") from error

    def assemble(
        self,
        start: int,
        stop: int,
        blobs: Blobs,
        dtype: np.dtype | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Rows ``[start, stop)`` from each shard's fetched span, as ``dtype`` (default: the stored
        one; a wider one widens each chunk straight into the output), into ``out`` when given (shape
        ``[stop - start, *row shape]``, any strides: a batch's slot).

        Args:
            start: First row.
            stop: One past the last row.
            blobs: The fetched spans (:func:`fetch_spans`).
            dtype: The output dtype.
            out: Where to write the rows.
        """
        if out is None:
            out = np.empty((stop - start, *self.shape[1:]), dtype=dtype or self.dtype)
        scratch = None
        for row0, a, b, chunk, raw in self.pieces(start, stop, blobs):
            target = out[a - start : b - start]
            if b - a == self.chunk_rows and out.dtype == self.dtype and target.flags.c_contiguous:
                self.decompress(raw, target.reshape(-1), chunk)  # a whole chunk: decompress in place
                continue
            if scratch is None:
                scratch = np.empty((self.chunk_rows, *self.shape[1:]), dtype=self.dtype)
            self.decompress(raw, scratch.reshape(-1), chunk)
            target[...] = scratch[a - row0 : b - row0]
        return out


RowRange = tuple[ShardedRows, int, int]  # rows [start, stop) of an array


def read_indexes(fetcher: Fetcher, reads: Sequence[RowRange]) -> None:
    """Read, in one fetch round, the indexes of the shards behind row ranges ``(array, start,
    stop)`` that the arrays have not read yet.

    Args:
        fetcher: Serves the byte ranges.
        reads: ``(array, start, stop)`` row ranges.
    """
    missing = sorted(
        {
            (id(rows), shard): (rows, shard)
            for rows, start, stop in reads
            for shard in rows.shards(start, stop)
            if shard not in rows.indexes
        }.values(),
        key=lambda rs: (rs[0].folder, rs[1]),
    )
    for (rows, shard), raw in zip(
        missing, fetcher.fetch([rows.index_request(shard) for rows, shard in missing])
    ):
        rows.set_index(shard, raw)


def fetch_spans(fetcher: Fetcher, reads: Sequence[RowRange]) -> list[Blobs]:
    """The compressed bytes behind row ranges ``(array, start, stop)`` of several arrays, in two
    batched fetch rounds: the shard indexes not seen yet, then one span per (array, shard).

    Args:
        fetcher: Serves the byte ranges.
        reads: ``(array, start, stop)`` row ranges.
    """
    read_indexes(fetcher, reads)
    wanted = []
    for k, (rows, start, stop) in enumerate(reads):
        for shard in rows.shards(start, stop):
            span = rows.span(shard, start, stop)
            if span is not None:
                wanted.append((k, shard, span))
    requests, which = merged_requests(
        [(reads[k][0].shard_path(shard), lo, hi) for k, shard, (lo, hi) in wanted]
    )
    fetched = fetcher.fetch(requests)
    blobs: list[Blobs] = [{} for _ in reads]
    for (k, shard, _), r in zip(wanted, which):
        data, (path, lo, hi) = fetched[r], requests[r]
        if data is None:
            raise CacheError(f"{path}: the shard file is gone, though its index was read (cache replaced?)")
        if len(data) != hi - lo:
            raise CacheError(f"{path}: asked for bytes {lo}-{hi}, got {len(data)} (truncated shard file?)")
        blobs[k][shard] = (lo, memoryview(data))  # chunks slice it without copies
    return blobs


def read_rows(fetcher: Fetcher, reads: Sequence[RowRange], dtype: np.dtype | None = None) -> list[np.ndarray]:
    """Row ranges ``(array, start, stop)`` of several arrays (see :func:`fetch_spans`), as ``dtype``
    (default: each array's stored dtype).

    Args:
        fetcher: Serves the byte ranges.
        reads: ``(array, start, stop)`` row ranges.
        dtype: The output dtype.
    """
    blobs = fetch_spans(fetcher, reads)
    return [rows.assemble(start, stop, blobs[k], dtype) for k, (rows, start, stop) in enumerate(reads)]


def open_rows(location: Location, *names: str, what: str | None = None) -> ShardedRows | None:
    """The array at ``names`` below ``location`` when it has the supported layout, else None;
    ``what``: how errors name it after the location's URL (default: its store key alone)."""
    meta = location.read_json(*names, "zarr.json")
    layout = shard_layout(meta) if isinstance(meta, dict) else None
    if layout is None:
        return None
    where = f"{location.url}: {what}" if what else None
    return ShardedRows(location.key(*names), layout, meta.get("fill_value", 0), where)
