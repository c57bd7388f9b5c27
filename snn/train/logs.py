"""Run logs: ``metrics.csv`` (always), TensorBoard scalars (when ``tensorboard`` is installed), progress bars."""

from __future__ import annotations

import csv
import importlib.util
import io
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .checkpoint import atomic_write_text

METRICS_CSV = "metrics.csv"
TENSORBOARD_DIR = "tensorboard"


def history_csv(history: list[dict[str, Any]]) -> str:
    """The per-epoch metrics rows of ``history`` as CSV text; columns in first-seen order, missing
    values left empty."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


def read_history(run_dir: str | Path) -> list[dict[str, float]]:
    """The rows of a run's ``metrics.csv`` with numbers parsed (empty cells dropped).

    Args:
        run_dir: The run folder (``TrainConfig.run_dir``).

    Returns:
        One dict per epoch, column name -> float, in epoch order.
    """
    with open(Path(run_dir) / METRICS_CSV, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


class RunLogger:
    """Writes a run's metrics: the whole CSV rewritten atomically each epoch (so a resumed run's CSV
    holds exactly the epochs of its checkpoint), plus TensorBoard scalars when available.

    Args:
        run_dir: The run folder that receives ``metrics.csv`` and ``tensorboard/``.
        tensorboard: Write TensorBoard scalars too, when the package is installed.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.run_dir = run_dir
        self.writer = None
        if tensorboard and importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR))

    def log(self, history: list[dict[str, Any]]) -> None:
        """Rewrite ``metrics.csv`` from ``history`` and add its last row to TensorBoard."""
        atomic_write_text(history_csv(history), self.run_dir / METRICS_CSV)
        if self.writer is not None:
            row = history[-1]
            for key, value in row.items():
                if key != "epoch":
                    self.writer.add_scalar(key, value, int(row["epoch"]))
            self.writer.flush()

    def close(self) -> None:
        """Close the TensorBoard writer, if any."""
        if self.writer is not None:
            self.writer.close()


def progress(iterable: Iterable, description: str, enabled: bool, total: int | None = None) -> Iterable:
    """A tqdm bar over ``iterable`` labelled ``description`` (of ``total`` steps, None for its
    length) on stderr when ``enabled`` and stderr is a terminal; the bare iterable otherwise."""
    if not (enabled and sys.stderr.isatty()):
        return iterable
    return tqdm(iterable, desc=description, total=total, leave=False, file=sys.stderr, dynamic_ncols=True)
