"""External extractors for RAR, 7z and zips Python cannot decompress: bsdtar (libarchive), unar or
7-Zip, found on PATH. Whatever the tool, every member is vetted by ``members.py`` before it lands."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .members import (
    CORRUPT,
    ExtractError,
    Report,
    check_kind,
    check_tree,
    checked_name,
    extract_tar_members,
    kind_of_mode,
)


def extract_external(
    archive: Path,
    kind: str,
    staging: Path,
    report: Report,
    tool: str | None,
    order: tuple[str, ...] = ("bsdtar", "unar", "7z"),
    why: str | None = None,
) -> None:
    """RAR, 7z, and zips Python cannot decompress. unar and 7z list the members first (refused before
    anything is written), extract, and the resulting tree is checked again.

    Args:
        archive: The archive to extract.
        kind: Its kind from :func:`neurodata.datasets.extract.archive_kind` (named in errors).
        staging: The empty folder to extract into.
        report: Called once per member, as ``report(name, 0, None)``.
        tool: The one tool to use ("bsdtar", "unar" or "7z"), or ``None`` for the first installed in ``order``.
        order: The tools to try, in order.
        why: Why an external tool is needed, for the error when none is installed.
    """
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
                extract_tar_members(archive, tf, staging, report)
            proc.stdout.read()  # the end-of-archive padding, so bsdtar exits on its own
        except BaseException as exc:
            proc.kill()  # no effect when bsdtar already failed and closed the stream
            code = proc.wait()
            if isinstance(exc, CORRUPT) and code not in (0, -signal.SIGKILL):
                raise _tool_failure(archive, "bsdtar", code, errors) from None
            if isinstance(exc, CORRUPT):
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
    """An installed external extractor for RAR and 7z archives.

    Attributes:
        name: "bsdtar", "unar" or "7z".
        lister: Path of the executable that lists an archive's members.
        extractor: Path of the executable that extracts it.
    """

    name: str
    lister: str
    extractor: str

    def list_argv(self, archive: Path) -> list[str]:
        """The command line listing the members of ``archive`` (unar and 7z)."""
        if self.name == "unar":
            return [self.lister, "-j", str(archive)]
        return [self.lister, "l", "-slt", "-ba", str(archive)]

    def extract_argv(self, archive: Path, folder: Path) -> list[str]:
        """The command line extracting ``archive`` into ``folder`` (unar and 7z)."""
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
    """The first installed tool in ``order`` (or only ``preferred``).

    Args:
        kind: The archive's kind, named in the error.
        archive: The archive, named in the error.
        preferred: The one tool to look for, or ``None``.
        order: The tools to look for, in order, when ``preferred`` is ``None``.
        why: Why an external tool is needed, for the error.

    Raises:
        ValueError: For an unknown ``preferred`` tool.
        ExtractError: Naming the tools when none is installed.
    """
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
