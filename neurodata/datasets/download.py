"""Download a ``Resource``: mirrors in order, resumable through ``<name>.part``, bounded retries with
exponential back-off, size and checksum verified before the file appears (atomically) under its name.
A host that cannot be reached at all on the first request (no DNS answer, connection refused) is not
retried, and an HTML page served where the file was expected is refused at its first bytes."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import NeurodataError
from ..localfs import file_lock
from ..network import DEFAULT_RETRY, RetryPolicy, unreachable
from .checksum import (
    ChecksumError,
    Hasher,
    check_digests,
    file_digests,
    read_sidecar,
    remove_sidecar,
    write_sidecar,
)
from .resource import Callback, Resource, is_html_page
from .transport import MirrorError, open_stream

PART_SUFFIX = ".part"


class DownloadError(NeurodataError, OSError):
    """A resource could not be fetched from any mirror; the message names each URL and why it failed."""


class UnreachableError(DownloadError):
    """No mirror's host could be reached at all (no DNS answer, connection refused) on the first
    request: the machine is probably offline, and retrying would only wait."""


@dataclass(frozen=True)
class DownloadedFile:
    """A verified file on disk; ``url`` is the mirror that served it (``None`` when it was already there).

    Attributes:
        path: Where the file is.
        size: Its length in bytes.
        md5: Its hex md5.
        sha256: Its hex sha256.
        url: The mirror that served it, or ``None``.
    """

    path: Path
    size: int
    md5: str
    sha256: str
    url: str | None


__all__ = ["DownloadError", "DownloadedFile", "RetryPolicy", "UnreachableError", "download"]


def download(
    resource: Resource,
    folder: str | os.PathLike,
    *,
    retry: RetryPolicy = DEFAULT_RETRY,
    progress: bool | None = None,
    callback: Callback | None = None,
    storage_options: dict | None = None,
    reverify: bool = False,
) -> DownloadedFile:
    """Fetch ``resource`` into ``folder/<filename>`` and return it verified.

    A file already there is verified once and its digests recorded in ``<filename>.verified.json``;
    later calls trust that record while size and mtime match (``reverify=True`` hashes again).
    ``retry`` says how hard to insist on each mirror (timeouts, back-off, when to give up; see
    :class:`~neurodata.network.RetryPolicy`); a mirror whose host cannot be reached at all on the first
    request is given up at once (:class:`UnreachableError` when every mirror is). ``progress`` shows a
    tqdm bar (default: only when stderr is a terminal); ``callback`` receives a JSON-ready dict per
    event (see the docs).
    ``storage_options`` go to fsspec for non-http URLs (e.g. ``{"endpoint_url": ...}`` for s3).
    """
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / resource.filename
    emit = _emitter(resource, callback)
    try:
        return _download_locked(
            resource, folder, final, retry, progress, emit, storage_options, reverify
        )
    except _CallbackFailed as failed:
        raise failed.__cause__ from None  # the caller's own error, not a download failure


def _download_locked(resource, folder, final, retry, progress, emit, storage_options, reverify):
    with file_lock(folder / f".{resource.filename}.lock", remove=True):
        present = _already_verified(resource, final, reverify, emit)
        if present is not None:
            return present
        part = final.with_name(final.name + PART_SUFFIX)
        _check_free_space(resource, part)
        show = sys.stderr.isatty() if progress is None else progress
        failures: list[tuple[str, Exception]] = []
        with _progress_bar(resource, show) as bar:
            for url in resource.urls:
                try:
                    digests = _fetch_verified(resource, url, part, retry, storage_options, bar, emit)
                except (DownloadError, ChecksumError) as exc:
                    failures.append((url, exc))
                    emit("mirror_failed", url=url, error=str(exc))
                    continue
                os.replace(part, final)
                write_sidecar(final, digests)
                emit("done", url=url, path=str(final), md5=digests.md5, sha256=digests.sha256)
                return DownloadedFile(final, digests.size, digests.md5, digests.sha256, url)
    if len(failures) == 1:
        raise failures[0][1]
    lines = "\n".join(f"  {url}: {exc}" for url, exc in failures)
    if all(isinstance(exc, UnreachableError) for _, exc in failures):
        raise UnreachableError(f"could not reach any of the {len(failures)} mirrors of {resource.filename}:\n{lines}")
    raise DownloadError(
        f"could not download {resource.filename} from any of {len(failures)} mirrors:\n{lines}"
    )


def _already_verified(resource: Resource, final: Path, reverify: bool, emit) -> DownloadedFile | None:
    """The existing final file if it matches the resource, else ``None`` (it will be replaced)."""
    if not final.is_file():
        return None
    recorded = None if reverify else read_sidecar(final)
    digests = recorded or file_digests(final)
    try:
        check_digests(str(final), digests, resource.size, resource.md5, resource.sha256)
    except ChecksumError as exc:
        remove_sidecar(final)
        emit("stale", path=str(final), error=str(exc))
        return None
    if recorded is None:
        write_sidecar(final, digests)
    emit("present", path=str(final), md5=digests.md5, sha256=digests.sha256)
    return DownloadedFile(final, digests.size, digests.md5, digests.sha256, None)


def _fetch_verified(resource, url, part: Path, retry: RetryPolicy, storage_options, bar, emit):
    """Fetch from one mirror until verified; raises ``DownloadError`` (``UnreachableError`` when the
    first request finds no host) or ``ChecksumError`` for this URL."""
    hasher = Hasher()
    attempt = 0
    furthest = _size_of(part)
    progressed_at = time.monotonic()
    restarted = False
    requests = 0
    while True:
        requests += 1
        offset = _size_of(part)
        if resource.size is not None and offset > resource.size:
            part.unlink()
            offset = 0
        try:
            _transfer(resource, url, part, offset, hasher, retry.timeout, storage_options, bar, emit)
            digests = hasher.digests()
            check_digests(url, digests, resource.size, resource.md5, resource.sha256)
            return digests
        except _CallbackFailed:
            raise
        except ChecksumError:
            part.unlink(missing_ok=True)
            if offset and not restarted:
                # The bytes kept from an earlier run may be stale: give this mirror one clean try.
                restarted = True
                emit("restart", url=url, reason="checksum mismatch after resuming")
                continue
            raise
        except MirrorError as exc:
            if exc.permanent:
                raise DownloadError(f"{url}: {exc}") from None
            error = exc
        except (OSError, http.client.HTTPException) as exc:  # reset, timeout, DNS, cut mid-body, s3 hiccup
            error = exc
        except Exception as exc:  # a filesystem library's own error type: not worth retrying blindly
            raise DownloadError(f"{url}: {_describe(exc)}") from exc
        why = unreachable(error)
        if why is not None and requests == 1:
            # The very first request found no host: an offline machine, not a flaky link.
            raise UnreachableError(f"{url}: cannot reach the host: {why}") from None
        now = _size_of(part)
        if now > furthest:
            furthest, attempt, progressed_at = now, 0, time.monotonic()
        attempt += 1
        delay = retry.delay(attempt)
        if attempt > retry.retries:
            raise DownloadError(
                f"{url}: giving up after {retry.retries} retries: {_describe(error)}"
            ) from None
        stuck = time.monotonic() + delay - progressed_at
        if stuck > retry.give_up_after:
            raise DownloadError(
                f"{url}: giving up after {attempt} attempts without a new byte for over "
                f"{retry.give_up_after:g} s: {_describe(error)}"
            ) from None
        emit("retry", url=url, attempt=attempt, delay=delay, error=_describe(error))
        time.sleep(delay)


def _transfer(resource, url, part: Path, offset: int, hasher: Hasher, timeout, storage_options, bar, emit):
    """Append the bytes after ``offset`` to ``part``, feeding ``hasher`` (which must end up holding
    the digests of the whole part file, so it is rebuilt when it does not match ``offset``)."""
    stream = open_stream(url, offset, timeout, storage_options)
    if stream.total is not None and offset > stream.total:  # a part longer than the file: stale
        stream.close()
        offset = 0
        stream = open_stream(url, offset, timeout, storage_options)
    try:
        if stream.start != offset:  # the server ignored Range: start over
            offset = 0
        if resource.size is not None and stream.total is not None and stream.total != resource.size:
            message = f"serves {stream.total} bytes, expected {resource.size} (a different file?)"
            raise MirrorError(message, permanent=True)
        if hasher.size != offset:
            hasher.reset()
            if offset:
                hasher.update_from_file(part, offset)
        chunks = stream.chunks
        if offset == 0:
            first = next(chunks, b"")
            if is_html_page(first) and not resource.filename.endswith((".html", ".htm")):
                raise MirrorError(
                    f"serves an HTML page, not {resource.filename} (a login, licence or error page?)",
                    permanent=True,
                )
            chunks = itertools.chain((first,), chunks)
        total = resource.size if resource.size is not None else stream.total
        bar.reset(total)
        bar.update(offset)
        emit("start", url=url, offset=offset, total=total)
        position = offset
        with open(part, "r+b" if part.exists() else "wb") as out:
            out.seek(offset)
            out.truncate()
            for chunk in chunks:
                out.write(chunk)
                out.flush()  # what a progress event reports is in the OS, so it survives a SIGKILL
                hasher.update(chunk)
                position += len(chunk)
                if resource.size is not None and position > resource.size:
                    raise ChecksumError(
                        url, "size", f"{resource.size} bytes", f"more than {resource.size} bytes"
                    )
                bar.update(len(chunk))
                emit("progress", url=url, done=position, total=total)
            out.flush()
            os.fsync(out.fileno())
        if total is not None and position < total:
            raise ConnectionError(f"connection closed after {position} of {total} bytes")
    finally:
        stream.close()


def _check_free_space(resource: Resource, part: Path) -> None:
    if resource.size is None:
        return
    needed = resource.size - _size_of(part)
    free = shutil.disk_usage(part.parent).free
    if needed > free:
        raise DownloadError(f"{part.parent}: {needed} bytes needed for {resource.filename}, only {free} free")


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _describe(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, MirrorError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _CallbackFailed(Exception):
    """Carries an exception raised by the caller's callback past the retry logic (as ``__cause__``)."""


def _emitter(resource: Resource, callback: Callback | None):
    def emit(event: str, **fields) -> None:
        if callback is not None:
            try:
                callback({"event": event, "file": resource.filename, **fields})
            except Exception as exc:
                raise _CallbackFailed() from exc

    return emit


@contextlib.contextmanager
def _progress_bar(resource: Resource, show: bool) -> Iterator:
    from tqdm.auto import tqdm

    bar = tqdm(
        total=resource.size,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=resource.filename,
        disable=not show,
    )
    try:
        yield bar
    finally:
        bar.close()
