"""A numpy integer reference of a lava-dl netx HDF5 network of CUBA neurons, read from the file alone.

Written from lava's bit-accurate process models (``lava/proc/lif/models.py``:
``PyLifModelBitAcc``, ``lava/proc/dense/models.py``: ``PyDenseModelBitAcc``) and lava-dl's netx
loader (``netx/hdf5.py``: ``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant``, ``bias_exp = 6``):

* a dense or convolution layer sends the weighted sum of the spikes it received one step
  earlier (``a[t] = W s[t - 1]``, ``a[0] = 0``): each layer adds one step of latency;
* ``u = trunc(u * (4096 - iDecay) / 4096) + (a << 6)``, wrapped into 24 bits as lava does;
* ``v = trunc(v * (4096 - vDecay) / 4096) + u + (bias << 6)``, clipped to ``±(2^23 - 1)``;
* a spike where ``v > vThMant << 6``, and there ``v = 0``.

``trunc`` rounds towards zero (lava: ``sign(x) * (|x| >> 12)``).
"""

import os
from typing import NamedTuple

import h5py
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Loihi2Run", "simulate", "cuba_steps"]

_MAX_UV = 2**23  # lava's max_uv_val: 24-bit u and v
_SHIFT = 6  # lava's act_shift, vth_shift and netx's bias_exp


class Loihi2Run(NamedTuple):
    """The spikes of every neuron layer ``[T, B, ...]`` in file order (``layers``); ``output`` is the last layer's."""

    layers: list[np.ndarray]

    @property
    def output(self) -> np.ndarray:
        """The last layer's spikes."""
        return self.layers[-1]


def _trunc_decay(x: np.ndarray, decay: int) -> np.ndarray:
    product = x * (4096 - decay)
    return np.sign(product) * np.right_shift(np.abs(product), 12)


def cuba_steps(a: np.ndarray, neuron: dict, bias: np.ndarray | int = 0) -> np.ndarray:
    """CUBA dynamics over ``[T, ...]`` integer activations ``a`` (already delayed); returns the spikes.

    ``neuron`` holds the layer's netx fields (``iDecay``, ``vDecay``, ``vThMant``); ``bias`` is
    its bias mantissa, added to the voltage every step.
    """
    i_decay, v_decay = int(neuron["iDecay"]), int(neuron["vDecay"])
    threshold = int(neuron["vThMant"]) << _SHIFT
    bias = np.left_shift(np.asarray(bias, np.int64), _SHIFT)
    u = np.zeros(a.shape[1:], np.int64)
    v = np.zeros(a.shape[1:], np.int64)
    spikes = np.zeros(a.shape, np.int64)
    for t, activation in enumerate(a):
        summed = _trunc_decay(u, i_decay) + np.left_shift(activation, _SHIFT)
        wrapped = np.where(summed > _MAX_UV, summed - 2 * _MAX_UV, summed)
        u = np.where(wrapped <= -_MAX_UV, summed + 2 * _MAX_UV, wrapped)
        v = np.clip(_trunc_decay(v, v_decay) + u + bias, -_MAX_UV + 1, _MAX_UV - 1)
        fired = v > threshold
        spikes[t] = fired
        v = np.where(fired, 0, v)
    return spikes


def _dense(x: np.ndarray, weight: np.ndarray, label: str) -> np.ndarray:
    flat = x.reshape(*x.shape[:2], -1)
    if flat.shape[2] != weight.shape[1]:
        raise ValueError(f"layer {label}: takes {weight.shape[1]} inputs, got [T, B, ...] shape {list(x.shape)}")
    return flat @ weight.T


def _conv(x: np.ndarray, layer: h5py.Group, weight: np.ndarray, label: str) -> np.ndarray:
    groups = int(np.asarray(layer["groups"])) if "groups" in layer else 1
    dilation = np.broadcast_to(np.asarray(layer["dilation"]) if "dilation" in layer else 1, (2,))
    if groups != 1 or tuple(dilation) != (1, 1):
        raise ValueError(
            f"layer {label}: groups={groups}, dilation={tuple(dilation)} (this reference: 1 and 1 only)"
        )
    stride = np.broadcast_to(np.asarray(layer["stride"]), (2,))
    padding = np.broadcast_to(np.asarray(layer["padding"]), (2,))
    weight = weight.reshape(weight.shape[:4])  # slayer writes [out, in, kH, kW(, 1)]
    if x.ndim != 5 or x.shape[2] != weight.shape[1]:
        raise ValueError(f"layer {label}: takes [T, B, {weight.shape[1]}, H, W], got shape {list(x.shape)}")
    steps, batch = x.shape[:2]
    folded = x.reshape(steps * batch, *x.shape[2:])
    folded = np.pad(folded, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))
    windows = sliding_window_view(folded, weight.shape[2:], axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    y = np.einsum("nchwij,ocij->nohw", windows, weight)
    return y.reshape(steps, batch, *y.shape[1:])


def simulate(path: str | os.PathLike, spikes: np.ndarray) -> Loihi2Run:
    """Run the netx file at ``path`` on input ``spikes`` ``[T, B, ...]`` (0/1 or small integers).

    Supported layer types: ``dense``, ``conv`` (groups 1, dilation 1) and ``flatten``; anything
    else raises ``ValueError`` naming the layer. Layer ``i``'s spikes at step ``t`` answer the input
    of step ``t - (i + 1)`` (one step per dense or convolution layer).
    """
    x = np.asarray(spikes).astype(np.int64)
    if x.ndim < 3:
        raise ValueError(f"spikes must be [T, B, ...], got shape {x.shape}")
    recorded = []
    with h5py.File(path, "r") as f:
        group = f["layer"]
        for label in sorted(group, key=int):
            layer = group[label]
            kind = layer["type"][0].decode("ascii")
            if kind == "flatten":
                x = x.reshape(*x.shape[:2], -1)
                continue
            if kind not in ("dense", "conv"):
                raise ValueError(f"{path}: layer {label}: type {kind!r} (dense, conv and flatten only)")
            weight = layer["weight"][()].astype(np.int64)
            a = _dense(x, weight, label) if kind == "dense" else _conv(x, layer, weight, label)
            delayed = np.concatenate([np.zeros_like(a[:1]), a[:-1]])
            neuron = {key: layer["neuron"][key][()] for key in ("iDecay", "vDecay", "vThMant")}
            bias = layer["bias"][()].astype(np.int64) if "bias" in layer else 0
            if kind == "conv" and np.ndim(bias):
                bias = bias.reshape(-1, 1, 1)
            x = cuba_steps(delayed, neuron, bias)
            recorded.append(x)
    return Loihi2Run(recorded)
