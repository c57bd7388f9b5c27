"""A direct reader for row ranges of sharded Zarr v3 arrays on local disk, for the loaders' hot path.

zarr-python decodes each inner chunk as its own asyncio task handed to a thread; for a 200 k-event
sample that overhead is about five times the decompression itself. The cache's arrays have one
simple layout, checked here from each array's ``zarr.json`` before it is used:
``sharding_indexed`` over the first axis only, inner codecs ``bytes`` (little endian) + ``blosc``,
index ``bytes`` + ``crc32c`` at the end of the shard. For such an array a row range is: read the
shard index (kept), read the needed inner chunks in one ``pread``, Blosc-decompress them. Any other
layout, or a store that is not a local folder, returns None from :func:`open_local_rows` and the
caller reads through zarr.
"""

from __future__ import annotations

import json
import os
from typing import Any

import google_crc32c
import numpy as np
from numcodecs import blosc

MISSING = np.uint64(2**64 - 1)  # offset and length of an inner chunk that was never written


def _simple_layout(meta: dict[str, Any]) -> tuple[tuple[int, ...], int, int, np.dtype] | None:
    """``(shape, rows per shard, rows per inner chunk, dtype)`` when the array has the supported layout."""
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
            and names == ["bytes", "blosc"]
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
    return (shape, shard[0], inner[0], dtype) if ok else None


class LocalRows:
    """Rows ``[start, stop)`` of one supported local array (see the module docstring)."""

    def __init__(
        self,
        folder: str,
        shape: tuple[int, ...],
        shard_rows: int,
        chunk_rows: int,
        dtype: np.dtype,
        fill: Any,
    ):
        self.folder = folder
        self.shape = shape
        self.shard_rows = shard_rows
        self.chunk_rows = chunk_rows
        self.dtype = dtype
        self.fill = fill
        self.row_items = int(np.prod(shape[1:], dtype=np.int64))
        self.chunks_per_shard = shard_rows // chunk_rows
        self._indexes: dict[int, np.ndarray | None] = {}

    def _shard_path(self, shard: int) -> str:
        return os.path.join(self.folder, "c", str(shard), *(["0"] * (len(self.shape) - 1)))

    def _index(self, shard: int, fd: int) -> np.ndarray:
        index = self._indexes.get(shard)
        if index is None:
            n = self.chunks_per_shard * 16
            size = os.fstat(fd).st_size
            raw = os.pread(fd, n + 4, size - n - 4)
            if len(raw) != n + 4 or google_crc32c.value(raw[:n]) != int.from_bytes(raw[n:], "little"):
                raise OSError(f"{self._shard_path(shard)}: shard index is truncated or fails its CRC32C")
            index = np.frombuffer(raw[:n], dtype="<u8").reshape(-1, 2)
            self._indexes[shard] = index
        return index

    def read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.shape[1:]), dtype=self.dtype)
        flat = out.reshape(-1)
        row = start
        while row < stop:
            shard = row // self.shard_rows
            end = min(stop, (shard + 1) * self.shard_rows)
            self._read_shard(
                shard, row, end, flat[(row - start) * self.row_items : (end - start) * self.row_items]
            )
            row = end
        return out

    def _read_shard(self, shard: int, start: int, stop: int, out: np.ndarray) -> None:
        base = shard * self.shard_rows
        first, last = (start - base) // self.chunk_rows, (stop - 1 - base) // self.chunk_rows
        try:
            fd = os.open(self._shard_path(shard), os.O_RDONLY)
        except FileNotFoundError:  # zarr leaves out shards that hold only the fill value
            out[:] = self.fill
            return
        try:
            entries = self._index(shard, fd)[first : last + 1]
            present = entries[:, 0] != MISSING
            lo = int(entries[present, 0].min()) if present.any() else 0
            hi = int((entries[present, 0] + entries[present, 1]).max()) if present.any() else 0
            blob = os.pread(fd, hi - lo, lo)
        finally:
            os.close(fd)
        items = self.chunk_rows * self.row_items
        for k, (offset, length) in enumerate(entries):
            chunk_row0 = base + (first + k) * self.chunk_rows
            a, b = max(start, chunk_row0), min(stop, chunk_row0 + self.chunk_rows)
            target = out[(a - start) * self.row_items : (b - start) * self.row_items]
            if offset == MISSING:
                target[:] = self.fill
                continue
            raw = blob[int(offset) - lo : int(offset + length) - lo]
            if target.size == items:  # a whole chunk: decompress in place
                blosc.decompress(raw, target)
                continue
            values = np.frombuffer(blosc.decompress(raw), dtype=self.dtype, count=items)
            target[:] = values[(a - chunk_row0) * self.row_items : (b - chunk_row0) * self.row_items]


def open_local_rows(folder: str) -> LocalRows | None:
    """A direct reader for the array in ``folder`` (a local path), or None when zarr must read it."""
    try:
        with open(os.path.join(folder, "zarr.json"), "rb") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    layout = _simple_layout(meta)
    if layout is None:
        return None
    shape, shard_rows, chunk_rows, dtype = layout
    return LocalRows(folder, shape, shard_rows, chunk_rows, dtype, meta.get("fill_value", 0))
