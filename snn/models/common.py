"""Shared pieces of the model zoo: dataset presets, the neuron factory and the classifier shell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .. import surrogate as surrogates
from ..neurons import IF, LIF, PLIF, Neuron

__all__ = [
    "DatasetSpec",
    "DATASETS",
    "dataset_spec",
    "NeuronFactory",
    "neuron_factory",
    "SpikingClassifier",
    "READOUTS",
]


@dataclass(frozen=True)
class DatasetSpec:
    """Input geometry and class count of an event-camera benchmark (frames of ``in_channels`` polarities).

    Attributes:
        in_channels: Channels per frame (the polarities).
        input_size: ``(height, width)`` of a frame.
        num_classes: How many classes the benchmark has.
    """

    in_channels: int
    input_size: tuple[int, int]
    num_classes: int


DATASETS: dict[str, DatasetSpec] = {
    "dvs128": DatasetSpec(2, (128, 128), 11),  # DVS128 Gesture
    "nmnist": DatasetSpec(2, (34, 34), 10),
    "cifar10dvs": DatasetSpec(2, (128, 128), 10),
}

NEURONS: dict[str, type[Neuron]] = {"if": IF, "lif": LIF, "plif": PLIF}
READOUTS = ("mean", "sequence")

NeuronFactory = Callable[[], nn.Module]


def dataset_spec(dataset: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``dataset`` (one of :data:`DATASETS`)."""
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}") from None


def neuron_factory(
    neuron: str | type[Neuron] | NeuronFactory = "plif",
    surrogate: str | surrogates.SurrogateFunction = "atan",
    alpha: float | None = None,
    backend: str = "auto",
    detach_reset: bool = True,
    **neuron_kwargs,
) -> NeuronFactory:
    """A zero-argument callable making one fresh spiking-neuron layer per call.

    ``neuron`` is "if", "lif", "plif", an :class:`snn.Neuron` subclass (called with the keyword
    arguments below) or any zero-argument callable returning a module (used as is, the other
    arguments must then be left at their defaults). ``surrogate`` is a name of
    :func:`snn.surrogate.by_name` or a surrogate object, ``alpha`` its sharpness (None: the
    surrogate's default; used with a name only); ``backend`` and ``detach_reset`` go to the neuron
    (the step kernel, and whether the reset carries no gradient), and so do ``neuron_kwargs``
    (``tau``, ``init_tau``, ``v_threshold``, ``v_reset``, ``decay_input``, ...).

    Raises:
        ValueError: For an unknown neuron name.
        TypeError: For a ``neuron`` that is none of the above, or options the neuron does not take.
    """
    if isinstance(neuron, str):
        try:
            neuron = NEURONS[neuron.lower()]
        except KeyError:
            raise ValueError(
                f"unknown neuron {neuron!r}; choose one of {sorted(NEURONS)} or pass a class"
            ) from None
    if not (isinstance(neuron, type) and issubclass(neuron, Neuron)):
        if not callable(neuron):
            raise TypeError(f"neuron must be a name, an snn.Neuron subclass or a callable, got {neuron!r}")
        if neuron_kwargs:
            raise TypeError(
                f"neuron options {sorted(neuron_kwargs)} cannot be passed to a neuron factory callable"
            )
        return neuron
    surrogate_fn = surrogates.by_name(surrogate, alpha) if isinstance(surrogate, str) else surrogate
    kwargs = {"surrogate": surrogate_fn, "backend": backend, "detach_reset": detach_reset, **neuron_kwargs}
    neuron(**kwargs)  # fail now, at build time, on a bad keyword rather than deep inside the model

    def make() -> nn.Module:
        return neuron(**kwargs)

    return make


class SpikingClassifier(nn.Module):
    """A time-major SNN classifier: ``[T, B, C, H, W]`` in, per-step class scores ``[T, B, classes]`` out.

    That is the convention of every network in ``snn`` (what training, conversion, export and live
    inference consume); averaging over time is the trainer's readout (``TrainConfig.readout``).
    ``readout="mean"`` opts into ``[B, classes]``, the body's output averaged over time (firing
    rates for spiking outputs), for code that wants class scores from the model itself.
    Every call starts from the resting state.

    Args:
        body: The multi-step network, ``[T, B, C, H, W] -> [T, B, classes]``.
        in_channels: The input channels ``C`` it checks.
        num_classes: The number of class scores.
        readout: "sequence" (per step) or "mean" (averaged over time).
    """

    def __init__(
        self, body: nn.Module, in_channels: int, num_classes: int, readout: str = "sequence"
    ) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        self.body = body
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.readout = readout

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Class scores for the time-major input ``x_seq`` (``ValueError`` for another shape)."""
        if x_seq.ndim != 5 or x_seq.shape[2] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}: expected time-major input [T, B, {self.in_channels}, H, W], "
                f"got shape {tuple(x_seq.shape)}"
            )
        out = self.body(x_seq)
        return out.mean(0) if self.readout == "mean" else out

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, num_classes={self.num_classes}, readout={self.readout!r}"


def resolve_geometry(
    dataset: str, in_channels: int | None, input_size: int | tuple[int, int] | None, num_classes: int | None
) -> DatasetSpec:
    """The preset of ``dataset`` with any explicit override applied: ``in_channels``, ``input_size``
    (an int for a square) and ``num_classes`` replace the preset's where not None."""
    spec = dataset_spec(dataset)
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    return DatasetSpec(
        spec.in_channels if in_channels is None else int(in_channels),
        spec.input_size if input_size is None else (int(input_size[0]), int(input_size[1])),
        spec.num_classes if num_classes is None else int(num_classes),
    )
