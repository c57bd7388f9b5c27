"""Every name this package takes from zarr-python below its top-level API, in one place.

zarr's top level (``zarr.open_group``, ``zarr.AsyncGroup``, ``zarr.api.asynchronous``, ``zarr.codecs``)
is its documented interface. The cache also needs three things from deeper down, imported here alone
so that a zarr release that moves or changes them breaks one module, and ``tests/test_zarr_compat.py``
says which:

- :func:`sync` (``zarr.core.sync``, internal): runs a coroutine on zarr's own event-loop thread. The
  reader keeps async arrays open across calls and the writer lays out arrays concurrently; both need
  the one loop that zarr's synchronous API also uses, since fsspec sessions belong to the loop that
  opened them.
- :class:`Store`, :class:`LocalStore`, :class:`FsspecStore` (``zarr.abc.store``, ``zarr.storage``):
  the store a :class:`~neurodata.cache.store.Location` hands zarr.

The byte layout of sharded arrays (``sharding_indexed``: inner chunks, each followed by its CRC32C
from cache layout 4 on, then an index of ``(offset, nbytes)`` pairs and its CRC32C) is zarr's on-disk format, not its code: the shard encoder
and the direct shard reader implement it, and ``tests/test_cache_shards.py`` and
``tests/test_loaders_shards.py`` compare both with zarr's own output.
"""

from __future__ import annotations

import asyncio

from zarr.abc.store import Store
from zarr.core.sync import sync
from zarr.storage import FsspecStore, LocalStore

__all__ = ["FsspecStore", "LocalStore", "Store", "settle_writes", "sync"]


def settle_writes(timeout: float = 10.0) -> None:
    """Wait for zarr's writes still in flight, as after one of them failed.

    zarr runs a group's writes concurrently on its own event loop and raises at the first failure
    (a full disk) while the others go on, so a folder removed at once can gain files afterwards.

    Args:
        timeout: the longest wait in seconds; writes still running then are left to finish.
    """

    async def pending() -> None:
        current, loop = asyncio.current_task(), asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:  # again until none is left: a write that ends may have started others
            tasks = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
            if not tasks or loop.time() >= deadline:
                return
            await asyncio.wait(tasks, timeout=deadline - loop.time())

    sync(pending())
