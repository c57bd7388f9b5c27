"""Surrogate functions against SpikingJelly 2.0's captured forward spikes and backward derivatives."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from snn import surrogate

DATA = Path(__file__).resolve().parent / "data" / "spikingjelly_snn_reference.npz"
CLASSES = {
    "sigmoid": (surrogate.Sigmoid, 4.0),
    "atan": (surrogate.ATan, 2.0),
    "piecewise_quadratic": (surrogate.PiecewiseQuadratic, 1.0),
    "piecewise_exp": (surrogate.PiecewiseExp, 1.0),
    "soft_sign": (surrogate.SoftSign, 2.0),
    "super_spike": (surrogate.SuperSpike, 1.0),
    "erf": (surrogate.Erf, 2.0),
    "rect": (surrogate.Rect, 1.0),
}


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(DATA, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _curve_keys(reference):
    return sorted({k.rsplit("/", 1)[0] for k in reference if k.startswith("surrogate/")})


def test_reference_covers_every_surrogate_twice(reference):
    names = [key.split("/")[1] for key in _curve_keys(reference)]
    assert sorted(set(names)) == sorted(CLASSES) and len(names) == 2 * len(CLASSES)
    assert "cases" in reference and json.loads(str(reference["cases"]))


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_matches_spikingjelly(reference, name):
    cls, _ = CLASSES[name]
    keys = [k for k in _curve_keys(reference) if k.split("/")[1] == name]
    for key in keys:
        alpha = float(key.split("/")[2])
        x = torch.from_numpy(reference[key + "/x"]).requires_grad_(True)
        spikes = cls(alpha=alpha)(x)
        spikes.sum().backward()
        np.testing.assert_array_equal(spikes.detach().numpy(), reference[key + "/spikes"])
        np.testing.assert_allclose(x.grad.numpy(), reference[key + "/grad"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_name_default_alpha_and_settable_alpha(name):
    cls, default = CLASSES[name]
    sg = cls()
    assert sg.name == name and sg.alpha == default
    assert surrogate.by_name(name) == sg
    sg.alpha = default * 2
    x = torch.tensor([0.1], requires_grad=True)
    sg(x).sum().backward()
    assert torch.allclose(x.grad, surrogate.surrogate_grad(name, x.detach(), default * 2))


def test_heaviside_fires_at_zero_and_passes_the_upstream_gradient():
    x = torch.tensor([-1e-7, 0.0, 1e-7], requires_grad=True)
    y = surrogate.ATan()(x)
    assert y.tolist() == [0.0, 1.0, 1.0]
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    # ATan(2): g'(0) = a/2 = 1, so the gradient at ~0 is the upstream gradient itself
    assert torch.allclose(x.grad, torch.tensor([1.0, 2.0, 3.0]), atol=1e-6)


def test_hand_computed_derivatives_at_one():
    one = torch.tensor(1.0)
    expected = {
        "sigmoid": 4 * torch.sigmoid(one * 4) * (1 - torch.sigmoid(one * 4)),
        "atan": 1.0 / (1 + math.pi**2),
        "piecewise_quadratic": 0.0,
        "piecewise_exp": 0.5 * math.exp(-1),
        "soft_sign": 1 / (4 * 1.5**2),
        "super_spike": 0.25,
        "erf": 2 / math.sqrt(math.pi) * math.exp(-4),
        "rect": 0.0,
    }
    for name, value in expected.items():
        got = surrogate.by_name(name).grad(one)
        assert torch.allclose(got, torch.as_tensor(value, dtype=torch.float32)), name


def test_bad_names_and_alphas_are_rejected():
    with pytest.raises(ValueError, match="unknown surrogate 'tanh'"):
        surrogate.by_name("tanh")
    with pytest.raises(ValueError, match="alpha must be > 0"):
        surrogate.ATan(alpha=0.0)
