"""Activity monitors attached with forward hooks: firing rates, synaptic operations, energy.

Both monitors are context managers (hooks are removed on exit) and accumulate over every forward
pass until :meth:`reset`.

Energy model (:func:`energy_estimate`): a spiking layer whose input is binary (all nonzero entries
equal, so dropout-scaled spikes count too) performs one
accumulate (AC) per input spike per synapse it fans out to (a *SynOp*); a layer fed real values
(e.g. the first, encoding layer) performs one multiply-accumulate (MAC) per nonzero input per
synapse. Per-operation energies are the 45 nm CMOS figures of Horowitz (ISSCC 2014) for 32-bit
float: ``E_AC = 0.9 pJ``, ``E_MAC = 4.6 pJ`` (the constants most SNN papers quote). The same
network run as an ANN would do a MAC for every input, nonzero or not: :attr:`SynOpsMonitor.dense_macs`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

import torch
import torch.nn.functional as TF
from torch import nn

from .neurons import Neuron

__all__ = ["FiringRateMonitor", "SynOpsMonitor", "energy_estimate", "E_AC_PJ", "E_MAC_PJ"]

E_AC_PJ = 0.9  # pJ per 32-bit float add, 45 nm (Horowitz 2014)
E_MAC_PJ = 4.6  # pJ per 32-bit float multiply (3.7) + add (0.9), 45 nm (Horowitz 2014)


class _HookMonitor(ABC):
    """Registers a forward hook on each selected submodule; removable, usable as a context manager."""

    def __init__(self, model: nn.Module, module_types: tuple[type, ...]) -> None:
        self.layers = {name: m for name, m in model.named_modules() if isinstance(m, module_types)}
        if not self.layers:
            raise ValueError(
                f"{type(self).__name__}: the model has no {', '.join(t.__name__ for t in module_types)} layers"
            )
        self._handles = [m.register_forward_hook(self._hook_for(name)) for name, m in self.layers.items()]
        self.reset()

    def _hook_for(self, name: str):
        def hook(module, inputs, output):
            with torch.no_grad():
                self._observe(name, module, inputs[0], output)

        return hook

    @abstractmethod
    def _observe(self, name: str, module: nn.Module, x: torch.Tensor, y) -> None:
        """Record one forward call of the module called ``name``."""

    @abstractmethod
    def reset(self) -> None:
        """Forget what was recorded."""

    def remove(self) -> None:
        """Detach the hooks from the model."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class FiringRateMonitor(_HookMonitor):
    """Mean firing rate (spikes per neuron per time step) of every spiking-neuron layer.

    Args:
        model: The network to watch; a hook goes on each of its submodules of ``module_types``.
        module_types: The layer classes whose outputs count as spikes (default: our neurons).

    Raises:
        ValueError: ``model`` has no submodule of ``module_types``.
    """

    def __init__(self, model: nn.Module, module_types: Iterable[type] = (Neuron,)) -> None:
        super().__init__(model, tuple(module_types))

    def reset(self) -> None:
        """Set every layer's spike and slot counts back to 0."""
        self.spikes = {name: 0.0 for name in self.layers}
        self.slots = {name: 0 for name in self.layers}

    def _observe(self, name, module, x, y) -> None:
        spikes = y[0] if isinstance(y, tuple) else y
        self.spikes[name] += float(spikes.sum())
        self.slots[name] += spikes.numel()

    def rates(self) -> dict[str, float]:
        """Layer name to firing rate in [0, 1] (NaN for a layer that has not run)."""
        return {n: self.spikes[n] / self.slots[n] if self.slots[n] else float("nan") for n in self.layers}

    def overall(self) -> float:
        """Firing rate over all monitored neurons and steps."""
        total = sum(self.slots.values())
        return sum(self.spikes.values()) / total if total else float("nan")


def _fold(x: torch.Tensor, sample_ndim: int) -> torch.Tensor:
    """Merge leading dimensions (e.g. time and batch) into one batch dimension."""
    return x.reshape(-1, *x.shape[x.ndim - sample_ndim :])


def _accumulations(module: nn.Module, active: torch.Tensor) -> float:
    """Number of synaptic accumulations triggered by the nonzero entries marked in ``active`` (0/1)."""
    if isinstance(module, nn.Linear):
        return float(active.sum()) * module.out_features
    # convolution of the activity map with an all-ones kernel counts, for every output, the active
    # inputs in its receptive field: summed, that is (active input, weight) pairs, i.e. accumulations
    ones = torch.ones_like(module.weight)
    conv = TF.conv1d if isinstance(module, nn.Conv1d) else TF.conv2d
    if module.padding_mode != "zeros":
        raise ValueError(f"SynOpsMonitor: padding_mode={module.padding_mode!r} is not supported")
    sample_ndim = 2 if isinstance(module, nn.Conv1d) else 3
    folded = _fold(active, sample_ndim)
    counts = conv(folded, ones, None, module.stride, module.padding, module.dilation, module.groups)
    return float(counts.sum())


def _is_spike_train(x: torch.Tensor) -> bool:
    """True when all nonzero entries share one value: spikes (possibly scaled, e.g. by dropout)
    whose amplitude folds into the weights, so each costs an accumulate, not a multiply."""
    nonzero = x[x != 0]
    return nonzero.numel() == 0 or bool((nonzero == nonzero[0]).all())


class SynOpsMonitor(_HookMonitor):
    """Synaptic operations of Linear / Conv1d / Conv2d layers (ours or plain torch).

    Per layer: ``synops`` (accumulates triggered by binary spike input: spikes x fan-out),
    ``macs`` (multiply-accumulates for nonzero real-valued input) and ``dense_macs`` (what a
    dense ANN layer computes: every input x fan-out). Counts are totals over all samples, time
    steps and forward passes since :meth:`reset`.

    Args:
        model: The network to watch; a hook goes on each of its submodules of ``module_types``.
        module_types: The layer classes to count (Linear, Conv1d and Conv2d, or subclasses).

    Raises:
        ValueError: ``model`` has no submodule of ``module_types``.
    """

    def __init__(
        self, model: nn.Module, module_types: Iterable[type] = (nn.Linear, nn.Conv1d, nn.Conv2d)
    ) -> None:
        super().__init__(model, tuple(module_types))

    def reset(self) -> None:
        """Set every layer's ``synops``, ``macs`` and ``dense_macs`` back to 0."""
        self.synops = {name: 0.0 for name in self.layers}
        self.macs = {name: 0.0 for name in self.layers}
        self.dense_macs = {name: 0.0 for name in self.layers}

    def _observe(self, name, module, x, y) -> None:
        nonzero = (x != 0).to(x.dtype)
        ops = _accumulations(module, nonzero)
        (self.synops if _is_spike_train(x) else self.macs)[name] += ops
        self.dense_macs[name] += _accumulations(module, torch.ones_like(x))

    def total_synops(self) -> float:
        """Accumulates triggered by spike input, summed over the layers."""
        return sum(self.synops.values())

    def total_macs(self) -> float:
        """Multiply-accumulates triggered by nonzero real-valued input, summed over the layers."""
        return sum(self.macs.values())

    def energy(self) -> dict[str, float]:
        """Estimated energy in joules of the SNN and of the same network run as a dense ANN."""
        return energy_estimate(self.total_synops(), self.total_macs(), sum(self.dense_macs.values()))


def energy_estimate(
    synops: float,
    macs: float = 0.0,
    dense_macs: float | None = None,
    e_ac_pj: float = E_AC_PJ,
    e_mac_pj: float = E_MAC_PJ,
) -> dict[str, float]:
    """``{"snn_j": synops*E_AC + macs*E_MAC, "ann_j": dense_macs*E_MAC}`` (joules; see module docstring).

    Args:
        synops: Accumulates triggered by spikes (:meth:`SynOpsMonitor.total_synops`).
        macs: Multiply-accumulates triggered by real-valued input.
        dense_macs: The MACs of the same network run densely as an ANN; None leaves ``ann_j`` out.
        e_ac_pj: Energy of one accumulate in picojoules.
        e_mac_pj: Energy of one multiply-accumulate in picojoules.
    """
    out = {"snn_j": (synops * e_ac_pj + macs * e_mac_pj) * 1e-12}
    if dense_macs is not None:
        out["ann_j"] = dense_macs * e_mac_pj * 1e-12
    return out
