"""``neurodata export``: a `neurodata train` run folder's model as a hardware or interchange artefact."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import Any

from neurodata.errors import NeurodataError

from .output import emit, number, table


def _nir(model, out: str, input_shape: tuple[int, ...], args: argparse.Namespace) -> dict[str, Any]:
    from hw.nir import save

    return save(model, out, input_shape, dt=args.dt)


def _body(model):
    """What a chip runs: a zoo classifier's body (its per-step output, no readout)."""
    from snn.models import SpikingClassifier

    return model.body if isinstance(model, SpikingClassifier) else model


def _loihi2(model, out: str, input_shape: tuple[int, ...], args: argparse.Namespace) -> dict[str, Any]:
    from hw import loihi2
    from hw.artefacts import sample_spikes

    body = _body(model)
    report = loihi2.export(body, out, input_shape)
    x = sample_spikes(input_shape)
    ours = loihi2.quantize(body).run(x, record=True)
    chip = loihi2.simulate(out, x.numpy()).layers
    differing = sum(
        int((spikes.numpy().reshape(layer.shape) != layer).sum()) for spikes, layer in zip(ours.spikes.values(), chip)
    )
    return {**report, "check": {"inputs": list(x.shape), "equal": differing == 0, "differing_spikes": differing}}


def _xylo(model, out: str, input_shape: tuple[int, ...], args: argparse.Namespace) -> dict[str, Any]:
    from hw import xylo
    from hw.artefacts import sample_spikes

    body = _body(model)
    exported = xylo.export(body)
    report = xylo.save(exported, out)
    x = sample_spikes(input_shape)
    check = xylo.compare(exported, body, x)
    return {**report, "check": {"inputs": list(x.shape), "equal": check["differing"] == 0, **check}}


def _speck(model, out: str, input_shape: tuple[int, ...], args: argparse.Namespace) -> dict[str, Any]:
    from hw import speck
    from hw.artefacts import sample_spikes

    exported = speck.export(_body(model), input_shape)
    report = speck.save(exported, out)
    x = sample_spikes(input_shape)
    check = speck.verify(exported, x)
    return {**report, "check": {"inputs": list(x.shape), "equal": check["differing"] == 0, **check}}


# target -> the function that writes its artefact (and its report) and returns the report with a
# check: the model (quantized as the target computes) against the target's reference on sample spikes
TARGETS: dict[str, Callable[..., dict[str, Any]]] = {"nir": _nir, "loihi2": _loihi2, "xylo": _xylo, "speck": _speck}


def parse_shape(text: str) -> tuple[int, ...]:
    """``"2,128,128"`` -> ``(2, 128, 128)``; one clear error for anything else."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) <= 0:
        raise NeurodataError(f"--input-shape {text!r}: give positive sizes separated by commas, e.g. 2,128,128")
    return shape


def input_shape(args: argparse.Namespace) -> tuple[int, ...]:
    """``--input-shape``, else the channels and size recorded in the run's model.json."""
    if args.input_shape:
        return parse_shape(args.input_shape)
    from snn.models import read_model_spec

    spec = read_model_spec(args.run_dir)
    return (spec.in_channels, *spec.input_size)


def run(args: argparse.Namespace) -> int:
    from snn.models import load_run

    if os.path.isdir(args.out):
        raise NeurodataError(f"{args.out}: is a folder; give the file to write")
    shape = input_shape(args)
    model = load_run(args.run_dir, checkpoint=args.checkpoint)
    try:
        report = TARGETS[args.target](model, args.out, shape, args)
    except ValueError as exc:  # the exporters list every problem at once, each naming its layer
        problems = getattr(exc, "problems", None) or [str(exc)]
        raise NeurodataError(f"{args.run_dir}: cannot export to {args.target}: " + "; ".join(problems)) from None
    report = {"target": args.target, "path": args.out, **report, "run_dir": args.run_dir}
    emit(report, args.json, render)
    return 0


def render(report: dict[str, Any]) -> str:
    check = report.get("check", {})
    rows = [("run", report["run_dir"]), ("target", report["target"]), ("written", report["path"])]
    rows += [(key, report[key]) for key in ("nodes", "edges", "bytes") if key in report]
    if check:
        if check["equal"]:
            verdict = "equal"
        elif "differing_outputs" in check:
            difference = check["max_abs_difference"]
            rounding = check.get("batch_norm_folded") and math.isfinite(difference)
            verdict = f"{check['differing_outputs']} differ (max |difference| {difference:.3g}" + (
                ", batch norm folded into the weights rounds differently)" if rounding else ")"
            )
        else:
            verdict = f"{check.get('differing_spikes', check.get('differing'))} spikes differ"
        rows.append(("check", f"against the reference on sample spikes {check['inputs']}: {verdict}"))
    return table(rows)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("export")
    p.add_argument("run_dir", help="a `neurodata train` run folder (model.json + best.pt)")
    p.add_argument("out", help="the artefact to write (e.g. model.nir)")
    p.add_argument("--target", required=True, choices=sorted(TARGETS), help="what to export to")
    p.add_argument("--input-shape", help="one sample's input without batch, e.g. 2,128,128 (default: from model.json)")
    p.add_argument("--dt", type=number(float, above=0), default=1e-4, help="seconds per time step (NIR's continuous time; default 1e-4)")
    p.add_argument("--checkpoint", default="best.pt", help="the weights file in RUN_DIR (default best.pt)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
