"""Multi-step layers: folding time into the batch must equal running the torch layer per time step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from snn import layers


def per_step(module: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    return torch.stack([module(x) for x in x_seq])


@pytest.mark.parametrize(
    "ours, plain, shape",
    [
        (layers.Conv2d(2, 3, 3, padding=1), nn.Conv2d(2, 3, 3, padding=1), (4, 2, 2, 6, 6)),
        (layers.Conv1d(2, 3, 3, stride=2), nn.Conv1d(2, 3, 3, stride=2), (4, 2, 2, 9)),
        (layers.Linear(5, 3), nn.Linear(5, 3), (4, 2, 5)),
        (layers.MaxPool2d(2), nn.MaxPool2d(2), (3, 2, 2, 6, 6)),
        (layers.AvgPool2d(2), nn.AvgPool2d(2), (3, 2, 2, 6, 6)),
        (layers.MaxPool1d(3), nn.MaxPool1d(3), (3, 2, 2, 9)),
        (layers.AvgPool1d(3), nn.AvgPool1d(3), (3, 2, 2, 9)),
    ],
)
def test_stateless_layers_equal_per_step_application(ours, plain, shape):
    plain.load_state_dict(ours.state_dict())
    x = torch.rand(shape)
    assert torch.allclose(ours(x), per_step(plain, x), atol=1e-6)


def test_batchnorm_statistics_span_time_and_batch():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 2, 5, 5) * 3 + 1
    bn = layers.BatchNorm2d(2)
    y = bn(x)
    assert y.shape == x.shape
    # training-mode output is normalised per channel over (T, B, H, W) together
    assert torch.allclose(y.mean(dim=(0, 1, 3, 4)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(y.var(dim=(0, 1, 3, 4), unbiased=False), torch.ones(2), atol=1e-3)
    expected_running = 0.9 * 0 + 0.1 * x.mean(dim=(0, 1, 3, 4))
    assert torch.allclose(bn.running_mean, expected_running, atol=1e-5)
    bn1 = layers.BatchNorm1d(4)
    assert bn1(torch.randn(3, 2, 4)).shape == (3, 2, 4)


def test_threshold_dependent_batchnorm_scales_to_alpha_vth():
    torch.manual_seed(1)
    tdbn = layers.TdBatchNorm2d(3, v_threshold=0.5, alpha=2.0)
    assert torch.equal(tdbn.weight.detach(), torch.full((3,), 1.0))
    y = tdbn(torch.randn(4, 2, 3, 4, 4) * 5)
    assert torch.allclose(y.std(dim=(0, 1, 3, 4), unbiased=False), torch.ones(3), atol=1e-3)
    tdbn1 = layers.TdBatchNorm1d(2, v_threshold=1.0, alpha=0.5)
    assert torch.equal(tdbn1.weight.detach(), torch.full((2,), 0.5))
    with pytest.raises(ValueError, match="affine=True"):
        layers.TdBatchNorm2d(3, affine=False)


def test_flatten_keeps_time_and_batch():
    x = torch.rand(3, 2, 4, 5, 6)
    assert layers.Flatten()(x).shape == (3, 2, 120)
    assert torch.equal(layers.Flatten()(x)[1, 0], x[1, 0].flatten())


def test_dropout_mask_is_shared_over_time():
    torch.manual_seed(2)
    drop = layers.Dropout(p=0.5)
    x = torch.ones(6, 4, 200)
    y = drop(x)
    assert all(torch.equal(y[t], y[0]) for t in range(6))  # same units dropped at every step
    assert set(y.unique().tolist()) == {0.0, 2.0}  # inverted dropout scaling 1 / (1 - p)
    assert 0.4 < (y[0] == 0).float().mean().item() < 0.6
    assert not torch.equal(drop(x)[0], y[0])  # a new mask for the next sequence
    drop.eval()
    assert torch.equal(drop(x), x)
    with pytest.raises(ValueError, match="dropout probability"):
        layers.Dropout(1.0)


def test_voting_averages_groups_of_neurons():
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0, 1.0, 1.0]])
    assert torch.allclose(layers.Voting(3)(x), torch.tensor([[2 / 3, 1.0]]))
    assert layers.Voting(10)(torch.rand(4, 2, 100)).shape == (4, 2, 10)
    with pytest.raises(ValueError, match="not a multiple"):
        layers.Voting(4)(torch.rand(2, 6))


def test_seq_to_ann_container_and_shape_errors():
    conv, pool = nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)
    x = torch.rand(3, 2, 1, 8, 8)
    assert torch.allclose(layers.SeqToANN(conv, pool)(x), per_step(nn.Sequential(conv, pool), x), atol=1e-6)
    with pytest.raises(ValueError, match=r"time-major sequence \[T, B, ...\]"):
        layers.Conv2d(1, 1, 1)(torch.rand(4))
