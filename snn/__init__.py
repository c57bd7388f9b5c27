"""Compact spiking-neural-network core: surrogates, neurons, multi-step layers, monitors.

Time-major tensors ``[T, B, ...]`` throughout; see ``docs/sections/snn.md``. Each neuron kind has
a frozen parameter object (:mod:`snn.params`, e.g. ``snn.LIFParameters``) that the pure step
functions of :mod:`snn.functional` and every backend of :mod:`snn.backends` take.
"""

from . import functional, layers, models, monitor, params, surrogate
from .integrators import Integrator, LeakyIntegrator
from .neurons import ALIF, IF, LIF, PLIF, CubaLIF, Izhikevich, Neuron
from .params import (
    ALIFParameters,
    CubaLIFParameters,
    IFParameters,
    IzhikevichParameters,
    LIFParameters,
    NeuronParameters,
    PLIFParameters,
)

__all__ = [
    "functional",
    "layers",
    "models",
    "monitor",
    "params",
    "surrogate",
    "Neuron",
    "IF",
    "LIF",
    "PLIF",
    "ALIF",
    "CubaLIF",
    "Izhikevich",
    "LeakyIntegrator",
    "Integrator",
    "NeuronParameters",
    "IFParameters",
    "LIFParameters",
    "PLIFParameters",
    "ALIFParameters",
    "CubaLIFParameters",
    "IzhikevichParameters",
]
