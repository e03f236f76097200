"""Numba backend -- placeholder until the fast kernels land: the reference twins, by name."""
from tinycnn.kernels.reference import (  # noqa: F401
    conv2d_forward, conv2d_backward,
    maxpool2d_forward, maxpool2d_backward,
    avgpool2d_forward, avgpool2d_backward,
    dense_forward, dense_backward,
)
