"""Hardware and interchange targets of :mod:`snn` models, one subpackage each, imported on demand
(their dependencies are optional): :mod:`hw.nir` (NIR graphs, ``docs/sections/hw-nir.md``)."""
