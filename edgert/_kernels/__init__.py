"""Compiled kernels (built from kernels/*.pyx); see edgert.kernels for the selector."""
