"""Compiled kernels of the fused neuron backends: Numba (CPU) and Triton (GPU); see :mod:`snn.backends`."""
