"""Blosc codecs for stored count frames: compressed size against decompression (+ widening) time.

Frames: T = 16 split by event count, ``[16, 2, 128, 128]``, of the first 12 samples of
``bench_loaders`` (the EVT 2/3 fixture recordings downscaled to 128x128, 100-300 k events each),
stored as uint8 (counts clipped at 255 for this comparison only) and uint16. Each time is one inner
chunk's ``blosc.decompress`` into a reused buffer plus the copy widening it into an int32 array, as
:class:`neurodata.cache.shard_reader.ShardedRows` reads narrow frames; one Blosc thread; medians of 5.

    PYTHONPATH=. /work/benchenv/bin/python benchmarks/bench_frames_codec.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
from numcodecs import blosc

sys.path.insert(0, str(Path(__file__).parent))
import bench_loaders as bl  # noqa: E402

from neurodata.representations import to_frame  # noqa: E402

SHUFFLES = {"noshuffle": blosc.NOSHUFFLE, "shuffle": blosc.SHUFFLE, "bitshuffle": blosc.BITSHUFFLE}
CODECS = (("lz4", 5), ("lz4hc", 5), ("lz4hc", 9), ("zstd", 3))


def main() -> None:
    bl.prepare_stream(12)
    stream, bounds = bl._STREAM
    frames = [to_frame(stream[bounds[i] : bounds[i + 1]], bl.SENSOR, n_event_bins=16) for i in range(12)]
    print(f"largest count per cell: {max(int(f.max()) for f in frames)}")
    blosc.set_nthreads(1)
    print(f"{'dtype':<7} {'codec':<9} {'shuffle':<11} {'KiB/sample':>10} {'ms/sample':>10}")
    for dtype in ("int32", "uint16", "uint8"):
        data = [np.ascontiguousarray(np.minimum(f, np.iinfo(dtype).max).astype(dtype)) for f in frames]
        out, wide = np.empty_like(data[0]), np.empty(data[0].shape, np.int32)
        for cname, level in CODECS:
            for name, shuffle in SHUFFLES.items():
                if dtype == "uint8" and name == "shuffle":
                    continue  # byte shuffle of 1-byte items is no shuffle
                blobs = [blosc.compress(d, cname.encode(), level, shuffle) for d in data]
                times = []
                for _ in range(5):
                    start = time.perf_counter()
                    for blob in blobs:
                        blosc.decompress(blob, out)
                        if dtype != "int32":
                            np.copyto(wide, out)
                    times.append((time.perf_counter() - start) / len(blobs))
                size = statistics.mean(len(b) for b in blobs) / 1024
                print(
                    f"{dtype:<7} {cname + ' ' + str(level):<9} {name:<11} {size:>10.1f} "
                    f"{statistics.median(times) * 1e3:>10.3f}"
                )


if __name__ == "__main__":
    main()
