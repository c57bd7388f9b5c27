"""Compact spiking-neural-network core: surrogates, neurons, multi-step layers, monitors.

Time-major tensors ``[T, B, ...]`` throughout; see ``docs/sections/snn.md``.
"""

from . import functional, models, surrogate
from .neurons import ALIF, IF, LIF, PLIF, CubaLIF, Izhikevich, Neuron

__all__ = [
    "functional",
    "models",
    "surrogate",
    "Neuron",
    "IF",
    "LIF",
    "PLIF",
    "ALIF",
    "CubaLIF",
    "Izhikevich",
]
