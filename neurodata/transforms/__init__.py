"""Drop-in replacements for ``tonic.transforms``: same class and parameter names, vectorised or
Numba implementations, seedable randomness and a few deliberate fixes (see docs/sections/representations.md).

Functional forms live in :mod:`neurodata.transforms.functional`; ``PadTensors`` (Tonic's
``tonic.collation.PadTensors``) in :mod:`neurodata.transforms.collation`. docs/coming-from-tonic.md
maps Tonic's calls to ours and lists the deliberate differences.
"""

from . import functional
from .collation import PadTensors
from .streams import Decimation, EventDownsampling, EventDrop, TimeAlignment
from .targets import NumpyAsType, Repeat, ToOneHotEncoding
from .to_representations import (
    ToAveragedTimesurface,
    ToBinaRep,
    ToFrame,
    ToImage,
    ToSparseTensor,
    ToTimesurface,
    ToVoxelGrid,
)
from .transforms import (
    CenterCrop,
    Compose,
    CropTime,
    Denoise,
    Downsample,
    DropEvent,
    DropEventByArea,
    DropEventByTime,
    DropPixel,
    MergePolarities,
    RandomCrop,
    RandomDropPixel,
    RandomFlipLR,
    RandomFlipPolarity,
    RandomFlipUD,
    RandomTimeReversal,
    RefractoryPeriod,
    SpatialCrop,
    SpatialJitter,
    TimeJitter,
    TimeSkew,
    UniformNoise,
)

__all__ = [
    "CenterCrop",
    "Compose",
    "CropTime",
    "Decimation",
    "Denoise",
    "Downsample",
    "DropEvent",
    "DropEventByArea",
    "DropEventByTime",
    "DropPixel",
    "EventDownsampling",
    "EventDrop",
    "MergePolarities",
    "NumpyAsType",
    "PadTensors",
    "RandomCrop",
    "RandomDropPixel",
    "RandomFlipLR",
    "RandomFlipPolarity",
    "RandomFlipUD",
    "RandomTimeReversal",
    "RefractoryPeriod",
    "Repeat",
    "SpatialCrop",
    "SpatialJitter",
    "TimeAlignment",
    "TimeJitter",
    "TimeSkew",
    "ToAveragedTimesurface",
    "ToBinaRep",
    "ToFrame",
    "ToImage",
    "ToOneHotEncoding",
    "ToSparseTensor",
    "ToTimesurface",
    "ToVoxelGrid",
    "UniformNoise",
    "functional",
]
