"""Stable cache keys for precomputed representations (used by the Zarr cache).

The key hashes the representation type, every parameter, the sensor size and ``RULES_VERSION``,
so changing any of them (or the binning rules themselves, by bumping the version) gives a new key.
Equal values spelled differently (tuple vs list, 10 vs 10.0, numpy vs Python scalars, key order)
give the same key.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np

RULES_VERSION = 1


def _canonical(value: Any, where: str) -> Any:
    """A JSON-ready, order-independent form of a spec value."""
    if isinstance(value, dict):
        return {
            str(k): _canonical(v, f"{where}.{k}") for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
        }
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(list(value))]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"spec field {where} is {value}; keys need finite numbers")
        return int(value) if value.is_integer() else value
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (np.dtype, type)):
        return np.dtype(value).name
    raise TypeError(f"spec field {where} has unsupported type {type(value).__name__}")


def representation_key(spec: dict) -> str:
    """``"<type>-<24 hex digits>"`` for a spec such as ``{"type": "frame", "sensor_size": (34, 34, 2),
    "n_time_bins": 10}``. ``type`` and ``sensor_size`` are required; None-valued fields are ignored."""
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str) or not spec["type"]:
        raise ValueError("spec must be a dict with a non-empty string 'type'")
    if spec.get("sensor_size") is None:
        raise ValueError("spec must include 'sensor_size' (width, height, polarities)")
    fields = {k: v for k, v in spec.items() if v is not None}
    payload = {"rules_version": RULES_VERSION, "spec": _canonical(fields, "spec")}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"{spec['type']}-{digest[:24]}"
