r"""Batch normalisation: ``BatchNorm2D`` for ``(N, C, H, W)``, ``BatchNorm1D`` for ``(N, C)``.

Per channel :math:`c`, over the :math:`M` values of the batch (``N·H·W`` or ``N``):

* training: :math:`\mu_c` = batch mean, :math:`\sigma^2_c` = *biased* batch variance
  (divide by :math:`M`); :math:`y = \gamma_c (x - \mu_c)/\sqrt{\sigma^2_c + \epsilon} + \beta_c`;
  then the running statistics move towards the batch's,
  ``running_mean = (1 − momentum)·running_mean + momentum·μ`` and
  ``running_var = (1 − momentum)·running_var + momentum·σ²·M/(M − 1)`` (the *unbiased*
  variance, as in PyTorch);
* evaluation: the same formula with ``running_mean`` / ``running_var``; nothing changes.

Backward (training): :math:`dx = (\gamma/\sigma)\,(dy - \overline{dy} - \hat x\,\overline{dy\,\hat x})`,
:math:`d\gamma = \sum dy\,\hat x`, :math:`d\beta = \sum dy` -- derived in
:mod:`tinycnn.kernels.batchnorm`.

``weight`` (γ, starts at 1) and ``bias`` (β, starts at 0) are Parameters. The running
statistics are state: saved and loaded with the model (``state_arrays``), never touched by
an optimizer.

The math lives in :mod:`tinycnn.kernels.batchnorm` (the ``"reference"`` backend) and its
compiled twin :mod:`tinycnn.kernels.numba_batchnorm` (``"numba"``), imported on the first
call so that a model without BatchNorm never compiles it.
"""
import importlib

import numpy as np

from tinycnn import backend
from tinycnn.layers.base import Layer, check_dy, check_input, check_positive_int
from tinycnn.parameter import Parameter

__all__ = ["BatchNorm2D", "BatchNorm1D"]

_KERNELS = {"reference": "tinycnn.kernels.batchnorm", "numba": "tinycnn.kernels.numba_batchnorm"}


def _kernels():
    """The BatchNorm kernel module of the current backend (imported on first use)."""
    return importlib.import_module(_KERNELS[backend.get_backend()])


class _BatchNorm(Layer):
    _ndim = None                      # 4 for BatchNorm2D, 2 for BatchNorm1D

    def __init__(self, num_features, eps=1e-5, momentum=0.1, *, dtype=np.float32):
        super().__init__()
        name = f"{type(self).__name__}({num_features})"
        self.num_features = check_positive_int(num_features, "num_features", name)
        self.eps = float(eps)
        self.momentum = float(momentum)
        if not self.eps > 0:
            raise ValueError(f"{name}: eps must be > 0, got {eps}")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"{name}: momentum must be between 0 and 1, got {momentum}")
        self.weight = Parameter(np.ones(self.num_features, dtype=dtype), "weight")
        self.bias = Parameter(np.zeros(self.num_features, dtype=dtype), "bias")
        self.running_mean = np.zeros(self.num_features, dtype=dtype)
        self.running_var = np.ones(self.num_features, dtype=dtype)

    def forward(self, x):
        check_input(self, x, ndim=self._ndim, dtype=self.weight.data.dtype)
        if x.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected {self.num_features} channels (x.shape[1]), "
                             f"got {x.shape[1]} in an input of shape {x.shape}")
        kernels, gamma, beta = _kernels(), self.weight.data, self.bias.data
        if self.training:
            M = x.size // x.shape[1]
            if M < 2:
                raise ValueError(f"{self!r}: training mode needs more than one value per channel "
                                 f"to estimate a variance, got an input of shape {x.shape}")
            # the batch's statistics (var biased: divided by M), in float64
            y, mean, var, inv_std = kernels.batchnorm_forward(x, gamma, beta, self.eps)
            m = self.momentum
            self.running_mean = ((1 - m) * self.running_mean + m * mean).astype(self.running_mean.dtype)
            self.running_var = ((1 - m) * self.running_var + m * var * (M / (M - 1))).astype(self.running_var.dtype)
        else:
            y, mean, var, inv_std = kernels.batchnorm_forward(x, gamma, beta, self.eps,
                                                              self.running_mean, self.running_var)
        self._cache = (x, mean, inv_std, self.training)
        return y

    def backward(self, dy):
        x, mean, inv_std, batch_statistics = self._cached()
        check_dy(self, dy, x.shape)
        dy = dy.astype(x.dtype, copy=False)
        dx, dgamma, dbeta = _kernels().batchnorm_backward(dy, x, self.weight.data, mean, inv_std,
                                                          batch_statistics, need_dx=self.input_grad)
        self.weight.grad += dgamma
        self.bias.grad += dbeta
        return dx

    def to(self, dtype):
        """Cast parameters and running statistics to ``dtype``."""
        super().to(dtype)
        self.running_mean = self.running_mean.astype(dtype)
        self.running_var = self.running_var.astype(dtype)
        return self

    def state_arrays(self):
        """The running statistics: saved with the model, never optimised."""
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    @classmethod
    def array_shapes(cls, config):
        """γ, β and both running statistics are ``(num_features,)``."""
        n = int(config["num_features"])
        return {name: (n,) for name in ("weight", "bias", "running_mean", "running_var")}

    def output_shape(self, input_shape):
        if input_shape[0] != self.num_features:
            raise ValueError(f"{self!r}: expected {self.num_features} channels, the layer before "
                             f"gives {input_shape[0]} (shape {tuple(input_shape)})")
        return tuple(input_shape)

    def param_formula(self):
        return f"2·{self.num_features}"

    def config(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum}

    def __repr__(self):
        return f"{type(self).__name__}({self.num_features})"


class BatchNorm2D(_BatchNorm):
    """Batch normalisation of conv feature maps ``(N, C, H, W)``, statistics over (N, H, W).

    >>> bn = BatchNorm2D(3)
    >>> y = bn.forward(np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2))
    >>> np.round(y.mean(axis=(0, 2, 3)), 6).tolist(), np.round(y.std(axis=(0, 2, 3)), 3).tolist()
    ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    """
    _ndim = 4


class BatchNorm1D(_BatchNorm):
    """Batch normalisation of features ``(N, C)``, statistics over the batch."""
    _ndim = 2
