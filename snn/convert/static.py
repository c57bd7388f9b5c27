"""A converted network's graph for static inputs: the layers before the first neuron run once, not T times.

An input that is the same at every step (``x.unsqueeze(0).expand(T, ...)``, stride 0 along time)
gives the same value at every step to every layer that no neuron precedes (the first convolution,
its pooling): :func:`static_graph` rewrites the graph so those run on the first step only and their
result is expanded over the ``T`` steps where a neuron (or the output) takes it. Values equal those of
the full graph up to the rounding of a differently sized batch.
"""

from __future__ import annotations

import torch
from torch import fx

from ..neurons import Neuron

__all__ = ["static_graph"]


def _first_step(x: torch.Tensor) -> torch.Tensor:
    return x[:1]


def _over_steps(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return x.expand(like.shape[0], *x.shape[1:])


fx.wrap("_first_step")
fx.wrap("_over_steps")


def static_graph(gm: fx.GraphModule) -> fx.GraphModule:
    """A graph module sharing ``gm``'s modules that computes ``gm`` for a time-constant input (see above)."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    static: set[fx.Node] = set()
    expanded: dict[fx.Node, fx.Node] = {}
    source: fx.Node | None = None

    def full(node: fx.Node) -> fx.Node:
        if node not in static:
            return env[node]
        if node not in expanded:
            expanded[node] = graph.call_function(_over_steps, (env[node], source))
        return expanded[node]

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            source = graph.placeholder(node.name)
            env[node] = graph.call_function(_first_step, (source,))
            static.add(node)
            continue
        inputs = node.all_input_nodes
        stays = (
            node.op == "call_module"
            and not isinstance(gm.get_submodule(str(node.target)), Neuron)
            and all(n in static for n in inputs)
        )
        if stays:
            env[node] = graph.node_copy(node, lambda n: env[n])
            static.add(node)
        else:
            env[node] = graph.node_copy(node, full)
    return fx.GraphModule(gm, graph)
