"""Whether a split's stored files are all there, at the sizes the cache's manifest records.

zarr reads a chunk or shard file that is absent as its fill value (zeros), so a deleted file
would give zeros for events, labels or offsets without an error. Reading a split therefore first
compares the files below it with the manifest (one listing of the split and the manifest itself,
checked against the CRC32C that zarr.json records): a file missing, or of another size than
written, is a :class:`~.errors.CacheError` naming it. ``neurodata verify`` also checks every file's
content; this check is the cheap part that every read can afford.
"""

from __future__ import annotations

import json

from .errors import CacheError
from .layout import MANIFEST_KEY
from .store import Location, crc32c_hex


def read_manifest(location: Location, manifest_crc32c: str | None) -> dict[str, list]:
    """The manifest's ``files`` (key -> ``[size, CRC32C(, CRC-32)]``), checked against its CRC32C.

    Args:
        location: The cache.
        manifest_crc32c: The manifest's CRC32C as zarr.json records it.

    Raises:
        CacheError: The manifest is missing or differs from its recorded CRC32C (the message
            names the manifest, not the cache).
    """
    try:
        raw = location.fs.cat_file(location.key(MANIFEST_KEY))
    except FileNotFoundError:
        raise CacheError(f"{MANIFEST_KEY} is missing") from None
    if crc32c_hex(raw) != manifest_crc32c:
        raise CacheError(f"{MANIFEST_KEY} does not match the CRC32C recorded in zarr.json")
    return json.loads(raw)["attributes"]["files"]


def split_files_problem(location: Location, split: str, manifest_crc32c: str | None) -> str | None:
    """What is wrong with the files below ``split`` against the manifest (None: nothing; also for a
    cache written before manifests, ``manifest_crc32c`` None, and on remote stores, whose listings
    cost a request each and whose file caches, e.g. ``simplecache::``, list nothing).

    Args:
        location: The cache.
        split: The split's name (its folder).
        manifest_crc32c: The manifest's CRC32C as zarr.json records it.

    Raises:
        CacheError: The manifest is missing or differs from its recorded CRC32C.
    """
    if manifest_crc32c is None or not location.is_local:
        return None
    try:
        files = read_manifest(location, manifest_crc32c)
    except CacheError as error:
        raise CacheError(f"{location.url}: {error} (damaged cache?)") from None
    prefix = split + "/"
    expected = {key: entry[0] for key, entry in files.items() if key.startswith(prefix)}
    base = location.key(split)
    found = location.fs.find(base, detail=True) if location.fs.exists(base) else {}
    stored = {name[len(base) + 1 :]: int(info["size"]) for name, info in found.items() if name.startswith(base + "/")}
    for key, size in sorted(expected.items()):
        have = stored.get(key[len(prefix) :])
        if have is None:
            return f"{key} is missing (zarr would read it as zeros)"
        if have != size:
            return f"{key} holds {have} bytes, the manifest says {size}"
    return None
