"""A dataset's files read where they are: a folder, or the members of its archives, read in place.

``prepare`` plans and decodes through a :class:`FileTree`, so that a published archive is neither
copied nor extracted: zip members are read straight from the archive (from any process), members of
a plain tar by their offset, and a compressed tar is streamed (see :mod:`.tar_tree`). Every member
name is checked as extraction checks it (:mod:`.members`), so the same archives are refused.

Names are POSIX paths relative to the tree's root (``DvsGesture/user01_led.aedat``); a tree made of
several archives mounts each under its own folder (see :class:`MountedTree`).
"""

from __future__ import annotations

import functools
import os
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Protocol

import numpy as np

from ..errors import NeurodataError
from .members import CORRUPT, ExtractError, check_kind, checked_name, kind_of_mode

ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
"""Compression methods Python's zipfile reads; a zip using another (Deflate64, PPMd) is extracted by a tool."""


class FileTree(Protocol):
    """What ``prepare`` needs of a dataset's files, wherever they are. Besides reading, a tree says
    whether other processes can read it (``shareable``) and, for a stream read front to back,
    brings files in by rounds (``ready``, ``rounds``, ``release``: see
    :class:`~neurodata.datasets.tar_tree.TarTree`)."""

    shareable: bool

    def names(self) -> list[str]:
        """Every regular file's name, sorted."""
        ...

    def read_bytes(self, name: str) -> bytes:
        """The whole content of the file ``name``."""
        ...

    def where(self, name: str) -> str:
        """How messages name the file ``name`` (its path, or ``archive:member``)."""
        ...

    def ready(self, name: str) -> bool:
        """Whether the file ``name`` can be read now."""
        ...

    def rounds(self, wanted: set[str]) -> Iterator[None]:
        """Make the files ``wanted`` readable, some at a time; yields when a round is ready."""
        ...

    def release(self, names: list[str]) -> None:
        """The files ``names`` are done with."""
        ...


class InPlace:
    """What a tree whose files any process can read at any time answers to the streaming protocol
    of :class:`~neurodata.datasets.tar_tree.TarTree` (``ready``, ``rounds``, ``release``)."""

    shareable = True

    def ready(self, name: str) -> bool:
        """Always: the file ``name`` can be read now."""
        return True

    def rounds(self, wanted: set[str]) -> Iterator[None]:
        """One round: everything ``wanted`` is readable already."""
        yield

    def release(self, names: list[str]) -> None:
        """Nothing to free for ``names``."""


class FolderTree(InPlace):
    """The files under a local folder.

    Args:
        root: The folder.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._names: list[str] | None = None

    def names(self) -> list[str]:
        """Every regular file under the root, as a relative POSIX path, sorted (listed once)."""
        if self._names is None:
            found = []
            for folder, _, files in os.walk(self.root):
                base = Path(folder).relative_to(self.root)
                found += [(base / f).as_posix() for f in files]
            self._names = sorted(found)
        return self._names

    def read_bytes(self, name: str) -> bytes:
        """The content of the file ``name`` under the root."""
        return (self.root / name).read_bytes()

    def where(self, name: str) -> str:
        """The path of the file ``name``."""
        return str(self.root / name)

    def __getstate__(self) -> dict:
        return {"root": self.root, "_names": None}  # a worker lists again only if it must


class ZipTree(InPlace):
    """The members of a zip archive, read in place; any number of processes can read it at once
    (each opens the archive once, see :func:`open_zip`).

    Args:
        path: The archive.

    Raises:
        UnsafeArchiveError: A member with an absolute or escaping name, a link or a special file.
        ExtractError: The archive is damaged.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._names: list[str] | None = None
        self.needs_tool = False  # a compression method zipfile lacks (Deflate64, PPMd): extract with a tool
        for info in open_zip(self.path)[0].infolist():
            checked_name(self.path, info.filename)
            check_kind(self.path, info.filename, kind_of_mode(info.external_attr >> 16))
            self.needs_tool |= info.compress_type not in ZIP_METHODS

    def names(self) -> list[str]:
        """Every file member's checked name, sorted (listed once)."""
        if self._names is None:
            self._names = sorted(open_zip(self.path)[1])
        return self._names

    def read_bytes(self, name: str) -> bytes:
        """The member ``name``, decompressed and checked against its CRC."""
        archive, infos = open_zip(self.path)
        try:
            return archive.read(infos[name])
        except RuntimeError as exc:  # "File ... is encrypted, password required"
            raise ExtractError(f"{self.path}: {exc}") from None
        except CORRUPT as exc:
            raise ExtractError(f"{self.where(name)}: cannot read member: {exc}") from None

    def where(self, name: str) -> str:
        """``archive:member`` for the member ``name``."""
        return f"{self.path}:{name}"

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_names": None}  # a worker lists again only if it must


@functools.lru_cache(maxsize=64)
def _open_zip(path: Path, size: int, mtime_ns: int, pid: int) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    try:
        archive = zipfile.ZipFile(path)
    except CORRUPT as exc:
        raise ExtractError(f"{path}: cannot read zip archive: {exc}") from None
    files = {
        checked_name(path, info.filename).as_posix(): info
        for info in archive.infolist()
        if not info.is_dir() and kind_of_mode(info.external_attr >> 16) == "file"
    }
    return archive, files


def open_zip(path: Path) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    """The open zip archive at ``path`` and its file members by checked name, opened once per
    process (and again if the file changes), so that the many tasks of one worker share its index.
    The process id is part of the key: a forked worker must not share its parent's file offset.

    Args:
        path: The archive.
    """
    stat = os.stat(path)
    return _open_zip(path, stat.st_size, stat.st_mtime_ns, os.getpid())


class MountedTree:
    """Several trees seen as one, each under its own folder (an archive's name without its suffixes).

    Args:
        trees: ``(folder, tree)`` pairs; folders must differ.
    """

    def __init__(self, trees: Iterable[tuple[str, FileTree]]):
        self.trees = dict(trees)
        self._names: list[str] | None = None

    def _split(self, name: str) -> tuple[FileTree, str]:
        head, _, rest = name.partition("/")
        return self.trees[head], rest

    def names(self) -> list[str]:
        """Every member of every tree, under its folder, sorted (listed once)."""
        if self._names is None:
            self._names = sorted(f"{folder}/{n}" for folder, tree in self.trees.items() for n in tree.names())
        return self._names

    def read_bytes(self, name: str) -> bytes:
        """The file ``name`` from the tree mounted at its first folder."""
        tree, rest = self._split(name)
        return tree.read_bytes(rest)

    def where(self, name: str) -> str:
        """How the tree mounted at the first folder of ``name`` names the file."""
        tree, rest = self._split(name)
        return tree.where(rest)

    @property
    def shareable(self) -> bool:
        """Whether every mounted tree can be read from other processes."""
        return all(tree.shareable for tree in self.trees.values())

    def ready(self, name: str) -> bool:
        """Whether the file ``name`` can be read now."""
        tree, rest = self._split(name)
        return tree.ready(rest)

    def rounds(self, wanted: set[str]) -> Iterator[None]:
        """The rounds of each mounted tree in turn, for its share of ``wanted``."""
        for folder, tree in self.trees.items():
            mine = {n.partition("/")[2] for n in wanted if n.partition("/")[0] == folder}
            yield from tree.rounds(mine)

    def release(self, names: list[str]) -> None:
        """Let each mounted tree free its files among ``names``."""
        for name in names:
            tree, rest = self._split(name)
            tree.release([rest])

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_names": None}  # a worker lists again only if it must


def find_marker(tree: FileTree, marker: str, dataset: str) -> str:
    """The folder of ``tree`` (``""`` for its root, else ``"a/b/"``) holding the file named ``marker``,
    the shallowest one when several do.

    Args:
        tree: The dataset's files.
        marker: The file name that identifies the dataset's folder.
        dataset: The dataset's name, for the error.

    Raises:
        NeurodataError: When no file of ``tree`` is named ``marker``.
    """
    hits = [n for n in tree.names() if PurePosixPath(n).name == marker]
    if not hits:
        raise NeurodataError(f"{dataset}: no {marker!r} found: is this the right archive or folder?")
    best = min(hits, key=lambda n: (n.count("/"), n))
    return best[: -len(marker)]


def files_by_folder(tree: FileTree) -> dict[str, list[str]]:
    """The names of ``tree`` grouped by the folder directly holding them (``""`` for the root, else
    ``"a/b/"``), each group sorted: one pass over the listing, for plans that look up many folders.

    Args:
        tree: The dataset's files.
    """
    folders: dict[str, list[str]] = {}
    for name in tree.names():
        folders.setdefault(name[: name.rfind("/") + 1], []).append(name)
    return folders


def read_text(tree: FileTree, name: str) -> str:
    """The file ``name`` of ``tree`` as text (UTF-8, undecodable bytes named in the error).

    Args:
        tree: The dataset's files.
        name: The file.
    """
    try:
        return tree.read_bytes(name).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NeurodataError(f"{tree.where(name)}: not UTF-8 text at byte {exc.start}") from None


def read_events(tree: FileTree, name: str, format: str) -> np.ndarray:
    """Decode the recording ``name`` of ``tree`` in ``format``; a local file is memory-mapped, an
    archive member decoded from memory.

    Args:
        tree: The dataset's files.
        name: The recording.
        format: Its format's name (see ``neurodata formats``).
    """
    # the decoders (Numba) load on prepare's warm-up thread while the archives are listed, not with the trees
    from ..reader import read, read_buffer

    if isinstance(tree, FolderTree):
        return read(tree.root / name, format=format)
    return read_buffer(tree.read_bytes(name), tree.where(name), format=format)
