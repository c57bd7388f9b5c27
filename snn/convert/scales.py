"""The scale of every tensor of the graph: what a unit of the spiking network's value stands for.

A ReLU with activation scale ``lam`` becomes an IF neuron with threshold 1 whose spike rate
approximates ``relu(x) / lam``; its input must therefore arrive divided by ``lam`` too. Scales
travel unchanged through pooling, dropout and (per layer) reshapes, and both terms of a residual
sum must share the sum's scale. Tensors tied by these rules form one group (union-find); a group
takes the largest scale of its ReLUs (elementwise per channel), or 1 when it holds the network's
input or output (neither can be rescaled) or no ReLU. Linear and Conv outputs are free: their
weights absorb the change of scale (:func:`snn.convert.folding.fold_scales`). Per channel, a
reshape's output derives its scale from its input's.
"""

from __future__ import annotations

import torch
from torch import fx

from .errors import ConversionError
from .tracing import Kind, node_path

__all__ = ["resolve_scales"]

_SAME_AS_INPUT = (Kind.ACTIVATION, Kind.POOL, Kind.MAXPOOL, Kind.IDENTITY)


class _Groups:
    """Union-find over graph nodes."""

    def __init__(self) -> None:
        self.parent: dict[fx.Node, fx.Node] = {}

    def find(self, node: fx.Node) -> fx.Node:
        root = self.parent.setdefault(node, node)
        while root != self.parent[root]:
            root = self.parent[root]
        self.parent[node] = root
        return root

    def union(self, *nodes: fx.Node) -> None:
        roots = [self.find(n) for n in nodes]
        for root in roots[1:]:
            self.parent[root] = roots[0]


def _derived(node: fx.Node, source: torch.Tensor) -> torch.Tensor:
    """A per-channel scale carried through a reshape: expanded to the input's shape, then reshaped."""
    in_shape = node.args[0].meta["sample_shape"]
    return source.expand(in_shape).reshape(node.meta["sample_shape"])


def resolve_scales(
    graph: fx.Graph, kinds: dict[fx.Node, Kind], thresholds: dict[fx.Node, torch.Tensor], per_channel: bool
) -> dict[fx.Node, torch.Tensor]:
    """The scale of each tensor node of ``graph`` (0-d, or broadcasting against one sample).

    Args:
        graph: the ANN's graph, batch norm folded.
        kinds: each node's kind.
        thresholds: the activation scale of each ReLU / QCFS node.
        per_channel: whether reshapes derive their scales (per-channel thresholds) rather than pass them.
    """
    groups = _Groups()
    fixed: set[fx.Node] = set()
    derived: list[fx.Node] = []
    for node in graph.nodes:
        kind = kinds[node]
        if kind in _SAME_AS_INPUT or (kind is Kind.RESHAPE and not per_channel):
            groups.union(node, node.args[0])
        elif kind is Kind.RESHAPE:
            derived.append(node)
        elif kind is Kind.ADD:
            groups.union(node, *node.args)
        elif kind is Kind.INPUT:
            fixed.add(node)
        elif kind is Kind.OUTPUT:
            fixed.add(node.args[0])
    members: dict[fx.Node, list[fx.Node]] = {}
    for node in groups.parent:
        members.setdefault(groups.find(node), []).append(node)
    fixed_roots = {groups.find(n) for n in fixed}
    derived_roots = {groups.find(n) for n in derived}
    group_scale: dict[fx.Node, torch.Tensor] = {}
    problems = []
    for root, nodes in members.items():
        activations = [n for n in nodes if n in thresholds]
        if activations and (root in fixed_roots or root in derived_roots):
            why = "the network's input or output" if root in fixed_roots else "a per-channel reshape's output"
            problems.append(
                f"{node_path(activations[0])}: its scale is tied to {why}, which cannot be rescaled; "
                + ("put a Linear/Conv between them" if root in fixed_roots else "use per_channel=False")
            )
            continue
        scale = thresholds[activations[0]] if activations else torch.tensor(1.0)
        for n in activations[1:]:
            scale = torch.maximum(scale, thresholds[n])
        group_scale[root] = scale
    if problems:
        raise ConversionError(problems)
    scales: dict[fx.Node, torch.Tensor] = {}
    for node in graph.nodes:
        if node in derived:
            group_scale[groups.find(node)] = _derived(node, scales[node.args[0]])
        if kinds[node] not in (Kind.OUTPUT, Kind.SHAPE):
            scales[node] = group_scale.get(groups.find(node), torch.tensor(1.0))
    return scales
