"""Extract zip, tar (plain, gz, bz2, xz), single compressed files (.gz/.bz2/.xz) and, through an
external tool, RAR and 7z. Extraction happens in ``.<target>.extracting`` beside the target, which is
renamed into place only when complete: a killed extraction never leaves a half tree under the final
name, and the next run starts over cleanly. Every member is checked first (see ``members.py``)."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .locking import Callback, locked
from .members import ExtractError, UnsafeArchiveError, check_kind, check_tree, checked_name, kind_of_mode

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
_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError)
_TAR_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # 3.10.12+, 3.11.4+


def archive_kind(path: str | os.PathLike) -> str:
    """``zip``, ``tar`` (any compression), ``rar``, ``7z``, or ``gzip``/``bz2``/``xz`` for a single
    compressed file; decided by content, not by name. Raises ``ExtractError`` for anything else."""
    with open(path, "rb") as f:
        head = f.read(8)
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
    installed). ``callback`` gets ``{"event": "extract", "archive", "member", "done", "total"}`` per
    member and ``{"event": "extracted", "archive", "path"}`` at the end.
    """
    archive, target = Path(archive).expanduser(), Path(target).expanduser()
    if not archive.is_file():
        raise ExtractError(f"{archive}: no such archive")
    target.parent.mkdir(parents=True, exist_ok=True)
    with locked(target.parent / f".{target.name}.lock"):
        if target.exists() and not overwrite:
            _emit(callback, "extracted", archive=str(archive), path=str(target))
            return target
        kind = archive_kind(archive)
        staging = target.parent / f".{target.name}.extracting"
        shutil.rmtree(staging, ignore_errors=True)  # both left by a killed run
        shutil.rmtree(target.parent / f".{target.name}.old", ignore_errors=True)
        staging.mkdir()
        try:
            with _reporter(archive, progress, callback) as report:
                _EXTRACTORS[kind](archive, staging, report, tool)
            _replace_tree(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    _emit(callback, "extracted", archive=str(archive), path=str(target))
    return target


Report = Callable[[str, int, int | None], None]


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
        _extract_external(archive, staging, report, tool, order=("7z", "unar", "bsdtar"), why=why)
    except RuntimeError as exc:  # zipfile's "File ... is encrypted, password required"
        raise ExtractError(f"{archive}: {exc}") from None
    except _CORRUPT as exc:
        raise ExtractError(f"{archive}: cannot extract zip archive: {exc}") from None


def _extract_tar(archive: Path, staging: Path, report: Report, tool: str | None) -> None:
    try:
        with tarfile.open(archive, "r:*") as tf:
            _extract_tar_members(archive, tf, staging, report)
    except _CORRUPT as exc:
        raise ExtractError(f"{archive}: cannot extract tar archive: {exc}") from None


def _extract_tar_members(archive: Path, tf: tarfile.TarFile, staging: Path, report: Report) -> None:
    """Check each member as it streams past (a compressed tar is read once), then extract it."""

    def checked() -> Iterator[tarfile.TarInfo]:
        for member in tf:
            checked_name(archive, member.name)
            check_kind(archive, member.name, _tar_kind(member))
            report(member.name, member.size, None)
            yield member

    try:
        tf.extractall(staging, members=checked(), **_TAR_FILTER)
    except getattr(tarfile, "FilterError", ()) as exc:  # tarfile's own "data" filter, a second guard
        raise UnsafeArchiveError(archive, exc.tarinfo.name, str(exc)) from None


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.issym() or member.islnk():
        return "link"
    if member.isfile():
        return "file"
    return "dir" if member.isdir() else "special"


def _decompress_single(archive: Path, staging: Path, report: Report, tool: str | None) -> None:
    kind = archive_kind(archive)
    suffix = _STREAM_SUFFIXES[kind]
    name = archive.name[: -len(suffix)] if archive.name.endswith(suffix) else archive.name + ".out"
    try:
        with _STREAM_OPENERS[kind](archive, "rb") as source, open(staging / name, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    except _CORRUPT as exc:
        raise ExtractError(f"{archive}: cannot decompress {kind} stream: {exc}") from None
    report(name, (staging / name).stat().st_size, None)


def _extract_external(
    archive: Path,
    staging: Path,
    report: Report,
    tool: str | None,
    order: tuple[str, ...] = ("bsdtar", "unar", "7z"),
    why: str | None = None,
) -> None:
    """RAR, 7z, and zips Python cannot decompress. unar and 7z list the members first (refused before
    anything is written), extract, and the resulting tree is checked again."""
    kind = archive_kind(archive)
    chosen = find_tool(kind, archive, tool, order, why)
    if chosen.name == "bsdtar":
        _extract_through_bsdtar(archive, staging, report, chosen.extractor)
        return
    listing = _run(archive, chosen.list_argv(archive))
    members = _parse_lsar(listing) if chosen.name == "unar" else _parse_7z(listing)
    for name, member_kind in members:
        checked_name(archive, name)
        check_kind(archive, name, member_kind)
    _run(archive, chosen.extract_argv(archive, staging))
    check_tree(archive, staging)  # anything the listing did not show
    for name, _ in members:
        report(name, 0, None)


def _extract_through_bsdtar(archive: Path, staging: Path, report: Report, bsdtar: str) -> None:
    """bsdtar converts the archive to a pax stream that the checked tar path extracts as it arrives."""
    argv = [bsdtar, "-cf", "-", "--format", "pax", f"@{archive}"]
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
                _extract_tar_members(archive, tf, staging, report)
            proc.stdout.read()  # the end-of-archive padding, so bsdtar exits on its own
        except BaseException as exc:
            proc.kill()  # no effect when bsdtar already failed and closed the stream
            code = proc.wait()
            if isinstance(exc, _CORRUPT) and code not in (0, -signal.SIGKILL):
                raise _tool_failure(archive, "bsdtar", code, errors) from None
            if isinstance(exc, _CORRUPT):
                raise ExtractError(f"{archive}: cannot extract: {exc}") from None
            raise
        finally:
            proc.stdout.close()
        code = proc.wait()
        if code != 0:
            raise _tool_failure(archive, "bsdtar", code, errors)


def _tool_failure(archive: Path, tool: str, code: int, errors) -> ExtractError:
    errors.seek(0)
    detail = " | ".join(errors.read().decode(errors="replace").strip().splitlines()[-3:])
    return ExtractError(f"{archive}: {tool} failed (exit {code}): {detail}")


@dataclass(frozen=True)
class ExternalTool:
    """An installed external extractor for RAR and 7z archives."""

    name: str
    lister: str
    extractor: str

    def list_argv(self, archive: Path) -> list[str]:
        if self.name == "unar":
            return [self.lister, "-j", str(archive)]
        return [self.lister, "l", "-slt", "-ba", str(archive)]

    def extract_argv(self, archive: Path, folder: Path) -> list[str]:
        if self.name == "unar":
            return [self.extractor, "-q", "-f", "-D", "-o", str(folder), str(archive)]
        return [self.extractor, "x", "-y", "-bd", f"-o{folder}", str(archive)]


_TOOL_EXECUTABLES = {
    "bsdtar": (("bsdtar",), ("bsdtar",)),
    "unar": (("lsar",), ("unar",)),
    "7z": (("7z", "7zz", "7za"),) * 2,
}


def find_tool(
    kind: str,
    archive: Path,
    preferred: str | None = None,
    order: tuple[str, ...] = ("bsdtar", "unar", "7z"),
    why: str | None = None,
) -> ExternalTool:
    """The first installed tool in ``order`` (or only ``preferred``); ``ExtractError`` naming them all."""
    if preferred is not None and preferred not in _TOOL_EXECUTABLES:
        raise ValueError(
            f"unknown extraction tool {preferred!r}; choose one of {', '.join(_TOOL_EXECUTABLES)}"
        )
    for name in (preferred,) if preferred else order:
        listers, extractors = _TOOL_EXECUTABLES[name]
        lister = next(filter(None, map(shutil.which, listers)), None)
        extractor = next(filter(None, map(shutil.which, extractors)), None)
        if lister and extractor:
            return ExternalTool(name, lister, extractor)
    missing = f"{preferred} is not installed" if preferred else "none of bsdtar, unar, 7z is installed"
    raise ExtractError(
        f"{archive}: {why or kind.upper() + ' archives need an external tool'} and {missing}; install bsdtar "
        "(Debian/Ubuntu: libarchive-tools; built into macOS and Windows 10+), unar, or 7-Zip (p7zip-full, 7zz)"
    )


def _parse_lsar(text: str) -> list[tuple[str, str]]:
    members = []
    for entry in json.loads(text)["lsarContents"]:
        kind = kind_of_mode(int(entry.get("XADPosixPermissions", 0)))
        if entry.get("XADIsLink") or entry.get("XADIsHardLink"):
            kind = "link"
        elif entry.get("XADIsDirectory"):
            kind = "dir"
        members.append((entry["XADFileName"], kind))
    return members


_7Z_MODE_KINDS = {
    "-": "file",
    "d": "dir",
    "l": "link",
    "b": "special",
    "c": "special",
    "p": "special",
    "s": "special",
}


def _parse_7z(text: str) -> list[tuple[str, str]]:
    """``7z l -slt`` prints one ``Key = value`` block per member; the mode string ends ``Attributes``."""
    members = []
    for block in text.split("\n\n"):
        fields = dict(line.split(" = ", 1) for line in block.splitlines() if " = " in line)
        if "Path" not in fields:
            continue
        mode = (fields.get("Attributes", "").split() or [""])[-1]
        kind = _7Z_MODE_KINDS.get(mode[:1], "file") if len(mode) == 10 else "file"
        if fields.get("Folder") == "+" and kind == "file":
            kind = "dir"
        members.append((fields["Path"], kind))
    return members


def _run(archive: Path, argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        detail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise ExtractError(f"{archive}: {Path(argv[0]).name} failed (exit {result.returncode}): {detail}")
    return result.stdout


_EXTRACTORS = {
    "zip": _extract_zip,
    "tar": _extract_tar,
    "gzip": _decompress_single,
    "bz2": _decompress_single,
    "xz": _decompress_single,
    "rar": _extract_external,
    "7z": _extract_external,
}


def _is_tar(path: str | os.PathLike) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except _CORRUPT:
        return False


def _replace_tree(staging: Path, target: Path) -> None:
    """Move the complete ``staging`` tree to ``target``; an old ``target`` is removed only afterwards."""
    if not target.exists():
        os.rename(staging, target)
        return
    old = target.parent / f".{target.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    os.rename(target, old)
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)


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
