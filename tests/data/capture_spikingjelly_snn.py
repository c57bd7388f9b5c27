"""Capture reference spikes, membrane traces and gradients from SpikingJelly 2.0 into test data.

Run in the benchmark environment (which has spikingjelly), from the repository root:

    /work/benchenv/bin/python tests/data/capture_spikingjelly_snn.py

It writes ``tests/data/spikingjelly_snn_reference.npz``: for every case an input ``x`` [T, B, N],
upstream gradients ``gs`` (on the spikes) and ``gv`` (on the final membrane potential), and
SpikingJelly's outputs: ``spikes`` and ``grad_x`` (multi-step mode, ``step_mode='m'``, its
default CPU path), ``v_seq`` (membrane potential after each step, from single-step mode) and
``grad_w`` for ParametricLIF. ``cases`` is a JSON list of the case parameters. Every array is small
so the tests stay fast and CI never needs SpikingJelly.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import spikingjelly
import torch
from spikingjelly.activation_based import neuron, surrogate

OUT = Path(__file__).resolve().parent / "spikingjelly_snn_reference.npz"
T, B, N = 6, 2, 4

SURROGATES = {
    "sigmoid": (surrogate.Sigmoid, 4.0),
    "atan": (surrogate.ATan, 2.0),
    "piecewise_quadratic": (surrogate.PiecewiseQuadratic, 1.0),
    "piecewise_exp": (surrogate.PiecewiseExp, 1.0),
    "soft_sign": (surrogate.SoftSign, 2.0),
    "super_spike": (surrogate.SuperSpike, 1.0),
    "erf": (surrogate.Erf, 2.0),
    "rect": (surrogate.Rect, 1.0),
}


def make_node(case: dict):
    cls, _ = SURROGATES[case["surrogate"]]
    sg = cls(alpha=case["alpha"])
    common = dict(v_threshold=case["v_threshold"], v_reset=case["v_reset"], surrogate_function=sg)
    kind = case["neuron"]
    if kind == "if":
        return neuron.IFNode(detach_reset=case["detach_reset"], **common)
    if kind == "lif":
        return neuron.LIFNode(
            tau=case["tau"], decay_input=case["decay_input"], detach_reset=case["detach_reset"], **common
        )
    if kind == "plif":
        return neuron.ParametricLIFNode(
            init_tau=case["tau"], decay_input=case["decay_input"], detach_reset=case["detach_reset"], **common
        )
    if kind == "izhikevich":
        return neuron.IzhikevichNode(
            tau=case["tau"],
            v_c=case["v_c"],
            a0=case["a0"],
            v_rest=case["v_rest"],
            w_rest=case["w_rest"],
            tau_w=case["tau_w"],
            a=case["a"],
            b=case["b"],
            detach_reset=case["detach_reset"],
            **common,
        )
    if kind == "cuba_lif":  # its constructor takes no detach_reset; the attribute is honoured
        node = neuron.CUBALIFNode(c_decay=case["current_decay"], v_decay=case["voltage_decay"], **common)
        node.detach_reset = case["detach_reset"]
        return node
    raise ValueError(kind)


def run_case(case: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    lo, hi = case["input_range"]
    x = rng.uniform(lo, hi, size=(T, B, N)).astype(np.float32)
    x[:, 0, 0] = 0.5  # exact arithmetic: IF reaches the threshold exactly (spike at x >= 0 boundary)
    gs = rng.standard_normal((T, B, N)).astype(np.float32)
    gv = rng.standard_normal((B, N)).astype(np.float32)

    node = make_node(case)
    node.step_mode = "m"
    xt = torch.from_numpy(x).requires_grad_(True)
    spikes = node(xt)
    loss = (spikes * torch.from_numpy(gs)).sum() + (node.v * torch.from_numpy(gv)).sum()
    loss.backward()
    out = {"x": x, "gs": gs, "gv": gv, "spikes": spikes.detach().numpy(), "grad_x": xt.grad.numpy()}
    if case["neuron"] == "plif":
        out["grad_w"] = node.w.grad.reshape(1).numpy()

    node = make_node(case)
    node.step_mode = "s"
    v_seq, s_seq = [], []
    with torch.no_grad():
        for t in range(T):
            s_seq.append(node(torch.from_numpy(x[t])))
            v_seq.append(node.v.clone())
    out["v_seq"] = torch.stack(v_seq).numpy()
    assert np.array_equal(torch.stack(s_seq).numpy(), out["spikes"]), f"SJ single/multi-step disagree: {case}"
    return out


def cases() -> list[dict]:
    base = dict(v_threshold=1.0, input_range=(-0.2, 1.4))
    grid = []
    for name, (_, alpha) in SURROGATES.items():
        for v_reset, detach in itertools.product((0.0, None), (False, True)):
            grid.append(
                dict(base, neuron="if", surrogate=name, alpha=alpha, v_reset=v_reset, detach_reset=detach)
            )
            for decay_input in (True, False):
                for neuron_kind in ("lif", "plif"):
                    grid.append(
                        dict(
                            base,
                            neuron=neuron_kind,
                            surrogate=name,
                            alpha=alpha,
                            v_reset=v_reset,
                            detach_reset=detach,
                            decay_input=decay_input,
                            tau=2.0,
                            input_range=(0.0, 2.8) if decay_input else (-0.2, 1.4),
                        )
                    )
        # a non-default alpha, threshold, reset level and tau for every surrogate
        grid.append(
            dict(
                neuron="lif",
                surrogate=name,
                alpha=alpha * 1.7,
                v_reset=-0.3,
                detach_reset=False,
                decay_input=True,
                tau=3.0,
                v_threshold=0.8,
                input_range=(-0.5, 3.5),
            )
        )
        grid.append(
            dict(
                neuron="plif",
                surrogate=name,
                alpha=alpha * 0.6,
                v_reset=None,
                detach_reset=False,
                decay_input=False,
                tau=3.5,
                v_threshold=0.7,
                input_range=(-0.5, 1.0),
            )
        )
    izh_params = (
        dict(tau=2.0, v_c=0.8, a0=1.0, v_rest=-0.1, w_rest=0.0, tau_w=2.0, a=0.0, b=0.0),
        dict(tau=3.0, v_c=0.6, a0=0.5, v_rest=-0.2, w_rest=0.1, tau_w=4.0, a=0.3, b=0.2),
    )
    for name in ("sigmoid", "atan"):
        alpha = SURROGATES[name][1]
        for v_reset, detach in itertools.product((0.0, None), (False, True)):
            for params in izh_params:
                grid.append(
                    dict(
                        params,
                        neuron="izhikevich",
                        surrogate=name,
                        alpha=alpha,
                        v_reset=v_reset,
                        detach_reset=detach,
                        v_threshold=1.0,
                        input_range=(0.0, 1.2),
                    )
                )
            grid.append(
                dict(
                    neuron="cuba_lif",
                    surrogate=name,
                    alpha=alpha,
                    v_reset=v_reset,
                    detach_reset=detach,
                    v_threshold=1.0,
                    current_decay=0.5,
                    voltage_decay=0.75,
                    input_range=(-0.2, 0.8),
                )
            )
    for i, case in enumerate(grid):
        case["id"] = f"case{i:03d}"
    return grid


def surrogate_arrays() -> dict[str, np.ndarray]:
    out = {}
    for name, (cls, alpha) in SURROGATES.items():
        for a in (alpha, alpha * 1.7):
            x = np.unique(
                np.concatenate(
                    [np.linspace(-2, 2, 81), [0.0, 0.5 / a, -0.5 / a, 1 / a, -1 / a, 1e-7, -1e-7]]
                ).astype(np.float32)
            )
            xt = torch.from_numpy(x).requires_grad_(True)
            y = cls(alpha=a)(xt)
            y.sum().backward()
            key = f"surrogate/{name}/{a:g}"
            out[key + "/x"], out[key + "/spikes"], out[key + "/grad"] = x, y.detach().numpy(), xt.grad.numpy()
    return out


def main() -> None:
    torch.set_grad_enabled(True)
    rng = np.random.default_rng(20240611)
    arrays: dict[str, np.ndarray] = {}
    grid = cases()
    for case in grid:
        for key, value in run_case(case, rng).items():
            arrays[f"{case['id']}/{key}"] = value
    arrays.update(surrogate_arrays())
    arrays["cases"] = np.array(json.dumps(grid))
    arrays["spikingjelly_version"] = np.array(getattr(spikingjelly, "__version__", "2.0.0"))
    np.savez_compressed(OUT, **arrays)
    print(
        f"wrote {len(grid)} neuron cases and {sum(k.endswith('/grad') for k in arrays)} surrogate curves to {OUT}"
    )


if __name__ == "__main__":
    main()
