"""ANN-to-SNN conversion: a trained ReLU / QCFS network to a multi-step network of IF neurons.

* :func:`ann_to_snn`: the conversion (see ``docs/sections/convert.md``);
* :class:`QCFS`: the quantization-clip-floor-shift activation to train an ANN with, for accurate
  networks at a few time steps;
* :func:`accuracy_vs_timesteps` and :func:`plot_accuracy_vs_timesteps`: accuracy after each
  number of time steps, in one pass;
* :class:`ConversionError`: what cannot be converted, naming every layer at fault.
"""

from .convert import ConvertedSNN, ann_to_snn
from .errors import ConversionError
from .evaluate import accuracy_vs_timesteps, plot_accuracy_vs_timesteps
from .qcfs import QCFS

__all__ = [
    "ann_to_snn",
    "ConvertedSNN",
    "ConversionError",
    "QCFS",
    "accuracy_vs_timesteps",
    "plot_accuracy_vs_timesteps",
]
