"""``SpikingSequential``: ``nn.Sequential`` that runs each neuron + 2x2 max-pool pair as one CPU kernel.

A multi-step IF / LIF / PLIF layer followed by :class:`snn.layers.MaxPool2d` ``(2)`` (stride 2, no padding) on CPU
tensors that the Numba backend would run anyway goes through
:func:`snn.backends.numba_backend.neuron_maxpool2d`: max-pooling binary spikes within the neuron kernel
skips writing the full-size spikes, keeping the pool's int64 indices (half their size in bytes)
and the pool's backward pass. Values and gradients are those of the two modules run
one after the other. Anything else, and any pair with hooks registered (monitors observe the
unpooled spikes), runs module by module; the module list and ``state_dict`` are nn.Sequential's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from . import layers
from .backends import numba_module, resolve_backend
from .backends.fused import ONE_STATE_KINDS
from .neurons import Neuron

__all__ = ["SpikingSequential"]


def _is_2x2_max_pool(module: nn.Module) -> bool:
    def pair(value) -> tuple:
        return tuple(value) if isinstance(value, (tuple, list)) else (value, value)

    return (
        type(module) is layers.MaxPool2d  # the time-folded layer itself, not a subclass with its own forward
        and pair(module.kernel_size) == (2, 2)
        and pair(module.stride or module.kernel_size) == (2, 2)
        and pair(module.padding) == (0, 0)
        and pair(module.dilation) == (1, 1)
        and not module.ceil_mode
        and not module.return_indices
    )


def _has_hooks(*modules: nn.Module) -> bool:
    global_hooks = torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks
    return bool(global_hooks) or any(m._forward_hooks or m._forward_pre_hooks for m in modules)


def _fusable(neuron: nn.Module, pool: nn.Module, x_seq: torch.Tensor) -> bool:
    """Whether ``neuron`` then ``pool`` on ``x_seq`` can run as :func:`~snn.backends.numba_backend.neuron_maxpool2d`."""
    if not (isinstance(neuron, Neuron) and neuron.param_cls.kind in ONE_STATE_KINDS and _is_2x2_max_pool(pool)):
        return False
    if neuron.step_mode != "m" or neuron.stateful or _has_hooks(neuron, pool):
        return False
    if x_seq.ndim != 5 or x_seq.shape[-1] % 2 or x_seq.shape[-2] % 2:
        return False
    return resolve_backend(neuron.backend, neuron.params(), x_seq) == "numba"


class SpikingSequential(nn.Sequential):
    """``nn.Sequential`` whose ``[neuron, MaxPool2d(2)]`` pairs run fused on CPU (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the modules in order, each fusable neuron + pool pair as one kernel.

        Args:
            x: The first module's input (``[T, B, C, H, W]`` where a fused pair sees it).
        """
        modules = list(self)
        i = 0
        while i < len(modules):
            if i + 1 < len(modules) and _fusable(modules[i], modules[i + 1], x):
                x, _ = numba_module().neuron_maxpool2d(x, None, modules[i].params())
                i += 2
            else:
                x = modules[i](x)
                i += 1
        return x
