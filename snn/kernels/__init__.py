"""Fused GPU kernels for the spiking neurons (Triton) and the plain-torch loops they are tested against."""
