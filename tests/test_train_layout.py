"""The trainer reads a batch in the layout it was built in: loaders' batches declare it, and a
layout that does not fit the labels fails with a message naming ``time_major``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neurodata.loaders import StackedBatch, TimeMajorBatch, stack_dense, stack_time_major
from snn.train import TrainConfig, fit
from tests.train_helpers import STEPS, TinyNet, rate_coded

BASE = TrainConfig(epochs=2, lr=2e-2, progress=False, activity=False)


def frame_samples(n: int) -> list[tuple[np.ndarray, int]]:
    """``n`` ``(frames [T, N_IN], label)`` samples as a loader's dataset gives them (numpy, int)."""
    data = rate_coded(n, 1)
    return [(x.numpy(), int(y)) for x, y in zip(data.tensors[0], data.tensors[1])]


def trained_weights(collate, config: TrainConfig, batch_size: int) -> list[torch.Tensor]:
    loader = DataLoader(frame_samples(24), batch_size=batch_size, collate_fn=collate)
    model = TinyNet()
    fit(model, loader, None, config)
    return [p.detach().clone() for p in model.parameters()]


def test_stacked_batches_declare_their_layout():
    samples = frame_samples(3)
    time_major, batch_major = stack_time_major(samples), stack_dense(samples)
    assert isinstance(time_major, TimeMajorBatch) and time_major.time_major
    assert isinstance(batch_major, StackedBatch) and not batch_major.time_major
    x, labels = time_major  # still unpacks as (inputs, labels)
    assert x.shape == (STEPS, 3, 24) and torch.equal(x.transpose(0, 1), batch_major.inputs)
    assert labels.tolist() == [0, 1, 2]


def test_readme_combination_trains_on_the_right_axes_when_t_equals_b():
    """stack_time_major + a default TrainConfig with T == B (6): the same weights as the run whose
    axes are stated explicitly, and not those of the swapped axes."""
    readme = trained_weights(stack_time_major, BASE, batch_size=STEPS)
    explicit = trained_weights(stack_time_major, dataclasses.replace(BASE, time_major=True), STEPS)
    batch_first = trained_weights(stack_dense, BASE, STEPS)
    undeclared = dataclasses.replace(BASE, time_major=True)  # batch-first read as time-first
    swapped = trained_weights(lambda samples: tuple(stack_dense(samples)), undeclared, STEPS)
    for mine, right, other in zip(readme, explicit, batch_first):
        assert torch.equal(mine, right) and torch.equal(mine, other)
    assert not all(torch.equal(mine, wrong) for mine, wrong in zip(readme, swapped))


def test_a_layout_that_does_not_fit_the_labels_names_time_major():
    undeclared = [(x.transpose(0, 1), y) for x, y in DataLoader(rate_coded(8, 1), batch_size=4)]
    batch_first = dataclasses.replace(BASE, time_major=False)
    with pytest.raises(ValueError, match=r"time_major=False.*set TrainConfig.time_major=True"):
        fit(TinyNet(), undeclared, None, batch_first)
    declared = DataLoader(frame_samples(8), batch_size=4, collate_fn=stack_time_major)
    with pytest.raises(ValueError, match=r"the batch says time_major=True .*TrainConfig.time_major=False"):
        fit(TinyNet(), declared, None, dataclasses.replace(BASE, time_major=False))


def test_declared_layout_survives_workers():
    """Batches built in a worker's shared memory arrive as the type that declares their layout."""
    samples = frame_samples(8)
    loader = DataLoader(
        samples, batch_size=4, num_workers=1, multiprocessing_context="fork", collate_fn=stack_time_major
    )
    batches = list(loader)
    assert all(isinstance(b, TimeMajorBatch) and b.inputs.shape == (STEPS, 4, 24) for b in batches)
    assert torch.equal(batches[1].inputs, stack_time_major(samples[4:]).inputs)


def test_an_undeclared_batch_is_never_transposed_by_guessing():
    """A static ``[B, C, H, W]`` batch (PyTorch's default collate, no layout declared) with the
    default config: an error naming ``time_major``, not a silent swap of B and C."""
    images = [(torch.rand(4, 2, 8, 8), torch.arange(4) % 2)]
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            seen.append(tuple(x.shape))
            return self.scale * x.mean((-1, -2))

    with pytest.raises(ValueError, match=r"do not say which axis is time.*TrainConfig.time_major"):
        fit(Spy(), images, None, BASE)
    assert seen == []  # the model never saw a swapped batch


def test_the_readout_is_explicit_and_checks_the_output_shape():
    """``readout="mean"`` averages a per-step ``[T, B, C]`` output; a ``[B, C]`` output needs
    ``readout="none"``; an output that is neither is an error naming ``TrainConfig.readout``."""
    loader = DataLoader(frame_samples(8), batch_size=4, collate_fn=stack_time_major)

    class Averaged(torch.nn.Module):  # returns [B, C]: the time mean of TinyNet's [T, B, C]
        def __init__(self):
            super().__init__()
            self.net = TinyNet()

        def forward(self, x):
            return self.net(x).mean(0)

    with pytest.raises(ValueError, match=r"readout='mean' expects .*\[T, B=4, C\], got shape \(4, 4\)"):
        fit(Averaged(), loader, None, BASE)
    per_step, averaged = TinyNet(), Averaged()
    fit(per_step, loader, None, BASE)
    fit(averaged, loader, None, dataclasses.replace(BASE, readout="none"))
    for a, b in zip(per_step.parameters(), averaged.parameters(), strict=True):
        assert torch.equal(a, b)  # the same training, whichever side averages over time

    class BatchMajor(torch.nn.Module):  # [B, T, C]: batch-major output, not transposed by guessing
        def __init__(self):
            super().__init__()
            self.net = TinyNet()

        def forward(self, x):
            return self.net(x).transpose(0, 1)

    with pytest.raises(ValueError, match=r"got shape \(4, 6, 4\)"):
        fit(BatchMajor(), loader, None, BASE)
    with pytest.raises(ValueError, match="readout"):
        TrainConfig(readout="last")
