"""``to_nir``: a multi-step :mod:`snn` model as a NIR graph.

The model is traced with ``torch.fx`` down to its layers (neurons, convolutions, pools, ...), run
once on a zero sample to learn every layer's shape, and each layer becomes a NIR node (shapes
without the batch dimension). Batch norm is folded into the convolution or linear layer before
it (running statistics, as in eval mode); dropout is left out (eval mode); an addition of two
layers' outputs (a residual connection) becomes a ``Scale`` of ones that both feed, since NIR
sums the edges into a node. A :class:`snn.models.SpikingClassifier` exports its body: the graph's
output is per step (``readout="sequence"``), the time average is not part of the graph. Every
layer that has no NIR node (max pooling, products of spike trains, ALIF, ...) is listed in one
:class:`NIRError`.
"""

from __future__ import annotations

import collections
import functools
import math
import operator

import nir
import numpy as np
import torch
from torch import fx, nn

import snn
from snn import layers
from snn.models import SpikingClassifier
from snn.neurons import Neuron
from snn.sequential import SpikingSequential

from .errors import NIRError
from .neurons import integrator_node, neuron_node

__all__ = ["to_nir"]

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_DROPOUTS = (nn.Dropout, layers.Dropout)
_LEAVES = (Neuron, layers.SeqToANN, snn.LeakyIntegrator, snn.Integrator)
# Layers that keep their input's shape and need real tensors to run (state, data-dependent indexing).
_SHAPE_KEEPING = (Neuron, snn.LeakyIntegrator, snn.Integrator, layers.Delay)


class _Tracer(fx.Tracer):
    """Traces through containers and blocks; stops at layers (modules without children) and neurons."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, _LEAVES) or next(m.children(), None) is None

    def call_module(self, m: nn.Module, forward, args, kwargs):
        if isinstance(m, SpikingSequential):  # its fused-kernel dispatch is data-dependent: trace it plain
            forward = functools.partial(nn.Sequential.forward, m)
        return super().call_module(m, forward, args, kwargs)

    def trace(self, root, concrete_args=None):
        if isinstance(root, SpikingSequential):
            root = nn.Sequential(collections.OrderedDict(root.named_children()))  # the same layers under the same names, dispatched plainly
        return super().trace(root, concrete_args)


class _Shapes(fx.Interpreter):
    """Runs the traced model on shapes alone (a copy on the meta device), keeping each node's per-sample
    output shape (``[T, B]`` dropped). Neurons and delays keep their input's shape and are not run."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.extra_traceback = False  # to_nir names the layer itself; fx would add the graph node's text
        self.shapes: dict[str, tuple[int, ...]] = {}

    def call_module(self, target, args, kwargs):
        module = self.fetch_attr(target)
        if isinstance(module, _SHAPE_KEEPING):
            return args[0]
        return _on_meta(module, *args, **kwargs)

    def run_node(self, n: fx.Node):
        result = super().run_node(n)
        if isinstance(result, torch.Tensor):
            self.shapes[n.name] = tuple(result.shape[2:])
        return result


def _array(t: torch.Tensor | None, size: int = 0) -> np.ndarray:
    if t is None:
        return np.zeros(size, dtype=np.float32)
    return np.ascontiguousarray(t.detach().cpu().float().numpy())


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _fold(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.Module | None) -> tuple[np.ndarray, np.ndarray]:
    """Weight and bias with the batch norm ``bn`` that follows folded in.

    The per-channel factors are computed in float64, the weights multiplied in float32 (millions
    of them; the fold is a rounding-level change of the model in any case).
    """
    w = weight.detach().cpu().float()
    b = torch.zeros(w.shape[0], dtype=torch.float64) if bias is None else bias.detach().cpu().double()
    if bn is not None:
        scale = (bn.running_var.detach().double() + bn.eps).rsqrt()
        shift = -bn.running_mean.detach().double() * scale
        if bn.affine:
            gamma = bn.weight.detach().double()
            scale, shift = scale * gamma, shift * gamma + bn.bias.detach().double()
        w = w * scale.float().reshape(-1, *([1] * (w.ndim - 1)))
        b = b * scale + shift
    return _array(w), _array(b)


def _linear_node(m: nn.Module, in_shape, bn: nn.Module | None) -> nir.NIRNode:
    weight, bias = _fold(m.weight, m.bias, bn)
    if isinstance(m, nn.Linear):
        return nir.Affine(weight=weight, bias=bias) if (m.bias is not None or bn is not None) else nir.Linear(weight=weight)
    conv = nir.Conv2d if isinstance(m, nn.Conv2d) else nir.Conv1d
    spatial = tuple(in_shape[1:]) if isinstance(m, nn.Conv2d) else int(in_shape[1])
    padding = m.padding if isinstance(m.padding, str) else tuple(m.padding)
    stride, dilation = (tuple(m.stride), tuple(m.dilation)) if conv is nir.Conv2d else (m.stride[0], m.dilation[0])
    if conv is nir.Conv1d and not isinstance(padding, str):
        padding = padding[0]
    return conv(
        input_shape=spatial, weight=weight, stride=stride, padding=padding, dilation=dilation, groups=m.groups, bias=bias
    )


def _pool_node(m: nn.Module, in_shape, problems: list[str], name: str) -> nir.NIRNode | None:
    if isinstance(m, nn.AdaptiveAvgPool2d):
        out = _pair(m.output_size)
        out = tuple(size if o is None else o for o, size in zip(out, in_shape[1:]))
        if any(size % o for size, o in zip(in_shape[1:], out)):
            problems.append(f"layer {name!r}: adaptive average pooling {tuple(in_shape[1:])} -> {out} is not a fixed window")
            return None
        kernel = tuple(size // o for size, o in zip(in_shape[1:], out))
        return nir.AvgPool2d(kernel_size=np.array(kernel), stride=np.array(kernel), padding=np.zeros(2, dtype=int))
    if m.ceil_mode or (isinstance(m, nn.AvgPool2d) and (not m.count_include_pad or m.divisor_override not in (None, 1))):
        problems.append(f"layer {name!r}: pooling with ceil_mode, count_include_pad=False or a divisor has no NIR node")
        return None
    kernel = _pair(m.kernel_size)
    args = dict(kernel_size=np.array(kernel), stride=np.array(_pair(m.stride or kernel)), padding=np.array(_pair(m.padding)))
    summing = isinstance(m, layers.SumPool2d)
    return nir.SumPool2d(**args) if summing else nir.AvgPool2d(**args)


def _on_meta(module: nn.Module, *args, **kwargs):
    """``module`` called with its parameters and buffers replaced by meta tensors (shapes only, no copy)."""
    tensors = {name: torch.empty_like(t, device="meta") for name, t in module.state_dict(keep_vars=True).items()}
    return torch.func.functional_call(module, tensors, args, kwargs)


def _sample_shape(m: nn.Module, in_shape) -> tuple[int, ...]:
    """A folded (``[N, ...]``) stateless layer's per-sample output shape, from one sample on the meta device."""
    with torch.no_grad():
        return tuple(_on_meta(m, torch.zeros(1, *in_shape, device="meta")).shape[1:])


class _Exporter:
    """Collects the graph's nodes and edges while walking the traced model."""

    def __init__(self, gm: fx.GraphModule, shapes: dict[str, tuple[int, ...]], dt: float) -> None:
        self.gm, self.shapes, self.dt = gm, shapes, dt
        self.modules = dict(gm.named_modules())
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.source: dict[fx.Node, str | None] = {}  # the NIR node holding each fx node's value
        self.problems: list[str] = []
        self.folded: set[fx.Node] = set()

    def _add(self, name: str, node: nir.NIRNode, inputs: list[str | None]) -> str:
        self.nodes[name] = node
        self.edges.extend((src, name) for src in inputs if src is not None)
        return name

    def _where(self, n: fx.Node) -> str:
        stack = n.meta.get("nn_module_stack") or {}
        return next(reversed(stack.values()), ("", None))[0] if stack else n.name

    def _next_batch_norm(self, n: fx.Node) -> nn.Module | None:
        users = list(n.users)
        if not (len(users) == 1 and users[0].op == "call_module"):
            return None
        bn = self.modules[users[0].target]
        if not isinstance(bn, _BATCH_NORMS):
            return None
        self.folded.add(users[0])
        if bn.running_mean is None:
            self.problems.append(f"layer {users[0].target!r}: batch norm without running statistics cannot be folded")
            return None
        return bn

    def _flatten_node(self, name: str, m: nn.Module, in_shape, lead: int) -> nir.Flatten | None:
        """NIR's Flatten of ``m`` over one sample's dimensions (``lead``: the dimensions before a
        sample's in what ``m`` sees: 2 for ``[T, B, ...]``, 1 inside a SeqToANN)."""
        if isinstance(m, layers.Flatten):
            start, end = 0, -1
        else:
            start = m.start_dim - lead if m.start_dim >= 0 else m.start_dim + len(in_shape)
            end = m.end_dim - lead if m.end_dim >= 0 else m.end_dim
            if start < 0 or (m.end_dim >= 0 and end < start):
                self.problems.append(
                    f"layer {name!r}: Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}) merges the time or "
                    f"batch dimension into a sample's (NIR flattens within a sample; start_dim >= {lead} here)"
                )
                return None
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start, end_dim=end)

    def _node(
        self, name: str, m: nn.Module, in_shape, out_shape, bn: nn.Module | None, lead: int = 2
    ) -> nir.NIRNode | None:
        """The NIR node of layer ``m`` (None where it is an identity or has a problem, appended to
        ``problems``); ``lead``: the dimensions before a sample's in what ``m`` sees."""
        if isinstance(m, (*_DROPOUTS, nn.Identity)):
            return None
        if isinstance(m, Neuron):
            try:
                return neuron_node(name, m.params(), out_shape, self.dt)
            except NIRError as exc:
                self.problems.extend(exc.problems)
                return None
        if isinstance(m, (snn.LeakyIntegrator, snn.Integrator)):
            return integrator_node(m, out_shape, self.dt)
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            if getattr(m, "padding_mode", "zeros") != "zeros":
                self.problems.append(f"layer {name!r}: padding_mode={m.padding_mode!r} has no NIR node (zeros only)")
                return None
            node = _linear_node(m, in_shape, bn)
            bad = [key for key in ("weight", "bias") if not np.isfinite(getattr(node, key, 0.0)).all()]
            if bad:
                folded = " (with the batch norm after it folded in)" if bn is not None else ""
                self.problems.append(f"layer {name!r}: {' and '.join(bad)}{folded}: NaN or infinite values")
                return None
            return node
        if isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            return _pool_node(m, in_shape, self.problems, name)
        if isinstance(m, (layers.Flatten, nn.Flatten)):
            return self._flatten_node(name, m, in_shape, lead)
        if isinstance(m, layers.Scale):
            return nir.Scale(scale=np.ascontiguousarray(np.broadcast_to(_array(m.scale), in_shape)))
        if isinstance(m, layers.Threshold):
            return nir.Threshold(threshold=np.ascontiguousarray(np.broadcast_to(_array(m.threshold), in_shape)))
        if isinstance(m, layers.Delay):
            delay = np.broadcast_to(m.steps.cpu().numpy() * self.dt, in_shape)
            return nir.Delay(delay=np.ascontiguousarray(delay, dtype=np.float64))
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
            self.problems.append(f"layer {name!r}: max pooling ({type(m).__name__}) has no NIR node; use average pooling")
        else:
            self.problems.append(f"layer {name!r}: {type(m).__name__} has no NIR node")
        return None

    def call_module(self, n: fx.Node) -> None:
        m, name = self.modules[n.target], str(n.target)
        (arg,) = n.args
        src = self.source.get(arg)
        if n in self.folded:
            self.source[n] = src
            return
        if isinstance(m, _BATCH_NORMS):
            self.problems.append(f"layer {name!r}: batch norm not right after a convolution or linear layer cannot be folded")
            self.source[n] = src
            return
        folded = isinstance(m, layers.SeqToANN)
        children = list(m) if folded else [m]
        shape = self.shapes[arg.name]
        for index, child in enumerate(children):
            child_name = f"{name}.{index}" if folded else name
            out_shape = _sample_shape(child, shape) if folded else self.shapes[n.name]
            linear = isinstance(child, (nn.Linear, nn.Conv1d, nn.Conv2d))
            bn = self._next_batch_norm(n) if linear and not folded else None
            node = self._node(child_name, child, shape, out_shape, bn, lead=1 if folded else 2)
            if node is not None:
                src = self._add(child_name, node, [src])
            shape = out_shape
        self.source[n] = src

    def call_function(self, n: fx.Node) -> None:
        tensors = [a for a in n.args if isinstance(a, fx.Node)]
        if n.target in (operator.add, torch.add) and len(tensors) == 2 == len(n.args) and not n.kwargs:
            shape = self.shapes[n.name]
            ones = nir.Scale(scale=np.ones(shape, dtype=np.float32))
            self.source[n] = self._add(n.name, ones, [self.source.get(a) for a in tensors])
            return
        what = getattr(n.target, "__name__", str(n.target))
        self.problems.append(f"layer {self._where(n)!r}: the operation {what} has no NIR node (only sums of two layers export)")
        self.source[n] = self.source.get(tensors[0]) if tensors else None

    def run(self, input_shape: tuple[int, ...]) -> nir.NIRGraph:
        for n in self.gm.graph.nodes:
            if n.op == "placeholder":
                self.source[n] = self._add("input", nir.Input(input_type={"input": np.array(input_shape)}), [])
            elif n.op == "call_module":
                self.call_module(n)
            elif n.op in ("call_function", "call_method"):
                self.call_function(n)
            elif n.op == "output":
                (result,) = n.args
                if not isinstance(result, fx.Node) or result.name not in self.shapes:
                    self.problems.append("the model's output is not one tensor")
                    break
                out = nir.Output(output_type={"output": np.array(self.shapes[result.name])})
                self._add("output", out, [self.source.get(result)])
        if self.problems:
            raise NIRError(self.problems)
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata={"dt": self.dt})


def to_nir(model: nn.Module, input_shape: tuple[int, ...], dt: float = 1e-4) -> nir.NIRGraph:
    """Export a multi-step :mod:`snn` model as a NIR graph.

    Args:
        model: takes ``[T, B, *input_shape]``; a :class:`snn.models.SpikingClassifier` exports its body.
        input_shape: one sample's shape, without time and batch (e.g. ``(2, 128, 128)``).
        dt: the step, in seconds, that the discrete model is taken to run at (see :mod:`hw.nir.neurons`).

    Returns:
        The graph, type-checked; ``nir.write(path, graph)`` saves it.

    Raises:
        NIRError: listing every layer that has no NIR node, or naming the layer that
            ``input_shape`` does not fit.
    """
    if not 0 < dt < math.inf:
        raise ValueError(f"dt must be a finite number > 0 seconds, got {dt}")
    input_shape = tuple(int(s) for s in input_shape)
    body = model.body if isinstance(model, SpikingClassifier) else model
    gm = fx.GraphModule(body, _Tracer().trace(body))
    interpreter = _Shapes(gm)
    training = body.training
    body.eval()  # batch norm on running statistics, no dropout
    try:
        with torch.no_grad():
            interpreter.run(torch.zeros(1, 1, *input_shape, device="meta"))
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        failed = next((n.target for n in gm.graph.nodes if n.name not in interpreter.shapes), "?")
        cause = str(exc).splitlines()[0]
        raise NIRError([f"layer {str(failed)!r}: input_shape {input_shape} does not fit ({cause})"]) from None
    finally:
        body.train(training)
    return _Exporter(gm, interpreter.shapes, dt).run(input_shape)
