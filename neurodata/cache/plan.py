"""What a cache build is: the dataset's name and attributes, the parts per split and the storage
choices, checked, and the fingerprint that tells whether staged parts or a finished cache belong to it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .errors import CacheError
from .layout import (
    ATTRS_KEY,
    DEFAULT_CHUNK_EVENTS,
    DEFAULT_CODEC,
    DEFAULT_SHARD_EVENTS,
    EVENT_CODECS,
    LAYOUT_VERSION,
    MANIFEST_GROUP,
    RESERVED_ATTRS,
)
from .store import Location

PLAN_NAME = "plan.json"  # in the staging area: the fingerprint its parts were staged for


def build_fingerprint(
    name: str,
    attrs: dict[str, Any],
    parts: dict[str, int],
    storage: dict[str, Any],
    layout_version: int = LAYOUT_VERSION,
) -> str:
    """A digest of everything that determines the cache's content, to detect stale parts and caches.

    Args:
        name: The dataset's name.
        attrs: The caller's dataset attributes.
        parts: Parts per split.
        storage: The storage choices (:attr:`BuildPlan.storage` or :attr:`BuildPlan.packed_storage`).
        layout_version: The layout the digest is for (older caches are fingerprinted as they were).
    """
    plan = {
        "layout_version": layout_version,
        "name": name,
        "attrs": attrs,
        "parts": parts,
        "storage": storage,
    }
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()


def read_marker(root: Location) -> dict[str, Any] | None:
    """The ``neurodata_cache`` attribute of the root ``zarr.json``, or None when there is none."""
    return root.read_attrs(ATTRS_KEY)


@dataclass(frozen=True)
class BuildPlan:
    """One cache build (see :class:`~neurodata.cache.CacheBuilder` for the meaning of each field).

    Attributes:
        name: The dataset's name.
        attrs: The caller's JSON-serialisable dataset attributes.
        parts: Each split's number of parts (0: an empty split).
        chunk_events: Events per compressed inner chunk.
        shard_events: Events per stored shard (a multiple of ``chunk_events``).
        codec: ``lz4`` or ``zstd``.
        align_samples: Start every sample at a whole inner chunk (False: back to back).
        pack_polarities: Let the polarities ride in the times where they can.
    """

    name: str
    attrs: dict[str, Any]
    parts: dict[str, int]
    chunk_events: int = DEFAULT_CHUNK_EVENTS
    shard_events: int = DEFAULT_SHARD_EVENTS
    codec: str = DEFAULT_CODEC
    align_samples: bool = True
    pack_polarities: bool = True

    def checked(self, where: str) -> BuildPlan:
        """This plan with its attributes as JSON gives them back, or CacheError naming ``where``."""
        clash = RESERVED_ATTRS & set(self.attrs)
        if clash:
            raise CacheError(f"{where}: attribute(s) {sorted(clash)} are reserved by the cache layout")
        try:
            attrs = json.loads(json.dumps(self.attrs))
        except TypeError as err:
            raise CacheError(f"{where}: dataset attributes are not JSON-serialisable ({err})") from err
        bad = [
            s
            for s, n in self.parts.items()
            if not isinstance(n, int)
            or n < 0
            or not s
            or "/" in s
            or s.startswith(".")
            or s == MANIFEST_GROUP
        ]
        if bad:
            raise CacheError(f"{where}: invalid split name or part count for {bad}")
        if self.shard_events % self.chunk_events:
            raise CacheError(
                f"{where}: shard_events={self.shard_events} is not a multiple of chunk_events={self.chunk_events}"
            )
        if self.codec not in EVENT_CODECS:
            raise CacheError(f"{where}: unknown codec {self.codec!r}; choose one of {sorted(EVENT_CODECS)}")
        return dataclasses.replace(self, attrs=attrs, parts=dict(self.parts))

    @property
    def storage(self) -> dict[str, Any]:
        """The storage choices a layout 2 fingerprint covered."""
        return {
            "chunk_events": self.chunk_events,
            "shard_events": self.shard_events,
            "codec": self.codec,
            "align_samples": self.align_samples,
        }

    @property
    def packed_storage(self) -> dict[str, Any]:
        """The storage choices a fingerprint covers from layout 3 on."""
        return {**self.storage, "pack_polarities": self.pack_polarities}

    @cached_property
    def fingerprint(self) -> str:
        """The digest of this build (:func:`build_fingerprint`)."""
        return build_fingerprint(self.name, self.attrs, self.parts, self.packed_storage)

    def finished_fingerprints(self, overwrite: bool) -> frozenset[str]:
        """The fingerprints of finished caches that count as this build: its own, and unless
        ``overwrite`` the same build in layout 1, 2 or 3 (still read, with a warning that their
        chunks are unchecked: upgrading the layout alone does not rebuild a dataset)."""
        if overwrite:
            return frozenset({self.fingerprint})
        layout_1 = {k: v for k, v in self.storage.items() if k != "align_samples"}
        return frozenset(
            {
                self.fingerprint,
                build_fingerprint(self.name, self.attrs, self.parts, layout_1, layout_version=1),
                build_fingerprint(self.name, self.attrs, self.parts, self.storage, layout_version=2),
                build_fingerprint(self.name, self.attrs, self.parts, self.packed_storage, layout_version=3),
            }
        )

    def planned_parts(self) -> list[tuple[str, int]]:
        """Every ``(split, index)`` of the plan, split by split."""
        return [(split, index) for split, n in self.parts.items() for index in range(n)]
