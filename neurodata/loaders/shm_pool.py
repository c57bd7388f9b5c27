"""Batch memory that is written into again once its last user lets go: shared in DataLoader workers,
private in the process that trains.

torch sends a worker's batch to the main process in shared memory, and a fresh segment per batch
costs about 0.8 ms per MiB on tmpfs (allocate, fault in, free; 26 ms for 32 MiB measured on the
benchmark VM): more than decoding the batch. Here each worker keeps a few memfd segments. A batch
built in one (``pad_events``, ``stack_dense`` in a worker) pickles as a handle: the segment's file
descriptor (passed as torch passes its own, through multiprocessing's resource sharer), its size
and the arrays' layout. The main process maps the segment and builds the tensors as views of one
numpy array over the mapping.

The segment's first byte says whether it is lent. The worker sets it when it builds a batch; the
main process clears it when the last tensor of that batch, or of any view of one, is gone (a
finalizer on the array they all view); only then does the worker write into the segment again,
so a batch the user keeps is never overwritten. A batch that never leaves the worker (a collate
function that builds something else from it) is given back when the worker's own arrays die.
Linux only (``os.memfd_create``); elsewhere batches use torch's shared memory as before.

Workers are usually started afresh each epoch (``persistent_workers=False``, PyTorch's default), and
a new worker's first segments cost their tmpfs pages again. So the main process keeps every segment
it receives mapped, with its file descriptor, up to :data:`KEEP_BYTES`, and a worker forked later
inherits them and claims up to :data:`CLAIM`, the largest first, with an exclusive ``flock`` (a
worker also claims the segments it makes), so two live workers, of one DataLoader or of two, never
write one segment. A fork does not copy the page tables of shared mappings, so the worker would
still fault every page of an inherited segment on first write (25 ms for 64 MiB on the benchmark
VM); it maps the part a batch needs in one ``MADV_POPULATE_READ`` call instead (6-9 ms; Linux 5.14+,
elsewhere the pages fault in as before). A new segment's pages cost their allocation either way
(~58 ms for 64 MiB), which is why the inherited ones matter.

A process that collates for itself (``num_workers=0``) reuses memory the same way, with private
anonymous mappings instead of memfds: a fresh 67 MiB padded event batch costs 10-24 ms to map,
fault in and zero (numpy's ``np.zeros`` for a batch of 16 DVS128 samples, measured on the benchmark
VM), a reused one 2.4 ms to write, which is about a third of what decoding the batch costs.
Such a batch is never sent anywhere, so it is reused as soon as its arrays are gone.
"""

from __future__ import annotations

import math
import mmap
import os
import threading
import weakref
from multiprocessing.reduction import DupFd
from typing import Any

import numpy as np
import torch
from torch.utils.data import get_worker_info

HEADER = 64  # byte 0: LENT while the main process may hold the batch
ALIGN = 64
LENT, FREE = 1, 0
PAGE = mmap.PAGESIZE
MADV_POPULATE_READ = getattr(mmap, "MADV_POPULATE_READ", 22)  # Linux 5.14; Python names it from 3.13
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
        return self.map[0] == FREE and not self.arrays_alive

    @classmethod
    def adopt(cls, fd: int, buffer: mmap.mmap, size: int) -> Segment:
        """A worker's segment as the main process received it (see :func:`receive`)."""
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
        call rather than one fault per page; a kernel without ``MADV_POPULATE_READ`` leaves them
        to fault in."""
        if 0 <= self.mapped < nbytes:
            end = min(self.size, -(-nbytes // PAGE) * PAGE)
            try:
                self.map.madvise(MADV_POPULATE_READ, self.mapped, end - self.mapped)
            except (OSError, ValueError):  # older kernel: page faults do it
                self.mapped = -1
                return
            self.mapped = end

    def close(self) -> None:
        self.map.close()
        for fd in (self.fd, self.lock_fd):
            if fd >= 0:
                os.close(fd)


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


_pools: dict[tuple[int, bool], Pool] = {}
_pools_lock = threading.Lock()
# in the main process: the segments received from workers, kept mapped (and their file descriptors
# open) so that workers forked later, one DataLoader epoch after another, inherit them instead of
# faulting fresh tmpfs pages in (~0.8 ms per MiB); keyed by (device, inode) of the memfd
_kept: dict[tuple[int, int], Segment] = {}
KEEP_BYTES = 1 << 30  # kept at most
CLAIM = MAX_FREE + 2  # kept segments a new worker takes at most: two in flight, one held, one spare


def worker_pool() -> Pool | None:
    """This DataLoader worker's pool; None outside workers and where memfd is missing. A worker
    forked from the main process starts with up to :data:`CLAIM` of the segments the main process
    kept from earlier workers (see :func:`receive`) that no other process has claimed."""
    if get_worker_info() is None or not hasattr(os, "memfd_create"):
        return None
    return _pool(shared=True)


def local_pool() -> Pool | None:
    """This process's pool of private batch memory; None inside a DataLoader worker (its batches
    go to another process: :func:`worker_pool`)."""
    if get_worker_info() is not None:
        return None
    return _pool(shared=False)


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
    """Aligned offsets of arrays ``(shape, dtype)`` after the header, and the total size."""
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
    """Arrays ``(shape, dtype)`` in a segment of ``pool`` (contents undefined: the caller writes all)."""
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
    closed), else a new one, kept with ``fd`` while the budget allows."""
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
    if sum(s.size for s in _kept.values()) + size <= KEEP_BYTES:
        _kept[key] = Segment.adopt(fd, buffer, size)
    else:
        os.close(fd)
    return buffer


def receive(handle: tuple[Any, int], layout: Layout) -> list[torch.Tensor]:
    """In the main process: the lent arrays as tensors; the segment goes back when all are gone.
    The segment stays mapped here for workers forked later (up to :data:`KEEP_BYTES`)."""
    fd_wrapper, size = handle
    fd = fd_wrapper.detach()
    buffer = _kept_map(fd, size)
    base, views = _views(buffer, layout, size)
    weakref.finalize(base, _give_back, buffer)
    return [torch.from_numpy(view) for view in views]
