"""Write a model as a NIR file, checked by reading it back: what ``neurodata export --target nir`` does."""

from __future__ import annotations

import os
from typing import Any

import nir
import torch
from torch import nn

from neurodata.localfs import atomic_output

from ..artefacts import sample_spikes
from .export import to_nir
from .importer import from_nir


def save(model: nn.Module, path: str | os.PathLike, input_shape: tuple[int, ...], dt: float = 1e-4) -> dict[str, Any]:
    """Export ``model`` to NIR at ``path`` (atomically) and report how faithfully the file runs.

    Parameters:
        model: an :mod:`snn` model (see :func:`hw.nir.to_nir` for what exports).
        path: the ``.nir`` file to write; nothing is left there when the export fails.
        input_shape: one sample's input shape, without time and batch (e.g. ``(2, 128, 128)``).
        dt: the step, in seconds, the discrete model is taken to run at.

    Returns:
        ``{"target", "path", "nodes", "edges", "bytes", "check"}``: ``check`` compares the model's
        per-step outputs with those of the file read back (``nir.read`` then :func:`hw.nir.from_nir`)
        on seeded sample spikes: ``equal`` (bit for bit), ``differing_outputs``,
        ``max_abs_difference`` and ``batch_norm_folded`` (the one source of differences: folding
        rounds differently from running batch norm).
    """
    graph = to_nir(model, input_shape, dt=dt)
    with atomic_output(path, "w+b") as handle:
        nir.write(handle, graph)
    reread = from_nir(nir.read(os.fspath(path)), dt=dt)
    x = sample_spikes(input_shape)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected, got = model(x), reread(x)
    finally:
        model.train(was_training)
    same_shape = expected.shape == got.shape
    difference = float((expected - got).abs().max()) if same_shape else float("inf")
    differing = int((expected != got).sum()) if same_shape else expected.numel()
    folded = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    return {
        "target": "nir",
        "path": os.fspath(path),
        "nodes": len(graph.nodes),
        "edges": len(graph.edges),
        "bytes": os.path.getsize(path),
        "check": {
            "inputs": list(x.shape),
            "equal": difference == 0.0,
            "differing_outputs": differing,
            "max_abs_difference": difference,
            # folding batch norm into the weights rounds differently from running it: a potential
            # within that rounding of the threshold can spike on one side only
            "batch_norm_folded": folded,
        },
    }
