"""Bytes/event of the cache's event coding on the real fixture recordings: the previous coding
(int64 times, uint16 coordinates, Blosc LZ4) against the current one (narrowest dtypes, LZ4HC for
``lz4``; zstd shown too). Blosc chunks of 64 Ki events with bit shuffle, as the cache stores them;
each recording is one sample (times per-sample delta coded). Also with x and y taken modulo 128,
as a stand-in for a 128x128 sensor with the recordings' timing.

    PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_cache_coding.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numcodecs import Blosc

import neurodata
from neurodata.cache.codecs import encode_times
from neurodata.cache.layout import EVENT_DTYPES, EVENT_FIELDS, narrowest_dtypes, value_range
from neurodata.cache.shards import chunk_compressor

FIXTURES = Path(
    os.environ.get("NEURODATA_FIXTURES", Path(__file__).resolve().parents[2] / "shared" / "fixtures")
)
RECORDINGS = {
    "EVT 2.0, 640x480": "evt2/evt2_sample.raw",
    "EVT 3.0, 1280x720": "evt3/evt3_sample.raw",
    "AEDAT 4, DVXplorer 320x240": "aedat4/sample.aedat4",
}
CHUNK = 1 << 16
PREVIOUS = Blosc(cname="lz4", clevel=5, shuffle=Blosc.BITSHUFFLE)


def stored_bytes(columns: dict[str, np.ndarray], compressor_for) -> int:
    return sum(
        len(compressor_for(c.dtype).encode(np.ascontiguousarray(c[i : i + CHUNK])))
        for c in columns.values()
        for i in range(0, len(c), CHUNK)
    )


def main() -> None:
    print("| recording | events | previous (i8/u2, LZ4) | now, lz4 (LZ4HC) | now, zstd | stored as |")
    print("|---|---:|---:|---:|---:|---|")
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
            sizes = [
                stored_bytes(wide, lambda dtype: PREVIOUS),
                stored_bytes(narrow, lambda dtype: chunk_compressor(dtype, "lz4")),
                stored_bytes(narrow, lambda dtype: chunk_compressor(dtype, "zstd")),
            ]
            stored = "/".join(dtypes[f].name for f in EVENT_FIELDS)
            print(
                f"| {name}{label} | {n:,} | " + " | ".join(f"{s / n:.2f}" for s in sizes) + f" | {stored} |"
            )


if __name__ == "__main__":
    main()
