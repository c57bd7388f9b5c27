"""What the chip exporters share: their error, and writing an artefact with its JSON report.

Every exporter collects all the problems of a model first and raises one :class:`HwError` that
lists them; the artefact and its report are written only when nothing is wrong, each through
:func:`neurodata.localfs.atomic_output`, so a failed export leaves no partial file behind.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from neurodata.localfs import atomic_output

__all__ = ["HwError", "raise_problems", "report_path", "sample_spikes", "write_with_report", "write_npz"]


class HwError(ValueError):
    """A model that does not fit a target; ``problems`` lists every reason, each naming its layer."""

    def __init__(self, target: str, problems: list[str]) -> None:
        self.target, self.problems = target, list(problems)
        super().__init__(f"cannot export to {target}: " + "; ".join(self.problems))

    def __reduce__(self):  # raised in worker processes, re-raised in their parent
        return type(self), (self.target, self.problems)


def raise_problems(target: str, problems: list[str]) -> None:
    """Raise :class:`HwError` naming the export ``target`` when ``problems`` is not empty."""
    if problems:
        raise HwError(target, problems)


def report_path(path: str | os.PathLike) -> Path:
    """The JSON report beside the artefact at ``path``: ``net.npz`` -> ``net.json`` (``net.json`` -> ``net.json.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".json") if path.suffix == ".json" else path.with_suffix(".json")


def write_npz(arrays: dict[str, np.ndarray]) -> Callable[[IO[bytes]], None]:
    """A writer of ``arrays`` as an uncompressed ``.npz`` (no pickled objects) for :func:`write_with_report`."""

    def write(fileobj: IO[bytes]) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        fileobj.write(buffer.getvalue())

    return write


def write_with_report(path: str | os.PathLike, write: Callable[[IO[bytes]], None], report: dict) -> dict:
    """Write the artefact (``write`` fills a binary file) at ``path`` and ``report`` as JSON beside it.

    Both go to temporary files first: an error while writing leaves neither behind (and a
    previous pair untouched); on success the artefact is published, then its report. Returns ``report`` with
    ``"artefact"`` and ``"report"`` paths added.
    """
    path = Path(path)
    sidecar = report_path(path)
    report = {**report, "artefact": str(path), "report": str(sidecar)}
    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    # the artefact is published when the inner block ends, the report when the outer one does
    with atomic_output(sidecar, "w") as side:
        with atomic_output(path) as fileobj:
            write(fileobj)
        side.write(text)
    return report


def sample_spikes(input_shape: tuple[int, ...], steps: int = 8, batch: int = 2, seed: int = 0):
    """Seeded Bernoulli spikes ``[steps, batch, *input_shape]`` (a float tensor, 10 % of the slots
    set): the inputs an export report runs the model and the target's reference on.

    Args:
        input_shape: one sample's input shape, without time and batch.
        steps: time steps.
        batch: samples.
        seed: the generator's seed.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    return (torch.rand((steps, batch, *input_shape), generator=generator) < 0.1).float()
