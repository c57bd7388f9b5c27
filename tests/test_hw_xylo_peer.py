"""Our Xylo reference against rockpool 3.1.0's ``XyloSim`` (xylosim 0.1.3), spike for spike.

rockpool's Xylo packages import ``samna``, which on this registry is a stub that downloads at
import: it is never imported here. A finder answers every ``samna`` import with placeholder
modules before rockpool is imported (XyloSim itself needs only xylosim).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

import numpy as np
import pytest

from hw import xylo
from hw.xylo_sim import simulate
from tests.conftest import peer_missing
from tests.quant_digits import one_thread
from tests.xylo_digits import STEPS, events, trained_network


class _Placeholder(type):
    """A class whose every attribute is another placeholder class (samna's types, never used)."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(name, (), {})


class _SamnaStub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(name, (), {})


class _SamnaFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers ``import samna`` and ``import samna.x.y`` with stubs, so the real package is never loaded."""

    def find_spec(self, name, path=None, target=None):
        if name == "samna" or name.startswith("samna."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _SamnaStub(spec.name)

    def exec_module(self, module):
        module.__path__ = []


@pytest.fixture(scope="module")
def xylo_sim():
    if importlib.util.find_spec("rockpool") is None or importlib.util.find_spec("xylosim") is None:
        peer_missing(
            "rockpool 3.1.0 and xylosim 0.1.3 are not installed (pip install --no-deps rockpool==3.1.0 xylosim==0.1.3)"
        )
    finder = _SamnaFinder()
    sys.meta_path.insert(0, finder)
    try:
        from rockpool.devices.xylo.syns61201.xylo_sim import XyloSim
    finally:
        sys.meta_path.remove(finder)
    return XyloSim


def _assert_equal(XyloSim, spec: dict, raster: np.ndarray) -> int:
    sim = XyloSim.from_specification(**spec)
    output, _, recording = sim(raster, record=True)
    ours = simulate(spec, raster)
    assert np.array_equal(recording["Spikes"], ours.hidden)
    assert np.array_equal(recording["Vmem"], ours.v_hidden)
    assert np.array_equal(recording["Vmem_out"], ours.v_output)
    assert np.array_equal(output, ours.output)
    return int(ours.output.sum())


def test_random_networks_with_shifts_saturation_and_recurrence_equal_xylosim(xylo_sim):
    rng = np.random.default_rng(0)
    for trial in range(6):
        n_in, n_hidden, n_out = 16, 40, 8
        spec = {
            "weights_in": rng.integers(-128, 128, (n_in, n_hidden, 2)),
            "weights_rec": rng.integers(-128, 128, (n_hidden, n_hidden, 2))
            * (rng.random((n_hidden, n_hidden, 1)) < 0.2),
            "weights_out": rng.integers(-128, 128, (n_hidden, n_out)),
            "dash_mem": rng.integers(0, 8, n_hidden),
            "dash_syn": rng.integers(0, 8, n_hidden),
            "dash_syn_2": rng.integers(0, 8, n_hidden),
            "threshold": rng.integers(1, 3000, n_hidden),
            "bias": rng.integers(-50, 50, n_hidden) * (trial % 2),
            "dash_mem_out": rng.integers(0, 8, n_out),
            "dash_syn_out": rng.integers(0, 8, n_out),
            "threshold_out": rng.integers(1, 3000, n_out),
            "bias_out": rng.integers(-50, 50, n_out) * (trial % 2),
            "weight_shift_in": trial,
            "weight_shift_rec": trial % 3,
            "weight_shift_out": 2,
        }
        raster = rng.integers(0, 4, (50, n_in)) * (rng.random((50, n_in)) < 0.5)
        raster[5] = 20  # beyond the 15 events a channel delivers per step
        assert _assert_equal(xylo_sim, spec, raster) > 0


def test_exported_trained_network_equals_xylosim_on_digits(xylo_sim):
    with one_thread():
        x_train, y_train, x_test, _ = events()
        exported = xylo.export(trained_network(x_train, y_train))
    total = 0
    for sample in x_test[:20]:
        raster = sample.long().numpy()[None].repeat(STEPS + 1, 0)
        total += _assert_equal(xylo_sim, exported.spec, raster)
    assert total > 40
