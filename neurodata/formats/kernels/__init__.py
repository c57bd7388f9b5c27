"""Numba kernels for the hot decode/encode loops, each beside a readable numpy reference."""
