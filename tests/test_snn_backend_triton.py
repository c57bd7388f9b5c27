"""The neuron modules dispatched to the Triton kernels, on CPU tensors through Triton's interpreter.

The kernels themselves (``snn/kernels/triton_neurons.py``, ``snn/backends/triton_backend.py``) are tested in
``test_snn_triton.py``;
this file checks the module-level wiring: arguments, state passing and gradients through
``backend="triton"`` agree with the reference loop for every neuron that has a Triton kernel.
"""

from __future__ import annotations

import os

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported: kernels run as Python on CPU tensors

import pytest
import torch

import snn
from snn.backends import resolve_backend
from snn.surrogate import ATan, Erf, Sigmoid

pytest.importorskip("triton", reason="the triton package is not installed (optional 'triton' extra)")
from snn.backends import triton_backend  # noqa: E402, F401  (an import error here is a failure, not a skip)

NEURONS = [
    lambda b: snn.IF(v_reset=None, surrogate=Sigmoid(), backend=b),
    lambda b: snn.LIF(tau=1.7, decay_input=False, detach_reset=True, backend=b),
    lambda b: snn.PLIF(init_tau=2.5, v_reset=-0.2, surrogate=Erf(), backend=b),
    lambda b: snn.ALIF(tau=2.0, tau_adapt=3.0, beta=0.3, backend=b),
    lambda b: snn.CubaLIF(current_decay=0.6, voltage_decay=0.7, v_reset=None, surrogate=ATan(3.0), backend=b),
    # a leak target apart from the reset potential (v_leak) and a start apart from rest (v_init)
    lambda b: snn.LIF(tau=1.7, v_reset=-0.1, v_leak=0.3, v_init=0.2, backend=b),
    lambda b: snn.PLIF(init_tau=2.5, v_reset=None, v_leak=-0.2, surrogate=Erf(), backend=b),
    lambda b: snn.ALIF(tau=2.0, tau_adapt=3.0, beta=0.3, v_leak=0.25, backend=b),
]


@pytest.mark.parametrize(
    "make", NEURONS, ids=["if", "lif", "plif", "alif", "cuba_lif", "lif-v_leak", "plif-v_leak", "alif-v_leak"]
)
def test_triton_backend_matches_the_reference_loop(make):
    torch.manual_seed(5)
    x = torch.rand(5, 2, 3) * 2 - 0.3
    out = {}
    for backend in ("torch", "triton"):
        neuron = make(backend)
        xs = x.clone().requires_grad_(True)
        first, state = neuron(xs[:2], return_state=True)  # state handed from one chunk to the next
        second, state = neuron(xs[2:], state=state, return_state=True)
        spikes = torch.cat([first, second])
        (spikes * torch.linspace(-1, 1, spikes.numel()).reshape(spikes.shape)).sum().backward()
        out[backend] = (spikes.detach(), [s.detach() for s in state], xs.grad, getattr(neuron, "w", None))
    (s0, st0, g0, w0), (s1, st1, g1, w1) = out["torch"], out["triton"]
    assert torch.equal(s0, s1)
    assert all(torch.allclose(a.float(), b.float(), atol=1e-6) for a, b in zip(st0, st1))
    assert torch.allclose(g0, g1, atol=1e-5)
    if w0 is not None:
        assert torch.allclose(w0.grad, w1.grad, atol=1e-5)


def test_auto_never_picks_the_interpreter_for_cpu_tensors():
    x = torch.zeros(2, 1)
    assert resolve_backend("auto", snn.LIFParameters(), x) == "numba"
    assert resolve_backend("auto", snn.ALIFParameters(), x) == "numba"
    assert resolve_backend("triton", snn.ALIFParameters(), x) == "triton"
    with pytest.raises(ValueError, match="runs on backend='torch'"):
        snn.Izhikevich(backend="triton")
