"""One pass over a loader: a training epoch or an evaluation, as functions of explicit arguments.

Both return summed metrics reduced over ranks (exact when distributed): mean loss, accuracy and
the number of samples; evaluation adds per-layer firing rates and synaptic operations per sample
measured with :mod:`snn.monitor`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from ..monitor import FiringRateMonitor, SynOpsMonitor
from ..neurons import Neuron
from .config import TrainConfig
from .distributed import all_reduce_sum
from .layout import batch_time_major, to_time_major
from .logs import progress
from .losses import loss_fn, readout


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype:
    """The autocast dtype on ``device``: bfloat16 on CPU and float16 on CUDA unless
    ``config.amp_dtype`` names one."""
    if config.amp_dtype == "bf16" or (config.amp_dtype == "auto" and device.type != "cuda"):
        return torch.bfloat16
    return torch.float16


def autocast(config: TrainConfig, device: torch.device):
    """The mixed-precision context of the forward pass on ``device`` (a no-op context when
    ``config.amp`` is off)."""
    if not config.amp:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype(config, device))


def make_scaler(config: TrainConfig, device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler for ``device``, enabled only when ``config`` asks for float16 autocast
    (bfloat16 has float32's exponent range)."""
    enabled = config.amp and amp_dtype(config, device) == torch.float16
    return torch.amp.GradScaler(device.type, enabled=enabled)


def _batch(batch: Any, config: TrainConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x [T, B, ...] float, y [B] long)`` on ``device`` from a loader's ``(input, target)`` batch."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise ValueError(f"fit: the loader must yield (input, target) pairs, got {type(batch).__name__}")
    x, y = torch.as_tensor(batch[0]), torch.as_tensor(batch[1])
    x = to_time_major(x, batch_time_major(batch, config.time_major), len(y)).to(device, non_blocking=True)
    if not x.is_floating_point():
        x = x.float()
    return x, y.to(device, non_blocking=True).long()


def train_epoch(
    model: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    config: TrainConfig,
    device: torch.device,
    description: str = "train",
) -> dict[str, float]:
    """One optimisation pass of ``model`` over ``loader``; returns ``{"loss", "accuracy", "samples"}``.

    Args:
        model: The network, in train mode for the pass.
        loader: Yields ``(input, target)`` batches.
        optimizer: Steps the parameters after each batch.
        scaler: The gradient scaler of :func:`make_scaler` (a no-op unless float16 autocast).
        config: Layout, readout, loss, mixed precision, gradient clipping and progress bars.
        device: Where batches go.
        description: The progress bar's label and the context of a non-finite loss error.
    """
    model.train()
    loss_sum = correct = samples = 0.0
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    for index, batch in enumerate(progress(loader, description, config.progress)):
        x, y = _batch(batch, config, device)
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise FloatingPointError(f"fit: batch {index} of {description} holds NaN or infinite input values")
        optimizer.zero_grad(set_to_none=True)
        with autocast(config, device):
            output = model(x)
        scores = readout(output, config.readout, len(y))
        loss = loss_fn(config.loss, scores, y)
        if not scaler.is_enabled() and not torch.isfinite(loss):
            raise FloatingPointError(
                f"fit: the loss became {float(loss)} ({description}); lower the learning rate"
            )
        scaler.scale(loss).backward()
        if config.grad_clip is not None:
            scaler.unscale_(optimizer)
        with_grads = [(name, p) for name, p in named if p.grad is not None]
        # one total norm per step: checked (the scaler skips steps with infinite gradients itself), then clipped with
        norm = nn.utils.get_total_norm([p.grad for _, p in with_grads]) if with_grads else None
        if norm is not None and not scaler.is_enabled():
            _check_gradients(with_grads, norm, f"batch {index} of {description}")
        if norm is not None and config.grad_clip is not None:
            nn.utils.clip_grads_with_norm_([p for _, p in with_grads], config.grad_clip, norm)
        scaler.step(optimizer)
        scaler.update()
        n = len(y)
        loss_sum += float(loss.detach()) * n
        correct += float((scores.detach().argmax(1) == y).sum())
        samples += n
    loss_sum, correct, samples = all_reduce_sum([loss_sum, correct, samples])
    return _summary(loss_sum, correct, samples)


def _check_gradients(named: list[tuple[str, nn.Parameter]], norm: torch.Tensor, where: str) -> None:
    """FloatingPointError naming the first parameter whose gradient holds NaN or infinities, when
    their total ``norm`` is not finite: spiking layers hide them from the loss (a NaN potential
    never reaches the threshold), and one step would make the weights NaN for good.

    Args:
        named: ``(name, parameter)`` of the parameters that have gradients.
        norm: The gradients' total norm.
        where: The batch, for the message.
    """
    if not bool(torch.isfinite(norm)):
        name = next(name for name, p in named if not bool(torch.isfinite(p.grad).all()))
        raise FloatingPointError(
            f"fit: the gradient of {name} became NaN or infinite ({where}); lower the learning rate or check the data"
        )


def _summary(loss_sum: float, correct: float, samples: float) -> dict[str, float]:
    if not samples:
        raise ValueError("fit: a loader yielded no samples")
    return {"loss": loss_sum / samples, "accuracy": correct / samples, "samples": samples}


def _has(model: nn.Module, types: tuple[type, ...]) -> bool:
    return any(isinstance(m, types) for m in model.modules())


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader,
    config: TrainConfig,
    device: torch.device | str | None = None,
    description: str = "eval",
) -> dict[str, float]:
    """Loss and accuracy of ``model`` over ``loader`` in eval mode, without gradients.

    Args:
        model: The network (put in eval mode).
        loader: Yields ``(input, target)`` batches.
        config: Layout, readout, loss, mixed precision, progress bars and ``activity``.
        device: Where batches go; None uses ``config.device``.
        description: The progress bar's label.

    Returns:
        ``{"loss", "accuracy", "samples"}`` summed over every rank when distributed; with
        ``config.activity`` also ``firing_rate`` (all spiking layers), ``fr/<layer>`` per spiking
        layer and ``synops_per_sample``.
    """
    device = torch.device(device or config.device)
    model.eval()
    watch = config.activity
    rates = FiringRateMonitor(model) if watch and _has(model, (Neuron,)) else None
    synops = SynOpsMonitor(model) if watch and _has(model, (nn.Linear, nn.Conv1d, nn.Conv2d)) else None
    loss_sum = correct = samples = 0.0
    try:
        for batch in progress(loader, description, config.progress):
            x, y = _batch(batch, config, device)
            with autocast(config, device):
                output = model(x)
            scores = readout(output, config.readout, len(y))
            loss_sum += float(loss_fn(config.loss, scores, y)) * len(y)
            correct += float((scores.argmax(1) == y).sum())
            samples += len(y)
    finally:
        for monitor in (rates, synops):
            if monitor is not None:
                monitor.remove()
    loss_sum, correct, samples = all_reduce_sum([loss_sum, correct, samples])
    metrics = _summary(loss_sum, correct, samples)
    if rates is not None:
        names = list(rates.layers)
        totals = all_reduce_sum([rates.spikes[n] for n in names] + [float(rates.slots[n]) for n in names])
        spikes, slots = totals[: len(names)], totals[len(names) :]
        metrics["firing_rate"] = sum(spikes) / sum(slots) if sum(slots) else float("nan")
        for name, s, k in zip(names, spikes, slots):
            metrics[f"fr/{name}"] = s / k if k else float("nan")
    if synops is not None:
        (total,) = all_reduce_sum([synops.total_synops()])
        metrics["synops_per_sample"] = total / samples
    return metrics


def silent_layers(metrics: dict[str, float], prefix: str = "val_") -> list[str]:
    """The spiking layers that did not fire at all, in forward order (the last is the output layer),
    from the ``<prefix>fr/<layer>`` firing rates of :func:`evaluate` (an epoch's metrics row)."""
    key = prefix + "fr/"
    return [name[len(key) :] for name, rate in metrics.items() if name.startswith(key) and rate == 0]


def silence_warning(epoch: int, metrics: dict[str, float], prefix: str = "val_") -> str | None:
    """A one-line warning naming the spiking layers that did not fire in ``epoch``, else None.

    Args:
        epoch: The epoch the warning names.
        metrics: The epoch's metrics row, with the ``<prefix>fr/<layer>`` firing rates of
            :func:`evaluate`.
        prefix: Which split's rates to read (``"val_"`` or ``"train_"``).
    """
    silent = silent_layers(metrics, prefix)
    if not silent:
        return None
    layers = [name[len(prefix) + 3 :] for name in metrics if name.startswith(prefix + "fr/")]
    names = ", ".join(f"{n} (the output layer)" if n == layers[-1] else n for n in silent)
    return (
        f"epoch {epoch}: spiking layer(s) {names} did not fire on the {prefix.rstrip('_')} data; "
        "the layers after a silent one receive nothing (check the learning rate, the input scale "
        "and the initialisation: snn.train.data_init)"
    )
