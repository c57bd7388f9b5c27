"""Deterministic sample data and picklable part makers for the cache tests (also run in subprocesses)."""

from __future__ import annotations

import zlib

import numpy as np

from neurodata.cache import CacheBuilder, PartData
from neurodata.events import make_events

PLAN = {"train": 5, "test": 2, "empty": 0}
ATTRS = {
    "rules_version": 1,
    "sensor_size": [640, 480, 2],
    "class_names": [f"class{i}" for i in range(7)],
    "source_checksums": {"archive.zip": "0" * 64},
}
SMALL_CHUNKS = {"chunk_events": 1024, "shard_events": 4096}


def random_samples(split: str, index: int) -> list[tuple[np.ndarray, int, str]]:
    """3-6 samples of 0-2500 events each (the second and some others empty), sorted times with a random absolute start."""
    rng = np.random.default_rng([zlib.crc32(split.encode()), index])
    samples = []
    for j in range(int(rng.integers(3, 7))):
        n = 0 if j == 1 or rng.random() < 0.15 else int(rng.integers(1, 2500))
        t = int(rng.integers(0, 2**40)) + np.cumsum(rng.integers(0, 50, n))
        events = make_events(t, rng.integers(0, 640, n), rng.integers(0, 480, n), rng.integers(0, 2, n))
        samples.append((events, int(rng.integers(-1, 7)), f"{split}/{index}/{j}.raw"))
    return samples


def make_random_part(split: str, index: int, log: str | None = None) -> PartData:
    """The part maker handed to build_cache; appends ``split index`` to ``log`` when given."""
    if log:
        with open(log, "a") as f:
            f.write(f"{split} {index}\n")
    return PartData.from_samples(random_samples(split, index))


def builder(url: str, plan: dict[str, int] = PLAN, **kwargs) -> CacheBuilder:
    return CacheBuilder(url, "toy", ATTRS, plan, **SMALL_CHUNKS, **kwargs)


def all_arrays(url: str, storage_options: dict | None = None) -> dict[str, np.ndarray]:
    """Every array of every split of a cache, read with zarr directly (not through our reader)."""
    from neurodata.cache.store import Location

    root = Location(url, storage_options).open_group()
    arrays = {}
    for split, group in root.groups():
        for name, array in group.arrays():
            arrays[f"{split}/{name}"] = array[...]
    return arrays


def reseal(url: str) -> None:
    """Rewrite the manifest of the local cache at ``url`` (and its CRC32C in zarr.json) from the files
    as they are now, as the builder writes it: for tests that change arrays after the build to
    stand for another writer, not for damage (reading checks the files against the manifest)."""
    import json
    from pathlib import Path

    from neurodata.cache.layout import ATTRS_KEY, MANIFEST_KEY, manifest_bytes
    from neurodata.cache.store import Location, checksum_files, crc32c_hex

    location = Location(url)
    keys = sorted(k for k in location.files() if k not in ("zarr.json", MANIFEST_KEY))
    manifest = manifest_bytes(checksum_files(location, keys))
    location.write_bytes(manifest, MANIFEST_KEY)
    meta_path = Path(url) / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"][ATTRS_KEY]["manifest_crc32c"] = crc32c_hex(manifest)
    meta_path.write_text(json.dumps(meta))
