"""Our integer reference of a Xylo (SYNS61201) network, written from SynSense's xylosim 0.1.3 sources.

The specification is the keyword arguments of rockpool's ``XyloSim.from_specification``. Each
time step, in the chip's order:

1. input events (at most 15 per channel and step) are delivered one by one: every event adds
   ``w << weight_shift_in`` to the target synaptic current, saturating at 16 bits after each
   addition; the hidden spikes of the previous step (at most 31 per neuron) are delivered the
   same way through ``weights_rec`` to the hidden neurons and ``weights_out`` to the readout;
2. every neuron decays its currents and membrane by ``x -= x >> dash`` (an arithmetic shift,
   at least one unit towards zero while ``x != 0``), adds the summed currents and the bias to
   its membrane (16-bit saturating), then fires while ``v >= threshold``, subtracting the
   threshold each time: up to 31 spikes per step for hidden neurons, 1 for readout neurons.

The readout's spikes are returned; a hidden spike reaches the readout one step later.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["XyloRun", "simulate", "bitshift_decay", "STATE_BITS", "MAX_INPUT_EVENTS", "MAX_HIDDEN_SPIKES"]

STATE_BITS = 16
MAX_INPUT_EVENTS = 15
MAX_HIDDEN_SPIKES = 31
MAX_OUTPUT_SPIKES = 1
_LOW, _HIGH = -(2 ** (STATE_BITS - 1)), 2 ** (STATE_BITS - 1) - 1


class XyloRun(NamedTuple):
    """A simulation: readout spikes ``output`` ``[T, n_out]``, ``hidden`` spikes ``[T, n_hidden]``,
    membranes ``v_hidden`` and ``v_output`` ``[T, ...]``."""

    output: np.ndarray
    hidden: np.ndarray
    v_hidden: np.ndarray
    v_output: np.ndarray


def bitshift_decay(x: np.ndarray, dash: np.ndarray) -> np.ndarray:
    """``x - max(x >> dash, sign(x))`` elementwise: the chip's decay (at least one unit while ``x != 0``)."""
    step = np.right_shift(x, dash)
    step = np.where((step == 0) & (x != 0), np.sign(x), step)
    return x - step


def _wrap(x: np.ndarray) -> np.ndarray:
    """``x`` stored in a 16-bit two's complement register."""
    return (x - _LOW) % 2**STATE_BITS + _LOW


def _shifted(weights: np.ndarray, shift: int) -> np.ndarray:
    """``w << shift`` stored in the neuron's 16-bit weight input (two's complement, as xylosim's cast)."""
    return _wrap(np.left_shift(weights.astype(np.int64), shift))


def _deliver(isyn: np.ndarray, counts: np.ndarray, weights: np.ndarray, cap: int) -> None:
    """Add each pre-synaptic event's weights to ``isyn`` in order, saturating after every addition."""
    for pre in np.flatnonzero(counts):
        row = weights[pre]
        if not row.any():
            continue
        for _ in range(min(int(counts[pre]), cap)):
            np.clip(isyn + row, _LOW, _HIGH, out=isyn)


def _evolve(isyn: np.ndarray, v: np.ndarray, p: dict, max_spikes: int) -> np.ndarray:
    """One neuron update in place (``isyn [n, synapses]``, ``v [n]``); returns the spike counts."""
    isyn[:] = bitshift_decay(isyn, p["dash_syn"])
    # the decrement is a 16-bit register: -(-32768) (v = -32768 with dash 0) wraps to -32768, as in xylosim
    decrement = _wrap(bitshift_decay(v, p["dash_mem"]) - v)
    dv = np.clip(decrement + isyn.sum(1), _LOW, _HIGH)
    dv = np.clip(dv + p["bias"], _LOW, _HIGH)
    v[:] = np.clip(v + dv, _LOW, _HIGH)
    threshold = p["threshold"]
    spikes = np.where(v >= threshold, np.minimum(max_spikes, v // np.maximum(threshold, 1)), 0)
    v -= spikes * threshold
    return spikes


def _array(spec: dict, key: str, n: int) -> np.ndarray:
    value = spec.get(key)
    return (
        np.zeros(n, np.int64) if value is None else np.broadcast_to(np.asarray(value, np.int64), (n,)).copy()
    )


def simulate(spec: dict, raster: np.ndarray) -> XyloRun:
    """Run the network ``spec`` (``XyloSim.from_specification``'s keyword arguments) on ``raster``.

    Args:
        spec: ``weights_in [n_in, n_hidden, 2]``, ``weights_out [n_hidden, n_out]``, optional
            ``weights_rec [n_hidden, n_hidden, 2]``, ``dash_mem``, ``dash_syn``, ``dash_syn_2``,
            ``threshold``, ``bias`` (hidden) and ``dash_mem_out``, ``dash_syn_out``,
            ``threshold_out``, ``bias_out`` (readout), ``weight_shift_in/rec/out``. Thresholds
            must be positive.
        raster: ``[T, n_in]`` non-negative integer event counts per step.

    Returns:
        :class:`XyloRun` with the readout spikes ``[T, n_out]`` as ``output``.
    """
    raster = np.asarray(raster)
    w_in = np.asarray(spec["weights_in"], np.int64)
    w_in = w_in[..., None] if w_in.ndim == 2 else w_in
    n_in, n_hidden = w_in.shape[:2]
    w_out = np.asarray(spec["weights_out"], np.int64)
    w_rec = spec.get("weights_rec")
    w_rec = (
        np.zeros((n_hidden, n_hidden, w_in.shape[2]), np.int64)
        if w_rec is None
        else np.asarray(w_rec, np.int64)
    )
    w_rec = w_rec[..., None] if w_rec.ndim == 2 else w_rec
    if raster.ndim != 2 or raster.shape[1] != n_in:
        raise ValueError(f"raster must be [T, {n_in}] non-negative counts, got shape {raster.shape}")
    bad = raster[(raster < 0) | (raster != np.round(raster))]
    if bad.size:
        raise ValueError(f"raster must hold non-negative whole event counts, got {bad.flat[0]}")
    n_out = w_out.shape[1]
    hidden = {
        "dash_mem": _array(spec, "dash_mem", n_hidden),
        "bias": _array(spec, "bias", n_hidden),
        "threshold": _array(spec, "threshold", n_hidden),
    }
    dash_syn = [_array(spec, "dash_syn", n_hidden), _array(spec, "dash_syn_2", n_hidden)][: w_in.shape[2]]
    hidden["dash_syn"] = np.stack(dash_syn, 1)
    readout = {
        "dash_mem": _array(spec, "dash_mem_out", n_out),
        "bias": _array(spec, "bias_out", n_out),
        "threshold": _array(spec, "threshold_out", n_out),
        "dash_syn": _array(spec, "dash_syn_out", n_out)[:, None],
    }
    if (hidden["threshold"] <= 0).any() or (readout["threshold"] <= 0).any():
        raise ValueError("thresholds must be positive (a threshold <= 0 fires the maximum every step)")
    # per pre-synaptic neuron: its weights onto every post-synaptic neuron and synapse, pre-shifted
    w_in = _shifted(w_in, int(spec.get("weight_shift_in", 0)))
    w_rec = _shifted(w_rec, int(spec.get("weight_shift_rec", 0)))
    # readout synapses leave the last len(w_out) hidden neurons
    w_out_full = np.zeros((n_hidden, n_out, 1), np.int64)
    w_out_full[n_hidden - len(w_out) :, :, 0] = _shifted(w_out, int(spec.get("weight_shift_out", 0)))
    isyn, v = np.zeros((n_hidden, w_in.shape[2]), np.int64), np.zeros(n_hidden, np.int64)
    isyn_out, v_out = np.zeros((n_out, 1), np.int64), np.zeros(n_out, np.int64)
    previous = np.zeros(n_hidden, np.int64)
    steps = len(raster)
    record = XyloRun(
        np.zeros((steps, n_out), np.int64),
        np.zeros((steps, n_hidden), np.int64),
        np.zeros((steps, n_hidden), np.int64),
        np.zeros((steps, n_out), np.int64),
    )
    for t in range(steps):
        _deliver(isyn, raster[t], w_in, MAX_INPUT_EVENTS)
        _deliver(isyn, previous, w_rec, MAX_HIDDEN_SPIKES)
        _deliver(isyn_out, previous, w_out_full, MAX_HIDDEN_SPIKES)
        previous = _evolve(isyn, v, hidden, MAX_HIDDEN_SPIKES)
        record.hidden[t], record.v_hidden[t] = previous, v
        record.output[t] = _evolve(isyn_out, v_out, readout, MAX_OUTPUT_SPIKES)
        record.v_output[t] = v_out
    return record
