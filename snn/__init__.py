"""Compact spiking-neural-network core: surrogates, neurons, multi-step layers, monitors.

Time-major tensors ``[T, B, ...]`` throughout; see ``docs/sections/snn.md``.
"""

from . import functional, layers, models, monitor, surrogate
from .neurons import ALIF, IF, LIF, PLIF, CubaLIF, Izhikevich, Neuron

__all__ = [
    "functional",
    "layers",
    "models",
    "monitor",
    "surrogate",
    "Neuron",
    "IF",
    "LIF",
    "PLIF",
    "ALIF",
    "CubaLIF",
    "Izhikevich",
]
