"""``fit``: the epoch loop with checkpoints, exact resume, best-model export, early stopping and logs.

Run directory layout (``config.run_dir``; written by rank 0 only)::

    config.json     the TrainConfig of the run
    last.pt         checkpoint after the latest epoch (atomic): model, optimizer, scheduler, scaler,
                    RNG states of every rank, history, early-stopping state
    best.pt         state dict of the best model so far (by ``config.monitor``)
    best.json       its epoch, metrics and config
    metrics.csv     one row per epoch
    tensorboard/    scalars, when the ``tensorboard`` package is installed
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import distributed as D
from .checkpoint import (
    LAST,
    atomic_save,
    atomic_write_text,
    capture_rng,
    export_best,
    load_checkpoint,
    restore_rng,
)
from .config import TrainConfig
from .engine import evaluate, make_scaler, silence_warning, train_epoch
from .logs import RunLogger
from .optim import lr_factor, make_optimizer, make_scheduler

Callback = Callable[[dict[str, Any], nn.Module], None]
LOG = logging.getLogger("snn.train")


@dataclass
class FitResult:
    """What a run produced.

    Attributes:
        history: One metrics row per epoch (``epoch``, ``train_*``, ``val_*``, ``lr``, ...).
        best_epoch: The epoch (1-based) with the best monitored value, or None before one.
        best_value: That epoch's monitored value.
        stopped_early: Whether ``patience`` ended the run before ``epochs``.
        run_dir: The run folder, or None when the config wrote none.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    stopped_early: bool = False
    run_dir: Path | None = None


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's (with ``seed`` modulo 2**32) and torch's global generators with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _improved(value: float, best: float | None, minimise: bool) -> bool:
    if math.isnan(value):
        return False
    return best is None or (value < best if minimise else value > best)


def _monitor_name(config: TrainConfig, has_val: bool) -> str:
    """The monitored metric; a ``val_*`` metric falls back to ``train_*`` when there is no validation loader."""
    if config.monitor.startswith("val_") and not has_val:
        return "train_" + config.monitor[4:]
    return config.monitor


def _checkpoint(
    model, optimizer, scheduler, scaler, loader, state: dict[str, Any], config: TrainConfig
) -> dict[str, Any]:
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": D.gather_objects(capture_rng(getattr(loader, "generator", None))),
        "config": config.to_dict(),
        **state,
    }


class ResumeError(ValueError):
    """A resume whose config differs from the run's in fields that decide what is trained.

    Args:
        checkpoint: The run's ``last.pt``.
        conflicts: One ``"name: value (the run has saved)"`` per field (:func:`resume_conflicts`).
    """

    def __init__(self, checkpoint: str, conflicts: list[str]) -> None:
        self.checkpoint, self.conflicts = checkpoint, list(conflicts)
        super().__init__(f"{checkpoint}: cannot resume with another {'; '.join(self.conflicts)}")

    def __reduce__(self):  # raised in data-parallel workers, re-raised in their parent
        return type(self), (self.checkpoint, self.conflicts)


RESUMABLE_CHANGES = ("epochs", "patience", "progress", "run_dir", "device", "activity", "splits")


def resume_conflicts(saved: dict[str, Any], config: TrainConfig) -> list[str]:
    """The fields of ``config`` that differ from the ``saved`` config of the run being resumed,
    as ``"name: value (the run has saved)"``; only :data:`RESUMABLE_CHANGES` may differ (more
    epochs, other patience, where it runs and what it shows), the rest decide what is trained.

    Args:
        saved: The config stored in the run's ``last.pt``.
        config: The config of the resuming call.
    """
    new = config.to_dict()
    return [
        f"{name}: {new[name]!r} (the run has {saved[name]!r})"
        for name in sorted(new)
        if name not in RESUMABLE_CHANGES and name in saved and saved[name] != new[name]
    ]


def fit(
    model: nn.Module,
    train_loader,
    val_loader=None,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> FitResult:
    """Train ``model`` and return a :class:`FitResult`.

    ``train_loader`` / ``val_loader`` yield ``(input, target)`` batches (see :class:`TrainConfig`
    for the input layout). With ``resume=True`` and a ``last.pt`` in ``config.run_dir`` the run
    continues exactly where it stopped (same weights, optimizer moments, learning rate, data order
    and random draws as an uninterrupted run); without a checkpoint it starts afresh. Only the
    fields of :data:`RESUMABLE_CHANGES` may differ from the run's config (a ValueError names the
    others, as a :class:`ResumeError`); with more ``epochs`` the schedule follows the new count
    from the next epoch on. When a
    ``torch.distributed`` process group is initialised, training is data-parallel (see
    :mod:`snn.train.distributed`). ``callbacks`` run on every rank after each epoch as
    ``callback(metrics_row, model)``, after the checkpoint is written. An epoch in which a spiking
    layer did not fire on the validation data logs one warning on the ``"snn.train"`` logger
    naming the layers (:func:`snn.train.engine.silence_warning`).
    """
    config = config or TrainConfig()
    device = torch.device(config.device)
    is_main = D.rank() == 0
    run_dir = Path(config.run_dir) if config.run_dir else None
    monitor = _monitor_name(config, val_loader is not None)

    model.to(device)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    scaler = make_scaler(config, device)
    state: dict[str, Any] = {
        "epoch": 0,
        "history": [],
        "best_epoch": None,
        "best_value": None,
        "bad_epochs": 0,
        "stopped": False,
    }

    checkpoint_path = run_dir / LAST if run_dir else None
    if resume and checkpoint_path is not None and checkpoint_path.is_file():
        saved = load_checkpoint(checkpoint_path)  # on CPU: RNG states must stay there
        conflicts = resume_conflicts(saved.get("config") or {}, config)
        if conflicts:
            raise ResumeError(str(checkpoint_path), conflicts)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        for group, base in zip(optimizer.param_groups, scheduler.base_lrs, strict=True):
            # the rate of the next epoch under this config's schedule (epochs may have been raised)
            group["lr"] = base * lr_factor(scheduler.last_epoch, config)
        scaler.load_state_dict(saved["scaler"])
        restore_rng(saved["rng"][D.rank() % len(saved["rng"])], getattr(train_loader, "generator", None))
        state = {key: saved[key] for key in state}
    else:
        seed_everything(config.seed + D.rank())
    if is_main and run_dir is not None:
        atomic_write_text(json.dumps(config.to_dict(), indent=2) + "\n", run_dir / "config.json")

    net = D.wrap_model(model, device)
    train_loader = D.shard_train_loader(train_loader, config.seed)
    val_loader = D.shard_eval_loader(val_loader) if val_loader is not None else None
    logger = RunLogger(run_dir) if is_main and run_dir is not None else None
    local = dataclasses.replace(config, progress=config.progress and is_main)  # bars on rank 0 only
    first = config.epochs if state["stopped"] else state["epoch"]
    try:
        for epoch in range(first, config.epochs):
            sampler = getattr(train_loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            started = time.perf_counter()
            row: dict[str, Any] = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
            train = train_epoch(net, train_loader, optimizer, scaler, local, device, f"epoch {epoch + 1}")
            row.update({f"train_{k}": v for k, v in train.items() if k != "samples"})
            if val_loader is not None:
                val = evaluate(model, val_loader, local, device, "validate")
                row.update({f"val_{k}": v for k, v in val.items() if k != "samples"})
                warning = silence_warning(epoch + 1, row)
                if warning is not None and is_main:
                    LOG.warning(warning)
            scheduler.step()
            row["epoch_seconds"] = time.perf_counter() - started

            value = float(row[monitor])
            if _improved(value, state["best_value"], config.minimise):
                state.update(best_epoch=epoch + 1, best_value=value, bad_epochs=0)
                if is_main and run_dir is not None:
                    meta = {
                        "epoch": epoch + 1,
                        "monitor": monitor,
                        "value": value,
                        "metrics": row,
                        "config": config.to_dict(),
                    }
                    export_best(run_dir, model.state_dict(), meta)
            else:
                state["bad_epochs"] += 1
            state["history"] = state["history"] + [row]
            state["epoch"] = epoch + 1
            state["stopped"] = config.patience is not None and state["bad_epochs"] >= config.patience
            if run_dir is not None:
                payload = _checkpoint(model, optimizer, scheduler, scaler, train_loader, state, config)
                if is_main:
                    atomic_save(payload, checkpoint_path)
                    logger.log(state["history"])
                D.barrier()
            for callback in callbacks:
                callback(row, model)
            if state["stopped"]:
                break
    finally:
        if logger is not None:
            logger.close()
    return FitResult(state["history"], state["best_epoch"], state["best_value"], state["stopped"], run_dir)
