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

BatchNorm reads and writes each value a handful of times and does almost no arithmetic per
value: it is memory-bound, and these NumPy lines already stream at memory speed, so both
backends use this one implementation (``benchmarks/`` measures it inside a training step).
"""
import numpy as np

__all__ = ["batchnorm_forward", "batchnorm_backward", "channel_axes"]


def channel_axes(x):
    """The axes statistics are taken over: every axis but the channel axis 1."""
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(v, ndim):
    """A ``(C,)`` vector shaped to broadcast against an ``(N, C, ...)`` array."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def batchnorm_forward(x, gamma, beta, mean, var, eps):
    """``(y, x_hat, inv_std)`` for statistics ``mean``, ``var`` of shape ``(C,)``.

    ``inv_std = 1 / sqrt(var + eps)``; ``x_hat`` and ``inv_std`` are what backward needs.
    """
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    x_hat = (x - _per_channel(mean, x.ndim)) * _per_channel(inv_std, x.ndim)
    y = _per_channel(gamma, x.ndim) * x_hat + _per_channel(beta, x.ndim)
    return y.astype(x.dtype, copy=False), x_hat, inv_std


def batchnorm_backward(dy, x_hat, gamma, inv_std, batch_statistics):
    """``(dx, dgamma, dbeta)``; ``batch_statistics``: were mean/var the batch's own?"""
    axes = channel_axes(dy)
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * x_hat).sum(axis=axes)
    scale = _per_channel(gamma * inv_std, dy.ndim)
    if not batch_statistics:
        return (scale * dy).astype(dy.dtype, copy=False), dgamma, dbeta
    M = dy.size // dy.shape[1]
    mean_dy = _per_channel(dbeta / M, dy.ndim)
    mean_dy_xhat = _per_channel(dgamma / M, dy.ndim)
    dx = scale * (dy - mean_dy - x_hat * mean_dy_xhat)
    return dx.astype(dy.dtype, copy=False), dgamma, dbeta
