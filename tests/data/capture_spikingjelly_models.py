"""Capture SpikingJelly 2.0 reference networks for the model-zoo tests (run in the benchmark env).

    cd <repo> && PYTHONPATH=. /work/benchenv/bin/python tests/data/capture_spikingjelly_models.py

Writes ``tests/data/spikingjelly_models.npz``. For each case it builds SpikingJelly's own network
(``parametric_lif_net.DVSGestureNet`` / ``NMNISTNet``, ``spiking_resnet18``, ``sew_resnet18`` ADD and
IAND, ``spiking_vgg11_bn`` / ``spiking_vgg16_bn``; stems replaced by 2-channel convolutions, as
the event datasets need), in float64, multi-step mode (its CPU path is plain torch), ATan(alpha=2) surrogate,
``detach_reset=True``, ``v_reset=0``; records its parameter count at the zoo's default size
(``<case>/n_params``) and, for the cases small enough to run, at a reduced size: an input ``x``
[T, B, 2, H, W] of event counts, an upstream gradient ``g``, the per-step output [T, B, classes] in
train mode (``out``, dropout removed) and in eval mode (``out_eval``), the digests of the gradients
of ``sum(out * g)`` for every parameter (``grad_digest``, ``named_parameters`` order) and the checksum
of the state loaded before the run. The state is generated, not stored: see ``tests/zoo_reference.py``.

SpikingJelly's resnet/vgg modules import torchvision only for pretrained-weight download helpers;
the benchmark env has no torchvision, so an empty stand-in module is registered first.
"""

from __future__ import annotations

import json
import sys
import types
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
T, B = 3, 2
SEED = 7


def stub_torchvision() -> None:
    torchvision = types.ModuleType("torchvision")
    torchvision.models = types.ModuleType("torchvision.models")
    torchvision.models.utils = types.ModuleType("torchvision.models.utils")
    torchvision.models.utils.load_state_dict_from_url = None
    sys.modules.update(
        {
            "torchvision": torchvision,
            "torchvision.models": torchvision.models,
            "torchvision.models.utils": torchvision.models.utils,
        }
    )


stub_torchvision()
sys.path.insert(0, str(HERE.parents[1]))
from spikingjelly.activation_based import functional, layer, neuron, surrogate  # noqa: E402
from spikingjelly.activation_based.model import (  # noqa: E402
    parametric_lif_net,
    sew_resnet,
    spiking_resnet,
    spiking_vgg,
)

from tests.zoo_reference import checksum, deterministic_state, digest  # noqa: E402


def neuron_kwargs(node: type) -> dict:
    return {"spiking_neuron": node, "surrogate_function": surrogate.ATan(alpha=2.0), "detach_reset": True}


def two_channel_stem(conv: nn.Module) -> nn.Module:
    """A copy of ``conv`` (a SpikingJelly Conv2d) taking 2 input channels."""
    return layer.Conv2d(
        2, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None
    )


def plif_net(cls, channels: int) -> nn.Module:
    return cls(channels=channels, **neuron_kwargs(neuron.ParametricLIFNode))


def resnet(builder, node, **kwargs) -> nn.Module:
    net = builder(num_classes=11, **neuron_kwargs(node), **kwargs)
    net.conv1 = two_channel_stem(net.conv1)
    return net


def vgg(builder) -> nn.Module:
    net = builder(num_classes=11, **neuron_kwargs(neuron.LIFNode))
    net.features[0] = two_channel_stem(net.features[0])
    return net


# case -> (SpikingJelly network at the zoo default, reduced network to run or None, input H=W, zoo build args)
CASES = {
    "dvsgesture-net": (
        lambda: plif_net(parametric_lif_net.DVSGestureNet, 128),
        lambda: plif_net(parametric_lif_net.DVSGestureNet, 8),
        128,
        {"channels": 8, "dropout": 0.0},
    ),
    "nmnist-csnn": (
        lambda: plif_net(parametric_lif_net.NMNISTNet, 128),
        lambda: plif_net(parametric_lif_net.NMNISTNet, 8),
        34,
        {"channels": 8, "dropout": 0.0},
    ),
    "spiking-resnet18": (
        lambda: resnet(spiking_resnet.spiking_resnet18, neuron.LIFNode),
        lambda: resnet(spiking_resnet.spiking_resnet18, neuron.LIFNode),
        32,
        {},
    ),
    "sew-resnet18-add": (
        lambda: resnet(sew_resnet.sew_resnet18, neuron.IFNode, cnf="ADD"),
        lambda: resnet(sew_resnet.sew_resnet18, neuron.IFNode, cnf="ADD"),
        32,
        {"connect": "ADD"},
    ),
    "sew-resnet18-iand": (
        lambda: resnet(sew_resnet.sew_resnet18, neuron.IFNode, cnf="IAND"),
        lambda: resnet(sew_resnet.sew_resnet18, neuron.IFNode, cnf="IAND"),
        32,
        {"connect": "IAND"},
    ),
    "spiking-vgg11": (lambda: vgg(spiking_vgg.spiking_vgg11_bn), None, 0, {}),
    "spiking-vgg16": (lambda: vgg(spiking_vgg.spiking_vgg16_bn), None, 0, {}),
    "dvsgesture-net-lif": (
        lambda: parametric_lif_net.DVSGestureNet(channels=128, **neuron_kwargs(neuron.LIFNode)),
        None,
        0,
        {},
    ),
}


def drop_dropout(net: nn.Module) -> None:
    for name, child in net.named_children():
        if isinstance(child, layer.Dropout):
            setattr(net, name, nn.Identity())
        else:
            drop_dropout(child)


def run_case(name: str, make, size: int, generator: torch.Generator) -> dict[str, np.ndarray]:
    """Run SpikingJelly's network on a seeded state; outputs and gradient digests of ``sum(out * g)``."""
    net = make().double()
    functional.set_step_mode(net, "m")
    drop_dropout(net)
    state = deterministic_state(net.state_dict(), SEED)
    net.load_state_dict(state)
    x = torch.randint(0, 3, (T, B, 2, size, size), generator=generator).double()  # event counts 0..2
    net.train()
    functional.reset_net(net)
    out = net(x)
    g = torch.randn(out.shape, generator=generator, dtype=torch.float64)
    (out * g).sum().backward()
    grads = torch.stack([digest(p.grad) for p in net.parameters()])
    net.eval()
    functional.reset_net(net)
    with torch.no_grad():
        out_eval = net(x)
    return {
        f"{name}/x": x.to(torch.uint8).numpy(),
        f"{name}/g": g.numpy(),
        f"{name}/out": out.detach().numpy(),
        f"{name}/out_eval": out_eval.numpy(),
        f"{name}/grad_digest": grads.numpy(),
        f"{name}/state_checksum": np.array(checksum(state)),
    }


def main() -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(2021)
    arrays: dict[str, np.ndarray] = {}
    meta = {}
    for name, (full, small, size, zoo_args) in CASES.items():
        arrays[f"{name}/n_params"] = np.array(sum(p.numel() for p in full().parameters()), dtype=np.int64)
        meta[name] = {"zoo_args": zoo_args, "size": size, "ran": small is not None}
        if small is not None:
            arrays.update(run_case(name, small, size, generator))
        print(name, int(arrays[f"{name}/n_params"]))
    arrays["meta"] = np.array(
        json.dumps({"spikingjelly": version("spikingjelly"), "T": T, "B": B, "cases": meta})
    )
    np.savez_compressed(HERE / "spikingjelly_models.npz", **arrays)


if __name__ == "__main__":
    main()
