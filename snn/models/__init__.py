"""Model zoo: event-camera SNN classifiers built by name.

    net = snn.models.build("dvsgesture-net")                 # DVS128 Gesture, 11 classes
    net = snn.models.build("sew-resnet18", dataset="nmnist", connect="IAND", readout="sequence")
    scores = net(frames)  # frames [T, B, 2, H, W] -> [B, classes] ("mean") or [T, B, classes]

See ``docs/sections/model-zoo.md`` for the models, their defaults and parameter counts.
"""

from . import plif_net, resnet, vgg  # noqa: F401  (importing registers the builders)
from .common import DATASETS, SpikingClassifier, dataset_spec, neuron_factory
from .registry import available, build, builder, options, register

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
]
