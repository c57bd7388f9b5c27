"""snn.convert on bad input: one clear error naming the layer or argument at fault; the ANN passed in is
never modified; the converted network runs on every backend."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import snn
from snn.backends import cpu_backend
from snn.convert import QCFS, ConversionError, ann_to_snn


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16, 3),
    )  # fmt: skip


class _Unsupported(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.block = nn.Sequential(nn.Linear(4, 4), nn.GELU())
        self.norm = nn.LayerNorm(4)

    def forward(self, x):
        return torch.sigmoid(self.norm(self.block(F.relu(self.fc(x)))))


def test_every_unsupported_layer_is_named_at_once():
    with pytest.raises(ConversionError) as caught:
        ann_to_snn(_Unsupported(), torch.randn(2, 4))
    message = str(caught.value)
    assert "3 problems" in message
    for path in ("block.1: GELU", "norm: LayerNorm", "(top level): sigmoid"):
        assert path in message
    assert len(caught.value.problems) == 3


@pytest.mark.parametrize(
    ("calibration", "match"),
    [
        (torch.empty(0, 1, 4, 4), "calibration: no samples"),
        ([], "calibration: no samples"),
        (DataLoader(TensorDataset(torch.empty(0, 1, 4, 4)), batch_size=2), "calibration: no samples"),
        (torch.full((2, 1, 4, 4), float("nan")), "calibration: NaN or infinite values in calibration batch 0"),
        (torch.rand(2, 1, 6, 6), r"calibration: batch 0 fails at 5 \(RuntimeError"),
        ([torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 5)], r"calibration: batch 1 has per-sample shape \(1, 4, 5\)"),
        (["not a tensor"], "calibration: batch 0 is a str"),
        (3, "calibration: expected a tensor"),
    ],
)
def test_bad_calibration_names_the_argument(calibration, match):
    with pytest.raises(ConversionError, match=match) as caught:
        ann_to_snn(_cnn().eval(), calibration)
    assert "\n" not in str(caught.value)  # torch.fx appended the graph node's text over six lines


def test_infinite_activations_name_the_layer():
    ann = _cnn().eval()
    with torch.no_grad():
        ann[0].weight[0, 0, 0, 0] = float("inf")
    with pytest.raises(ConversionError, match="^0: NaN or infinite values in calibration batch 0$"):
        ann_to_snn(ann, torch.rand(2, 1, 4, 4))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "median"}, "mode: expected"),
        ({"mode": "101%"}, "mode: expected"),
        ({"mode": 1.5}, "mode: expected"),
        ({"backend": "gpu"}, "backend: expected"),
    ],
)
def test_bad_options_name_the_argument(kwargs, match):
    with pytest.raises(ConversionError, match=match):
        ann_to_snn(_cnn().eval(), torch.rand(2, 1, 4, 4), **kwargs)


def test_structural_problems_name_the_layer():
    with pytest.raises(ConversionError, match=r"calibration: None, but 1 ReLU activation\(s\) .* \(first: 2\)"):
        ann_to_snn(_cnn(), None)
    lone_bn = nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2))
    with pytest.raises(ConversionError, match="^0: batch norm must directly follow a Linear or Conv layer"):
        ann_to_snn(lone_bn.eval(), torch.rand(3, 4))

    class BatchLost(nn.Module):
        def forward(self, x):
            return x.view(-1)

    with pytest.raises(ConversionError, match=r"\(top level\): view \(view\): a view / reshape must keep the batch"):
        ann_to_snn(BatchLost(), torch.rand(3, 4))
    with pytest.raises(ConversionError, match="the network's input or output"):
        ann_to_snn(nn.Sequential(nn.ReLU(), nn.Linear(4, 2)), torch.rand(3, 4))
    bad_lam = nn.Sequential(nn.Linear(4, 4), QCFS(), nn.Linear(4, 2))
    with torch.no_grad():
        bad_lam[1].lam.fill_(-1.0)
    with pytest.raises(ConversionError, match="^1: QCFS lam must be finite and > 0"):
        ann_to_snn(bad_lam, None)


def test_the_ann_is_never_modified():
    ann = _cnn()
    ann.train()
    with torch.no_grad():
        ann[1].running_mean.uniform_(-1, 1)
    before = copy.deepcopy(ann.state_dict())
    parameters = [p.data_ptr() for p in ann.parameters()]
    model = ann_to_snn(ann, torch.rand(8, 1, 4, 4), per_channel=True)
    assert ann.training and all(m.training for m in ann.modules())
    after = ann.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert parameters == [p.data_ptr() for p in ann.parameters()]
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in ann.modules())
    assert all(not p.is_set_to(q) for p in model.parameters() for q in ann.parameters())


def test_the_converted_network_checks_its_input():
    model = ann_to_snn(_cnn().eval(), torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"x_seq: expected a time-major input \[T, B, 1, 4, 4\]"):
        model(torch.rand(2, 1, 4, 4))


@pytest.fixture
def eager_cpu_backend():
    """The cpu backend without torch.compile (its first compilation per configuration is slow)."""
    before = cpu_backend.compile_enabled()
    cpu_backend.set_compile_enabled(False)
    yield
    cpu_backend.set_compile_enabled(before)


def test_every_backend_runs_the_converted_network(eager_cpu_backend):
    # conftest sets TRITON_INTERPRET=1: the Triton kernels run on CPU tensors, tiny sizes
    ann = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), QCFS(4, lam=1.0), nn.Linear(8, 3)).eval()
    x = torch.rand(5, 6)
    x_seq = x.unsqueeze(0).expand(6, *x.shape)
    outputs = {}
    for backend in ("torch", "numba", "cpu", "triton"):
        if backend == "triton":
            pytest.importorskip("triton")
        model = ann_to_snn(ann, x, backend=backend)
        assert {n.backend for n in model.modules() if isinstance(n, snn.IF)} == {backend}
        outputs[backend] = model(x_seq)
    for backend, out in outputs.items():
        assert torch.allclose(out, outputs["torch"], atol=1e-5), backend


def test_an_expanded_static_input_gives_the_same_output():
    # stride 0 along time: the layers before the first neuron run once (snn.convert.static)
    model = ann_to_snn(_cnn().eval(), torch.rand(8, 1, 4, 4))
    x = torch.rand(3, 1, 4, 4)
    expanded = x.unsqueeze(0).expand(5, *x.shape)
    assert expanded.stride(0) == 0
    assert torch.allclose(model(expanded), model(expanded.contiguous()), atol=1e-6)
    assert model.state_dict().keys() == {f"network.{name}" for name, _ in model.network.named_parameters()}
