"""Bytes/event of the cache's event coding on the real fixture recordings: the previous coding
(int64 times, uint16 coordinates, Blosc LZ4) against the current one (narrowest dtypes, LZ4HC for
``lz4``; zstd shown with the bit shuffle everywhere and with each column's filter chosen as the
writer chooses it, :func:`~neurodata.cache.shards.choose_coding`). Blosc chunks of 64 Ki events, the last one zero-padded, as the cache stores them;
each recording is one sample (times per-sample delta coded). Also with x and y taken modulo 128,
as a stand-in for a 128x128 sensor with the recordings' timing. The last two columns compare the
zstd coding with a ``p`` column against the polarities in the times (``delta * 2 + p``, time
coding ``per-sample-delta-polarity``, each column's coding chosen alike): bytes per event, and
nanoseconds per event to decompress every stored chunk on one thread (best of 5).

    PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_cache_coding.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from numcodecs import Blosc

import neurodata
from neurodata.cache.codecs import DELTA_POLARITY, encode_times, stored_columns
from neurodata.cache.layout import EVENT_DTYPES, EVENT_FIELDS, narrowest_dtypes
from neurodata.cache.narrowing import value_range
from neurodata.cache.shards import choose_coding, chunk_compressor, encode_chunk
from neurodata.cache.time_coding import stored_dtypes

FIXTURES = Path(
    os.environ.get("NEURODATA_FIXTURES", Path(__file__).resolve().parents[1] / "tests" / "data" / "fixtures")
)
RECORDINGS = {
    "EVT 2.0, 640x480": "evt2/evt2_sample.raw",
    "EVT 3.0, 1280x720": "evt3/evt3_sample.raw",
    "AEDAT 4, DVXplorer 320x240": "aedat4/sample.aedat4",
}
CHUNK = 1 << 16


def previous(name: str, dtype: np.dtype) -> Blosc:
    """The coding before narrowing: plain LZ4, bit shuffle."""
    return Blosc(cname="lz4", clevel=5, shuffle=Blosc.BITSHUFFLE, typesize=dtype.itemsize)


def stored_bytes(columns: dict[str, np.ndarray], compressor_for) -> int:
    return sum(
        len(encode_chunk(c[i : i + CHUNK], CHUNK, compressor_for(name, c.dtype)))
        for name, c in columns.items()
        for i in range(0, len(c), CHUNK)
    )


def decode_ns(columns: dict[str, np.ndarray], codings: dict[str, tuple[str, str]], repeats: int = 5) -> float:
    """Best-of-``repeats`` time to decompress every stored chunk of ``columns`` (one thread), per event."""
    chunks = []
    for name, column in columns.items():
        compressor = chunk_compressor(column.dtype, *codings[name])
        chunks += [
            (
                compressor,
                encode_chunk(column[i : i + CHUNK], CHUNK, compressor),
                np.empty(CHUNK * column.itemsize, np.uint8),
            )
            for i in range(0, len(column), CHUNK)
        ]
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for compressor, data, out in chunks:
            compressor.decode(data, out)
        best = min(best, time.perf_counter() - start)
    return best / len(columns["t"]) * 1e9


def main() -> None:
    print(
        "| recording | events | previous (i8/u2, LZ4) | now, lz4 (LZ4HC) | zstd, bit shuffle "
        "| zstd, p column (filter per column) | zstd, p in the times | stored as | decode ns/event (best of 5), p column / in t |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for name, path in RECORDINGS.items():
        events = neurodata.read(FIXTURES / path)
        for label, modulo in (("", None), (", x and y mod 128", 128)):
            columns = {"t": encode_times(events["t"], np.array([0, len(events)]))}
            columns |= {
                f: events[f] % modulo if modulo and f in "xy" else events[f] for f in EVENT_FIELDS[1:]
            }
            wide = {f: c.astype(EVENT_DTYPES[f]) for f, c in columns.items()}
            dtypes = narrowest_dtypes([{f: value_range(c) for f, c in columns.items()}])
            narrow = {f: c.astype(dtypes[f]) for f, c in columns.items()}
            n = len(events)
            probe = 4 * CHUNK  # as the writer: the first four chunks of each column
            chosen = {
                codec: {f: choose_coding(c[:probe], f, codec, CHUNK) for f, c in narrow.items()}
                for codec in ("lz4", "zstd")
            }
            sizes = [
                stored_bytes(wide, previous),
                stored_bytes(
                    narrow,
                    lambda name, dtype, chosen=chosen: chunk_compressor(dtype, *chosen["lz4"][name]),
                ),
                stored_bytes(narrow, lambda name, dtype: chunk_compressor(dtype, "zstd", "bitshuffle")),
                stored_bytes(
                    narrow,
                    lambda name, dtype, chosen=chosen: chunk_compressor(dtype, *chosen["zstd"][name]),
                ),
            ]
            # as the writer stores them with the polarities in the times
            _, packed_dtypes = stored_dtypes([{f: value_range(c) for f, c in columns.items()}])
            packed = {
                f: c.astype(packed_dtypes[f]) for f, c in stored_columns(columns, DELTA_POLARITY).items()
            }
            packed_codings = {f: choose_coding(c[:probe], f, "zstd", CHUNK) for f, c in packed.items()}
            sizes.append(
                stored_bytes(
                    packed, lambda name, dtype, chosen=packed_codings: chunk_compressor(dtype, *chosen[name])
                )
            )
            stored = "/".join(dtypes[f].name for f in EVENT_FIELDS)
            timing = f"{decode_ns(narrow, chosen['zstd']):.2f} / {decode_ns(packed, packed_codings):.2f}"
            print(
                f"| {name}{label} | {n:,} | "
                + " | ".join(f"{s / n:.2f}" for s in sizes)
                + f" | {stored} | {timing} |"
            )


if __name__ == "__main__":
    main()
