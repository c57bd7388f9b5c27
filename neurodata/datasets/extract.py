"""Extract zip, tar (plain, gz, bz2, xz), single compressed files (.gz/.bz2/.xz) and, through an
external tool, RAR and 7z. Extraction happens in ``.<target>.extracting`` beside the target, which is
renamed into place only when complete: a killed extraction never leaves a half tree under the final
name, and the next run starts over cleanly. Every member is checked first (see ``members.py``)."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import shutil
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from ..localfs import file_lock, replace_tree
from .external import extract_external
from .members import (
    CORRUPT,
    ExtractError,
    Report,
    check_kind,
    checked_name,
    extract_tar_members,
    kind_of_mode,
)
from .resource import Callback, is_html_page

_MAGIC = {
    b"PK\x03\x04": "zip",
    b"PK\x05\x06": "zip",  # an empty zip
    b"Rar!\x1a\x07": "rar",
    b"7z\xbc\xaf\x27\x1c": "7z",
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\xfd7zXZ\x00": "xz",
}
_STREAM_OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
_STREAM_SUFFIXES = {"gzip": ".gz", "bz2": ".bz2", "xz": ".xz"}


def archive_kind(path: str | os.PathLike) -> str:
    """``zip``, ``tar`` (any compression), ``rar``, ``7z``, or ``gzip``/``bz2``/``xz`` for a single
    compressed file at ``path``; decided by content, not by name. Raises ``ExtractError`` for anything else."""
    with open(path, "rb") as f:
        head = f.read(1024)
    if is_html_page(head):
        raise ExtractError(
            f"{path}: an HTML page, not an archive (a login, licence or error page saved in its place? "
            "download the archive again, in a browser if the site asks you to log in)"
        )
    head = head[:8]
    kind = next((k for magic, k in _MAGIC.items() if head.startswith(magic)), None)
    if kind in (None, "gzip", "bz2", "xz") and _is_tar(path):
        return "tar"
    if kind is None:
        raise ExtractError(f"{path}: not a zip, tar, gzip, bz2, xz, rar or 7z archive (starts with {head!r})")
    return kind


def extract(
    archive: str | os.PathLike,
    target: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: bool | None = None,
    callback: Callback | None = None,
    tool: str | None = None,
) -> Path:
    """Extract ``archive`` into the folder ``target`` (created; its parent must be writable).

    An existing ``target`` counts as done (it only ever appears complete) unless ``overwrite``.
    ``tool`` picks the external program for RAR/7z (``bsdtar``, ``unar`` or ``7z``; default: the first
    installed). ``progress`` True or False forces a progress bar on or off (None: only on a
    terminal). ``callback`` gets ``{"event": "extract", "archive", "member", "done", "total"}`` per
    member and ``{"event": "extracted", "archive", "path"}`` at the end.
    """
    archive, target = Path(archive).expanduser(), Path(target).expanduser()
    if not archive.is_file():
        raise ExtractError(f"{archive}: no such archive")
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / f".{target.name}.lock", remove=True):
        if target.exists() and not overwrite:
            _emit(callback, "extracted", archive=str(archive), path=str(target))
            return target
        kind = archive_kind(archive)
        staging = target.parent / f".{target.name}.extracting"
        aside = target.parent / f".{target.name}.old"
        shutil.rmtree(staging, ignore_errors=True)  # both left by a killed run
        shutil.rmtree(aside, ignore_errors=True)
        staging.mkdir()
        try:
            with _reporter(archive, progress, callback) as report:
                _EXTRACTORS[kind](archive, staging, report, tool)
            replace_tree(staging, target, aside)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    _emit(callback, "extracted", archive=str(archive), path=str(target))
    return target


def _extract_zip(archive: Path, staging: Path, report: Report, tool: str | None) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:  # check everything before writing anything
                checked_name(archive, info.filename)
                check_kind(archive, info.filename, kind_of_mode(info.external_attr >> 16))
            total = sum(info.file_size for info in infos)
            for info in infos:
                zf.extract(info, staging)
                report(info.filename, info.file_size, total)
    except NotImplementedError:
        # A compression method zipfile lacks (Deflate64 from Windows' zipper, PPMd, ...): external tool.
        _empty(staging)
        why = "this zip uses a compression method Python's zipfile lacks (e.g. Deflate64), so it needs 7z or unar"
        extract_external(archive, "zip", staging, report, tool, order=("7z", "unar", "bsdtar"), why=why)
    except RuntimeError as exc:  # zipfile's "File ... is encrypted, password required"
        raise ExtractError(f"{archive}: {exc}") from None
    except CORRUPT as exc:
        raise ExtractError(f"{archive}: cannot extract zip archive: {exc}") from None


def _extract_tar(archive: Path, staging: Path, report: Report, tool: str | None) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            extract_tar_members(archive, tf, staging, report)
    except CORRUPT as exc:
        raise ExtractError(f"{archive}: cannot extract tar archive: {exc}") from None


def _decompress_single(archive: Path, staging: Path, report: Report, tool: str | None) -> None:
    kind = archive_kind(archive)
    suffix = _STREAM_SUFFIXES[kind]
    name = archive.name[: -len(suffix)] if archive.name.endswith(suffix) else archive.name + ".out"
    try:
        with _STREAM_OPENERS[kind](archive, "rb") as source, open(staging / name, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    except CORRUPT as exc:
        raise ExtractError(f"{archive}: cannot decompress {kind} stream: {exc}") from None
    report(name, (staging / name).stat().st_size, None)


def _extract_with_tool(kind: str, archive: Path, staging: Path, report: Report, tool: str | None) -> None:
    extract_external(archive, kind, staging, report, tool)


_EXTRACTORS = {
    "zip": _extract_zip,
    "tar": _extract_tar,
    "gzip": _decompress_single,
    "bz2": _decompress_single,
    "xz": _decompress_single,
    "rar": partial(_extract_with_tool, "rar"),
    "7z": partial(_extract_with_tool, "7z"),
}


def _is_tar(path: str | os.PathLike) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except CORRUPT:
        return False


def _empty(folder: Path) -> None:
    shutil.rmtree(folder)
    folder.mkdir()


def _emit(callback: Callback | None, event: str, **fields) -> None:
    if callback is not None:
        callback({"event": event, **fields})


@contextlib.contextmanager
def _reporter(archive: Path, progress: bool | None, callback: Callback | None) -> Iterator[Report]:
    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(unit="B", unit_scale=True, unit_divisor=1024, desc=archive.name, disable=not show)
    done = 0

    def report(member: str, size: int, total: int | None) -> None:
        nonlocal done
        done += size
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(size)
        _emit(callback, "extract", archive=str(archive), member=member, done=done, total=total)

    try:
        yield report
    finally:
        bar.close()
