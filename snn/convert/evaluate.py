"""Accuracy of a converted network after each number of time steps, in one pass, and its plot.

A network's per-step outputs ``[T, B, classes]`` are summed cumulatively: the prediction after
``t`` steps is the class with the largest sum of the first ``t`` outputs, so one run of
``max(timesteps)`` steps answers every ``t`` at once. Static inputs (images) are repeated at every
step (constant current); event sequences are read as they come (``[B, T, ...]``, or
``[T, B, ...]`` when ``time_major`` says so or the batch declares it) and must have at least
``max(timesteps)`` steps.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from neurodata.localfs import atomic_output

from ..train.layout import batch_time_major, to_time_major

__all__ = ["accuracy_vs_timesteps", "plot_accuracy_vs_timesteps"]

PLOT_EXTRA = "plot_accuracy_vs_timesteps needs matplotlib: pip install 'neurodata[plot]'"


def _check_timesteps(timesteps: Sequence[int]) -> list[int]:
    steps = sorted(set(timesteps))
    if not steps or any(int(t) != t or t < 1 for t in steps):
        raise ValueError(f"timesteps: expected positive integers, got {tuple(timesteps)!r}")
    return [int(t) for t in steps]


def _is_static(model: nn.Module, x: torch.Tensor, static: bool | None) -> bool:
    if static is not None:
        return static
    shape = getattr(model, "input_shape", None)
    if shape is None:
        raise ValueError(
            "static: the model does not record its input shape; pass static=True for inputs to repeat "
            "at every step or static=False for sequences"
        )
    if x.ndim not in (len(shape) + 1, len(shape) + 2):
        raise ValueError(f"x: a batch of shape {tuple(x.shape)} fits neither [B, *{shape}] nor a sequence of it")
    return x.ndim == len(shape) + 1


def accuracy_vs_timesteps(
    snn_model: nn.Module,
    loader: Iterable[Any],
    timesteps: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
    *,
    static: bool | None = None,
    time_major: bool | None = None,
    device: torch.device | str | None = None,
) -> dict[int, float]:
    """Top-1 accuracy of ``snn_model`` after each number of steps in ``timesteps``, from one run of the longest.

    Args:
        snn_model: a multi-step network, ``[T, B, ...]`` in, per-step ``[T, B, classes]`` out
            (a :class:`~snn.convert.ConvertedSNN`, or any such module).
        loader: ``(x, y)`` batches: ``x`` static ``[B, ...]`` or a sequence, ``y`` class indices ``[B]``.
        timesteps: the numbers of steps to report.
        static: whether ``x`` is static (repeated at every step); None: decided from the model's
            ``input_shape`` (a :class:`~snn.convert.ConvertedSNN` records it).
        time_major: sequences are ``[T, B, ...]`` (True) or ``[B, T, ...]`` (False); None: as the
            batch declares, else ``[B, T, ...]``.
        device: where to run; None: the model's device.

    Returns:
        ``{T: accuracy in [0, 1]}`` for each ``T`` of ``timesteps``.
    """
    steps = _check_timesteps(timesteps)
    longest = steps[-1]
    if device is None:
        device = next((p.device for p in snn_model.parameters()), torch.device("cpu"))
    correct = dict.fromkeys(steps, 0)
    total = 0
    was_training = snn_model.training
    snn_model.eval()
    try:
        with torch.no_grad():
            for batch in loader:
                if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                    raise ValueError(f"loader: expected (x, y) batches, got {type(batch).__name__}")
                x, y = torch.as_tensor(batch[0]), torch.as_tensor(batch[1]).to(device)
                if _is_static(snn_model, x, static):
                    x_seq = x.to(device).unsqueeze(0).expand(longest, *x.shape)
                else:
                    x_seq = to_time_major(x, batch_time_major(batch, time_major), len(y)).to(device)
                    if x_seq.shape[0] < longest:
                        raise ValueError(
                            f"timesteps: {longest} steps asked for, but the sequences have {x_seq.shape[0]}"
                        )
                    x_seq = x_seq[:longest]
                running = snn_model(x_seq).float().cumsum(0)
                for t in steps:
                    correct[t] += int((running[t - 1].argmax(-1) == y).sum())
                total += len(y)
    finally:
        snn_model.train(was_training)
    if total == 0:
        raise ValueError("loader: no samples")
    return {t: correct[t] / total for t in steps}


def plot_accuracy_vs_timesteps(
    curves: Mapping[str, Mapping[int, float]],
    path: str | os.PathLike,
    *,
    ann_accuracy: float | None = None,
    title: str = "accuracy vs time steps",
) -> str:
    """Draw accuracy against time steps (log-scaled) to the PNG ``path``, written atomically.

    Args:
        curves: ``{label: {T: accuracy}}``, e.g. ``{"max": accuracy_vs_timesteps(...)}``.
        path: the PNG file to write (its folder must exist).
        ann_accuracy: the ANN's accuracy, drawn as a horizontal line.
        title: the figure's title.

    Returns:
        ``path`` as a string.
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(PLOT_EXTRA) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for label, points in curves.items():
        ts = sorted(points)
        ax.plot(ts, [100 * points[t] for t in ts], marker="o", label=label)
    if ann_accuracy is not None:
        ax.axhline(100 * ann_accuracy, color="black", linestyle="--", label="ANN")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("time steps T")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    with atomic_output(path, durable=False) as fileobj:
        fig.savefig(fileobj, format="png", dpi=100)
    plt.close(fig)
    return os.fspath(path)
