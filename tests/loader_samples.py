"""A small cache whose every sample names itself: label = sample index, events encode the index too."""

from __future__ import annotations

import os
import sys

import numpy as np

from neurodata.cache import CacheBuilder, PartData, build_cache
from neurodata.events import make_events

SENSOR = (32, 24, 2)
PER_PART = 7


def sample_events(index: int) -> np.ndarray:
    """``(index * 37) % 300`` events (sample 0 and every 9th are empty); x carries ``index % 32``."""
    n = 0 if index % 9 == 0 else (index * 37) % 300 + 1
    rng = np.random.default_rng(index)
    t = 1_000_000 * index + np.sort(rng.integers(0, 50_000, n))
    return make_events(t, np.full(n, index % SENSOR[0]), rng.integers(0, SENSOR[1], n), rng.integers(0, 2, n))


def make_part(n_samples: int, split: str, part: int) -> PartData:
    indices = range(part * PER_PART, min((part + 1) * PER_PART, n_samples))
    return PartData.from_samples((sample_events(i), i, f"{split}/{i}") for i in indices)


def build_indexed_cache(url: str, n_samples: int = 40, storage_options: dict | None = None) -> str:
    """Split ``train`` with ``n_samples`` samples (label i for sample i), tiny chunks so reads cross them."""
    from functools import partial

    parts = -(-n_samples // PER_PART)
    builder = CacheBuilder(
        url,
        "indexed",
        {"sensor_size": list(SENSOR), "class_names": None},
        {"train": parts},
        storage_options=storage_options,
        chunk_events=256,
        shard_events=1024,
    )
    return build_cache(builder, partial(make_part, n_samples))


def ddp_rank(rank: int, world_size: int, store: str, init_file: str, out_dir: str) -> None:
    """One process of a real torch.distributed (gloo) group: stream an epoch with the group's default
    rank and world size, and write the labels seen to ``out_dir/<rank>.npy``."""
    import torch.distributed as dist

    from neurodata.loaders import load

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        ds = load(store, streaming=True, seed=7, block_samples=3)
        ds.set_epoch(1)
        assert (ds.rank, ds.world_size) == (rank, world_size)
        np.save(f"{out_dir}/{rank}.npy", np.array([label for _, label in ds], dtype=np.int64))
    finally:
        dist.destroy_process_group()
    # skip C++ static destructors: gloo's can abort a finished process at exit (see train_helpers)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
