"""``Trainer``: a model and its configuration held together over :func:`fit` / :func:`evaluate`."""

from __future__ import annotations

from typing import Any

from torch import nn

from .checkpoint import load_best
from .config import TrainConfig
from .engine import evaluate
from .fit import FitResult, fit


class Trainer:
    """Convenience shell: ``Trainer(model, config).fit(train, val)``, then ``.evaluate(test)``."""

    def __init__(self, model: nn.Module, config: TrainConfig | None = None) -> None:
        self.model = model
        self.config = config or TrainConfig()
        self.result: FitResult | None = None

    def fit(self, train_loader, val_loader=None, resume: bool = False, callbacks=()) -> FitResult:
        """:func:`snn.train.fit` of the model with ``train_loader``, ``val_loader``, ``resume`` and
        ``callbacks``; the result is also kept in ``self.result``."""
        self.result = fit(
            self.model, train_loader, val_loader, self.config, resume=resume, callbacks=callbacks
        )
        return self.result

    def evaluate(self, loader) -> dict[str, float]:
        """:func:`snn.train.evaluate` of the model over ``loader`` with this config."""
        return evaluate(self.model, loader, self.config)

    def load_best(self) -> dict[str, Any]:
        """Load the best weights of ``config.run_dir`` into the model; returns their metadata."""
        if not self.config.run_dir:
            raise ValueError("Trainer.load_best: the config has no run_dir")
        return load_best(self.model, self.config.run_dir)
