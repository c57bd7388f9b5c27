"""Where ``prepare`` takes a dataset's archives from, and how each one was checked.

The published mirrors by default; a mirror base URL that serves the published files under their
names (``--mirror URL/``); or the user's own copies (``--source``, repeatable): archives (local paths
or URLs), a local folder holding the downloaded archives, or one extracted folder. A remote archive
is fetched into ``raw/<name>/downloads``; a local one is read where it is. Each is verified against
the published checksum unless ``verify`` is off, read in place (zip and tar members; RAR and 7z are
extracted by a tool), and recorded in the cache's ``source_checksums`` with its md5 and sha256, marked
``unverified`` (with the reason) where no published checksum vouched for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import NeurodataError
from ..network import DEFAULT_RETRY, RetryPolicy
from .checksum import ChecksumError, Digests, Hasher, check_digests
from .download import DownloadedFile, DownloadError, UnreachableError, download
from .extract import archive_kind, extract
from .progress import ReadProgress, emit_stage
from .registry import DatasetSpec
from .resource import Callback, Resource, is_html_page
from .tar_tree import Report, TarTree
from .trees import FileTree, FolderTree, MountedTree, ZipTree

NO_VERIFY_HINT = (
    "if this copy is the one you mean to use (a repacked archive, a mirror), rerun with --no-verify "
    "(verify=False in Python): the cache then records it as unverified, with its sha256"
)


@dataclass(frozen=True)
class Sources:
    """What ``prepare`` fetches its archives from.

    Parameters:
        paths: the user's own copies: local archives, URLs (any fsspec URL), a local folder holding
            the downloaded archives under their published names, or one extracted folder. Empty:
            the published files.
        mirror: a base URL serving the published files under their names (``<mirror>/Train.zip``),
            used instead of the published URLs.
        verify: refuse an archive whose checksum differs from the published one; False accepts it
            and records it as unverified.
        retry: timing of network reads (timeouts, back-off, when to give up).
    """

    paths: tuple[str, ...] = ()
    mirror: str | None = None
    verify: bool = True
    retry: RetryPolicy = DEFAULT_RETRY

    @classmethod
    def of(cls, source: str | os.PathLike | Sequence[str | os.PathLike] | None, **fields) -> Sources:
        """``Sources`` from ``prepare``'s ``source`` argument (one path or URL, several, or None)."""
        if source is None:
            paths: tuple[str, ...] = ()
        elif isinstance(source, (str, os.PathLike)):
            paths = (os.fspath(source),)
        else:
            paths = tuple(os.fspath(s) for s in source)
        return cls(paths=paths, **fields)


@dataclass(frozen=True)
class Obtained:
    """A dataset's files, ready to plan and decode.

    Attributes:
        tree: Its files: a folder, or its archives' members read in place.
        base: The dataset's folder in ``tree`` (``""``: the root), as the spec's ``locate`` found it.
        checksums: What is known of each archive (file name -> ``md5``, ``sha256`` and, where nothing
            published vouched for it, ``unverified``: the reason).
        scratch: Folders extracted for this run (archives that need an external tool, or every archive
            for an executor's workers), to remove once the cache is built unless ``--keep-raw``.
    """

    tree: FileTree
    base: str
    checksums: dict[str, dict[str, str]]
    scratch: tuple[Path, ...] = ()


def obtain_tree(
    spec: DatasetSpec,
    sources: Sources,
    raw: Path,
    progress: bool,
    callback: Callback | None,
    extract_all: bool = False,
) -> Obtained:
    """The dataset's files from ``sources``: downloads land in ``raw/downloads``; the user's local
    archives are verified where they are, never copied; archives are read in place (zip and tar
    members), except RAR/7z (and zips using a method zipfile lacks), extracted into ``raw/extracted``.

    Args:
        spec: The dataset.
        sources: Where its archives or folder come from, and how to check them.
        raw: The folder for downloads and extracted trees.
        progress: Whether to show progress bars.
        callback: Gets a stage event per download, verification and archive, or ``None``.
        extract_all: Extract every archive (for workers on other machines, which read a shared disk).
    """
    plan = plan_archives(spec, sources)
    if isinstance(plan, Path):
        names = ", ".join(spec.file_names()) or "none published"
        tree = FolderTree(plan)
        return Obtained(tree, locate_in(spec, tree, f"nor does it hold the dataset's archives ({names})"), {})
    checksums: dict[str, dict[str, str]] = {}
    mounted: list[tuple[str, FileTree]] = []
    scratch: list[Path] = []
    for published in plan:
        if "://" in published.urls[0]:
            emit_stage(callback, "download", file=published.filename)
            fetched = fetch_archive(spec, published, sources, raw / "downloads", progress, callback)
            path, hashing, fresh = fetched.path, None, fetched.url is not None
            digests: DownloadedFile | Digests = fetched
        else:
            emit_stage(callback, "verify", file=published.filename)
            path, fresh = Path(published.urls[0]).expanduser(), False
            hashing = start_hashing(published, path)  # on its own thread, while the archive is listed
        folder = published.filename.split(".")[0]
        reading = ReadProgress(callback, progress, published.filename)
        tree = open_in_place(path, reading) if not extract_all else None
        if hashing is not None:  # shows progress if the listing ended first (a zip lists in no time)
            digests = hashing.result(ReadProgress(callback, progress, published.filename, stage="verify"))
            if sources.verify:
                check_published(published, path, digests)
        checksums[published.filename] = record = archive_record(published, digests)
        if "unverified" in record:
            emit_stage(callback, "unverified", file=published.filename, reason=record["unverified"])
        if tree is None:
            emit_stage(callback, "extract", file=published.filename)
            target = raw / "extracted" / folder
            tree = FolderTree(extract(path, target, overwrite=fresh, progress=progress))
            scratch.append(target)
        mounted.append((folder, tree))
    tree = MountedTree(mounted)
    names = ", ".join(r.filename for r in plan)
    return Obtained(tree, locate_in(spec, tree, f"searched what {names} held"), checksums, tuple(scratch))


def open_in_place(path: Path, report: Report | None = None) -> FileTree | None:
    """The members of the archive at ``path`` read in place, or None when it must be extracted
    (RAR, 7z, a single compressed file, a zip using a method zipfile lacks).

    Args:
        path: The archive.
        report: Told how far each pass over a tar archive got (progress), or None.
    """
    kind = archive_kind(path)
    if kind == "tar":
        return TarTree(path, report=report)
    if kind == "zip":
        tree = ZipTree(path)
        return None if tree.needs_tool else tree
    return None


@dataclass(frozen=True)
class LocalHashing:
    """A local archive being hashed on a thread of its own (:func:`start_hashing`).

    Attributes:
        future: Resolves to the archive's digests (or raises what hashing raised).
        hasher: The running hash (its ``size``: the bytes hashed so far).
        total: The archive's size in bytes.
    """

    future: Future[Digests]
    hasher: Hasher
    total: int

    POLL_SECONDS = 0.1

    def result(self, report: ReadProgress) -> Digests:
        """The digests, once hashed; while waiting, ``report(done, total)`` about every 0.1 s.

        Args:
            report: Told how many bytes are hashed while this waits (a bar, ``verify`` events).
        """
        waited = False
        try:
            while True:
                try:
                    digests = self.future.result(timeout=self.POLL_SECONDS)
                    break
                except FuturesTimeout:
                    waited = True
                    report(self.hasher.size, self.total)
            if waited:
                report(self.total, self.total)
            return digests
        finally:
            report.close()


def start_hashing(published: Resource, path: Path) -> LocalHashing:
    """Start hashing the user's local archive at ``path`` (read where it is, not copied) on a thread
    of its own, after refusing a missing file or an HTML page saved under the archive's name.

    Args:
        published: The archive's published name and checksums.
        path: The user's copy.

    Raises:
        NeurodataError: No such file.
        DownloadError: The file is an HTML page (saved in the archive's place).
    """
    if not path.is_file():
        raise NeurodataError(f"{path}: no such file")
    with open(path, "rb") as f:
        if is_html_page(f.read(1024)) and not published.filename.endswith((".html", ".htm")):
            raise DownloadError(
                f"{path}: an HTML page, not {published.filename} (a login, licence or error page saved in "
                "its place? download the archive again, in a browser if the site asks you to log in)"
            )
    digests: Future[Digests] = Future()
    hasher = Hasher()

    def run() -> None:
        try:
            hasher.update_from_file(path)
            digests.set_result(hasher.digests())
        except BaseException as exc:  # the caller's .result() raises it
            digests.set_exception(exc)

    # a daemon thread: a run that fails while listing the archive exits without waiting for the hash
    threading.Thread(target=run, name="neurodata-hash", daemon=True).start()
    return LocalHashing(digests, hasher, path.stat().st_size)


def check_published(published: Resource, path: Path, digests: Digests) -> None:
    """Refuse the local archive at ``path`` when its ``digests`` differ from the ``published`` ones.

    Args:
        published: The archive's published name and checksums.
        path: The user's copy (named in the error).
        digests: Its measured digests.

    Raises:
        ChecksumError: The digests differ, with what to do.
    """
    try:
        check_digests(str(path), digests, published.size, published.md5, published.sha256)
    except ChecksumError as exc:
        raise ChecksumError(exc.source, exc.what, exc.expected, exc.actual, NO_VERIFY_HINT) from None


def plan_archives(spec: DatasetSpec, sources: Sources) -> Path | list[Resource]:
    """An extracted folder to read, or the archives of ``spec`` to fetch from ``sources``, each with
    its published checksums."""
    if sources.paths and sources.mirror:
        raise NeurodataError("give --source or --mirror, not both")
    if sources.mirror:
        return _from_mirror(spec, sources.mirror)
    if not sources.paths:
        if spec.manual_download:
            raise NeurodataError(spec.manual_download)
        return list(spec.resources)
    folders = [p for p in sources.paths if _is_local_dir(p) and not _archives_in(spec, p)]
    if folders:
        if len(sources.paths) > 1:
            raise NeurodataError(
                f"{spec.name}: {folders[0]} is an extracted folder: give it alone, not with other sources"
            )
        return Path(folders[0])
    archives: list[Resource] = []
    for path in sources.paths:
        archives += _archives_in(spec, path) if _is_local_dir(path) else [_archive(spec, path)]
    _check_archives(spec, archives)
    return archives


def fetch_archive(
    spec: DatasetSpec,
    published: Resource,
    sources: Sources,
    downloads: Path,
    progress: bool,
    callback: Callback | None,
) -> DownloadedFile:
    """Download (or copy) one archive into ``downloads``; checked against ``published`` when
    ``sources.verify``. Errors say what to do: use ``--no-verify``, or ``--source``/``--mirror``.

    Args:
        spec: The dataset (named in errors).
        published: The archive and its published checksums.
        sources: The retry policy and whether to verify.
        downloads: The folder to download into.
        progress: Whether to show a progress bar.
        callback: Gets download events, or ``None``.
    """
    resource = published if sources.verify else Resource(published.filename, urls=published.urls)
    if resource.size is None and "://" not in published.urls[0]:
        # a local copy: its size tells a different file under the same name from the one kept before
        resource = replace(resource, size=_size_or_none(published.urls[0]))
    try:
        return download(resource, downloads, retry=sources.retry, progress=progress, callback=callback)
    except ChecksumError as exc:
        raise ChecksumError(exc.source, exc.what, exc.expected, exc.actual, NO_VERIFY_HINT) from None
    except UnreachableError as exc:
        raise UnreachableError(
            f"{exc}. This machine looks offline: download {published.filename} elsewhere, then run "
            f"`neurodata prepare {spec.name} --source PATH` (repeatable, or a folder holding the archives), "
            "or point --mirror at a copy you can reach"
        ) from None


def archive_record(published: Resource, fetched: DownloadedFile | Digests) -> dict[str, str]:
    """What the cache records of one archive: the digests of ``fetched`` and, unless a checksum of
    ``published`` matched, why it is ``unverified``."""
    record = {"md5": fetched.md5, "sha256": fetched.sha256}
    if published.md5 is None and published.sha256 is None:
        record["unverified"] = "no published checksum for this file name"
    elif published.md5 not in (None, fetched.md5):
        record["unverified"] = f"differs from the published md5 {published.md5} (accepted with --no-verify)"
    elif published.sha256 not in (None, fetched.sha256):
        record["unverified"] = f"differs from the published sha256 {published.sha256} (accepted with --no-verify)"
    return record


def locate_in(spec: DatasetSpec, tree: FileTree, note: str) -> str:
    """``spec.locate`` on ``tree``, its error followed by ``note`` (what was searched, what else was expected)."""
    try:
        return spec.locate(tree)
    except NeurodataError as exc:
        raise NeurodataError(f"{exc}; {note}") from None


def _from_mirror(spec: DatasetSpec, mirror: str) -> list[Resource]:
    if not spec.resources:
        names = ", ".join(spec.file_names())
        raise NeurodataError(
            f"{spec.name}: no published files to fetch from a mirror ({names} is a manual download); "
            f"give your copy with --source, e.g. --source {mirror.rstrip('/')}/{names.split(', ')[0]}"
        )
    base = mirror.rstrip("/")
    return [replace(r, urls=(f"{base}/{r.filename}",)) for r in spec.resources]


def _archive(spec: DatasetSpec, path: str) -> Resource:
    name = os.path.basename(path.split("?")[0].rstrip("/")) or "archive"
    known = next((r for r in spec.resources if r.filename == name), None)
    if known is not None:
        return replace(known, urls=(path,))
    return Resource(name, md5=spec.expected_md5(name), urls=(path,))


def _archives_in(spec: DatasetSpec, folder: str) -> list[Resource]:
    """The dataset's archives found under their published names directly in ``folder``."""
    return [_archive(spec, str(Path(folder) / n)) for n in spec.file_names() if (Path(folder) / n).is_file()]


def _check_archives(spec: DatasetSpec, archives: list[Resource]) -> None:
    names = [r.filename for r in archives]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise NeurodataError(f"{spec.name}: {', '.join(twice)} given more than once")
    published = [r.filename for r in spec.resources]
    missing = [n for n in published if n not in names]
    if published and missing and set(names) <= set(published):
        flags = " ".join(f"--source {n}" for n in published[:2]) + (" ..." if len(published) > 2 else "")
        raise NeurodataError(
            f"{spec.name}: the archives given lack {', '.join(missing)}; give every archive "
            f"({flags}) or a folder holding them"
        )


def _is_local_dir(path: str) -> bool:
    return "://" not in path and Path(path).is_dir()


def _size_or_none(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None  # the download names the missing file
