"""Spiking ResNet-18 with tdBN (Zheng et al. 2021) and SEW-ResNet-18 (Fang et al. 2021).

Both keep torchvision's / SpikingJelly's ResNet-18 layout (stem Conv7x7/2 - BN - neuron -
MaxPool3x3/2, four stages of two basic blocks with 64/128/256/512 channels, global average pool,
Linear), so parameter counts equal SpikingJelly's ``spiking_resnet18`` / ``sew_resnet18`` with a
2-channel stem and ``num_classes`` outputs. They differ in the residual block:

* spiking (Zheng et al., "Going Deeper With Directly-Trained Larger SNNs"): ``sn(bn2(conv2(...)) +
  shortcut)``, the neuron after the addition; threshold-dependent batch norm, with ``alpha =
  1/sqrt(2)`` on the two branches that meet at the addition (the paper's residual rule);
* SEW ("Deep Residual Learning in Spiking Neural Networks"): ``g(shortcut, sn(bn2(conv2(...))))``
  on spikes, with ``g`` ADD (``s + a``), AND (``s * a``) or IAND (``s * (1 - a)``) and a neuron
  after the downsampling shortcut (SpikingJelly's ``sew_function(identity, out, cnf)``).

``stem="small"`` replaces the ImageNet stem by Conv3x3/1 - BN - neuron without pooling, for small
inputs such as 34x34 N-MNIST (parameter counts then differ from SpikingJelly's).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .. import layers
from .common import NeuronFactory, SpikingClassifier, neuron_factory, resolve_geometry
from .registry import register

__all__ = ["ResNet", "SpikingBasicBlock", "SEWBasicBlock", "sew_connect", "spiking_resnet18", "sew_resnet18"]

CONNECTS = ("ADD", "AND", "IAND")
NORMS = ("bn", "tdbn")


def sew_connect(shortcut: torch.Tensor, residual: torch.Tensor, connect: str) -> torch.Tensor:
    """SEW element-wise function ``g(S, A)`` of the ``shortcut`` spikes ``S`` and ``residual`` spikes
    ``A``; ``connect`` picks ``g``: "ADD", "AND" or "IAND" (see the module docstring)."""
    if connect == "ADD":
        return shortcut + residual
    if connect == "AND":
        return shortcut * residual
    if connect == "IAND":
        return shortcut * (1.0 - residual)
    raise ValueError(f"connect must be one of {CONNECTS}, got {connect!r}")


def _norm(kind: str, channels: int, alpha: float = 1.0) -> nn.Module:
    if kind == "tdbn":
        return layers.TdBatchNorm2d(channels, alpha=alpha)
    return layers.BatchNorm2d(channels)


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> layers.Conv2d:
    return layers.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False)


class SpikingBasicBlock(nn.Module):
    """Basic block with the neuron after the addition (Zheng et al. 2021).

    Args:
        in_channels: Input channels.
        channels: Output channels of both convolutions.
        stride: Stride of the first convolution (and of the shortcut's 1x1 convolution).
        make_neuron: Makes each neuron layer.
        norm: "bn" or "tdbn" (threshold-dependent batch norm).
    """

    def __init__(
        self, in_channels: int, channels: int, stride: int, make_neuron: NeuronFactory, norm: str
    ) -> None:
        super().__init__()
        branch_alpha = 1.0 / math.sqrt(2.0)
        self.conv1, self.bn1, self.sn1 = (
            _conv(in_channels, channels, 3, stride),
            _norm(norm, channels),
            make_neuron(),
        )
        self.conv2, self.bn2 = _conv(channels, channels, 3), _norm(norm, channels, branch_alpha)
        self.sn2 = make_neuron()
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                _conv(in_channels, channels, 1, stride), _norm(norm, channels, branch_alpha)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output spikes for the multi-step input ``x``."""
        out = self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.sn2(out + shortcut)


class SEWBasicBlock(nn.Module):
    """Spike-element-wise basic block (Fang et al. 2021): ``g(shortcut spikes, residual spikes)``.

    Args:
        in_channels: Input channels.
        channels: Output channels of both convolutions.
        stride: Stride of the first convolution (and of the shortcut's 1x1 convolution).
        make_neuron: Makes each neuron layer.
        norm: "bn" or "tdbn".
        connect: ``g``: "ADD", "AND" or "IAND" (see :func:`sew_connect`).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int,
        make_neuron: NeuronFactory,
        norm: str,
        connect: str,
    ) -> None:
        super().__init__()
        if connect not in CONNECTS:
            raise ValueError(f"connect must be one of {CONNECTS}, got {connect!r}")
        self.connect = connect
        self.conv1, self.bn1, self.sn1 = (
            _conv(in_channels, channels, 3, stride),
            _norm(norm, channels),
            make_neuron(),
        )
        self.conv2, self.bn2, self.sn2 = _conv(channels, channels, 3), _norm(norm, channels), make_neuron()
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                _conv(in_channels, channels, 1, stride), _norm(norm, channels), make_neuron()
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``g`` of the shortcut and residual spikes for the multi-step input ``x``."""
        out = self.sn2(self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return sew_connect(shortcut, out, self.connect)

    def extra_repr(self) -> str:
        return f"connect={self.connect!r}"


class ResNet(nn.Sequential):
    """Stem, four stages of basic blocks, global average pool and a Linear read-out (multi-step).

    Args:
        make_block: ``make_block(in_channels, channels, stride, make_neuron, norm)`` makes one basic block.
        make_neuron: Makes each neuron layer.
        in_channels: Input channels.
        num_classes: Outputs of the Linear read-out.
        blocks: Basic blocks per stage.
        widths: Channels per stage.
        norm: "bn" or "tdbn".
        stem: "imagenet" (Conv7x7/2 and max pool) or "small" (Conv3x3/1, no pool).
    """

    def __init__(
        self,
        make_block: Callable[..., nn.Module],
        make_neuron: NeuronFactory,
        in_channels: int,
        num_classes: int,
        blocks: tuple[int, ...] = (2, 2, 2, 2),
        widths: tuple[int, ...] = (64, 128, 256, 512),
        norm: str = "bn",
        stem: str = "imagenet",
    ) -> None:
        if stem == "imagenet":
            stem_layers = [_conv(in_channels, widths[0], 7, 2), _norm(norm, widths[0]), make_neuron()]
            stem_layers.append(layers.MaxPool2d(3, 2, padding=1))
        elif stem == "small":
            stem_layers = [_conv(in_channels, widths[0], 3), _norm(norm, widths[0]), make_neuron()]
        else:
            raise ValueError(f"stem must be 'imagenet' or 'small', got {stem!r}")
        stages, channels = [], widths[0]
        for stage, (count, width) in enumerate(zip(blocks, widths, strict=True)):
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                stages.append(make_block(channels, width, stride, make_neuron, norm))
                channels = width
        super().__init__(
            *stem_layers,
            *stages,
            layers.SeqToANN(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
            layers.Linear(channels, num_classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


def _resnet18(
    make_block, dataset, in_channels, input_size, num_classes, norm, stem, readout, neuron, neuron_options
):
    spec = resolve_geometry(dataset, in_channels, input_size, num_classes)
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    body = ResNet(
        make_block,
        neuron_factory(neuron, **neuron_options),
        spec.in_channels,
        spec.num_classes,
        norm=norm,
        stem=stem,
    )
    return SpikingClassifier(body, spec.in_channels, spec.num_classes, readout)


@register("spiking-resnet18")
def spiking_resnet18(
    dataset: str = "dvs128",
    in_channels: int | None = None,
    input_size: int | tuple[int, int] | None = None,
    num_classes: int | None = None,
    norm: str = "tdbn",
    stem: str = "imagenet",
    readout: str = "sequence",
    neuron="lif",
    **neuron_options,
) -> SpikingClassifier:
    """Spiking ResNet-18 with tdBN (Zheng et al. 2021); LIF (tau 2), ATan(2), ``detach_reset=True``.

    The output is the Linear layer's per-step value (no output neuron); ``readout="mean"`` averages it.
    ``dataset`` presets the geometry, which ``in_channels``, ``input_size`` and ``num_classes``
    override; ``norm`` and ``stem`` are :class:`ResNet`'s; ``neuron`` and ``neuron_options`` go to
    :func:`snn.models.common.neuron_factory`.
    """
    return _resnet18(
        SpikingBasicBlock,
        dataset,
        in_channels,
        input_size,
        num_classes,
        norm,
        stem,
        readout,
        neuron,
        neuron_options,
    )


@register("sew-resnet18")
def sew_resnet18(
    dataset: str = "dvs128",
    in_channels: int | None = None,
    input_size: int | tuple[int, int] | None = None,
    num_classes: int | None = None,
    connect: str = "ADD",
    norm: str = "bn",
    stem: str = "imagenet",
    readout: str = "sequence",
    neuron="if",
    **neuron_options,
) -> SpikingClassifier:
    """SEW-ResNet-18 (Fang et al. 2021) with ``connect`` ADD/AND/IAND; IF neurons, ATan(2), ``detach_reset=True``.

    The other arguments (``dataset``, ``in_channels``, ``input_size``, ``num_classes``, ``norm``,
    ``stem``, ``readout``, ``neuron``, ``neuron_options``) are those of :func:`spiking_resnet18`.
    """
    connect = connect.upper()

    def make_block(in_channels, channels, stride, make_neuron, norm):
        return SEWBasicBlock(in_channels, channels, stride, make_neuron, norm, connect)

    return _resnet18(
        make_block, dataset, in_channels, input_size, num_classes, norm, stem, readout, neuron, neuron_options
    )
