"""Batch memory that is written into again once its last user lets go: shared in DataLoader workers,
private in the process that trains.

torch sends a worker's batch to the main process in shared memory, and a fresh segment per batch
costs more in tmpfs page allocation than decoding the batch (figures in docs/sections/loaders.md).
Here each worker keeps a few memfd segments. A batch built in one (``pad_events``, ``stack_dense``
in a worker) pickles as a handle: the segment's file descriptor (passed as torch passes its own,
through multiprocessing's resource sharer), its size and the arrays' layout. The main process maps
the segment and builds the tensors as views of one numpy array over the mapping.

The segment's first byte says whether it is lent. The worker sets it when it builds a batch; the
main process clears it when the last tensor of that batch, or of any view of one, is gone (a
finalizer on the array they all view); only then does the worker write into the segment again,
so a batch the user keeps is never overwritten. A batch that never leaves the worker (a collate
function that builds something else from it) is given back when the worker's own arrays die.
Where memfds cannot be made (not Linux, or a kernel or sandbox that refuses ``memfd_create``),
batches use torch's shared memory as before.

Workers are usually started afresh each epoch (``persistent_workers=False``, PyTorch's default), and
a new worker's first segments cost their tmpfs pages again. So the main process keeps the segments
it receives mapped, with their file descriptors, up to a bound (:func:`settings`), and a worker
forked later inherits them and claims up to :data:`CLAIM`, the largest first, with an exclusive
``flock`` (a worker also claims the segments it makes), so two live workers, of one DataLoader or
of two, never write one segment. A fork does not copy the page tables of shared mappings, so the
worker would still fault every page of an inherited segment on first write; it maps the part a
batch needs in one ``MADV_POPULATE_READ`` call instead (Linux 5.14+; elsewhere the pages fault in
as before).

A process that collates for itself (``num_workers=0``) reuses memory the same way, with private
anonymous mappings instead of memfds (a reused batch is written, a fresh one also mapped, faulted
in and zeroed). Such a batch is never sent anywhere, so it is reused as soon as its arrays are gone.

The memory is bounded and given back: ``$NEURODATA_SHM_POOL=0`` (or :func:`configure`) turns the
pool off (batches in fresh memory, as torch makes them), ``$NEURODATA_SHM_POOL_KEEP_MIB`` bounds
what the main process keeps (default 1024), and :func:`release` lets go of every segment not in
use, which happens by itself when the last dataset ``neurodata.load`` made is garbage-collected
(:func:`register_user`).
"""

from __future__ import annotations

import itertools
import math
import mmap
import os
import sys
import threading
import weakref
from dataclasses import dataclass
from multiprocessing.reduction import DupFd
from typing import Any

import numpy as np
import torch
from torch.utils.data import get_worker_info

HEADER = 64  # byte 0: LENT while the main process may hold the batch
ALIGN = 64
LENT, FREE = 1, 0
PAGE = mmap.PAGESIZE
# Linux 5.14; Python names it from 3.13; None: no such advice here (pages fault in)
MADV_POPULATE_READ: int | None = getattr(mmap, "MADV_POPULATE_READ", 22 if sys.platform == "linux" else None)
MAX_FREE = 2  # free segments a worker keeps beyond the ones it lends
Layout = list[tuple[int, tuple[int, ...], str]]  # (offset after the header, shape, dtype) per array


class Segment:
    """``size`` bytes mapped in this process: a memfd another process can map (``shared``), else
    private anonymous memory."""

    lock_fd = -1  # a worker's own open of the memfd, holding its exclusive claim (see claim)
    mapped = -1  # bytes from the start known to be in this process's page tables (-1: all, as faulted)

    def __init__(self, size: int, shared: bool = True):
        if shared:
            self.fd = os.memfd_create("neurodata-batch", os.MFD_CLOEXEC)
            os.ftruncate(self.fd, size)
            self.map = mmap.mmap(self.fd, size)
        else:
            self.fd = -1
            self.map = mmap.mmap(-1, size)
            if hasattr(mmap, "MADV_HUGEPAGE"):  # fewer page faults on first use, as numpy asks for
                self.map.madvise(mmap.MADV_HUGEPAGE)
        self.size = size
        self.arrays_alive = False  # this process's arrays over the segment still exist

    @property
    def reusable(self) -> bool:
        """Whether the segment is free and no array still views it."""
        return self.map[0] == FREE and not self.arrays_alive

    @classmethod
    def adopt(cls, fd: int, buffer: mmap.mmap, size: int) -> Segment:
        """A worker's segment as the main process received it (see :func:`receive`): its memfd
        ``fd``, mapped as ``buffer`` of ``size`` bytes."""
        segment = cls.__new__(cls)
        segment.fd, segment.map, segment.size, segment.arrays_alive = fd, buffer, size, False
        return segment

    def claim(self) -> bool:
        """Take the memfd for this process alone while it lives: an exclusive ``flock`` on an open
        of its own (a lock on the inherited descriptor would be shared with every process that
        inherited it); False when another process holds it."""
        import fcntl  # POSIX only, as memfd is

        try:
            lock_fd = os.open(f"/proc/self/fd/{self.fd}", os.O_RDWR | os.O_CLOEXEC)
        except OSError:  # no /proc: nobody can claim, so kept segments are simply not reused
            return False
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_fd)
            return False
        self.lock_fd = lock_fd
        return True

    def populate(self, nbytes: int) -> None:
        """Map the first ``nbytes`` of an inherited segment into this process's page tables in one
        call rather than one fault per page; where ``MADV_POPULATE_READ`` is unknown (a kernel
        before 5.14, another system, a Python without ``madvise``) the pages fault in instead."""
        if 0 <= self.mapped < nbytes:
            end = min(self.size, -(-nbytes // PAGE) * PAGE)
            try:
                if MADV_POPULATE_READ is None:
                    raise ValueError("no MADV_POPULATE_READ here")
                self.map.madvise(MADV_POPULATE_READ, self.mapped, end - self.mapped)
            except (OSError, ValueError, AttributeError):  # page faults do it: no further attempts
                self.mapped = -1
                return
            self.mapped = end

    def close(self) -> None:
        """Unmap the segment and close its descriptors; BufferError (nothing closed) while arrays view it."""
        self.map.close()
        self._close_descriptors()

    def release(self) -> None:
        """:meth:`close`, or where a held batch's arrays still view the segment, close the descriptors
        now and leave the mapping to go with the last view (mmap unmaps when garbage)."""
        try:
            self.close()
        except BufferError:
            self._close_descriptors()

    def _close_descriptors(self) -> None:
        for fd in (self.fd, self.lock_fd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.lock_fd = -1


class Lease:
    """One batch's use of a segment, in the worker."""

    def __init__(self, segment: Segment):
        self.segment = segment
        self.sent = False

    def handle(self) -> tuple[Any, int]:
        """What the main process needs to map the segment; from now on only it gives the segment back."""
        if self.segment.fd < 0:
            raise TypeError("a batch in this process's private memory cannot be sent to another process")
        self.sent = True
        return DupFd(self.segment.fd), self.segment.size

    def worker_arrays_gone(self) -> None:
        """Called when the worker's views of the segment are gone: free it unless it was sent."""
        self.segment.arrays_alive = False
        if not self.sent:
            self.segment.map[0] = FREE


class Pool:
    """One process's segments (``shared``: memfds, for a DataLoader worker)."""

    def __init__(self, shared: bool = True) -> None:
        self.segments: list[Segment] = []
        self.shared = shared
        self.lock = threading.Lock()  # collate functions may run on several threads

    def acquire(self, nbytes: int) -> Segment:
        """A reusable segment of at least ``nbytes`` (the smallest), else a new one with headroom;
        free segments beyond :data:`MAX_FREE`, or too small for this batch, are closed."""
        with self.lock:
            return self._acquire(nbytes)

    def _acquire(self, nbytes: int) -> Segment:
        free = [s for s in self.segments if s.reusable]
        fitting = [s for s in free if s.size >= nbytes]
        if fitting:
            segment = min(fitting, key=lambda s: s.size)
        else:  # a quarter more than asked, so later batches of other lengths fit too
            segment = Segment(ALIGN * math.ceil(nbytes * 1.25 / ALIGN), self.shared)
            if self.shared:
                segment.claim()  # the main process keeps it for later workers: they must not take it now
            self.segments.append(segment)
        spare = [s for s in free if s is not segment]
        for extra in [s for s in spare if s.size < nbytes] + sorted(spare, key=lambda s: s.size)[MAX_FREE:]:
            if extra in self.segments:
                try:
                    extra.close()
                except BufferError:  # its arrays' finalizer ran but their buffer is not released yet
                    continue
                self.segments.remove(extra)
        segment.populate(nbytes)
        segment.map[0] = LENT
        return segment

    def release(self) -> None:
        """Close every free segment. Lent ones stay in a worker's pool (their descriptors still
        hand batches over); a private pool drops them, to be unmapped when their batch is gone."""
        with self.lock:
            free = [s for s in self.segments if s.reusable]
            self.segments = [s for s in self.segments if self.shared and not s.reusable]
        for segment in free:
            segment.release()


SWITCH_VARIABLE = "NEURODATA_SHM_POOL"
KEEP_VARIABLE = "NEURODATA_SHM_POOL_KEEP_MIB"
DEFAULT_KEEP_MIB = 1024
_OFF, _ON = ("0", "off", "false", "no"), ("", "1", "on", "true", "yes")


@dataclass(frozen=True)
class PoolSettings:
    """``enabled``: batches go into reusable segments; ``keep_bytes``: what the main process keeps
    of the segments it received, for workers started later (see the module docstring)."""

    enabled: bool = True
    keep_bytes: int = DEFAULT_KEEP_MIB << 20


def settings() -> PoolSettings:
    """The settings in force, read from the environment each time (workers inherit it, under fork
    as under spawn): ``$NEURODATA_SHM_POOL`` (``0``/``off`` turns the pool off; unset or ``1``: on)
    and ``$NEURODATA_SHM_POOL_KEEP_MIB`` (a whole number of MiB; default 1024)."""
    switch = os.environ.get(SWITCH_VARIABLE, "").strip().lower()
    if switch not in _OFF + _ON:
        raise ValueError(f"${SWITCH_VARIABLE} must be 0 or 1 (off or on), got {switch!r}")
    keep = os.environ.get(KEEP_VARIABLE, "").strip()
    if keep and not keep.isdigit():
        raise ValueError(f"${KEEP_VARIABLE} must be a whole number of MiB, got {keep!r}")
    return PoolSettings(switch in _ON, (int(keep) if keep else DEFAULT_KEEP_MIB) << 20)


def configure(enabled: bool | None = None, keep_mib: int | None = None) -> PoolSettings:
    """Turn the pool on or off and bound what the main process keeps; returns the settings now.

    Parameters: ``enabled`` (None: unchanged) and ``keep_mib`` (MiB, None: unchanged) are written
    to the environment variables :func:`settings` reads, so DataLoader workers started afterwards
    follow them however they start. Turning the pool off, or a bound below what is kept now,
    releases what is kept (:func:`release`).
    """
    if keep_mib is not None:
        if isinstance(keep_mib, bool) or not isinstance(keep_mib, int) or keep_mib < 0:
            raise ValueError(f"keep_mib must be a whole number of MiB (0 or more), got {keep_mib!r}")
        os.environ[KEEP_VARIABLE] = str(keep_mib)
    if enabled is not None:
        os.environ[SWITCH_VARIABLE] = "1" if enabled else "0"
    now = settings()
    if not now.enabled or sum(s.size for s in _kept.values()) > now.keep_bytes:
        release()
    return now


_memfd_works: bool | None = None  # found on first use; a forked child inherits the answer


def memfd_available() -> bool:
    """Whether this process can make memfds: ``os.memfd_create`` exists (Linux) and the kernel
    grants it (a sandbox may refuse the call: then batches go through torch's shared memory)."""
    global _memfd_works
    if _memfd_works is None:
        try:
            os.close(os.memfd_create("neurodata-probe", os.MFD_CLOEXEC))
            _memfd_works = True
        except (AttributeError, OSError):
            _memfd_works = False
    return _memfd_works


_pools: dict[tuple[int, bool], Pool] = {}
_pools_lock = threading.RLock()  # reentrant: a dataset's finalizer may run (release) while held
# in the main process: the segments received from workers, kept mapped (and their file descriptors
# open) so that workers forked later, one DataLoader epoch after another, inherit them instead of
# faulting fresh tmpfs pages in; keyed by (device, inode) of the memfd, at most settings().keep_bytes
_kept: dict[tuple[int, int], Segment] = {}
CLAIM = MAX_FREE + 2  # kept segments a new worker takes at most: two in flight, one held, one spare
_users: dict[int, set[int]] = {}  # process id -> tokens of the datasets registered there, alive
_tokens = itertools.count()


def worker_pool() -> Pool | None:
    """This DataLoader worker's pool; None outside workers, where the pool is off and where memfds
    cannot be made. A worker forked from the main process starts with up to :data:`CLAIM` of the
    segments the main process kept from earlier workers (see :func:`receive`) that no other
    process has claimed."""
    if get_worker_info() is None or not settings().enabled or not memfd_available():
        return None
    return _pool(shared=True)


def local_pool() -> Pool | None:
    """This process's pool of private batch memory; None where the pool is off and inside a
    DataLoader worker (its batches go to another process: :func:`worker_pool`)."""
    if get_worker_info() is not None or not settings().enabled:
        return None
    return _pool(shared=False)


def release() -> None:
    """Let go of the batch memory this process holds between batches: the segments it kept from
    workers and the free segments of its pools. Batches still held stay valid (their memory goes
    with their last tensor); later batches make or receive new segments."""
    with _pools_lock:
        pools = [pool for (pid, _), pool in _pools.items() if pid == os.getpid()]
        owned = {id(segment) for pool in pools for segment in list(pool.segments)}
        kept = [segment for segment in _kept.values() if id(segment) not in owned]  # claimed: the pool's
        _kept.clear()
        for segment in kept:
            segment.release()
    for pool in pools:
        pool.release()


def register_user(owner: object) -> None:
    """Count ``owner`` (a dataset of ``neurodata.load``) as a user of this process's batch memory:
    when the last one registered here is garbage-collected, :func:`release` runs."""
    pid, token = os.getpid(), next(_tokens)
    with _pools_lock:
        _users.setdefault(pid, set()).add(token)
    weakref.finalize(owner, _user_gone, pid, token).atexit = False  # at exit the process lets go anyway


def _user_gone(pid: int, token: int) -> None:
    if pid != os.getpid():  # the copy a forked worker inherited: the parent still holds the dataset
        return
    with _pools_lock:
        users = _users.get(pid, set())
        last = token in users and len(users) == 1
        users.discard(token)
    if last:
        release()


def _pool(shared: bool) -> Pool:
    """This process's pool (keyed by process: a forked child starts its own)."""
    with _pools_lock:
        key = (os.getpid(), shared)
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = Pool(shared)
            if shared:
                kept = sorted(_kept.values(), key=lambda s: s.size, reverse=True)
                for segment in kept:  # claimed ones are this worker's until it exits
                    if len(pool.segments) == CLAIM:
                        break
                    if segment.claim():
                        segment.mapped = 0  # a fork copies no page table entries of shared mappings
                        pool.segments.append(segment)
        return pool


def layout_of(specs: list[tuple[tuple[int, ...], np.dtype]]) -> tuple[Layout, int]:
    """Aligned offsets of ``specs``, arrays ``(shape, dtype)``, after the header, and the total size."""
    layout, offset = [], HEADER
    for shape, dtype in specs:
        layout.append((offset, tuple(int(n) for n in shape), np.dtype(dtype).str))
        offset += -(-int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize // ALIGN) * ALIGN
    return layout, max(offset, HEADER + ALIGN)


def _views(buffer: mmap.mmap, layout: Layout, size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    base = np.frombuffer(buffer, dtype=np.uint8, count=size - HEADER, offset=HEADER)
    views = []
    for offset, shape, dtype in layout:
        count = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        views.append(base[offset - HEADER : offset - HEADER + count].view(dtype).reshape(shape))
    return base, views


def lend(specs: list[tuple[tuple[int, ...], np.dtype]], pool: Pool) -> tuple[Lease, Layout, list[np.ndarray]]:
    """Arrays of ``specs`` ``(shape, dtype)`` in a segment of ``pool`` (contents undefined: the caller writes all)."""
    layout, size = layout_of(specs)
    segment = pool.acquire(size)
    lease = Lease(segment)
    base, views = _views(segment.map, layout, segment.size)
    segment.arrays_alive = True
    weakref.finalize(base, lease.worker_arrays_gone)
    return lease, layout, views


def _give_back(buffer: mmap.mmap) -> None:
    buffer[0] = FREE


def _kept_map(fd: int, size: int) -> mmap.mmap:
    """The mapping of a received memfd: the kept one when this segment came before (``fd`` is
    closed), else a new one, kept with ``fd`` while the pool is on and the bound allows."""
    try:
        info = os.fstat(fd)
        key = (info.st_dev, info.st_ino)
        if key in _kept:  # a kept descriptor keeps the inode alive: the key is this segment
            os.close(fd)
            return _kept[key].map
        buffer = mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        raise
    wanted = settings()
    if wanted.enabled and sum(s.size for s in _kept.values()) + size <= wanted.keep_bytes:
        _kept[key] = Segment.adopt(fd, buffer, size)
    else:
        os.close(fd)
    return buffer


def receive(handle: tuple[Any, int], layout: Layout) -> list[torch.Tensor]:
    """In the main process: the lent arrays (a segment's ``handle`` and its ``layout``) as tensors;
    the segment goes back when all are gone.
    The segment stays mapped here for workers forked later (see :func:`settings`)."""
    fd_wrapper, size = handle
    fd = fd_wrapper.detach()
    with _pools_lock:  # a release() on another thread leaves the mapping open once it is viewed
        buffer = _kept_map(fd, size)
        base, views = _views(buffer, layout, size)
    weakref.finalize(base, _give_back, buffer)
    return [torch.from_numpy(view) for view in views]
