"""Batching variable-length event samples and dense representations, plus a length-bucketing sampler.

* :func:`pad_events`: ``(events, label)`` samples -> :class:`EventBatch` of ``[B, L]`` tensors padded
  to the batch's longest sample, with a boolean ``mask`` of real events.
* :func:`stack_dense` / :func:`stack_time_major`: equal-shape arrays (frames ``[T, P, H, W]``) ->
  a :class:`StackedBatch` ``[B, T, ...]`` or :class:`TimeMajorBatch` ``[T, B, ...]`` (the layout the
  SNN trainer steps through), each saying its layout in ``time_major``.
* :class:`LengthBucketBatchSampler`: batches of similar length, so padding wastes little.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Sampler, get_worker_info

from ..cache.kernels import copy_with_range_numba
from ..representations._layout import channel_polarities, scan_polarities
from . import shm_pool
from .decode_pool import decode_map
from .fillers import EventRowsFiller, StackFiller
from .kernels import pad_records_numba


class EventBatch(NamedTuple):
    """Padded events: ``t`` int64, ``x``/``y`` int16, ``p`` uint8, ``mask`` bool (all ``[B, L]``),
    ``lengths`` int64 ``[B]``, ``labels`` ``[B]``. Padding is zero with ``mask`` False."""

    t: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor
    p: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor

    def pin_memory(self) -> EventBatch:
        """Called by ``DataLoader(pin_memory=True)``."""
        return EventBatch(*(tensor.pin_memory() for tensor in self))

    def to(self, *args: Any, **kwargs: Any) -> EventBatch:
        """Every tensor moved or cast with the arguments of ``torch.Tensor.to``."""
        return EventBatch(*(tensor.to(*args, **kwargs) for tensor in self))


class PooledEventBatch(EventBatch):
    """An EventBatch a DataLoader worker built in a reusable shared-memory segment (see
    :mod:`.shm_pool`): it pickles as the segment's handle and arrives as a plain EventBatch."""

    def __reduce__(self):
        lease, layout = self.pooled
        return _receive_event_batch, (
            lease.handle(),
            layout,
            self.lengths.numpy(),
            _labels_payload(self.labels),
        )


class StackedBatch(NamedTuple):
    """Equal-shape inputs stacked batch-first, ``[B, T, ...]``, and their labels ``[B]``.

    ``time_major`` (a class attribute, not a field: ``inputs, labels = batch`` still unpacks) says
    the layout, so :func:`snn.train.fit` reads the batch the way it was built.
    """

    inputs: torch.Tensor
    labels: Any
    time_major = False


class TimeMajorBatch(StackedBatch):
    """Equal-shape inputs stacked time-first, ``[T, B, ...]``, and their labels ``[B]``."""

    __slots__ = ()
    time_major = True


def stacked_batch(inputs: torch.Tensor, labels: Any, time_major: bool) -> StackedBatch:
    """``inputs`` and ``labels`` as the batch type that declares ``time_major``."""
    return (TimeMajorBatch if time_major else StackedBatch)(inputs, labels)


class PooledStack(tuple):
    """``(stacked, labels)`` built in a reusable shared-memory segment; arrives as the
    :class:`StackedBatch` or :class:`TimeMajorBatch` of its ``time_major``."""

    def __reduce__(self):
        lease, layout = self.pooled
        return _receive_stack, (lease.handle(), layout, _labels_payload(self[1]), self.time_major)


def _labels_payload(labels: Any) -> Any:
    return ("tensor", labels.numpy()) if isinstance(labels, torch.Tensor) else ("list", labels)


def _labels_from(payload: Any) -> Any:
    kind, value = payload
    return torch.from_numpy(value) if kind == "tensor" else value


def _receive_event_batch(handle, layout, lengths, labels) -> EventBatch:
    return EventBatch(*shm_pool.receive(handle, layout), torch.from_numpy(lengths), _labels_from(labels))


def _receive_stack(handle, layout, labels, time_major: bool) -> StackedBatch:
    (stacked,) = shm_pool.receive(handle, layout)
    return stacked_batch(stacked, _labels_from(labels), time_major)


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The numpy dtype of a torch dtype."""
    return torch.empty(0, dtype=dtype).numpy().dtype


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


class BatchMemory(NamedTuple):
    """Tensors for one batch and what the caller must know of them: the ``tensors``; ``shared``,
    the ``(lease, layout)`` to pickle the batch by when built in a worker's segment, else None;
    ``reused``, whether the memory may hold an earlier batch (the caller then writes every item)."""

    tensors: list[torch.Tensor]
    shared: tuple | None  # (lease, layout) to pickle the batch by, built in a worker's segment
    reused: bool  # the memory may hold an earlier batch: the caller writes every item


def batch_tensors(specs: list[tuple[tuple[int, ...], torch.dtype]]) -> BatchMemory:
    """Tensors of ``specs`` ``(shape, dtype)`` for one batch from this process's reusable batch memory (:mod:`.shm_pool`): in a
    DataLoader worker a shared segment, elsewhere a private one. Where the pool is off, or a worker
    has no memfd, each tensor is fresh and zeroed: :func:`batch_tensor` in a worker, else ordinary
    memory."""
    pool = shm_pool.worker_pool() or shm_pool.local_pool()
    if pool is None:
        fresh = batch_tensor if get_worker_info() is not None else torch.zeros
        return BatchMemory([fresh(shape, dtype=dtype) for shape, dtype in specs], None, False)
    lease, layout, arrays = shm_pool.lend([(shape, numpy_dtype(dtype)) for shape, dtype in specs], pool)
    tensors = [torch.from_numpy(array) for array in arrays]
    return BatchMemory(tensors, (lease, layout) if pool.shared else None, True)


# 14 bytes per padded event: times stay exact (absolute int64 microseconds); coordinates of every
# event sensor fit int16 (checked: a coordinate outside it is a ValueError, never wrapped)
FIELD_DTYPES = {"t": torch.int64, "x": torch.int16, "y": torch.int16, "p": torch.uint8}
COORDINATE_RANGE = (-(2**15), 2**15 - 1)


def _labels(labels: Sequence[Any]) -> torch.Tensor | list:
    """Labels as a tensor when they are numbers or tensors, else left as a list."""
    first = labels[0] if len(labels) else 0
    if isinstance(first, torch.Tensor):
        return torch.stack(list(labels))
    if isinstance(first, (int, float, np.integer, np.floating, np.ndarray)):
        return torch.as_tensor(np.asarray(labels))
    return list(labels)


def batch_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A tensor of ``shape`` and ``dtype`` in torch's shared memory, zero-filled by the kernel: for a DataLoader worker without
    the reusable pool (off, or no memfd), so sending the batch to the main process does not copy it again (as
    ``default_collate`` does)."""
    nbytes = int(np.prod(shape)) * torch.empty(0, dtype=dtype).element_size()
    return torch.empty(0, dtype=dtype).set_(torch.UntypedStorage._new_shared(max(nbytes, 1)), 0, shape)


def _fill_row(events: Any, n: int, rows: dict[str, np.ndarray]) -> tuple[int, int]:
    """One sample's fields -> the first ``n`` items of its padded rows; the coordinates' range."""
    fields = getattr(getattr(events, "dtype", None), "fields", None)
    if isinstance(events, np.ndarray) and fields and all(fields[k][0].kind in "iub" for k in "txyp"):
        coordinates = pad_records_numba(events, rows["t"], rows["x"], rows["y"], rows["p"])
        if fields["p"][0] not in (np.dtype(np.uint8), np.dtype(bool)):
            _copy_polarities(events["p"], rows["p"])  # the kernel's copy cast them as they were
        return coordinates
    rows["t"][:n] = np.asarray(events["t"])
    _copy_polarities(np.asarray(events["p"]), rows["p"])
    ranges = [copy_with_range_numba(np.ascontiguousarray(events[k]), rows[k]) for k in "xy"] if n else []
    return min((lo for lo, _ in ranges), default=0), max((hi for _, hi in ranges), default=0)


def _copy_polarities(p: np.ndarray, row: np.ndarray) -> None:
    """``p`` -> ``row[:len(p)]`` (uint8) as the transforms read polarities (-1/+1 as 0/1, channel
    indices 0..255 as they are; :func:`~neurodata.representations._layout.channel_polarities`)."""
    try:
        row[: len(p)] = channel_polarities(p, *scan_polarities(p))
    except ValueError as err:
        raise ValueError(f"pad_events: {err}") from None


def _check_coordinates(which: str, lo: int, hi: int) -> None:
    if lo < COORDINATE_RANGE[0] or hi > COORDINATE_RANGE[1]:
        raise ValueError(
            f"pad_events: {which} of the batch has a coordinate of {lo if lo < 0 else hi}, "
            f"outside the int16 range {COORDINATE_RANGE} of EventBatch.x/y"
        )


def pad_events(batch: Sequence[tuple[Any, Any]] | EventRowsFiller) -> EventBatch:
    """Collate ``(events, label)`` samples by padding each event field to the longest sample.

    ``events`` is a structured array or any mapping with ``t``, ``x``, ``y``, ``p`` columns
    (Tonic's and SpikingJelly's sample forms). Structured arrays are copied by one Numba pass each,
    samples side by side on the decode threads (:mod:`.decode_pool`) where a process collates alone;
    a batch of samples still in the cache (an :class:`.fillers.EventRowsFiller` such as
    :class:`.pending.PendingEvents`, from ``neurodata.load``) is decoded straight into the padded
    columns. The batch is built in memory that is reused once it is released (see
    :func:`batch_tensors`): shared memory in a DataLoader worker.
    """
    pending = isinstance(batch, EventRowsFiller)
    if pending:
        lengths = batch.lengths()
    else:
        lengths = np.array([len(events["t"]) for events, _ in batch], dtype=np.int64)
    shape = (len(batch), int(lengths.max(initial=0)))
    made, pooled, reused = batch_tensors([(shape, dtype) for dtype in (*FIELD_DTYPES.values(), torch.bool)])
    tensors, mask = dict(zip(FIELD_DTYPES, made[:4])), made[4]
    columns = {name: tensor.numpy() for name, tensor in tensors.items()}
    mask_rows = mask.numpy()
    longest_first = np.argsort(-lengths, kind="stable").tolist()  # threads finish together
    if pending:
        _check_coordinates("a sample", 0, batch.fill_rows(columns))
        labels = _labels(batch.targets())
    else:

        def fill(row: int) -> tuple[int, int]:
            rows = {name: column[row] for name, column in columns.items()}
            return _fill_row(batch[row][0], int(lengths[row]), rows)

        ranges = dict(zip(longest_first, decode_map(fill, longest_first)))
        for row in range(len(batch)):
            _check_coordinates(f"sample {row}", *ranges[row])
        labels = _labels([label for _, label in batch])

    def finish(row: int) -> None:
        n = int(lengths[row])
        mask_rows[row, :n] = True
        if reused:  # the padding is written too
            mask_rows[row, n:] = False
            for column in columns.values():
                column[row, n:].view(np.uint8)[:] = 0  # numpy fills bytes with memset, wider items in a loop

    decode_map(finish, longest_first)
    if pooled is None:
        return EventBatch(*tensors.values(), mask, torch.from_numpy(lengths), labels)
    out = PooledEventBatch(*tensors.values(), mask, torch.from_numpy(lengths), labels)
    out.pooled = pooled
    return out


def stack_dense(batch: Sequence[tuple[Any, Any]] | StackFiller, time_major: bool = False) -> StackedBatch:
    """Collate equal-shape inputs into ``[B, T, ...]`` (``time_major``: ``[T, B, ...]``) and labels ``[B]``.

    The result is a :class:`StackedBatch` (``time_major``: a :class:`TimeMajorBatch`), which
    unpacks as ``inputs, labels`` and tells :func:`snn.train.fit` its layout.

    numpy inputs are stacked by numpy (several times faster than ``torch.stack`` on CPU for frames),
    into reusable batch memory (see :func:`batch_tensors`); stored frames still in the cache (a
    :class:`.fillers.StackFiller` such as :class:`.pending.PendingFrames`, from ``neurodata.load``)
    are decoded straight into the batch.
    """
    axis = 1 if time_major else 0
    if isinstance(batch, StackFiller):
        shape = list(batch.shape)
        shape.insert(axis, len(batch))
        (stacked,), pooled, _ = batch_tensors([(tuple(shape), _torch_dtype(batch.dtype))])
        batch.fill_stacked(stacked.numpy(), axis)
        return _stacked(stacked, _labels(batch.targets()), pooled, time_major)
    inputs = [x for x, _ in batch]
    shapes = {tuple(x.shape) for x in inputs}
    if len(shapes) > 1:
        raise ValueError(
            f"stack_dense needs equal shapes, got {sorted(shapes)}; use a fixed number of bins "
            "(n_time_bins, n_event_bins) or pad_events for raw events"
        )
    if inputs and all(isinstance(x, np.ndarray) for x in inputs):
        shape = list(inputs[0].shape)
        shape.insert(axis, len(inputs))
        (stacked,), pooled, _ = batch_tensors([(tuple(shape), _torch_dtype(np.result_type(*inputs)))])
        np.stack(inputs, axis=axis, out=stacked.numpy())
    else:
        stacked, pooled = torch.stack([torch.as_tensor(x) for x in inputs], dim=axis), None
    return _stacked(stacked, _labels([label for _, label in batch]), pooled, time_major)


def _stacked(stacked: torch.Tensor, labels: Any, pooled: tuple | None, time_major: bool) -> StackedBatch:
    if pooled is None:
        return stacked_batch(stacked, labels, time_major)
    out = PooledStack((stacked, labels))
    out.pooled, out.time_major = pooled, time_major
    return out


def stack_time_major(batch: Sequence[tuple[Any, Any]] | StackFiller) -> TimeMajorBatch:
    """:func:`stack_dense` with ``time_major=True``: a :class:`TimeMajorBatch` ``[T, B, ...]``, the
    layout the SNN trainer steps through (it reads the layout from the batch)."""
    return stack_dense(batch, time_major=True)


def length_buckets(
    lengths: np.ndarray,
    batch_size: int,
    bucket_batches: int,
    rng: np.random.Generator | None,
    drop_last: bool,
) -> list[np.ndarray]:
    """Batches of ``batch_size`` indices with similar ``lengths``: shuffle, cut into buckets of
    ``bucket_batches`` batches, sort each bucket by length, cut it into batches, then shuffle the
    batches (no shuffling without ``rng``); ``drop_last`` drops the short batches."""
    order = rng.permutation(len(lengths)) if rng is not None else np.arange(len(lengths))
    bucket = batch_size * bucket_batches
    batches = []
    for start in range(0, len(order), bucket):
        members = order[start : start + bucket]
        members = members[np.argsort(lengths[members], kind="stable")]
        batches += [members[i : i + batch_size] for i in range(0, len(members), batch_size)]
    if drop_last:
        batches = [b for b in batches if len(b) == batch_size]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batch sampler grouping samples of similar event count (pass ``dataset.lengths``).

    Deterministic from ``seed`` and :meth:`set_epoch`; with ``num_replicas``/``rank`` each rank takes
    every ``num_replicas``-th batch (the last ``len % num_replicas`` batches are dropped so ranks
    run the same number of steps).

    Args:
        lengths: Events per sample (``dataset.lengths``).
        batch_size: Samples per batch.
        bucket_batches: Batches per bucket of similar lengths (larger: less padding, less mixing).
        shuffle: Shuffle buckets and batches (else a fixed order).
        seed: With the epoch, seeds the shuffle.
        drop_last: Drop batches shorter than ``batch_size``.
        num_replicas: Number of ranks sharing the batches.
        rank: This rank, in ``[0, num_replicas)``.
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        *,
        bucket_batches: int = 50,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.bucket_batches = bucket_batches
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next iteration follows."""
        self.epoch = epoch

    def _batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch]) if self.shuffle else None
        batches = length_buckets(self.lengths, self.batch_size, self.bucket_batches, rng, self.drop_last)
        usable = len(batches) - len(batches) % self.num_replicas
        return batches[self.rank : usable : self.num_replicas]

    def __iter__(self) -> Iterator[list[int]]:
        return (batch.tolist() for batch in self._batches())

    def __len__(self) -> int:
        return len(self._batches())
