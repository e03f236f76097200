r"""Numba loops for ReLU, forward and backward, one pass each.

Nothing here is public: :mod:`tinycnn.kernels.fast` flattens the arrays (ReLU treats
every element alike) and allocates the outputs. Element ``i`` depends on element ``i``
alone, so the caller may hand disjoint ranges ``[lo, hi)`` to different threads. The
loops run over slices ``[lo:hi]`` from 0: with ``for i in range(lo, hi)`` Numba cannot
rule out a negative ``i``, keeps its wraparound fix-up, and LLVM no longer vectorises the
loop (0.168 against 0.022 ms forward, measured).

Why loops and not NumPy (measured on 64x6x28x28 float32, LeNet's first ReLU, one thread,
CPU time, alternating in one process, NumPy 2.4 on AMD Zen 5): ``np.maximum(x, 0)`` took
0.091 ms -- NumPy's loop for an array against a scalar is not its SIMD one (against an
array of zeros it took 0.033 ms, a plain copy 0.022 ms) -- and this loop 0.024 ms;
``dy * (x > 0)`` took 0.068 ms (a bool temporary, then a bool-to-float multiply) and this
loop 0.037 ms. The price, per dtype: compiling the two loops took 0.09 and 0.15 s of CPU
on a cold cache, loading them from Numba's cache ~2 ms each.
"""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def relu_forward(x, y, lo, hi):
    r"""y[i] = max(0, x[i]) (fills ``y``); a NaN stays NaN and -0.0 becomes +0.0, as with
    ``np.maximum(x, 0)`` in the reference."""
    zero = np.zeros(1, y.dtype)[0]       # a zero of y's dtype (a literal 0.0 is float64)
    x, y = x[lo:hi], y[lo:hi]
    for i in range(x.size):
        v = x[i]
        y[i] = v if v > zero or v != v else zero


@njit(cache=True, nogil=True)
def relu_backward(dy, x, dx, lo, hi):
    r"""dx[i] = dy[i] * [x[i] > 0] (fills ``dx``): a multiply, not a select, so a NaN or
    infinite ``dy`` where x <= 0 gives NaN exactly as ``dy * (x > 0)`` does."""
    zero = np.zeros(1, dx.dtype)[0]
    one = np.ones(1, dx.dtype)[0]
    dy, x, dx = dy[lo:hi], x[lo:hi], dx[lo:hi]
    for i in range(x.size):
        dx[i] = dy[i] * (one if x[i] > zero else zero)
