"""Deterministic network state and gradient digests shared by the model-zoo capture and tests.

The SpikingJelly capture (``tests/data/capture_spikingjelly_models.py``) and
``tests/test_snn_models.py`` load the same state into SpikingJelly's and our networks. Instead of
storing megabytes of weights, both generate them here from a seed: small integers scaled by powers
of two (exact in float32 and float64), drawn with torch's CPU generator in state-dict order. The
capture stores a checksum so a generator that changed between torch versions is reported as such.
"""

from __future__ import annotations

import math

import torch

DIGEST_HEAD = 256  # leading gradient entries stored per parameter


def _draw(shape: torch.Size, low: int, high: int, scale: float, offset: float, generator: torch.Generator):
    values = torch.randint(low, high + 1, shape, generator=generator, dtype=torch.int64)
    return offset + values.to(torch.float64) * scale


def _weight_scale(fan_in: int) -> float:
    """A power of two near ``3 / (9.5 sqrt(fan_in))``: integer draws in [-16, 16] (std 9.5) then give
    weighted sums of order one, enough to make the layers spike."""
    return 2.0 ** round(math.log2(3.0 / (9.5 * math.sqrt(fan_in))))


def deterministic_state(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """A state dict shaped like ``state`` (same key order) with seeded, exactly representable values.

    Keys are classified by suffix: BN ``weight``/``bias``/``running_mean``/``running_var`` (1-D
    tensors beside a ``running_mean``), PLIF ``w`` (0-d), counters (integers) and everything else
    (convolution and linear weights, scaled by fan-in, and biases).
    """
    generator = torch.Generator().manual_seed(seed)
    bn_prefixes = {key.removesuffix("running_mean") for key in state if key.endswith("running_mean")}
    out = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        prefix = prefix + "." if prefix else ""
        if not value.is_floating_point():
            out[key] = torch.zeros_like(value)
        elif prefix in bn_prefixes and leaf in ("weight", "running_var"):
            out[key] = _draw(value.shape, -8, 8, 1 / 32, 1.0, generator)
        elif prefix in bn_prefixes and leaf in ("bias", "running_mean"):
            out[key] = _draw(value.shape, -8, 8, 1 / 64, 0.0, generator)
        elif value.ndim == 0:
            out[key] = _draw(value.shape, -8, 8, 1 / 16, 0.0, generator)
        elif value.ndim == 1:
            out[key] = _draw(value.shape, -16, 16, 1 / 64, 0.0, generator)
        else:
            out[key] = _draw(value.shape, -16, 16, _weight_scale(value[0].numel()), 0.0, generator)
    return out


def checksum(state: dict[str, torch.Tensor]) -> float:
    """Position-weighted sum of all floating values: detects a different draw or key order."""
    total = 0.0
    for index, value in enumerate(state.values()):
        if value.is_floating_point():
            total += (index + 1) * float(value.double().sum())
    return total


def digest(grad: torch.Tensor) -> torch.Tensor:
    """``[sum, sum of squares, first DIGEST_HEAD entries (zero-padded)]`` of a gradient, in float64."""
    flat = grad.detach().double().reshape(-1)
    head = torch.nn.functional.pad(flat[:DIGEST_HEAD], (0, max(0, DIGEST_HEAD - flat.numel())))
    return torch.cat([flat.sum().reshape(1), flat.square().sum().reshape(1), head])
