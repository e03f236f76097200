r"""Max and average pooling: ``y = g(x, k)`` over each ``KH×KW`` window.

Shapes: x (N, C, H, W) -> y (N, C, Ho, Wo), :math:`H_o = \lfloor (H - K_H)/s_h \rfloor + 1`;
the stride defaults to the kernel size (non-overlapping windows).

Max:     :math:`y_{n,c,h,w} = \max_{i,j} x_{n,c,\,h s_h+i,\,w s_w+j}`; backward sends
``dy`` to the window's argmax (first one on ties).

Average: :math:`y_{n,c,h,w} = \frac{1}{K_H K_W}\sum_{i,j} x_{n,c,\,h s_h+i,\,w s_w+j}`;
backward spreads ``dy / (KH·KW)`` over the window. Pooling has no parameters.
"""
import numpy as np

from tinycnn import backend
from tinycnn.layers.base import Layer, check_dy, check_input, pair

__all__ = ["MaxPool2D", "AvgPool2D", "GlobalAvgPool2D"]


class _Pool2D(Layer):
    _kind = None  # "maxpool2d" or "avgpool2d": the kernel pair this layer calls

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        name = f"{type(self).__name__}({kernel_size})"
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", name)

    def forward(self, x):
        check_input(self, x, ndim=4)
        (kh, kw) = self.kernel_size
        if x.shape[2] < kh or x.shape[3] < kw:
            raise ValueError(
                f"{self!r}: window {kh}×{kw} is larger than the input's {x.shape[2]}×{x.shape[3]} "
                f"(input shape {x.shape})"
            )
        self._cache = x
        return getattr(backend.kernels(), self._kind + "_forward")(x, self.kernel_size, self.stride)

    def backward(self, dy):
        x = self._cached()
        check_dy(self, dy, (x.shape[0],) + self.output_shape(x.shape[1:]))
        return getattr(backend.kernels(), self._kind + "_backward")(
            dy.astype(x.dtype, copy=False), x, self.kernel_size, self.stride)

    def output_shape(self, input_shape):
        C, H, W = input_shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return (C, (H - kh) // sh + 1, (W - kw) // sw + 1)

    def receptive_window(self, input_shape):
        """Window and stride per axis, no padding: ``((KH, s_h, 0), (KW, s_w, 0))``."""
        return tuple((k, s, 0) for k, s in zip(self.kernel_size, self.stride))

    def config(self):
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}

    def __repr__(self):
        k = self.kernel_size[0] if self.kernel_size[0] == self.kernel_size[1] else self.kernel_size
        s = "" if self.stride == self.kernel_size else f", s={self.stride}"
        return f"{type(self).__name__}({k}{s})"


class MaxPool2D(_Pool2D):
    """Max pooling; ``MaxPool2D(2)`` halves H and W."""
    _kind = "maxpool2d"

    def kink_states(self):
        """Which element won each window (first on ties): a tie is a kink of the max."""
        if self._cache is None:
            return []
        x, (kh, kw), (sh, sw) = self._cache, self.kernel_size, self.stride
        _, Ho, Wo = self.output_shape(x.shape[1:])
        windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
        windows = windows[:, :, :Ho * sh:sh, :Wo * sw:sw]          # (N, C, Ho, Wo, KH, KW)
        return [(f"{self!r} argmax changed (a tie)",
                 windows.reshape(windows.shape[:4] + (kh * kw,)).argmax(axis=-1))]


class AvgPool2D(_Pool2D):
    """Average pooling; ``AvgPool2D(2)`` halves H and W."""
    _kind = "avgpool2d"


class GlobalAvgPool2D(Layer):
    r"""Global average pooling: one number per channel, ``(N, C, H, W) -> (N, C)``.

    :math:`y_{n,c} = \frac{1}{HW}\sum_{h,w} x_{n,c,h,w}`; backward spreads each
    :math:`dy_{n,c}/(HW)` evenly over its map. No parameters, and it replaces ``Flatten``
    before the classifier: the head then works for any input size.

    >>> GlobalAvgPool2D().forward(np.ones((2, 3, 4, 5), np.float32)).shape
    (2, 3)
    """

    def forward(self, x):
        check_input(self, x, ndim=4)
        self._cache = x.shape
        return x.mean(axis=(2, 3), dtype=x.dtype)

    def backward(self, dy):
        N, C, H, W = self._cached()
        check_dy(self, dy, (N, C))
        dx = np.empty((N, C, H, W), dtype=dy.dtype)
        dx[...] = (dy / (H * W))[:, :, None, None]
        return dx

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"{self!r} expects a per-sample input (C, H, W), got {tuple(input_shape)}")
        return (input_shape[0],)

    def receptive_window(self, input_shape):
        """Every output sees its whole map: like Dense, no window (``None``)."""
        return None
