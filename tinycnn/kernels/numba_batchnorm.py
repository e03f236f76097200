r"""Batch normalisation compiled with Numba: twin of :mod:`tinycnn.kernels.batchnorm`.

:func:`batchnorm_forward` and :func:`batchnorm_backward` have the reference's signatures and
results (tested equal in ``tests/test_batchnorm_paths.py``). The layers import this module
only when a BatchNorm runs on the ``"numba"`` backend, so a model without BatchNorm never
compiles (nor loads) these two loops.

Why loops, when the NumPy lines look cheap: the reference makes a temporary array for
nearly every operator (``x - mean``, its square, ``x_hat``, ``gamma * x_hat``...) and its
reductions over axes (0, 2, 3) of an NCHW array are strided. The loops here visit each
channel's values ``x[n, c, :]`` (``(N, C, L)`` with ``L = H·W``, contiguous rows) and keep
no temporary larger than one row:

* forward, training: one pass for the mean, one for the squared deviations (the two-pass
  variance, exact even when the mean is large next to the spread), one writing
  :math:`y = (x - \mu)\,a + \beta` with :math:`a = \gamma/\sigma`;
* backward: one pass for :math:`\sum dy` and :math:`\sum dy\,(x-\mu)`, one writing
  :math:`dx = a\,dy - \big((x - \mu)\,b + a\,\overline{dy}\big)` with
  :math:`b = a\,\overline{dy\,\hat x}/\sigma` (the reference's formula, expanded).

Sums run in float64 in a fixed order: ``acc[l]`` adds up position ``l`` of the N rows
(independent lanes, so LLVM vectorises the loop without being allowed to reorder a single
sum -- no ``fastmath``), then the L lanes are added in order. Measured on 64×16×28×28: one
float64 running sum per channel took 0.43 ms (each add waits for the previous one), the
lanes 0.05 ms, NumPy's float32 ``x.mean(axis=(0, 2, 3))`` 0.12 ms. A channel is computed by one
thread from start to end; :func:`numba_runtime.split` shares out whole channels, so the
result is bit-identical for any thread count.

Measured at resnet_mini's shapes (2-core AMD EPYC, 1 thread, float32, CPU ms per call,
medians of 58 calls alternating with the NumPy lines used before, which took float32
``x.mean``/``x.var`` and wrote ``x_hat``):

=============== ===================== ===================== ==================
shape           forward, training     backward, training    forward, eval
=============== ===================== ===================== ==================
64×16×28×28     1.22 -> 0.20          0.84 -> 0.21          0.63 -> 0.07
64×32×14×14     0.60 -> 0.09          0.42 -> 0.10          0.26 -> 0.04
64×64×7×7       0.46 -> 0.07          0.31 -> 0.07          0.15 -> 0.03
=============== ===================== ===================== ==================

Each of the passes above costs about what a copy of the array does (0.05 ms for the first
shape), so a one-pass variance (sum and sum of squares together) would save at most one
such pass -- not worth its cancellation when the mean is large.

Start-up (same machine, Numba already started by another kernel): compiling the two loops
took 0.4-0.6 s each on an empty cache; loading them from Numba's cache, ~5 ms + 3 ms.
"""
import numpy as np
from numba import njit

from tinycnn.kernels.numba_runtime import split

__all__ = ["batchnorm_forward", "batchnorm_backward"]


@njit(cache=True, nogil=True)
def forward_channels(x, gamma, beta, eps, training, mean, var, inv_std, y, lo, hi):
    r"""Channels ``lo <= c < hi`` of :math:`y = \gamma_c (x - \mu_c)/\sqrt{\sigma^2_c + \epsilon} + \beta_c`.

    ``x, y``: ``(N, C, L)``; ``gamma, beta``: ``(C,)`` of x's dtype; ``mean, var, inv_std``:
    ``(C,)`` float64. ``training``: write the batch's mean and biased variance into
    ``mean``/``var`` first; otherwise they hold the running statistics and are only read.
    """
    N, C, L = x.shape
    M = N * L
    acc = np.empty(L)                       # float64 partial sums, one lane per position
    k = np.empty(3, x.dtype)                # the channel's constants, rounded to x's dtype
    for c in range(lo, hi):
        if training:
            acc[:] = 0.0
            for n in range(N):
                for l in range(L):
                    acc[l] += x[n, c, l]
            mu = acc.sum() / M
            acc[:] = 0.0
            for n in range(N):
                for l in range(L):
                    d = x[n, c, l] - mu                  # float64: x minus the exact mean
                    acc[l] += d * d
            mean[c] = mu
            var[c] = acc.sum() / M
        inv_std[c] = 1.0 / np.sqrt(var[c] + eps)
        scale = gamma[c] * inv_std[c]
        k[0] = mean[c]
        k[1] = scale
        # the shift absorbs the mean's rounding to x's dtype: x - k[0] is then exact for x
        # near the mean, which keeps y accurate when the mean is large next to the spread
        k[2] = beta[c] - (mean[c] - k[0]) * scale
        m, a, b = k[0], k[1], k[2]
        for n in range(N):
            for l in range(L):
                y[n, c, l] = (x[n, c, l] - m) * a + b      # in x's dtype: vectorised


@njit(cache=True, nogil=True)
def backward_channels(dy, x, gamma, mean, inv_std, training, need_dx, dx, dgamma, dbeta, lo, hi):
    r"""Channels ``lo <= c < hi`` of :math:`d\beta = \sum dy`, :math:`d\gamma = \sum dy\,\hat x`, ``dx``.

    ``dy, x, dx``: ``(N, C, L)``; ``gamma``: ``(C,)`` of x's dtype; ``mean, inv_std`` (the
    forward's) and the outputs ``dgamma, dbeta``: ``(C,)`` float64. ``training``: the
    statistics were the batch's, so ``dx`` gets the two mean terms (module docstring).
    ``need_dx=False``: only the two sums (``dx`` is not touched).
    """
    N, C, L = x.shape
    M = N * L
    acc_dy = np.empty(L)
    acc_dyx = np.empty(L)
    k = np.empty(4, x.dtype)
    for c in range(lo, hi):
        mu = mean[c]
        acc_dy[:] = 0.0
        acc_dyx[:] = 0.0
        for n in range(N):
            for l in range(L):
                g = np.float64(dy[n, c, l])
                acc_dy[l] += g
                acc_dyx[l] += g * (x[n, c, l] - mu)
        s = inv_std[c]
        sum_dy = acc_dy.sum()
        sum_dy_xhat = acc_dyx.sum() * s
        dbeta[c] = sum_dy
        dgamma[c] = sum_dy_xhat
        if not need_dx:
            continue
        scale = gamma[c] * s
        if not training:
            k[0] = scale
            a = k[0]
            for n in range(N):
                for l in range(L):
                    dx[n, c, l] = dy[n, c, l] * a
            continue
        # dx = scale (dy - mean(dy)) - (x - mu) scale s mean(dy x_hat)
        #    = a dy - ((x - m) b + e),  m: mu rounded to x's dtype, e: the constant terms
        k[0] = scale
        k[1] = mu
        slope = scale * s * sum_dy_xhat / M
        k[2] = slope
        k[3] = scale * sum_dy / M + (k[1] - mu) * slope
        a, m, b, e = k[0], k[1], k[2], k[3]
        for n in range(N):
            for l in range(L):
                dx[n, c, l] = dy[n, c, l] * a - ((x[n, c, l] - m) * b + e)


def _rows(a, dtype):
    """``a`` (N, C, ...) as a C-contiguous ``(N, C, L)`` array of ``dtype``."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a.reshape(a.shape[0], a.shape[1], -1)


def batchnorm_forward(x, gamma, beta, eps, mean=None, var=None):
    """``(y, mean, var, inv_std)``; twin of :func:`tinycnn.kernels.batchnorm.batchnorm_forward`.

    ``mean=None, var=None``: training (the batch's statistics); else the running ones.
    """
    x = np.asarray(x)
    x3 = _rows(x, x.dtype)
    C = x3.shape[1]
    training = mean is None
    if training:
        mean, var = np.empty(C), np.empty(C)
    else:
        mean = np.array(mean, dtype=np.float64)
        var = np.array(var, dtype=np.float64)
    inv_std = np.empty(C)
    y = np.empty_like(x3)
    split(forward_channels, C, x.size, x3, np.ascontiguousarray(gamma, x.dtype),
          np.ascontiguousarray(beta, x.dtype), float(eps), training, mean, var, inv_std, y)
    return y.reshape(x.shape), mean, var, inv_std


def batchnorm_backward(dy, x, gamma, mean, inv_std, batch_statistics, need_dx=True):
    """``(dx, dgamma, dbeta)``; twin of :func:`tinycnn.kernels.batchnorm.batchnorm_backward`."""
    x = np.asarray(x)
    x3 = _rows(x, x.dtype)
    dy3 = _rows(dy, x.dtype)
    C = x3.shape[1]
    dx = np.empty_like(x3) if need_dx else np.empty((0, 0, 0), x.dtype)
    dgamma, dbeta = np.empty(C), np.empty(C)
    split(backward_channels, C, 2 * x.size, dy3, x3, np.ascontiguousarray(gamma, x.dtype),
          np.ascontiguousarray(mean, np.float64), np.ascontiguousarray(inv_std, np.float64),
          bool(batch_statistics), bool(need_dx), dx, dgamma, dbeta)
    return (dx.reshape(x.shape) if need_dx else None), dgamma.astype(x.dtype), dbeta.astype(x.dtype)
