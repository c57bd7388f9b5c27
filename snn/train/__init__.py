"""Training for spiking networks: :func:`fit` (functional core) and :class:`Trainer` (thin shell).

>>> result = snn.train.fit(model, train_loader, val_loader, TrainConfig(epochs=20, run_dir="runs/a"))

See docs/sections/train-demo.md for the configuration, the run directory, resuming and DDP.
"""

from .checkpoint import load_best, load_checkpoint
from .config import TrainConfig
from .engine import evaluate, silence_warning, silent_layers
from .fit import FitResult, fit, seed_everything
from .init import data_init
from .logs import read_history
from .trainer import Trainer

__all__ = [
    "FitResult",
    "TrainConfig",
    "Trainer",
    "evaluate",
    "fit",
    "load_best",
    "load_checkpoint",
    "read_history",
    "data_init",
    "seed_everything",
    "silence_warning",
    "silent_layers",
]
