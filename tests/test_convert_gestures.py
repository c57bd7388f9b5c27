"""Conversion evidence on the demo's synthetic DVS gestures: a frame-based ANN (trained on single
time-bin frames of the prepared cache) converted with ``snn.convert`` and run on each test sample's
sequence of event frames, as they come, classifies the unseen users as well as the ANN averaged over
the same frames."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neurodata.datasets.prepare import prepare
from snn.convert import accuracy_vs_timesteps, ann_to_snn
from snn.demo import QUICK, frame_dataset, make_archive

CONFIG = dataclasses.replace(QUICK, users=6, test_users=2, time_bins=16)


@pytest.fixture(scope="module")
def gestures(tmp_path_factory, one_torch_thread):
    """Train and test frames ``[N, T, 2, 16, 16]`` (log1p counts) of a synthetic DVS128-layout cache."""
    root = tmp_path_factory.mktemp("gestures")
    archive = make_archive(root, CONFIG, workers=2)
    store = prepare("dvs128", source=str(archive), root=root / "cache", progress=False)["url"]
    return frame_dataset(store, "train", CONFIG).tensors, frame_dataset(store, "test", CONFIG).tensors


def frame_ann() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(2, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 11),
    )  # fmt: skip


def test_converted_frame_ann_classifies_event_sequences(gestures):
    (x_train, y_train), (x_test, y_test) = gestures
    steps = x_train.shape[1]
    frames, labels = x_train.flatten(0, 1), y_train.repeat_interleave(steps)  # every bin keeps its label
    torch.manual_seed(0)
    ann = frame_ann()
    optimizer = torch.optim.Adam(ann.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(0)
    for _ in range(15):
        ann.train()
        for index in torch.randperm(len(frames), generator=order).split(64):
            optimizer.zero_grad()
            F.cross_entropy(ann(frames[index]), labels[index]).backward()
            optimizer.step()
    ann.eval()
    with torch.no_grad():
        ann_scores = ann(x_test.flatten(0, 1)).view(len(x_test), steps, -1).mean(1)
    ann_accuracy = float((ann_scores.argmax(1) == y_test).float().mean())
    assert ann_accuracy >= 0.8, ann_accuracy  # the ANN has learnt the gestures

    snn_model = ann_to_snn(ann, frames[:512], mode="99.9%")
    batches = [(x_test[i : i + 32], y_test[i : i + 32]) for i in range(0, len(x_test), 32)]
    curve = accuracy_vs_timesteps(snn_model, batches, timesteps=(1, steps), time_major=False)
    assert curve[steps] >= ann_accuracy - 1 / len(x_test), (ann_accuracy, curve)  # one sample of slack
    assert curve[1] <= curve[steps]
