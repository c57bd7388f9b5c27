"""Spiking VGG (SpikingJelly's ``SpikingVGG``, after torchvision's VGG) with configurable depth.

Features: the VGG configuration of ``depth`` (11, 13, 16, 19) of Conv3x3 (with bias) [- BN] -
neuron and 2x2 max-pools; then AdaptiveAvgPool(pool_size) - Flatten - Linear(512 * pool_size^2 ->
hidden) - neuron - Dropout - Linear(hidden -> hidden) - neuron - Dropout - Linear(hidden -> classes).
The defaults (``pool_size=7``, ``hidden=4096``) give SpikingJelly's parameter counts; event data
rarely needs that head, ``pool_size=1, hidden=512`` is a far lighter choice.
"""

from __future__ import annotations

import functools

from torch import nn

from .. import layers
from ..sequential import SpikingSequential
from .common import NeuronFactory, SpikingClassifier, neuron_factory, resolve_geometry
from .registry import register

__all__ = ["VGG_CONFIGS", "vgg_body", "spiking_vgg", "spiking_vgg11"]

VGG_CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}


def vgg_body(
    make_neuron: NeuronFactory,
    in_channels: int,
    num_classes: int,
    depth: int = 11,
    batch_norm: bool = True,
    pool_size: int = 7,
    hidden: int = 4096,
    dropout: float = 0.5,
) -> SpikingSequential:
    """The multi-step VGG body ``[T, B, C, H, W] -> [T, B, num_classes]``.

    Args:
        make_neuron: Makes each neuron layer.
        in_channels: Input channels ``C``.
        num_classes: Outputs of the last Linear layer.
        depth: 11, 13, 16 or 19 (a key of :data:`VGG_CONFIGS`).
        batch_norm: Batch norm after each convolution.
        pool_size: Side of the adaptive average pool before the classifier.
        hidden: Width of the two hidden Linear layers.
        dropout: Dropout probability after each hidden layer.
    """
    if depth not in VGG_CONFIGS:
        raise ValueError(f"depth must be one of {sorted(VGG_CONFIGS)}, got {depth!r}")
    modules: list[nn.Module] = []
    channels = in_channels
    for item in VGG_CONFIGS[depth]:
        if item == "M":
            modules.append(layers.MaxPool2d(2, 2))
            continue
        modules.append(layers.Conv2d(channels, item, 3, padding=1))
        if batch_norm:
            modules.append(layers.BatchNorm2d(item))
        modules.append(make_neuron())
        channels = item
    modules += [
        layers.SeqToANN(nn.AdaptiveAvgPool2d(pool_size), nn.Flatten()),
        layers.Linear(channels * pool_size * pool_size, hidden),
        make_neuron(),
        layers.Dropout(dropout),
        layers.Linear(hidden, hidden),
        make_neuron(),
        layers.Dropout(dropout),
        layers.Linear(hidden, num_classes),
    ]
    body = SpikingSequential(*modules)
    for module in body.modules():  # SpikingJelly's (torchvision's) initialisation
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)
    return body


@register("spiking-vgg")
def spiking_vgg(
    depth: int = 11,
    dataset: str = "dvs128",
    in_channels: int | None = None,
    input_size: int | tuple[int, int] | None = None,
    num_classes: int | None = None,
    batch_norm: bool = True,
    pool_size: int = 7,
    hidden: int = 4096,
    dropout: float = 0.5,
    readout: str = "sequence",
    neuron="lif",
    **neuron_options,
) -> SpikingClassifier:
    """Spiking VGG-``depth`` (BN after each conv by default); LIF (tau 2), ATan(2), ``detach_reset=True``.

    ``dataset`` presets the geometry, which ``in_channels``, ``input_size`` and ``num_classes``
    override; ``batch_norm``, ``pool_size``, ``hidden`` and ``dropout`` are :func:`vgg_body`'s;
    ``readout`` is :class:`snn.models.common.SpikingClassifier`'s; ``neuron`` and
    ``neuron_options`` go to :func:`snn.models.common.neuron_factory`.
    """
    spec = resolve_geometry(dataset, in_channels, input_size, num_classes)
    make_neuron = neuron_factory(neuron, **neuron_options)
    body = vgg_body(
        make_neuron, spec.in_channels, spec.num_classes, depth, batch_norm, pool_size, hidden, dropout
    )
    return SpikingClassifier(body, spec.in_channels, spec.num_classes, readout)


# SpikingJelly's ``spiking_vgg11_bn``: spiking-vgg with depth 11 (options() shows the full signature)
spiking_vgg11 = register("spiking-vgg11")(functools.partial(spiking_vgg, depth=11))
