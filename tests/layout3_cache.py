"""The samples of ``tests/data/cache_layout3``, a cache in layout 3 (no chunk checksums) with ToFrame
frames stored beside it, and how it was written.

The fixture was written by neurodata at commit 6ab9c5b (tag ``s9-base``, the last layout 3 writer),
from a checkout of that commit::

    PYTHONPATH=<checkout> python tests/layout3_cache.py tests/data/cache_layout3

so it holds the bytes an older neurodata stored, not a re-creation. 37 KB in 26 files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).parent / "data" / "cache_layout3"
SENSOR = (32, 32, 2)


def samples() -> list[tuple[np.ndarray, int, str]]:
    """The samples of its one part of split ``train``: 3000, 0, 1500 and 2600 events."""
    from neurodata.events import make_events

    rng = np.random.default_rng(15)
    out = []
    for k, n in enumerate([3000, 0, 1500, 2600]):
        t = 1_000_000 * k + np.cumsum(rng.integers(0, 40, n))
        events = make_events(t, rng.integers(0, 32, n), rng.integers(0, 32, n), rng.integers(0, 2, n))
        out.append((events, k % 3, f"s{k}"))
    return out


def frames():
    """The representation stored beside its events: two frames per sample, by event count."""
    from neurodata.transforms import ToFrame

    return ToFrame(sensor_size=SENSOR, n_event_bins=2)


def part(split: str, index: int):
    from neurodata.cache import PartData

    return PartData.from_samples(samples())


def write(url: str) -> None:
    """Build the cache (1 Ki-event chunks, 4 Ki-event shards) and store its ToFrame frames."""
    from neurodata.cache import CacheBuilder, build_cache
    from neurodata.loaders.precompute import precompute

    attrs = {"sensor_size": list(SENSOR)}
    builder = CacheBuilder(url, "layout3", attrs, {"train": 1}, chunk_events=1024, shard_events=4096)
    build_cache(builder, part)
    precompute(url, frames(), progress=False)


if __name__ == "__main__":
    write(sys.argv[1])
