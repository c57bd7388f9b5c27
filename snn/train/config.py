"""``TrainConfig``: every knob of a training run, as one plain dataclass that round-trips through JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from neurodata.arguments import finite_number, whole_number

from .losses import READOUTS

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "step", "none")
LOSSES = ("ce", "mse")
AMP_DTYPES = ("auto", "bf16", "fp16")
MONITOR_METRICS = ("val_loss", "val_accuracy", "train_loss", "train_accuracy")


@dataclass
class TrainConfig:
    """How :func:`snn.train.fit` trains.

    Inputs reach the model time-major, ``[T, B, ...]``. ``time_major=None`` (default) follows the
    batch's declared layout: ``neurodata.loaders.stack_time_major`` batches declare ``[T, B, ...]``,
    ``stack_dense`` batches ``[B, T, ...]``; a batch that declares nothing (PyTorch's default
    collate) is an error asking for ``time_major``, because its shape cannot say which axis is time
    (a static ``[B, C, H, W]`` batch would otherwise be read as ``[B, T, ...]``). True or False states
    the loader's layout (a batch declaring the other one is an error). ``[B, T, ...]`` batches are
    transposed; a batch whose batch dimension does not match its number of labels is an error
    naming ``time_major``.

    The model returns per-step ``[T, B, C]`` (spikes or membrane potentials), the convention of
    every ``snn`` network. ``readout``: ``"mean"`` averages it over time into the class scores that
    predictions and losses use; ``"none"`` is for a model that returns ``[B, C]`` scores itself.
    An output of another shape is an error naming ``readout``.

    ``loss``: ``"ce"`` = cross-entropy on the class scores (spike rate or membrane, used as
    logits); ``"mse"`` = mean squared error between the scores and the one-hot target
    (SpikingJelly's examples: ``F.mse_loss(out_fr, F.one_hot(label))``).

    ``schedule``: learning-rate factor per epoch after ``warmup_epochs`` of linear warm-up:
    ``"cosine"`` (to 0 at the last epoch), ``"step"`` (times ``gamma`` every ``step_size``
    epochs) or ``"none"``.

    ``amp``: mixed precision. ``amp_dtype="auto"`` is bfloat16 on CPU and float16 on CUDA; float16
    runs with a gradient scaler.

    ``monitor``: the metric that picks the best model and drives early stopping (``patience``
    epochs without improvement stop the run; None never stops). Losses are minimised,
    accuracies maximised.

    ``splits``: where each figure's data comes from, e.g. ``{"train": "train (the other 990
    samples)", "val": "val (10% of train, seed 0)"}``; not used for training, only recorded (in
    ``config.json``, ``best.json`` and the checkpoints) so that a run folder says what its
    ``train_*`` and ``val_*`` figures measure.

    Attributes:
        epochs: Number of passes over the training loader (>= 1).
        lr: Peak learning rate (> 0).
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"`` (see ``OPTIMIZERS``).
        weight_decay: The optimizer's weight decay.
        momentum: SGD's momentum (ignored by the Adam family).
        schedule: ``"cosine"``, ``"step"`` or ``"none"`` (above).
        warmup_epochs: Epochs of linear warm-up before the schedule, in ``[0, epochs)``.
        step_size: Epochs between the ``"step"`` schedule's decays.
        gamma: The ``"step"`` schedule's factor.
        loss: ``"ce"`` or ``"mse"`` (above).
        readout: ``"mean"`` or ``"none"`` (above).
        amp: Mixed precision on or off.
        amp_dtype: ``"auto"``, ``"bf16"`` or ``"fp16"``.
        grad_clip: Maximum gradient norm, or None for no clipping.
        run_dir: Folder for ``config.json``, ``metrics.csv``, checkpoints and ``best.pt``; None
            writes nothing.
        monitor: ``"val_loss"``, ``"val_accuracy"``, ``"train_loss"`` or ``"train_accuracy"``.
        patience: Epochs without improvement of ``monitor`` before stopping; None never stops.
        seed: Seeds Python, NumPy and torch (:func:`snn.train.seed_everything`) before training.
        time_major: The loader's layout (above); None follows the batch's declaration.
        device: Where the model and batches run, e.g. ``"cpu"`` or ``"cuda:0"``.
        activity: Record the layers' spike rates per epoch.
        progress: Show progress bars.
        splits: Where each figure's data comes from (above), recorded only.
    """

    epochs: int = 10
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup_epochs: int = 0
    step_size: int = 30
    gamma: float = 0.1
    loss: str = "ce"
    readout: str = "mean"
    amp: bool = False
    amp_dtype: str = "auto"
    grad_clip: float | None = None
    run_dir: str | None = None
    monitor: str = "val_accuracy"
    patience: int | None = None
    seed: int = 0
    time_major: bool | None = None
    device: str = "cpu"
    activity: bool = True
    progress: bool = True
    splits: dict[str, str] | None = None

    def __post_init__(self) -> None:
        choices = {
            "optimizer": OPTIMIZERS,
            "schedule": SCHEDULES,
            "loss": LOSSES,
            "readout": READOUTS,
            "amp_dtype": AMP_DTYPES,
            "monitor": MONITOR_METRICS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"TrainConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        whole_number("TrainConfig.epochs", self.epochs, minimum=1)
        whole_number("TrainConfig.warmup_epochs", self.warmup_epochs, minimum=0)
        whole_number("TrainConfig.step_size", self.step_size, minimum=1)
        seed = whole_number("TrainConfig.seed", self.seed, minimum=0)
        if seed >= 2**32:  # numpy's seed
            raise ValueError(f"TrainConfig.seed must be below 2**32, got {self.seed}")
        finite_number("TrainConfig.lr", self.lr, above=0)
        finite_number("TrainConfig.gamma", self.gamma, above=0)
        finite_number("TrainConfig.weight_decay", self.weight_decay, minimum=0)
        finite_number("TrainConfig.momentum", self.momentum, minimum=0)
        if self.patience is not None:
            whole_number("TrainConfig.patience", self.patience, minimum=1)
        if self.grad_clip is not None:
            finite_number("TrainConfig.grad_clip", self.grad_clip, above=0)
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError, ValueError) as exc:
            raise ValueError(f"TrainConfig.device: {exc}") from None
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(
                f"TrainConfig.warmup_epochs must be in [0, epochs), got {self.warmup_epochs} with epochs={self.epochs}"
            )
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"TrainConfig.patience must be >= 1 or None, got {self.patience}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip must be > 0 or None, got {self.grad_clip}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what ``config.json`` holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from ``values``, a dict (e.g. a run's ``config.json``); unknown keys are a ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"TrainConfig: unknown field(s) {', '.join(unknown)}")
        return cls(**values)

    @property
    def minimise(self) -> bool:
        """Whether a smaller ``monitor`` value is better."""
        return self.monitor.endswith("loss")
