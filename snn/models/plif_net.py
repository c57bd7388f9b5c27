"""Plain convolutional SNNs of the PLIF paper (Fang et al. 2021, "Incorporating Learnable Membrane
Time Constant to Enhance Learning of Spiking Neural Networks"), as in SpikingJelly's
``activation_based/model/parametric_lif_net.py``.

``n_blocks`` x [Conv3x3(channels, no bias) - BN - neuron - MaxPool(2)], then Flatten - Dropout(0.5) -
Linear(channels * h * w -> hidden) - neuron - Dropout(0.5) - Linear(hidden -> classes * voting) -
neuron - Voting(voting): the output is the firing rate of ``voting`` neurons per class.
"""

from __future__ import annotations

from torch import nn

from .. import layers
from ..sequential import SpikingSequential
from .common import NeuronFactory, SpikingClassifier, neuron_factory, resolve_geometry
from .registry import register

__all__ = ["plif_conv_net", "dvsgesture_net", "nmnist_csnn"]


def plif_conv_net(
    make_neuron: NeuronFactory,
    in_channels: int,
    input_size: tuple[int, int],
    num_classes: int,
    n_blocks: int,
    channels: int,
    hidden: int,
    voting: int = 10,
    dropout: float = 0.5,
) -> SpikingSequential:
    """The multi-step body ``[T, B, C, H, W] -> [T, B, num_classes]`` (see the module docstring).

    Args:
        make_neuron: Makes each neuron layer (see :func:`snn.models.common.neuron_factory`).
        in_channels: Input channels ``C``.
        input_size: ``(H, W)``; each must survive ``n_blocks`` halvings.
        num_classes: Output classes.
        n_blocks: Conv blocks, each halving the frame.
        channels: Channels of every conv block.
        hidden: Width of the hidden Linear layer.
        voting: Output neurons per class.
        dropout: Dropout probability of the two dropout layers.
    """
    height, width = input_size
    if height >> n_blocks < 1 or width >> n_blocks < 1:
        raise ValueError(f"input {height}x{width} is too small for {n_blocks} 2x2 max-pools")
    modules: list[nn.Module] = []
    for block in range(n_blocks):
        modules += [
            layers.Conv2d(in_channels if block == 0 else channels, channels, 3, padding=1, bias=False),
            layers.BatchNorm2d(channels),
            make_neuron(),
            layers.MaxPool2d(2, 2),
        ]
    modules += [
        layers.Flatten(),
        layers.Dropout(dropout),
        layers.Linear(channels * (height >> n_blocks) * (width >> n_blocks), hidden),
        make_neuron(),
        layers.Dropout(dropout),
        layers.Linear(hidden, num_classes * voting),
        make_neuron(),
        layers.Voting(voting),
    ]
    return SpikingSequential(*modules)


@register("dvsgesture-net")
def dvsgesture_net(
    dataset: str = "dvs128",
    in_channels: int | None = None,
    input_size: int | tuple[int, int] | None = None,
    num_classes: int | None = None,
    channels: int = 128,
    hidden: int = 512,
    n_blocks: int = 5,
    voting: int = 10,
    dropout: float = 0.5,
    readout: str = "sequence",
    neuron="plif",
    **neuron_options,
) -> SpikingClassifier:
    """SpikingJelly's ``DVSGestureNet``: 5 conv blocks of 128 channels on 128x128, 512 hidden, 10 voters per class.

    Defaults: PLIF neurons (``init_tau=2``), ATan(alpha=2) surrogate, ``detach_reset=True``,
    hard reset to 0; ``neuron`` and ``neuron_options`` go to :func:`snn.models.common.neuron_factory`.
    ``dataset`` presets the geometry, which ``in_channels``, ``input_size`` and ``num_classes``
    override (:func:`snn.models.common.resolve_geometry`); ``readout`` is that of
    :class:`snn.models.common.SpikingClassifier`. ``channels``, ``hidden``, ``n_blocks``, ``voting``
    and ``dropout`` shape the body (:func:`plif_conv_net`).
    """
    spec = resolve_geometry(dataset, in_channels, input_size, num_classes)
    body = plif_conv_net(
        neuron_factory(neuron, **neuron_options),
        spec.in_channels,
        spec.input_size,
        spec.num_classes,
        n_blocks=n_blocks,
        channels=channels,
        hidden=hidden,
        voting=voting,
        dropout=dropout,
    )
    return SpikingClassifier(body, spec.in_channels, spec.num_classes, readout)


@register("nmnist-csnn")
def nmnist_csnn(
    dataset: str = "nmnist",
    in_channels: int | None = None,
    input_size: int | tuple[int, int] | None = None,
    num_classes: int | None = None,
    channels: int = 128,
    hidden: int = 2048,
    n_blocks: int = 2,
    voting: int = 10,
    dropout: float = 0.5,
    readout: str = "sequence",
    neuron="plif",
    **neuron_options,
) -> SpikingClassifier:
    """SpikingJelly's ``NMNISTNet``: 2 conv blocks of 128 channels on 34x34 (-> 8x8), 2048 hidden, 10 voters.

    :func:`dvsgesture_net` with these defaults and the N-MNIST preset; the arguments (``dataset``,
    ``in_channels``, ``input_size``, ``num_classes``, ``channels``, ``hidden``, ``n_blocks``,
    ``voting``, ``dropout``, ``readout``, ``neuron`` and ``neuron_options``) mean the same there.
    """
    return dvsgesture_net(
        dataset=dataset,
        in_channels=in_channels,
        input_size=input_size,
        num_classes=num_classes,
        channels=channels,
        hidden=hidden,
        n_blocks=n_blocks,
        voting=voting,
        dropout=dropout,
        readout=readout,
        neuron=neuron,
        **neuron_options,
    )
