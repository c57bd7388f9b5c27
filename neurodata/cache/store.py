"""Where a cache lives: URL handling, zarr stores, small JSON files, checksums, the commit lock.

Everything goes through fsspec (``file://``, plain paths, ``s3://``, ``gs://``, ...) except two
things only a local filesystem offers, which the writer uses when :func:`is_local` is true:
an atomic directory rename and an ``flock`` on a lock file.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import fsspec
import google_crc32c
from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
from fsspec.implementations.local import LocalFileSystem

from ..localfs import SHARED, LockTimeout, file_lock, write_atomic
from .errors import CacheError

if TYPE_CHECKING:  # zarr is imported where a store or group is opened: staging needs none
    import zarr
    from zarr import AsyncGroup

    from .zarr_compat import Store


class Location:
    """A folder or prefix on some filesystem: ``fs`` and ``path`` as fsspec resolved them.

    Args:
        url: A local path or an fsspec URL (chains such as ``simplecache::s3://...`` included).
        storage_options: Options for the fsspec filesystem (credentials, endpoints).
    """

    def __init__(self, url: str | os.PathLike, storage_options: dict[str, Any] | None = None):
        self.url = os.fspath(url).rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs, path = fsspec.core.url_to_fs(self.url, **self.storage_options)
        self.path = path.rstrip("/")

    @property
    def is_local(self) -> bool:
        """True on the local filesystem (atomic renames and file locks available)."""
        return isinstance(self.fs, LocalFileSystem)

    def child(self, *names: str) -> Location:
        """The location ``names`` below this one, with the same storage options."""
        return Location(posixpath.join(self.url, *names), self.storage_options)

    def sibling(self, suffix: str) -> Location:
        """A location next to this one whose name has ``suffix`` appended (``data.zarr`` -> ``data.zarr.build``)."""
        return Location(self.url + suffix, self.storage_options)

    def key(self, *names: str) -> str:
        """The filesystem path of ``names`` below this location (joined with ``/``)."""
        return posixpath.join(self.path, *names)

    def zarr_store(self, read_only: bool = False) -> Store:
        """A zarr store rooted here: a LocalStore on local disk, an FsspecStore elsewhere.

        Args:
            read_only: Open the store read-only.
        """
        from .zarr_compat import FsspecStore, LocalStore

        if self.is_local:
            return LocalStore(self.path, read_only=read_only)
        if "::" in self.url:
            # a chain (simplecache::s3://...): its caching layer is synchronous and calls the inner
            # filesystem's blocking methods, so that one must not be the asynchronous instance zarr
            # would make (its session would belong to zarr's event loop); wrap the whole chain instead
            wrapped = AsyncFileSystemWrapper(self.fs, asynchronous=True)
            return FsspecStore(fs=wrapped, path=self.path, read_only=read_only)
        return FsspecStore.from_url(self.url, storage_options=self.storage_options, read_only=read_only)

    def open_group(self, mode: str = "r", path: str = "") -> zarr.Group:
        """The zarr v3 group here (or at ``path`` below); never probes v2 or consolidated metadata keys.

        Args:
            mode: ``open_group``'s mode (``r``, ``r+``, ``w``, ...); ``r`` opens the store read-only.
        """
        import zarr

        store = self.zarr_store(read_only=mode == "r")
        return zarr.open_group(store, mode=mode, path=path, zarr_format=3, use_consolidated=False)

    async def open_async_group(self, mode: str = "r", path: str = "") -> AsyncGroup:
        """The async counterpart of :meth:`open_group`, for fetching many arrays concurrently.

        Args:
            mode: As for :meth:`open_group`.
            path: The group's path below this location.
        """
        import zarr.api.asynchronous as zarr_async

        store = self.zarr_store(read_only=mode == "r")
        return await zarr_async.open_group(
            store=store, mode=mode, path=path, zarr_format=3, use_consolidated=False
        )

    def read_attrs(self, key: str) -> dict[str, Any] | None:
        """The attribute ``key`` of the zarr group here (read from its ``zarr.json`` alone), or None
        when there is no group, no such attribute, or it is not a JSON object."""
        meta = self.read_json("zarr.json")
        attrs = meta.get("attributes", {}).get(key) if isinstance(meta, dict) else None
        return attrs if isinstance(attrs, dict) else None

    def exists(self, *names: str) -> bool:
        """Whether the file or folder ``names`` below this location exists."""
        return self.fs.exists(self.key(*names))

    def read_json(self, *names: str) -> Any | None:
        """A small JSON file below this location, or None when it is absent or not valid JSON."""
        try:
            return json.loads(self.fs.cat_file(self.key(*names)))
        except (FileNotFoundError, ValueError):
            return None

    def write_json(self, value: Any, *names: str) -> None:
        """Write ``value`` as indented, key-sorted JSON to ``names`` below here (see :meth:`write_bytes`)."""
        self.write_bytes(json.dumps(value, sort_keys=True, indent=1).encode(), *names)

    def write_bytes(self, data: bytes, *names: str) -> None:
        """Write a small file so that it appears whole: locally via a temporary name and a rename.

        Args:
            data: The file's content.
            names: Its path below this location.
        """
        target = self.key(*names)
        if self.is_local:
            write_atomic(target, data, permissions=SHARED, durable=False, parents=True)
        else:
            self.fs.pipe_file(target, data)  # a single PUT: object stores never show half an object

    def write_files(self, files: dict[str, bytes]) -> None:
        """Store ``files`` (relative key -> bytes) below this location; concurrent PUTs on object stores.
        Not atomic per file: for trees that become visible as a whole (a renamed folder, a marker)."""
        if not self.is_local:
            self.fs.pipe({self.key(key): data for key, data in files.items()})
            return
        for key, data in files.items():
            path = self.key(key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)

    def remove(self) -> None:
        """Delete this folder or prefix and everything below it (nothing when absent)."""
        with contextlib.suppress(FileNotFoundError):
            if self.fs.exists(self.path):
                self.fs.rm(self.path, recursive=True)

    def files(self) -> dict[str, int]:
        """Every file below this location: relative POSIX key -> size in bytes."""
        self.fs.invalidate_cache(self.path)  # other clients (zarr's, other processes) may have written
        if not self.fs.exists(self.path):
            return {}
        found = self.fs.find(self.path, detail=True)
        prefix = self.path + "/"
        return {
            name[len(prefix) :]: int(info["size"]) for name, info in found.items() if name.startswith(prefix)
        }


def crc32c_hex(data: bytes) -> str:
    """The CRC32C of ``data`` as 8 lower-case hex digits (what manifests and ``done.json`` record)."""
    return f"{google_crc32c.value(data):08x}"


def file_entry(data: bytes) -> list:
    """A file's manifest entry: ``[size, CRC32C, CRC-32]`` (hex digests).

    The CRC-32 (zlib's polynomial) is what tells an edited chunk or shard apart: zarr ends those
    files with the CRC32C of what comes before, and the CRC32C of such a file is then the same
    constant for any content, so the CRC32C column checks only the files that do not end so.
    Manifests written before the CRC-32 have ``[size, CRC32C]`` entries.

    Args:
        data: The file's bytes.
    """
    return [len(data), crc32c_hex(data), f"{zlib.crc32(data):08x}"]


def checksum_files(location: Location, keys: list[str]) -> dict[str, list]:
    """``key -> file_entry`` (size, CRC32C, CRC-32) for the files below ``location`` that exist among ``keys``.

    Fetched concurrently on remote stores; absent keys (zarr skips chunks that hold only the fill
    value) are left out.
    """
    if not keys:
        return {}
    paths = {location.key(k): k for k in keys}
    contents = location.fs.cat(list(paths), on_error="omit")
    return {paths[path]: file_entry(data) for path, data in sorted(contents.items())}


@contextlib.contextmanager
def commit_lock(location: Location, timeout: float = 3600.0) -> Iterator[None]:
    """Exclusive lock for one committer at a time, on local disk only (``<root>.lock`` with flock).

    The kernel drops an flock when its holder dies, so a SIGKILLed build never leaves a stale lock.
    Object stores have no lock: there the writer relies on idempotent parts and a marker written last.

    Args:
        location: The cache root.
        timeout: Seconds to wait for another committer before CacheError.
    """
    if not location.is_local:
        yield
        return
    lock_path = location.path + ".lock"
    os.makedirs(os.path.dirname(lock_path) or ".", exist_ok=True)
    with contextlib.ExitStack() as held:
        try:  # removed on release, so the lock file does not outlive the build
            held.enter_context(file_lock(lock_path, timeout=timeout, remove=True, permissions=0o644))
        except LockTimeout as err:
            raise CacheError(f"{location.url}: {err}") from None
        yield
