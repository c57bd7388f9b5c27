"""The collate functions' fast path sits behind the filler protocols of neurodata.loaders.fillers:
the batches neurodata.load hands out satisfy them (checked on the classes and on real batches), and
any class that does takes the same path, with the same output as collating its decoded samples."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neurodata.loaders import load, pad_events, stack_dense, stack_time_major
from neurodata.loaders.fillers import BatchFiller, EventRowsFiller, StackFiller
from neurodata.loaders.pending import PendingEvents, PendingFrames
from neurodata.loaders.precompute import precompute

sys.path.insert(0, str(Path(__file__).parent))
import loader_samples as ls  # noqa: E402

FILLERS = [(PendingEvents, EventRowsFiller), (PendingFrames, StackFiller)]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    url = ls.build_indexed_cache(str(tmp_path_factory.mktemp("fillers") / "indexed.zarr"), 12)
    precompute(url, {"type": "frame", "n_time_bins": 2}, progress=False)
    return url


def members(protocol: type) -> list[str]:
    """The names a protocol declares, its bases' included."""
    return sorted(
        name
        for klass in protocol.__mro__
        if klass not in (object,) and getattr(klass, "_is_protocol", False)
        for name in vars(klass)
        if not name.startswith("_") or name == "__len__"
        if callable(vars(klass)[name]) or isinstance(vars(klass)[name], property)
    )


@pytest.mark.parametrize(("filler", "protocol"), FILLERS, ids=["events", "frames"])
def test_every_filler_class_declares_its_protocol_with_the_same_signatures(filler, protocol):
    names = members(protocol)
    assert {"__len__", "targets"} <= set(names) and len(names) >= 4
    for name in names:
        declared, implemented = inspect.getattr_static(protocol, name), inspect.getattr_static(filler, name)
        assert isinstance(implemented, property) == isinstance(declared, property), name
        if not isinstance(declared, property):
            assert list(inspect.signature(implemented).parameters) == list(
                inspect.signature(declared).parameters
            ), name


def test_the_batches_load_hands_out_satisfy_exactly_their_protocol(store):
    events = load(store).__getitems__([3, 1, 2])
    frames = load(store, representation={"type": "frame", "n_time_bins": 2}).__getitems__([3, 1])
    assert isinstance(events, PendingEvents) and isinstance(frames, PendingFrames)
    assert isinstance(events, EventRowsFiller) and not isinstance(events, StackFiller)
    assert isinstance(frames, StackFiller) and not isinstance(frames, EventRowsFiller)
    assert all(isinstance(batch, BatchFiller) for batch in (events, frames))
    assert not isinstance([(np.zeros(3), 0)], BatchFiller)  # a plain batch takes the plain path


class EventRows:
    """A filler of our own: decoded samples that write themselves into the padded columns."""

    def __init__(self, samples):
        self.samples = samples
        self.filled = False

    def __len__(self) -> int:
        return len(self.samples)

    def targets(self) -> list:
        return [label for _, label in self.samples]

    def lengths(self) -> np.ndarray:
        return np.array([len(events) for events, _ in self.samples], dtype=np.int64)

    def fill_rows(self, columns: dict[str, np.ndarray]) -> int:
        self.filled = True
        for row, (events, _) in enumerate(self.samples):
            for name in ("t", "x", "y", "p"):
                columns[name][row, : len(events)] = events[name]
        return max((int(events[k].max()) for events, _ in self.samples if len(events) for k in "xy"), default=0)


class Stack:
    """A filler of our own for equal-shape samples."""

    def __init__(self, samples):
        self.samples = samples
        self.shape = samples[0][0].shape
        self.dtype = samples[0][0].dtype

    def __len__(self) -> int:
        return len(self.samples)

    def targets(self) -> list:
        return [label for _, label in self.samples]

    def fill_stacked(self, out: np.ndarray, axis: int) -> None:
        for row, (x, _) in enumerate(self.samples):
            (out[row] if axis == 0 else out[:, row])[...] = x


def test_any_class_with_the_protocol_takes_the_fast_path_with_the_same_output():
    samples = [(ls.sample_events(i), i) for i in (4, 9, 2)]  # 9 is empty
    rows = EventRows(samples)
    assert isinstance(rows, EventRowsFiller)
    for mine, plain in zip(pad_events(rows), pad_events(samples)):
        assert torch.equal(mine, plain)
    assert rows.filled
    frames = [(np.arange(24, dtype=np.int32).reshape(2, 3, 4) * i, i) for i in range(3)]
    for collate in (stack_dense, stack_time_major):
        (mine, labels), (plain, plain_labels) = collate(Stack(frames)), collate(frames)
        assert torch.equal(mine, plain) and torch.equal(labels, plain_labels)
