"""From a float multi-step model to the list of fake-quantized stages, or one error naming every layer at fault.

The model is an ``nn.Sequential`` (``snn.sequential.SpikingSequential``, ``snn.layers.SeqToANN``
and nested sequentials included) of multi-step modules. Batch norm is folded into the Linear
or convolution before it (with its running statistics); dropout and identities are dropped.
Nothing of the model is modified: the stages hold copies of its parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import layers
from ..neurons import Neuron
from .fake_stages import Geometry, QNeuron, QSynapse
from .staged import QFlatten, QInput, QPool, Stage
from .target import QuantError, QuantTarget

__all__ = ["plan_stages", "leaves", "non_finite"]

_SYNAPSES = (nn.Linear, nn.Conv1d, nn.Conv2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.MaxPool1d, nn.MaxPool2d)
_DROPPED = (nn.Dropout, layers.Dropout, nn.Identity)
_SUPPORTED = "Linear, Conv1d, Conv2d, BatchNorm1d/2d, Avg/MaxPool1d/2d, snn.layers.Flatten, Dropout, snn.IF, snn.LIF"


def leaves(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The modules of ``model`` in order, descending into sequential containers; paths as
    ``named_modules``, under ``prefix``."""
    if not isinstance(model, nn.Sequential):
        return [(prefix or type(model).__name__, model)]
    found = []
    for name, child in model.named_children():
        found.extend(leaves(child, f"{prefix}.{name}" if prefix else name))
    return found


def _pair(value, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


def _synapse_problem(m: nn.Module) -> str | None:
    if isinstance(m, nn.Linear):
        return None
    if isinstance(m.padding, str) or m.padding_mode != "zeros":
        return f"padding={m.padding!r}, padding_mode={m.padding_mode!r} (numeric zero padding only)"
    if m.groups != 1 or any(d != 1 for d in m.dilation):
        return f"groups={m.groups}, dilation={m.dilation} (groups=1, dilation=1 only)"
    return None


def _pool_problem(m: nn.Module) -> str | None:
    dims = 2 if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)) else 1
    if any(p != 0 for p in _pair(m.padding, dims)) or m.ceil_mode:
        return "padding or ceil_mode (windows inside the input only)"
    if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)) and (m.return_indices or any(d != 1 for d in _pair(m.dilation, dims))):
        return "dilation or return_indices"
    if getattr(m, "divisor_override", None) is not None:
        return "divisor_override"
    return None


def _neuron_problem(m: Neuron, target: QuantTarget) -> str | None:
    p = m.params()
    if p.kind not in ("if", "lif"):
        return f"neuron kind {p.kind!r} (IF and LIF only)"
    if m.step_mode != "m" or m.stateful:
        return "step_mode='s' or stateful=True (multi-step calls from rest only)"
    if p.tensor_fields():
        return f"tensor fields {p.tensor_fields()} (scalar parameters only)"
    if p.v_reset not in (None, 0.0):
        return f"v_reset={p.v_reset} (integer targets reset to 0 or subtract the threshold)"
    if getattr(p, "v_leak", None) not in (None, 0.0):
        return f"v_leak={p.v_leak} (integer targets leak towards 0)"
    reset = "subtract" if p.v_reset is None else "zero"
    if reset not in target.resets:
        return f"reset {reset!r}: target {target.name!r} implements only {target.resets}"
    if not p.v_threshold > 0:
        return f"v_threshold={p.v_threshold} (> 0 only)"
    return None


def non_finite(weight: torch.Tensor, bias: torch.Tensor | None) -> str | None:
    """What of ``weight`` and ``bias`` holds NaN or infinite values (a problem's text), or None.

    Args:
        weight: A synapse's weights.
        bias: Its biases, or None.
    """
    bad = [name for name, v in (("weight", weight), ("bias", bias)) if v is not None and not bool(torch.isfinite(v).all())]
    if not bad:
        return None
    return f"{' and '.join(bad)} {'hold' if len(bad) > 1 else 'holds'} NaN or infinite values"


def _fold_norm(w: torch.Tensor, b: torch.Tensor | None, norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``norm(synapse(x))`` as one synapse: the batch norm's running statistics folded into ``w``, ``b``."""
    std = torch.sqrt(norm.running_var + norm.eps)
    gain = (norm.weight if norm.affine else torch.ones_like(std)) / std
    shift = norm.bias if norm.affine else torch.zeros_like(std)
    bias = torch.zeros_like(std) if b is None else b
    w = w * gain.reshape(-1, *([1] * (w.ndim - 1)))
    return w, (bias - norm.running_mean) * gain + shift


def plan_stages(model: nn.Module, target: QuantTarget, input_scale: float) -> list[Stage]:
    """The fake-quantized stages of ``model`` (copies of its parameters) for ``target``, inputs
    scaled by ``input_scale``, or a :class:`QuantError` naming every problem."""
    problems: list[str] = []
    stages: list[Stage] = [QInput(input_scale, target.input_bits, target.rounding, target.overflow)]
    per_channel = False  # whether the tensor flowing here has one scale per channel (a synapse's output)
    for label, m in leaves(model):
        with torch.no_grad():
            problem = _add_stage(label, m, target, stages, per_channel)
        if problem is not None:
            problems.append(f"{label} ({type(m).__name__}): {problem}")
            continue
        last = stages[-1]
        if isinstance(last, QSynapse):
            per_channel = target.granularity == "per_channel"
        elif isinstance(last, QNeuron):
            per_channel = False
    if problems:
        raise QuantError(f"cannot quantize for target {target.name!r}: " + "; ".join(problems))
    return stages


def _add_stage(label: str, m: nn.Module, target: QuantTarget, stages: list[Stage], per_channel: bool) -> str | None:
    """Append ``m``'s stage (or fold it into the last); a problem description if it cannot be."""
    if isinstance(m, _DROPPED):
        return None
    if isinstance(m, _SYNAPSES):
        problem = _synapse_problem(m)
        if problem is None and per_channel:
            problem = "follows a per-channel scaled layer without a neuron in between"
        if problem is None and m.bias is not None and target.bias_bits is None:
            problem = f"has a bias; target {target.name!r} has none (bias_bits=None)"
        if problem is None:
            problem = non_finite(m.weight, m.bias)
        if problem is None:
            dims = 0 if isinstance(m, nn.Linear) else (1 if isinstance(m, nn.Conv1d) else 2)
            geometry = Geometry(dims) if dims == 0 else Geometry(dims, _pair(m.stride, dims), _pair(m.padding, dims))
            stages.append(QSynapse(label, m.weight, m.bias, geometry, target))
        return problem
    if isinstance(m, _NORMS):
        last = stages[-1]
        matching = (2,) if isinstance(m, nn.BatchNorm2d) else (0, 1)
        if not isinstance(last, QSynapse) or last.geometry.dims not in matching:
            return "batch norm must directly follow a Linear or convolution (it is folded into it)"
        if m.running_mean is None:
            return "track_running_stats=False (folding needs running statistics)"
        if target.bias_bits is None:
            return f"folding needs a bias; target {target.name!r} has none (bias_bits=None)"
        w, b = _fold_norm(last.weight.data, None if last.bias is None else last.bias.data, m)
        problem = non_finite(w, b)
        if problem is not None:
            return f"{problem} once its running statistics are folded into {last.label}"
        stages[-1] = QSynapse(last.label, w, b, last.geometry, target)
        return None
    if isinstance(m, _POOLS):
        problem = _pool_problem(m)
        if problem is None:
            dims = 2 if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)) else 1
            mode = "max" if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)) else "avg"
            kernel = _pair(m.kernel_size, dims)
            stages.append(QPool(label, mode, kernel, _pair(m.stride or m.kernel_size, dims)))
        return problem
    if isinstance(m, layers.Flatten):
        if per_channel:
            return "flattens per-channel scaled values (put a neuron before it)"
        stages.append(QFlatten(label))
        return None
    if isinstance(m, Neuron):
        problem = _neuron_problem(m, target)
        if problem is None:
            stages.append(QNeuron(label, m.params(), target))
        return problem
    return f"unsupported layer (supported: {_SUPPORTED})"
