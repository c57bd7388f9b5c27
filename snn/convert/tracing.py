"""Tracing an ANN with ``torch.fx`` and sorting its graph's nodes into the kinds conversion knows.

Modules of ``torch.nn`` and :class:`~snn.convert.QCFS` stay whole (fx leaves); anything else is
traced through, so a ReLU written as ``F.relu(x)``, ``torch.relu(x)`` or ``x.relu()`` is seen as
such. :func:`node_kinds` names every node that no rule covers, all at once.
"""

from __future__ import annotations

import copy
import operator
from enum import Enum

import torch
import torch.nn.functional as F
from torch import fx, nn

from .errors import ConversionError
from .qcfs import QCFS

__all__ = ["Kind", "SUPPORTED", "trace", "node_kinds", "node_path"]

SUPPORTED = (
    "supported: Linear, Conv1d/2d, BatchNorm1d/2d after them, ReLU (module, F.relu, torch.relu, "
    "Tensor.relu), QCFS, AvgPool1d/2d, AdaptiveAvgPool1d/2d, MaxPool1d/2d, Flatten/view/reshape keeping "
    "the batch dimension, Dropout, Identity, the sum of two tensors"
)


class Kind(Enum):
    """What a graph node becomes in the spiking network."""

    INPUT = "input"
    OUTPUT = "output"
    WEIGHTED = "weighted"  # Linear / Conv: scales fold into its weights
    BATCHNORM = "batchnorm"  # folded into the Linear / Conv before it
    ACTIVATION = "activation"  # ReLU or QCFS: an IF neuron
    POOL = "pool"  # average pooling: exact on rates
    MAXPOOL = "maxpool"  # cumulative max pooling (snn.layers.CumulativeMaxPool*)
    RESHAPE = "reshape"  # flatten / view / reshape, batch dimension kept
    SHAPE = "shape"  # x.size(0), x.shape[0]: feeds a reshape, removed with it
    IDENTITY = "identity"  # dropout in eval, nn.Identity, contiguous
    ADD = "add"  # residual addition of two tensors


_MODULES: tuple[tuple[tuple[type[nn.Module], ...], Kind], ...] = (
    ((nn.Linear, nn.Conv1d, nn.Conv2d), Kind.WEIGHTED),
    ((nn.BatchNorm1d, nn.BatchNorm2d), Kind.BATCHNORM),
    ((nn.ReLU, QCFS), Kind.ACTIVATION),
    ((nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d), Kind.POOL),
    ((nn.MaxPool1d, nn.MaxPool2d), Kind.MAXPOOL),
    ((nn.Flatten,), Kind.RESHAPE),
    ((nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity), Kind.IDENTITY),
)
_FUNCTIONS = {
    F.relu: Kind.ACTIVATION,
    torch.relu: Kind.ACTIVATION,
    torch.relu_: Kind.ACTIVATION,
    torch.flatten: Kind.RESHAPE,
    torch.reshape: Kind.RESHAPE,
    F.dropout: Kind.IDENTITY,
    operator.add: Kind.ADD,
    operator.iadd: Kind.ADD,
    torch.add: Kind.ADD,
    operator.getitem: Kind.SHAPE,
    getattr: Kind.SHAPE,
}
_METHODS = {
    "relu": Kind.ACTIVATION,
    "relu_": Kind.ACTIVATION,
    "view": Kind.RESHAPE,
    "reshape": Kind.RESHAPE,
    "flatten": Kind.RESHAPE,
    "size": Kind.SHAPE,
    "contiguous": Kind.IDENTITY,
}


class _Tracer(fx.Tracer):
    """fx's tracer with :class:`QCFS` kept whole like a ``torch.nn`` module."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, QCFS) or super().is_leaf_module(m, module_qualified_name)


def trace(ann: nn.Module) -> fx.GraphModule:
    """A copy of ``ann`` in eval mode as an fx graph, each module call with its own module.

    ``ann`` itself is not changed. A module called at several places (``self.relu`` twice in a
    residual block) is copied for each further call (path ``<path>_<k>``): each call site will get
    its own scales. Raises ConversionError when fx cannot trace ``ann``.
    """
    ann = copy.deepcopy(ann).eval()
    tracer = _Tracer()
    try:
        graph = tracer.trace(ann)
    except Exception as exc:  # fx fails on data-dependent control flow and the like
        raise ConversionError(
            f"ann: torch.fx cannot trace {type(ann).__name__} ({type(exc).__name__}: {exc}); conversion "
            "needs a forward without data-dependent control flow"
        ) from exc
    gm = fx.GraphModule(tracer.root, graph)
    seen: set[str] = set()
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        target = str(node.target)
        if target in seen:
            k = 1
            while _has_submodule(gm, f"{target}_{k}"):
                k += 1
            gm.add_submodule(f"{target}_{k}", copy.deepcopy(gm.get_submodule(target)))
            node.target = f"{target}_{k}"
        seen.add(str(node.target))
    gm.recompile()
    return gm


def _has_submodule(gm: nn.Module, path: str) -> bool:
    try:
        gm.get_submodule(path)
    except AttributeError:
        return False
    return True


def node_path(node: fx.Node) -> str:
    """The node's place in the ANN: a module's path, else the path of the module whose forward calls it."""
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    owner = next(reversed(stack.values()))[0] if stack else "(top level)"
    what = node.target if node.op == "call_method" else getattr(node.target, "__name__", str(node.target))
    return f"{owner}: {what} ({node.name})"


def _kind(gm: fx.GraphModule, node: fx.Node) -> Kind | None:
    if node.op == "placeholder":
        return Kind.INPUT
    if node.op == "output":
        return Kind.OUTPUT
    if node.op == "call_module":
        module = gm.get_submodule(str(node.target))
        return next((kind for types, kind in _MODULES if isinstance(module, types)), None)
    if node.op == "call_function":
        kind = _FUNCTIONS.get(node.target)
        if kind is Kind.ADD and not _tensor_sum(node):
            return None
        return kind
    if node.op == "call_method":
        return _METHODS.get(str(node.target))
    return None  # get_attr: a constant tensor, which no rule rescales


def _tensor_sum(node: fx.Node) -> bool:
    """Whether an addition node adds two graph tensors (no constants, no ``alpha``)."""
    return len(node.args) == 2 and all(isinstance(a, fx.Node) for a in node.args) and not node.kwargs


def _describe(gm: fx.GraphModule, node: fx.Node) -> str:
    if node.op == "call_module":
        return f"{node_path(node)}: {type(gm.get_submodule(str(node.target))).__name__} is not supported"
    if node.op == "get_attr":
        return f"{node_path(node)}: a constant tensor ({node.target}) is not supported"
    return f"{node_path(node)} is not supported"


def node_kinds(gm: fx.GraphModule) -> dict[fx.Node, Kind]:
    """The kind of every node of ``gm``; ConversionError naming every node no rule covers."""
    kinds: dict[fx.Node, Kind] = {}
    problems: list[str] = []
    for node in gm.graph.nodes:
        kind = _kind(gm, node)
        if kind is None:
            problems.append(_describe(gm, node))
        else:
            kinds[node] = kind
    if problems:
        raise ConversionError(problems, note=SUPPORTED)
    return kinds
