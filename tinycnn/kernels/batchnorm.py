r"""Batch normalisation, the math: normalise each channel, then scale and shift.

Shapes: ``x`` is ``(N, C)`` or ``(N, C, H, W)``; every statistic is per channel ``c``,
taken over the other axes, i.e. over :math:`M = N` (or :math:`N H W`) values.

Forward, given the statistics :math:`\mu_c, \sigma^2_c` (the batch's in training, the running
ones in evaluation):

.. math::
    \sigma_c = \sqrt{\sigma^2_c + \epsilon}, \qquad
    \hat x = (x - \mu_c) / \sigma_c, \qquad y = \gamma_c \hat x + \beta_c

Backward: :math:`\partial L/\partial\beta_c = \sum dy`,
:math:`\partial L/\partial\gamma_c = \sum dy\,\hat x`, and for :math:`dx`:

* statistics of this batch (training): :math:`\mu` and :math:`\sigma` depend on every
  :math:`x` of the channel, which adds two terms; written with means over the :math:`M`
  values,

  .. math:: dx = \frac{\gamma_c}{\sigma_c}\Big(dy - \overline{dy} - \hat x\;\overline{dy\,\hat x}\Big)

  (derivation: :math:`\partial\hat x_i/\partial x_j = (\delta_{ij} - 1/M - \hat x_i\hat x_j/M)/\sigma`,
  then sum over :math:`i` with weights :math:`\gamma\,dy_i`);
* fixed statistics (evaluation): :math:`dx = \gamma_c\,dy / \sigma_c`.

This module is the specification (the ``"reference"`` backend runs it); the ``"numba"``
backend runs :mod:`tinycnn.kernels.numba_batchnorm`, same signatures, tested equal. Both
take the statistics' sums in float64 (a plain float32 running sum over the 50,176 values of
one 64×28×28 channel was off by 2-4e-6, about 50 times float32's resolution; in the Numba
loops a float64 summing pass over 64×16×28×28 took 0.058 ms against 0.044 ms in float32), with the *two-pass* variance (mean
first, then the mean of squared deviations), which stays exact when the mean is large
next to the spread. ``backward`` gets ``x`` and the statistics, not ``x_hat``: ``x_hat``
is recomputed, so ``forward`` need not write (and keep) an extra array as large as ``x``.
"""
import numpy as np

__all__ = ["batchnorm_forward", "batchnorm_backward", "channel_axes"]


def channel_axes(x):
    """The axes statistics are taken over: every axis but the channel axis 1."""
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(v, ndim):
    """A ``(C,)`` vector shaped to broadcast against an ``(N, C, ...)`` array."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def batchnorm_forward(x, gamma, beta, eps, mean=None, var=None):
    """``(y, mean, var, inv_std)``: ``y`` in x's dtype, the three ``(C,)`` vectors float64.

    ``mean=None, var=None`` (training): the batch's own statistics, ``var`` biased (divided
    by M). Otherwise (evaluation) the given running statistics. ``inv_std = 1/sqrt(var + eps)``;
    ``backward`` needs ``mean`` and ``inv_std``.
    """
    axes = channel_axes(x)
    if mean is None:
        mean = x.mean(axis=axes, dtype=np.float64)
        var = np.square(x - _per_channel(mean, x.ndim)).mean(axis=axes)     # biased
    mean = np.asarray(mean, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - _per_channel(mean, x.ndim)) * _per_channel(inv_std, x.ndim)
    y = _per_channel(gamma, x.ndim) * x_hat + _per_channel(beta, x.ndim)
    return y.astype(x.dtype), mean, var, inv_std


def batchnorm_backward(dy, x, gamma, mean, inv_std, batch_statistics, need_dx=True):
    """``(dx, dgamma, dbeta)`` in dy's dtype; ``batch_statistics``: were mean/var the batch's own?

    ``mean`` and ``inv_std`` are what :func:`batchnorm_forward` returned for this ``x``.
    ``need_dx=False`` (the input is the data: nobody uses its gradient) returns ``dx = None``.
    """
    axes = channel_axes(dy)
    x_hat = (x - _per_channel(mean, x.ndim)) * _per_channel(inv_std, x.ndim)   # float64
    dbeta = dy.sum(axis=axes, dtype=np.float64)
    dgamma = (dy * x_hat).sum(axis=axes)
    if not need_dx:
        return None, dgamma.astype(dy.dtype), dbeta.astype(dy.dtype)
    scale = _per_channel(gamma * inv_std, dy.ndim)
    if not batch_statistics:
        dx = scale * dy
    else:
        M = dy.size // dy.shape[1]
        mean_dy = _per_channel(dbeta / M, dy.ndim)
        mean_dy_xhat = _per_channel(dgamma / M, dy.ndim)
        dx = scale * (dy - mean_dy - x_hat * mean_dy_xhat)
    return dx.astype(dy.dtype), dgamma.astype(dy.dtype), dbeta.astype(dy.dtype)
