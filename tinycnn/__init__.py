"""tinycnn -- a from-scratch, educational convolutional neural network framework.

Every layer has an explicit forward and backward pass; the hot loops are Numba-compiled
next to a readable NumPy twin; every gradient is checked against finite differences.
"""
__version__ = "0.1.0"

from tinycnn.backend import get_backend, set_backend, use_backend

__all__ = ["__version__", "get_backend", "set_backend", "use_backend"]
