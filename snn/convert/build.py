"""Turning the folded ANN graph into the multi-step spiking graph, node by node.

Each Linear / Conv becomes its :mod:`snn.layers` twin with the folded weights, each ReLU / QCFS an
:class:`snn.IF` neuron (threshold 1, soft reset; a QCFS neuron starts at half the threshold),
pools their multi-step twins (max pooling: :class:`snn.layers.CumulativeMaxPool2d`), reshapes a
per-sample :class:`snn.layers.Flatten` / :class:`snn.layers.Reshape`, residual sums
:class:`snn.layers.Add`; dropout and identities disappear. The ANN's module paths are kept.
"""

from __future__ import annotations

import torch
from torch import fx, nn

from .. import layers
from ..neurons import IF
from .errors import ConversionError
from .qcfs import QCFS
from .tracing import Kind, node_path

__all__ = ["build_spiking_graph"]


def _weighted(m: nn.Module) -> nn.Module:
    # built on the meta device: no random initialisation of weights that load_state_dict overwrites
    with torch.device("meta"):
        if isinstance(m, nn.Linear):
            new = layers.Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=m.weight.dtype)
        else:
            cls = layers.Conv1d if isinstance(m, nn.Conv1d) else layers.Conv2d
            new = cls(
                m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                dilation=m.dilation, groups=m.groups, bias=m.bias is not None, padding_mode=m.padding_mode,
                dtype=m.weight.dtype,
            )  # fmt: skip
    new = new.to_empty(device=m.weight.device)
    new.load_state_dict(m.state_dict())
    return new


def _pool(m: nn.Module) -> nn.Module:
    if isinstance(m, nn.AdaptiveAvgPool1d):
        return layers.AdaptiveAvgPool1d(m.output_size)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return layers.AdaptiveAvgPool2d(m.output_size)
    common = dict(stride=m.stride, padding=m.padding, ceil_mode=m.ceil_mode, count_include_pad=m.count_include_pad)
    if isinstance(m, nn.AvgPool1d):
        return layers.AvgPool1d(m.kernel_size, **common)
    return layers.AvgPool2d(m.kernel_size, divisor_override=m.divisor_override, **common)


def _max_pool(m: nn.Module) -> nn.Module:
    if m.return_indices:
        raise ConversionError("max pooling with return_indices=True is not supported")
    cls = layers.CumulativeMaxPool1d if isinstance(m, nn.MaxPool1d) else layers.CumulativeMaxPool2d
    return cls(m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)


def _argument(node: fx.Node, position: int, name: str, default: object) -> object:
    return node.args[position] if len(node.args) > position else node.kwargs.get(name, default)


def _is_batch_size(value: object) -> bool:
    """Whether ``value`` is the node ``x.size(0)``, ``x.size()[0]`` or ``x.shape[0]``."""
    if not isinstance(value, fx.Node):
        return False
    if value.op == "call_method" and value.target == "size":
        return _argument(value, 1, "dim", None) == 0
    if value.op == "call_function" and len(value.args) == 2 and value.args[1] == 0:
        source = value.args[0]
        return isinstance(source, fx.Node) and (
            (source.op == "call_method" and source.target == "size" and len(source.args) == 1)
            or (source.op == "call_function" and source.args[1:] == ("shape",))
        )
    return False


def _reshape(gm: fx.GraphModule, node: fx.Node) -> nn.Module:
    """The per-sample reshape of a flatten / view / reshape node keeping the batch dimension."""
    if node.op == "call_module":
        m = gm.get_submodule(str(node.target))
        start, end = m.start_dim, m.end_dim
    elif node.target in ("view", "reshape") or node.target is torch.reshape:
        shape = list(node.args[1:])
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = list(shape[0])
        rest = shape[1:]
        batch_first = shape and ((shape[0] == -1 and rest) or _is_batch_size(shape[0]))
        if batch_first and all(isinstance(n, int) for n in rest):
            return layers.Reshape(*rest)
        raise ConversionError(
            f"{node_path(node)}: a view / reshape must keep the batch dimension first, as "
            "x.view(x.size(0), ...), x.reshape(-1, ...) with the other sizes constant"
        )
    else:  # torch.flatten / Tensor.flatten
        start, end = _argument(node, 1, "start_dim", 0), _argument(node, 2, "end_dim", -1)
    if start == 0 or end == 0:
        raise ConversionError(f"{node_path(node)}: flatten must keep the batch dimension (start_dim >= 1)")
    return layers.Flatten(start, end)


def _replacement(gm: fx.GraphModule, node: fx.Node, kind: Kind, backend: str) -> nn.Module:
    module = gm.get_submodule(str(node.target)) if node.op == "call_module" else None
    if kind is Kind.WEIGHTED:
        return _weighted(module)
    if kind is Kind.ACTIVATION:
        return IF(v_threshold=1.0, v_reset=None, v_init=0.5 if isinstance(module, QCFS) else None, backend=backend)
    if kind is Kind.POOL:
        return _pool(module)
    if kind is Kind.MAXPOOL:
        return _max_pool(module)
    if kind is Kind.RESHAPE:
        return _reshape(gm, node)
    return layers.Add()


def _install(gm: fx.GraphModule, node: fx.Node, module: nn.Module, kind: Kind) -> None:
    """Put ``module`` at the node's module path, or, for a function / method node, at a new path."""
    if node.op == "call_module":
        parent, _, leaf = str(node.target).rpartition(".")
        setattr(gm.get_submodule(parent) if parent else gm, leaf, module)
        return
    name, k = node.name, 0
    while hasattr(gm, name):
        k += 1
        name = f"{node.name}_{k}"
    gm.add_submodule(name, module)
    inputs = tuple(node.args) if kind is Kind.ADD else (node.args[0],)
    with gm.graph.inserting_before(node):
        call = gm.graph.call_module(name, inputs)
    node.replace_all_uses_with(call)
    gm.graph.erase_node(node)


def build_spiking_graph(gm: fx.GraphModule, kinds: dict[fx.Node, Kind], backend: str) -> fx.GraphModule:
    """Replace every node of ``gm`` (scales already folded) by its multi-step counterpart, in place.

    Args:
        gm: the folded ANN graph.
        kinds: each node's kind.
        backend: the backend of the IF neurons (see :mod:`snn.backends`).
    """
    for node in list(gm.graph.nodes):
        kind = kinds[node]
        if kind is Kind.IDENTITY:
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
        elif kind not in (Kind.INPUT, Kind.OUTPUT, Kind.SHAPE):
            _install(gm, node, _replacement(gm, node, kind, backend), kind)
    gm.graph.eliminate_dead_code()
    left = [node_path(n) for n in gm.graph.nodes if kinds.get(n) is Kind.SHAPE]
    if left:
        raise ConversionError([f"{path}: a tensor's shape is used other than as a batch size" for path in left])
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm
