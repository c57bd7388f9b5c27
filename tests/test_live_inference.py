"""Live inference: sliding windows framed as the representation spec says, and an SNN whose state
carries from window to window (checked against one uninterrupted run over the same bins)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurodata as nd
from neurodata import live
from neurodata.errors import NeurodataError
from neurodata.live.inference import StreamClassifier
from neurodata.representations import to_frame

SIZE = 16
SPEC = {"type": "frame", "sensor_size": (SIZE, SIZE, 2), "n_time_bins": 4, "duration": 40_000}


@pytest.fixture(scope="module")
def model():
    from snn import models

    torch.manual_seed(0)
    net = models.build(
        "nmnist-csnn", in_channels=2, input_size=(SIZE, SIZE), num_classes=3, channels=4, hidden=16, n_blocks=1
    )
    with torch.no_grad():  # untrained weights scaled up so that the sparse test stream makes spikes
        for layer in net.modules():
            if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
                layer.weight.mul_(8)
    return net.eval()


def stream(n: int = 6000, span: int = 200_000, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, span, n))
    return nd.make_events(t, rng.integers(0, SIZE, n), rng.integers(0, SIZE, n), rng.integers(0, 2, n))


def chunks_of(events: np.ndarray, size: int = 777):
    return [events[i : i + size] for i in range(0, len(events), size)]


def reference_scores(model, events: np.ndarray, hop: int) -> list[torch.Tensor]:
    """Frame all complete bins at once and run the model once from rest over the whole sequence;
    window k's scores are the mean output over its T steps."""
    bin_us = SPEC["duration"] // SPEC["n_time_bins"]
    t0 = int(events["t"][0])
    n_bins = (int(events["t"][-1]) - t0) // hop * (hop // bin_us)
    end = t0 + n_bins * bin_us
    inside = events[events["t"] < end]
    frames = to_frame(inside, SPEC["sensor_size"], n_time_bins=n_bins, start_time=t0, end_time=end)
    model.readout = "sequence"
    try:
        with torch.no_grad():
            out = model(torch.from_numpy(frames).float().unsqueeze(1))[:, 0]
    finally:
        model.readout = "mean"
    T, steps = SPEC["n_time_bins"], hop // bin_us
    return [out[k + steps - T : k + steps].mean(0) for k in range(T - steps, n_bins - steps + 1, steps)]


@pytest.mark.parametrize("hop", [40_000, 20_000, 10_000])
def test_windows_match_one_uninterrupted_run(model, hop):
    events = stream()
    predictions = list(live.classify(chunks_of(events), model, SPEC, hop_us=hop))
    expected = reference_scores(model, events, hop)
    assert len(predictions) == len(expected) > 3
    assert any(max(p.scores) > 0 for p in predictions)  # the network fires: state matters
    for prediction, scores in zip(predictions, expected):
        assert prediction.t_end - prediction.t_start == SPEC["duration"]
        np.testing.assert_allclose(prediction.scores, scores.numpy(), rtol=1e-5, atol=1e-6)
        assert prediction.label == int(scores.argmax())
    ends = [p.t_end for p in predictions]
    assert np.all(np.diff(ends) == hop)


def test_state_is_carried_not_restarted(model):
    """Restarting the network at each window (what a stateless loop would do) changes the scores."""
    events = stream()
    carried = list(live.classify(chunks_of(events), model, SPEC))
    restarted = []
    for window in carried[1:3]:
        inside = events[(events["t"] >= window.t_start) & (events["t"] < window.t_end)]
        frames = to_frame(inside, SPEC["sensor_size"], n_time_bins=4, start_time=window.t_start, end_time=window.t_end)
        with torch.no_grad():
            restarted.append(model(torch.from_numpy(frames).float().unsqueeze(1))[0].numpy())
    assert any(not np.allclose(c.scores, r) for c, r in zip(carried[1:3], restarted))
    assert all(not n.stateful for n in model.modules() if hasattr(n, "stateful"))  # restored


def test_bad_hop_and_spec_are_clear_errors(model):
    with pytest.raises(NeurodataError, match="multiple of the bin, 10000 us"):
        StreamClassifier(model, SPEC, hop_us=15_000)
    with pytest.raises(NeurodataError, match="lacks duration"):
        StreamClassifier(model, {**SPEC, "duration": None})
