"""Model zoo: event-camera SNN classifiers built by name.

    net = snn.models.build("dvsgesture-net")                 # DVS128 Gesture, 11 classes
    net = snn.models.build("sew-resnet18", dataset="nmnist", connect="IAND")
    scores = net(frames)  # frames [T, B, 2, H, W] -> per-step scores [T, B, classes]

The convention, the same for every network in ``snn``: a network maps ``[T, B, ...]`` to per-step
``[T, B, classes]``; averaging over time is an explicit readout (``snn.train.TrainConfig.readout``,
or ``readout="mean"`` at build time for ``[B, classes]``). A trained run folder rebuilds its model
with :func:`load_run`.

See ``docs/sections/model-zoo.md`` for the models, their defaults and parameter counts.
"""

from . import plif_net, resnet, vgg  # noqa: F401  (importing registers the builders)
from .common import DATASETS, SpikingClassifier, dataset_spec, neuron_factory
from .registry import available, build, builder, options, register
from .run import MODEL_JSON, ModelSpec, RunError, load_run, read_model_spec, write_model_spec

__all__ = [
    "build",
    "available",
    "builder",
    "options",
    "register",
    "DATASETS",
    "dataset_spec",
    "neuron_factory",
    "SpikingClassifier",
    "load_run",
    "ModelSpec",
    "RunError",
    "MODEL_JSON",
    "read_model_spec",
    "write_model_spec",
]
