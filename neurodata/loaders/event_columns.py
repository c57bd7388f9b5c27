"""Events of a range of samples straight from the cache's sharded event columns, in one fused pass.

:class:`EventColumns` fetches the four columns' compressed chunks in two batched rounds (see
:mod:`.shards`), then walks the inner chunks in order: each column's chunk is Blosc-decompressed into
a per-thread scratch buffer of one chunk (64 Ki events: 832 KiB for the default dtypes, small enough
to stay in cache) and :func:`.kernels.scatter_chunk_numba` copies the needed rows into the
EVENT_DTYPE output, making times absolute as it goes. The stored dtypes are whatever each array's
``zarr.json`` records (narrower coordinates or time deltas included); the output is always
EVENT_DTYPE, equal to :meth:`neurodata.cache.SplitReader.events`.
"""

from __future__ import annotations

import threading

import numpy as np

from ..cache.layout import EVENT_FIELDS
from ..cache.reader import check_local_offsets
from ..events import EVENT_DTYPE
from .kernels import scatter_chunk_numba
from .shards import FsspecFetcher, LocalFetcher, ShardedRows, fetch_spans

Fetcher = LocalFetcher | FsspecFetcher
TIME_CODING = "per-sample-delta"  # the only time coding the fused pass undoes (see neurodata.cache.codecs)


def fusable(columns: dict[str, ShardedRows]) -> bool:
    """Whether the fused pass applies: four 1-D integer columns with the same chunking, and time deltas
    that sum exactly in int64 (signed, or unsigned of at most 32 bits)."""
    rows = [columns[name] for name in EVENT_FIELDS]
    t = columns["t"].dtype
    return (
        all(len(r.shape) == 1 and r.dtype.kind in "iu" for r in rows)
        and len({(r.shape[0], r.shard_rows, r.chunk_rows) for r in rows}) == 1
        and (t.kind == "i" or t.itemsize <= 4)
    )


class EventColumns:
    """The event columns of one split, read directly from their shards (see the module docstring)."""

    def __init__(self, fetcher: Fetcher, columns: dict[str, ShardedRows]):
        if not fusable(columns):
            raise ValueError("event columns need equal 1-D chunking and integer dtypes for the fused reader")
        self.fetcher = fetcher
        self.columns = [columns[name] for name in EVENT_FIELDS]
        self._scratch = threading.local()  # prefetch threads decode beside the caller

    def scratch(self) -> list[np.ndarray]:
        """This thread's one-chunk buffers, one per column."""
        buffers = getattr(self._scratch, "buffers", None)
        if buffers is None:
            buffers = [np.empty(rows.chunk_rows, dtype=rows.dtype) for rows in self.columns]
            self._scratch.buffers = buffers
        return buffers

    def read(self, first: int, last: int, local_offsets: np.ndarray) -> np.ndarray:
        """Events ``[first, last)`` of the split as EVENT_DTYPE; ``local_offsets`` (from 0 to
        ``last - first``) say where each sample starts, so its times restart from its first one."""
        n = last - first
        offsets = check_local_offsets(local_offsets, n)
        out = np.empty(n, dtype=EVENT_DTYPE)
        if n == 0:
            return out
        blobs = fetch_spans(self.fetcher, [(rows, first, last) for rows in self.columns])
        scratch = self.scratch()
        state = np.zeros(2, dtype=np.int64)
        pieces = zip(*(rows.pieces(first, last, blobs[k]) for k, rows in enumerate(self.columns)))
        for chunk in pieces:
            row0, a, b, _ = chunk[0]
            for rows, buffer, (_, _, _, raw) in zip(self.columns, scratch, chunk):
                rows.decompress(raw, buffer)
            scatter_chunk_numba(*scratch, a - row0, b - a, a - first, offsets, state, out)
        return out
