"""zarr's internals that ``neurodata/cache/zarr_compat.py`` imports still behave as the cache relies on.

A zarr release that moves or changes them fails here, naming the internal, before anything subtler
breaks (the shard byte layout is checked against zarr's output in test_cache_shards/test_loaders_shards).
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
import zarr
from zarr.storage import MemoryStore

from neurodata.cache import zarr_compat
from neurodata.cache.store import Location


async def running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_sync_runs_every_coroutine_on_one_loop_in_another_thread():
    """The reader opens async arrays in one call and reads them in later ones: one persistent loop."""

    async def where() -> tuple[asyncio.AbstractEventLoop, int]:
        return asyncio.get_running_loop(), threading.get_ident()

    (loop_a, thread_a), (loop_b, thread_b) = zarr_compat.sync(where()), zarr_compat.sync(where())
    assert loop_a is loop_b
    assert thread_a == thread_b != threading.get_ident()


def test_sync_raises_what_the_coroutine_raises():
    async def missing() -> None:
        raise KeyError("events")

    with pytest.raises(KeyError, match="events"):
        zarr_compat.sync(missing())


def test_sync_is_the_loop_of_zarr_synchronous_api():
    """Objects opened through ``sync`` and through zarr's own synchronous calls share fsspec sessions."""
    loops: list[asyncio.AbstractEventLoop] = []

    class RecordingStore(MemoryStore):
        async def get(self, *args, **kwargs):
            loops.append(asyncio.get_running_loop())
            return await super().get(*args, **kwargs)

    store = RecordingStore()
    zarr.create_group(store, zarr_format=3)
    zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=False)
    assert loops, "zarr's synchronous API read nothing through the store"
    assert set(loops) == {zarr_compat.sync(running_loop())}


@pytest.mark.parametrize("url", ["local", "memory://zarr-compat/plain", "simplecache::memory://zarr-compat/chain"])
def test_stores_built_as_location_builds_them_round_trip(url, tmp_path):
    """``Location.zarr_store`` builds each kind of store with the constructors and arguments it uses."""
    location = Location(tmp_path / "cache.zarr" if url == "local" else url)
    store = location.zarr_store()
    assert isinstance(store, zarr_compat.Store)
    assert isinstance(store, zarr_compat.LocalStore if url == "local" else zarr_compat.FsspecStore)
    assert location.zarr_store(read_only=True).read_only

    group = location.open_group("w")
    group.create_array("values", shape=(6,), chunks=(3,), dtype="i4")[:] = np.arange(6)

    async def read() -> np.ndarray:
        opened = await location.open_async_group("r")
        return await (await opened.getitem("values")).getitem(slice(None))

    np.testing.assert_array_equal(zarr_compat.sync(read()), np.arange(6))
