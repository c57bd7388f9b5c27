"""Capture SpikingJelly's IF/LIF/PLIF/CUBA-LIF multi-step outputs and gradients into snn_spikingjelly_neurons.npz.

Layout: the shared inputs (x [T, N], v0, grad_spikes, grad_v_last, tau, w), ``configs`` (one string
``kind-surrogate-hard|soft-detach_reset-decay_input`` per row) and ``results`` [configs, FIELDS]: per row
spikes [T*N], v_last [N], grad_x [T*N], grad_v0 [N], grad_w [1] (NaN unless plif), each flattened.
CUBA-LIF (``cuba_lif``: current_decay 0.5, voltage_decay 0.75, initial current 0; its loop over
SpikingJelly's ``cuba_lif_step``, decay_input not applicable) is stored the same way, with the
final current in ``cuba_i_last`` [configs, N] (NaN rows for the other kinds).

Run in the benchmark env, which has SpikingJelly (CPU, its plain-torch path):
    PYTHONPATH=. /work/benchenv/bin/python tests/data/capture_spikingjelly_neurons.py
tests/test_snn_triton.py checks our reference and the Triton kernels against these values.
"""

from __future__ import annotations

import itertools
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from spikingjelly.activation_based import surrogate
from spikingjelly.activation_based.functional import neuron as sj

OUT = Path(__file__).with_name("snn_spikingjelly_neurons.npz")
SURROGATES = {
    "sigmoid": surrogate.Sigmoid(alpha=4.0),
    "atan": surrogate.ATan(alpha=2.0),
    "piecewise_quadratic": surrogate.PiecewiseQuadratic(alpha=1.0),
    "piecewise_exp": surrogate.PiecewiseExp(alpha=1.0),
    "soft_sign": surrogate.SoftSign(alpha=2.0),
    "super_spike": surrogate.SuperSpike(alpha=1.0),
    "erf": surrogate.Erf(alpha=2.0),
    "rect": surrogate.Rect(alpha=1.0),
}
T, N, TAU, W = 4, 12, 3.0, 0.3
CURRENT_DECAY, VOLTAGE_DECAY = 0.5, 0.75


def cuba_lif(x_seq, v0, sg, v_reset, detach):
    current, v, spikes = torch.zeros_like(v0), v0, []
    for x in x_seq:
        spike, current, v = sj.cuba_lif_step(
            x, current, v, CURRENT_DECAY, VOLTAGE_DECAY, 1.0, v_reset, sg, detach
        )
        spikes.append(spike)
    return torch.stack(spikes), v, current


def run(kind, x, v0, w, sg, v_reset, detach, decay):
    if kind == "if":
        return sj.if_multi_step(x, v0, 1.0, v_reset, sg, detach)
    if kind == "lif":
        return sj.lif_multi_step(x, v0, TAU, decay, 1.0, v_reset, sg, detach)
    if kind == "cuba_lif":
        return cuba_lif(x, v0, sg, v_reset, detach)
    return sj.plif_multi_step(x, v0, w, decay, 1.0, v_reset, sg, detach)


def main() -> None:
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(T, N, generator=gen) * 1.5 + 0.5
    x[0, 0] = 3.0  # lands exactly on the threshold for LIF (tau=3, v0=0): must fire
    v0 = torch.randn(N, generator=gen) * 0.5
    v0[0] = 0.0
    grad_s = torch.randn(T, N, generator=gen)
    grad_v = torch.randn(N, generator=gen)
    configs, results, i_last = [], [], []
    for kind, name, v_reset, detach, decay in itertools.product(
        ("if", "lif", "plif", "cuba_lif"), SURROGATES, (0.0, None), (False, True), (True, False)
    ):
        if kind in ("if", "cuba_lif") and not decay:
            continue
        xr, vr = x.clone().requires_grad_(), v0.clone().requires_grad_()
        w = torch.tensor(W, requires_grad=True)
        spikes, v_last, current = run(kind, xr, vr, w, SURROGATES[name], v_reset, detach, decay)
        i_last.append(current.detach() if kind == "cuba_lif" else torch.full((N,), float("nan")))
        loss = (spikes * grad_s).sum() + (v_last * grad_v).sum()
        inputs = [xr, vr, w] if kind == "plif" else [xr, vr]
        grads = torch.autograd.grad(loss, inputs)
        grad_w = grads[2] if kind == "plif" else torch.tensor(float("nan"))
        configs.append(f"{kind}-{name}-{'soft' if v_reset is None else 'hard'}-{int(detach)}-{int(decay)}")
        parts = (spikes, v_last, grads[0], grads[1], grad_w)
        results.append(torch.cat([p.detach().reshape(-1) for p in parts]))
    np.savez_compressed(
        OUT,
        x=x.numpy(),
        v0=v0.numpy(),
        grad_spikes=grad_s.numpy(),
        grad_v_last=grad_v.numpy(),
        tau=np.float32(TAU),
        w=np.float32(W),
        configs=np.array(configs),
        results=torch.stack(results).numpy().astype(np.float32),
        cuba_i_last=torch.stack(i_last).numpy().astype(np.float32),
        current_decay=np.float32(CURRENT_DECAY),
        voltage_decay=np.float32(VOLTAGE_DECAY),
        spikingjelly_version=np.array(version("spikingjelly")),
    )
    print(f"wrote {len(configs)} configurations to {OUT}")


if __name__ == "__main__":
    main()
