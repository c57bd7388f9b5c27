"""Folding into Linear / Conv weights: batch norm (the layer after), and the activation scales.

Batch norm in eval mode is the per-channel affine map ``y = (x - mean) g / sqrt(var + eps) + b``;
after a Linear / Conv ``W x + c`` it folds into ``W' = W g / s``, ``c' = (c - mean) g / s + b``
with ``s = sqrt(var + eps)``. Scales: a layer whose input arrives divided by ``s_in`` (per input
channel) and whose output must leave divided by ``s_out`` (per output channel) computes with
``W'[o, i] = W[o, i] s_in[i] / s_out[o]`` and ``c'[o] = c[o] / s_out[o]``.
"""

from __future__ import annotations

import torch
from torch import fx, nn

from .errors import ConversionError
from .tracing import Kind, node_path

__all__ = ["fold_batchnorm", "fold_scales"]


def _bn_factors(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """``(gain, shift)`` per channel with ``bn(x) = x gain + shift`` in eval mode."""
    gamma = bn.weight if bn.affine else torch.ones_like(bn.running_mean)
    beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    gain = gamma / torch.sqrt(bn.running_var + bn.eps)
    return gain, beta - bn.running_mean * gain


def fold_batchnorm(gm: fx.GraphModule, kinds: dict[fx.Node, Kind]) -> None:
    """Fold every batch-norm node of ``gm`` (per ``kinds``, what each node becomes) into the Linear / Conv it follows, in place, and drop the node.

    Raises ConversionError naming each batch norm that follows no Linear / Conv (or one whose
    output something else also uses) or keeps no running statistics.
    """
    problems = []
    for node in list(gm.graph.nodes):
        if kinds.get(node) is not Kind.BATCHNORM:
            continue
        bn = gm.get_submodule(str(node.target))
        source = node.args[0]
        if not bn.track_running_stats or bn.running_mean is None:
            problems.append(f"{node_path(node)}: batch norm without running statistics cannot be folded")
            continue
        if kinds.get(source) is not Kind.WEIGHTED or len(source.users) != 1:
            problems.append(f"{node_path(node)}: batch norm must directly follow a Linear or Conv layer")
            continue
        layer = gm.get_submodule(str(source.target))
        gain, shift = _bn_factors(bn)
        with torch.no_grad():
            bias = layer.bias if layer.bias is not None else torch.zeros_like(gain)
            layer.weight.mul_(gain.reshape(-1, *([1] * (layer.weight.ndim - 1))))
            layer.bias = nn.Parameter(bias * gain + shift)
        node.replace_all_uses_with(source)
        gm.graph.erase_node(node)
        del kinds[node]
    if problems:
        raise ConversionError(problems)


def _vector(scale: torch.Tensor, size: int, channel_dim: int, where: str) -> torch.Tensor:
    """``scale`` as one value per channel (``size`` of them); ``channel_dim`` counts from a sample's start (0)
    or end (-1)."""
    if scale.ndim == 0:
        return scale.expand(size)
    others = [n for d, n in enumerate(scale.shape) if d != (channel_dim % scale.ndim)]
    if scale.shape[channel_dim] != size or any(n != 1 for n in others):
        raise ConversionError(
            f"{where}: a scale of shape {tuple(scale.shape)} does not vary along the layer's {size} channels "
            "only; use per_channel=False"
        )
    return scale.reshape(size)


def fold_scales(layer: nn.Module, s_in: torch.Tensor, s_out: torch.Tensor, where: str) -> None:
    """Rescale ``layer`` (Linear or Conv) in place for inputs divided by ``s_in`` and outputs divided by ``s_out``.

    Args:
        layer: the Linear / Conv module (batch norm already folded).
        s_in: the input's scale, 0-d or broadcasting against one input sample.
        s_out: the output's scale, likewise.
        where: the layer's path, for errors.
    """
    is_linear = isinstance(layer, nn.Linear)
    channel_dim = -1 if is_linear else 0
    weight = layer.weight
    out_channels = weight.shape[0]
    inputs = _vector(s_in.to(weight), layer.in_features if is_linear else layer.in_channels, channel_dim, where)
    outputs = _vector(s_out.to(weight), out_channels, channel_dim, where)
    groups = 1 if is_linear else layer.groups
    per_group = weight.shape[1]
    # input channel of weight[o, j]: group (o // (out_channels / groups)) times per_group, plus j
    inputs = inputs.reshape(groups, 1, per_group).expand(groups, out_channels // groups, per_group)
    inputs = inputs.reshape(out_channels, per_group)
    extra = [1] * (weight.ndim - 2)
    with torch.no_grad():
        weight.mul_(inputs.reshape(out_channels, per_group, *extra) / outputs.reshape(-1, 1, *extra))
        if layer.bias is not None:
            layer.bias.div_(outputs)
