"""A run folder rebuilds its model: ``model.json`` (what to build) beside the weights (``best.pt``).

``neurodata train`` writes ``model.json`` next to ``best.pt``::

    {"format": "snn-run-model", "version": 1, "model": "dvsgesture-net",
     "options": {"channels": 128, ...}, "in_channels": 2, "input_size": [128, 128],
     "num_classes": 11, "class_names": [...], "representation": {"type": "frame", "n_time_bins": 16, ...},
     "input": {"downsample_to": null, "scale": "log1p"}, "readout": "mean"}

and :func:`load_run` turns the folder back into the trained network.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from neurodata.errors import NeurodataError, PathNotFoundError
from neurodata.localfs import write_atomic

from .registry import available, build

__all__ = ["MODEL_JSON", "ModelSpec", "RunError", "load_run", "read_model_spec", "write_model_spec"]

MODEL_JSON = "model.json"
FORMAT = "snn-run-model"
VERSION = 1


class RunError(NeurodataError, ValueError):
    """A run folder's ``model.json`` or checkpoint cannot rebuild the model; the message names the file."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything that rebuilds a trained zoo model and feeds it as in training.

    Parameters
    ----------
    model: the zoo name (:func:`snn.models.build`).
    in_channels, input_size, num_classes: the geometry the model was built with (``input_size`` is
        ``(height, width)``).
    options: the other build options (JSON values), e.g. ``{"channels": 64}``.
    representation: the input representation's spec (``ToFrame(...).spec()``: ``n_time_bins`` is T).
    input: how frames were prepared beyond the representation (``downsample_to``, ``scale``).
    readout: the trainer's readout over the model's per-step ``[T, B, C]`` output (``"mean"``).
    class_names: the label names by index, when the data set has them.
    """

    model: str
    in_channels: int
    input_size: tuple[int, int]
    num_classes: int
    options: dict[str, Any] = field(default_factory=dict)
    representation: dict[str, Any] | None = None
    input: dict[str, Any] = field(default_factory=dict)
    readout: str = "mean"
    class_names: tuple[str, ...] | None = None

    def build(self) -> nn.Module:
        """A freshly initialised model of this spec."""
        geometry = {
            "in_channels": self.in_channels,
            "input_size": tuple(self.input_size),
            "num_classes": self.num_classes,
        }
        return build(self.model, **geometry, **self.options)

    def to_dict(self) -> dict[str, Any]:
        """The spec as the JSON object of ``model.json`` (with its format and version)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": self.model,
            "options": self.options,
            "in_channels": self.in_channels,
            "input_size": list(self.input_size),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names) if self.class_names is not None else None,
            "representation": self.representation,
            "input": self.input,
            "readout": self.readout,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = MODEL_JSON) -> ModelSpec:
        """Inverse of :meth:`to_dict` on the parsed ``values``; ``source`` (the file) is named in errors."""
        if not isinstance(values, dict) or values.get("format") != FORMAT:
            raise RunError(f"{source}: not a model description (no \"format\": \"{FORMAT}\")")
        if values.get("version") != VERSION:
            raise RunError(f"{source}: model.json version {values.get('version')!r}; this snn reads {VERSION}")
        missing = [k for k in ("model", "in_channels", "input_size", "num_classes") if k not in values]
        if missing:
            raise RunError(f"{source}: missing field(s) {', '.join(missing)}")
        names = values.get("class_names")
        size = values["input_size"]
        if not (isinstance(size, list) and len(size) == 2):
            raise RunError(f"{source}: input_size is {size!r}, not [height, width]")
        return cls(
            model=str(values["model"]),
            in_channels=_size(values["in_channels"], "in_channels", source),
            input_size=(_size(size[0], "input_size", source), _size(size[1], "input_size", source)),
            num_classes=_size(values["num_classes"], "num_classes", source),
            options=dict(values.get("options") or {}),
            representation=values.get("representation"),
            input=dict(values.get("input") or {}),
            readout=str(values.get("readout", "mean")),
            class_names=tuple(names) if names is not None else None,
        )


def _size(value: Any, name: str, source: str) -> int:
    """``value`` of field ``name`` when it is a whole number of at least 1; else RunError naming ``source``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RunError(f"{source}: {name} is {value!r}, not a whole number of at least 1")
    return value


def write_model_spec(run_dir: str | os.PathLike, spec: ModelSpec) -> Path:
    """Write ``spec`` to ``run_dir/model.json`` atomically (the folder is created when missing); returns its path."""
    path = Path(run_dir) / MODEL_JSON
    write_atomic(path, json.dumps(spec.to_dict(), indent=2) + "\n", durable=False, parents=True)
    return path


def read_model_spec(run_dir: str | os.PathLike) -> ModelSpec:
    """The :class:`ModelSpec` of the ``model.json`` in the run folder ``run_dir``."""
    path = Path(run_dir) / MODEL_JSON
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PathNotFoundError(
            f"{path}: no such file; a run folder written by `neurodata train` describes its model there"
        ) from None
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise RunError(f"{path}: not valid JSON ({exc})") from None
    return ModelSpec.from_dict(values, str(path))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def load_run(
    run_dir: str | os.PathLike, *, checkpoint: str = "best.pt", map_location: str | torch.device = "cpu"
) -> nn.Module:
    """The trained model of a run folder, in eval mode: built from ``model.json``, weights from
    ``checkpoint`` (``best.pt``, or ``last.pt`` for the latest epoch), read with
    ``torch.load(weights_only=True)``.

    Parameters
    ----------
    run_dir: the run folder (``neurodata train --out``).
    checkpoint: the weights file in ``run_dir``: a state dict, or a training checkpoint holding one
        under ``"model"``.
    map_location: where the weights are loaded (``torch.load``'s ``map_location``).

    Raises :class:`neurodata.errors.PathNotFoundError` (a ``FileNotFoundError``) for a missing
    ``model.json`` or checkpoint, :class:`RunError` for an unknown zoo name or weights whose shapes
    do not fit the described model; each message names the file.
    """
    run_dir = Path(run_dir)
    spec = read_model_spec(run_dir)
    if spec.model not in available():
        raise RunError(
            f"{run_dir / MODEL_JSON}: unknown model {spec.model!r}; this snn has {', '.join(available())}"
        )
    try:
        model = spec.build()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise RunError(f"{run_dir / MODEL_JSON}: cannot build {spec.model!r}: {_first_line(exc)}") from None
    weights = run_dir / checkpoint
    try:
        state = torch.load(weights, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise PathNotFoundError(f"{weights}: no such file") from None
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        # a damaged or foreign file: torch's zip reader, its restricted unpickler, or the OS
        raise RunError(f"{weights}: not a checkpoint torch.load can read ({_first_line(exc)})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a training checkpoint (last.pt)
    if not isinstance(state, dict):
        raise RunError(f"{weights}: holds a {type(state).__name__}, not a state dict (or a checkpoint with one)")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise RunError(
            f"{weights}: the weights do not fit the model {run_dir / MODEL_JSON} describes: {detail}"
        ) from None
    return model.to(map_location).eval()
