"""Byte ranges of a cache's stored objects, local or remote, fetched in batched rounds.

The direct shard reader (:mod:`.shard_reader`) plans which byte ranges it needs and hands them to a
:class:`Fetcher` a round at a time: a :class:`LocalFetcher` serves a round with ``pread``, an
:class:`FsspecFetcher` with one concurrent ``cat_ranges`` call. A missing file is None (a shard
that holds only the fill value is not stored); any other failure is a :class:`~.errors.CacheError`
naming the file. Remote reads retry transient faults (resets, stalls, cut bodies, 5xx) with the
back-off of a :class:`~neurodata.network.RetryPolicy`, re-requesting only the ranges that failed,
and fail at once when the first round finds no host (no DNS answer, connection refused).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from ..network import DEFAULT_RETRY, RetryPolicy, unreachable
from .errors import CacheError
from .store import Location


class Request(NamedTuple):
    """Bytes ``[start, end)`` of the object at ``path``; a negative ``start`` (with ``end`` None)
    asks for that many bytes from the end."""

    path: str
    start: int
    end: int | None


class Fetcher(Protocol):
    """Serves rounds of byte-range requests; ``one_round`` says whether a call costs a round trip
    (then callers gather a whole batch's ranges into one call)."""

    one_round: bool

    def fetch(self, requests: Sequence[Request]) -> list[bytes | None]:
        """The bytes of each request, None where the object does not exist.

        Args:
            requests: The byte ranges, in any order and of any objects.
        """
        ...


class LocalFetcher:
    """Byte ranges of local files; None for a missing file."""

    one_round = False  # reads cost no round trip: each decode thread fetches what it decodes

    def fetch(self, requests: Sequence[Request]) -> list[bytes | None]:
        """Read each of the ``requests`` with ``pread``, one after another.

        Raises:
            CacheError: A file exists but cannot be opened or read.
        """
        out: list[bytes | None] = []
        for path, start, end in requests:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                out.append(None)
                continue
            except OSError as error:
                raise CacheError(f"{path}: cannot open the shard file: {error}") from error
            try:
                if start < 0:
                    size = os.fstat(fd).st_size
                    start, end = max(0, size + start), size
                out.append(os.pread(fd, end - start, start))
            except OSError as error:
                raise CacheError(f"{path}: cannot read bytes {start}-{end}: {error}") from error
            finally:
                os.close(fd)
        return out


class FsspecFetcher:
    """Byte ranges through an fsspec filesystem, all requests of a round in one concurrent call;
    transient failures are retried as ``retry`` says (see the module's docstring).

    Args:
        fs: The fsspec filesystem of the cache (its ``cat_ranges`` serves a round).
        retry: How often and how long transient failures are retried.
    """

    one_round = True  # each call waits a round trip: fetch a whole batch's ranges together

    def __init__(self, fs: Any, retry: RetryPolicy = DEFAULT_RETRY):
        self.fs = fs
        self.retry = retry
        self.reached = False  # whether any request has been answered (then no host error is final)

    def fetch(self, requests: Sequence[Request]) -> list[bytes | None]:
        """Fetch all ``requests`` in one ``cat_ranges`` call, retrying the transient failures.

        Raises:
            CacheError: A permanent failure, or transient ones beyond the retry policy.
        """
        out: list[bytes | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        attempt, progressed_at = 0, time.monotonic()
        while pending:
            paths, starts, ends = ([column[k] for k in pending] for column in zip(*requests))
            results = self.fs.cat_ranges(paths, starts, ends, on_error="return")
            failed: list[tuple[int, BaseException]] = []
            for k, result in zip(pending, results):
                if isinstance(result, FileNotFoundError):
                    out[k] = None
                elif isinstance(result, BaseException):
                    if not _transient(result):
                        raise CacheError(f"{requests[k].path}: cannot read the shard file: {result}") from result
                    failed.append((k, result))
                else:
                    out[k] = bytes(result)
            if len(failed) < len(pending):
                self.reached, attempt, progressed_at = True, 0, time.monotonic()
            if failed:
                attempt += 1
                self._wait_or_raise(requests[failed[0][0]].path, failed[0][1], attempt, progressed_at)
            pending = [k for k, _ in failed]
        return out

    def _wait_or_raise(self, path: str, error: BaseException, attempt: int, progressed_at: float) -> None:
        """Sleep before retry ``attempt``, or raise ``CacheError`` when retrying is pointless or spent."""
        why = unreachable(error)
        if why is not None and not self.reached:
            raise CacheError(f"{path}: cannot reach the store: {why} (is this machine offline?)") from error
        delay = self.retry.delay(attempt)
        if attempt > self.retry.retries or time.monotonic() + delay - progressed_at > self.retry.give_up_after:
            raise CacheError(
                f"{path}: cannot read the shard file: giving up after {attempt} attempts: "
                f"{type(error).__name__}: {error}"
            ) from error
        time.sleep(delay)


_PERMANENT = (PermissionError, IsADirectoryError, NotADirectoryError, ValueError, TypeError, KeyError)


def _transient(error: BaseException) -> bool:
    """Whether a failed remote read may succeed when tried again: not a refusal (permission, a
    client error status other than 408/429) nor a programming error."""
    if isinstance(error, _PERMANENT):
        return False
    status = getattr(error, "status", None) or getattr(error, "code", None)
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
        return False
    return True


def fetcher_for(location: Location) -> LocalFetcher | FsspecFetcher:
    """The fetcher for the store at ``location``: ``pread`` on local files, fsspec elsewhere."""
    return LocalFetcher() if location.is_local else FsspecFetcher(location.fs)


def merged_requests(spans: Sequence[tuple[str, int, int]]) -> tuple[list[Request], list[int]]:
    """Byte spans ``(path, start, end)`` as requests, where spans of one file that overlap or touch
    (consecutive samples' chunks) become one, and for each span the request that covers it. Spans
    with a gap between them stay apart: fetching the gap would read other samples' bytes."""
    order = sorted(range(len(spans)), key=lambda k: spans[k])
    requests: list[Request] = []
    which = [0] * len(spans)
    for k in order:
        path, lo, hi = spans[k]
        last = requests[-1] if requests else None
        if last is not None and last.path == path and lo <= last.end:
            requests[-1] = Request(path, last.start, max(last.end, hi))
        else:
            requests.append(Request(path, lo, hi))
        which[k] = len(requests) - 1
    return requests, which
