"""``from_nir``: a NIR graph (or a file ``nir.write`` wrote) as a multi-step module.

Each node becomes an :mod:`snn` module (neurons through :mod:`hw.nir.neurons`); the module runs
them in topological order on whole ``[T, B, ...]`` sequences, the input of a node being the sum
of its incoming edges in the graph's edge order. Recurrent graphs (a cycle of edges) would need a
step-by-step schedule and are refused, as are nodes without a counterpart (``CubaLI``).
"""

from __future__ import annotations

import math
import os
from collections import deque

import nir
import numpy as np
import torch
from torch import nn

from snn import layers

from .errors import NIRError
from .neurons import NEURON_NODES, node_neuron

__all__ = ["NIRModule", "from_nir"]


def _ints(value) -> tuple[int, ...]:
    return tuple(int(v) for v in np.atleast_1d(np.asarray(value)))


def _padding(value):
    value = value.decode() if isinstance(value, bytes) else value
    if isinstance(value, str):
        return value
    return _ints(value) if np.ndim(value) else int(value)


def _tensor(array) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, dtype=np.float32)))


def _load_weights(module: nn.Module, weight, bias) -> nn.Module:
    with torch.no_grad():
        module.weight.copy_(_tensor(weight))
        if bias is not None:
            module.bias.copy_(_tensor(bias))
    return module


def _conv(node: nir.NIRNode) -> nn.Module:
    weight = np.asarray(node.weight)
    cls = layers.Conv2d if isinstance(node, nir.Conv2d) else layers.Conv1d
    conv = cls(
        weight.shape[1] * int(node.groups), weight.shape[0], weight.shape[2:],
        stride=_ints(node.stride), padding=_padding(node.padding), dilation=_ints(node.dilation),
        groups=int(node.groups), bias=True,
    )  # fmt: skip
    return _load_weights(conv, weight, node.bias)


def _node_module(node: nir.NIRNode, dt: float) -> nn.Module:
    """The module that computes ``node`` on ``[T, B, ...]``."""
    if isinstance(node, NEURON_NODES):
        return node_neuron(node, dt)
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = np.asarray(node.weight)
        if weight.ndim != 2:
            raise ValueError(f"a {weight.ndim}-d weight (only 2-d matrices import)")
        bias = getattr(node, "bias", None)
        linear = layers.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        return _load_weights(linear, weight, bias)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        return _conv(node)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        cls = layers.SumPool2d if isinstance(node, nir.SumPool2d) else layers.AvgPool2d
        return cls(_ints(node.kernel_size), _ints(node.stride), _ints(node.padding))
    if isinstance(node, nir.Flatten):
        end = int(node.end_dim)
        return nn.Flatten(int(node.start_dim) + 2, end if end < 0 else end + 2)
    if isinstance(node, nir.Scale):
        return layers.Scale(_tensor(node.scale))
    if isinstance(node, nir.Threshold):
        return layers.Threshold(_tensor(node.threshold))
    if isinstance(node, nir.Delay):
        steps = np.asarray(node.delay, dtype=np.float64) / dt
        if np.abs(steps - np.round(steps)).max(initial=0.0) > 1e-6:
            raise ValueError(f"delays that are not whole multiples of dt = {dt}")
        return layers.Delay(torch.from_numpy(np.round(steps).astype(np.int64)))
    if isinstance(node, nir.NIRGraph):
        return NIRModule(node, dt)
    raise ValueError(f"{type(node).__name__} nodes do not import")


def _order(graph: nir.NIRGraph) -> list[str]:
    """The graph's node names in topological order (Kahn); NIRError on a cycle, on an edge naming a
    node that is not in the graph, and on a node other than an Input that no edge leads to."""
    unknown = sorted({name for edge in graph.edges for name in edge if name not in graph.nodes})
    if unknown:
        raise NIRError([f"edges name nodes {unknown} that are not in the graph"])
    indegree = {name: 0 for name in graph.nodes}
    for _, dst in graph.edges:
        indegree[dst] += 1
    unfed = [name for name, d in indegree.items() if d == 0 and not isinstance(graph.nodes[name], nir.Input)]
    if unfed:
        raise NIRError([f"nodes {unfed}: no edge leads to them (only Input nodes may have none)"])
    ready = deque(name for name, d in indegree.items() if d == 0)
    order = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for src, dst in graph.edges:
            if src == name:
                indegree[dst] -= 1
                if indegree[dst] == 0:
                    ready.append(dst)
    if len(order) != len(graph.nodes):
        cycle = sorted(name for name, d in indegree.items() if d > 0)
        raise NIRError([f"nodes {cycle}: a recurrent cycle; only feed-forward graphs import"])
    return order


class NIRModule(nn.Module):
    """A NIR graph as a multi-step module: ``[T, B, *input]`` in, the per-step ``[T, B, *output]`` out.

    A graph with several ``Input`` nodes takes a dict of sequences by node name; several
    ``Output`` nodes give a dict. ``names`` are the graph's node names, ``layers`` their modules.
    ``graph`` is the NIR graph; ``dt`` the step in seconds that its time constants are divided by.
    """

    def __init__(self, graph: nir.NIRGraph, dt: float) -> None:
        super().__init__()
        problems, modules = [], {}
        order = _order(graph)
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, (nir.Input, nir.Output)):
                continue
            try:
                modules[name] = _node_module(node, dt)
            except NIRError as exc:
                problems.extend(f"node {name!r}: {p}" for p in exc.problems)
            except (ValueError, TypeError) as exc:
                problems.append(f"node {name!r} ({type(node).__name__}): {exc}")
        if problems:
            raise NIRError(problems)
        self.names = order
        self.layers = nn.ModuleList(modules[name] for name in order if name in modules)
        self._index = {name: i for i, name in enumerate(n for n in order if n in modules)}
        self.inputs = {name: _ints(node.input_type["input"]) for name, node in graph.nodes.items() if isinstance(node, nir.Input)}
        self.outputs = [name for name in order if isinstance(graph.nodes[name], nir.Output)]
        self.sources = {name: [src for src, dst in graph.edges if dst == name] for name in order}

    def _input(self, name: str, x: torch.Tensor) -> torch.Tensor:
        shape = self.inputs[name]
        sample = tuple(x.shape[2:])
        # Norse 1.1.0 writes the batch dimension into Input (a leading 1): accepted
        if sample != shape and not (len(shape) == len(sample) + 1 and shape[0] == 1 and shape[1:] == sample):
            raise ValueError(f"input {name!r}: expected [T, B, {', '.join(map(str, shape))}], got {tuple(x.shape)}")
        return x

    def forward(self, x: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor | dict[str, torch.Tensor]:
        """Run every node on the whole sequence ``x`` (a dict by input name for several inputs); the
        output node's ``[T, B, ...]`` (a dict for several)."""
        if not isinstance(x, dict):
            if len(self.inputs) != 1:
                raise ValueError(f"this graph has inputs {sorted(self.inputs)}: pass a dict of sequences")
            x = {next(iter(self.inputs)): x}
        values: dict[str, torch.Tensor] = {}
        for name in self.names:
            if name in self.inputs:
                values[name] = self._input(name, x[name])
                continue
            summed = None
            for src in self.sources[name]:
                summed = values[src] if summed is None else summed + values[src]
            index = self._index.get(name)
            values[name] = summed if index is None else self.layers[index](summed)
        outputs = {name: values[name] for name in self.outputs}
        return next(iter(outputs.values())) if len(outputs) == 1 else outputs


def from_nir(graph_or_path: nir.NIRGraph | str | os.PathLike, dt: float = 1e-4) -> NIRModule:
    """Import a NIR graph as a multi-step module (see :class:`NIRModule`).

    Args:
        graph_or_path: a ``nir.NIRGraph`` or the path of a file ``nir.write`` wrote (read type-checked).
        dt: the step, in seconds, that the continuous graph is discretized at (see :mod:`hw.nir.neurons`).

    Raises:
        NIRError: listing every node that does not import, or naming a file that is missing or
            not a NIR file.
    """
    if not 0 < dt < math.inf:
        raise ValueError(f"dt must be a finite number > 0 seconds, got {dt}")
    if isinstance(graph_or_path, nir.NIRGraph):
        return NIRModule(graph_or_path, dt)
    if not os.path.isfile(graph_or_path):
        raise NIRError([f"{os.fspath(graph_or_path)}: no such file"])
    try:
        graph = nir.read(graph_or_path)
    except Exception as exc:  # nir's reader on a damaged file: h5py, key and type errors alike
        raise NIRError([f"{os.fspath(graph_or_path)}: not a NIR file nir.read can read ({type(exc).__name__}: {exc})"]) from None
    return NIRModule(graph, dt)
