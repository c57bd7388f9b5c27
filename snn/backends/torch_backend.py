"""The "torch" backend: the reference loop of :func:`snn.functional.multi_step`.

Every neuron kind, every surrogate, tensor fields (per channel or per neuron), any dtype and
device; one autograd node per operation and step. The fused backends are tested against it.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

from .. import functional as F
from ..params import NeuronParameters

__all__ = ["KINDS", "multi_step"]

KINDS = tuple(F.STEPS)


def multi_step(x_seq: Tensor, state: NamedTuple | None, p: NeuronParameters) -> tuple[Tensor, NamedTuple]:
    """Run ``p``'s neurons over ``x_seq`` ``[T, ...]`` from ``state`` (None: ``p``'s initial state).

    Returns ``(spikes, final_state)``.
    """
    return F.multi_step(x_seq, state, p)
