r"""Fully connected layer ``y = Wx + b`` and the ``Flatten`` that feeds it.

Dense shapes: x (N, I), weight (O, I), bias (O,), y (N, O); for a batch :math:`Y = XW^T + b`.

Backward: :math:`dX = dY\,W`, :math:`dW = dY^T X`, :math:`db = \sum_n dY_{n,:}`.

Flatten: (N, C, H, W) -> (N, C·H·W) in C order; backward reshapes ``dy`` back.
"""
import math

import numpy as np

from tinycnn import backend
from tinycnn.init import as_generator, get_initializer
from tinycnn.layers.base import Layer, check_dy, check_input, check_positive_int
from tinycnn.parameter import Parameter

__all__ = ["Dense", "Flatten"]


class Dense(Layer):
    """``y = W x + b`` for every row ``x`` of a (N, in_features) batch.

    >>> Dense(3, 2, rng=0).forward(np.ones((4, 3), np.float32)).shape
    (4, 2)
    """

    def __init__(self, in_features, out_features, *, init="he", rng=None, dtype=np.float32):
        super().__init__()
        name = f"Dense({in_features}→{out_features})"
        self.in_features = check_positive_int(in_features, "in_features", name)
        self.out_features = check_positive_int(out_features, "out_features", name)
        shape = (self.out_features, self.in_features)
        self.weight = Parameter(get_initializer(init)(shape, as_generator(rng), dtype), "weight")
        self.bias = Parameter(np.zeros(self.out_features, dtype=dtype), "bias")

    def forward(self, x):
        check_input(self, x, ndim=2, dtype=self.weight.data.dtype)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"{self!r}: expected {self.in_features} input features (x.shape[1]), "
                f"got {x.shape[1]} in an input of shape {x.shape}"
            )
        self._cache = x
        return backend.kernels().dense_forward(x, self.weight.data, self.bias.data)

    def backward(self, dy):
        x = self._cached()
        check_dy(self, dy, (x.shape[0], self.out_features))
        dx, dw, db = backend.kernels().dense_backward(dy.astype(x.dtype, copy=False), x, self.weight.data)
        self.weight.grad += dw
        self.bias.grad += db
        return dx

    def output_shape(self, input_shape):
        """``(out_features,)``; ValueError if ``input_shape`` is not ``(in_features,)``."""
        if len(input_shape) != 1:
            raise ValueError(f"{self!r} expects a flat input (features,), got {tuple(input_shape)}; "
                             "hint: put a Flatten() layer before it")
        if input_shape[0] != self.in_features:
            raise ValueError(f"{self!r} expects {self.in_features} input features, got {input_shape[0]} "
                             f"(hint: Dense({input_shape[0]}, {self.out_features}))")
        return (self.out_features,)

    def receptive_window(self, input_shape):
        """``None``: every output mixes every input feature, so it sees the whole input."""
        return None

    def param_formula(self):
        return f"({self.in_features} + 1)·{self.out_features}"

    def config(self):
        return {"in_features": self.in_features, "out_features": self.out_features}

    @classmethod
    def array_shapes(cls, config):
        """``weight (O, I)`` and ``bias (O,)`` for a saved ``config`` (no allocation)."""
        name = f"Dense({config.get('in_features')}→{config.get('out_features')})"
        I = check_positive_int(config["in_features"], "in_features", name)  # noqa: E741
        O = check_positive_int(config["out_features"], "out_features", name)  # noqa: E741
        return {"weight": (O, I), "bias": (O,)}

    def __repr__(self):
        return f"Dense({self.in_features}→{self.out_features})"


class Flatten(Layer):
    """(N, C, H, W) -> (N, C·H·W); the bridge from conv/pool layers to Dense."""

    def forward(self, x):
        check_input(self, x)
        if x.ndim < 2:
            raise ValueError(f"{self!r}: expected at least a 2-D input (N, ...), got shape {x.shape}")
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        shape = self._cached()
        check_dy(self, dy, (shape[0], math.prod(shape[1:])))   # math.prod: np.prod of a tuple costs ~4 us
        return dy.reshape(shape)

    def output_shape(self, input_shape):
        return (int(math.prod(input_shape)),)

    def receptive_window(self, input_shape):
        """``None``: the pixel grid ends here (each feature is still one input unit, but
        a layer after Flatten may mix them all)."""
        return None
