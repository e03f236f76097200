r"""2-D convolution layer.

Shapes: x (N, C, H, W), weight (F, C, KH, KW), bias (F,), y (N, F, Ho, Wo) with

.. math::
    H_o = \left\lfloor \frac{H + 2p_h - K_H}{s_h} \right\rfloor + 1,\qquad
    W_o = \left\lfloor \frac{W + 2p_w - K_W}{s_w} \right\rfloor + 1

Forward:  :math:`y_{n,f,h,w} = b_f + \sum_{c,i,j} w_{f,c,i,j}\, x^{pad}_{n,c,\,h s_h+i,\,w s_w+j}`

Backward: :math:`\partial L/\partial b_f = \sum_{n,h,w} dy_{n,f,h,w}`,
:math:`\partial L/\partial w_{f,c,i,j} = \sum_{n,h,w} dy_{n,f,h,w}\, x^{pad}_{n,c,\,h s_h+i,\,w s_w+j}`,
:math:`\partial L/\partial x^{pad}_{n,c,\,h s_h+i,\,w s_w+j} \mathrel{+}= \sum_f dy_{n,f,h,w}\, w_{f,c,i,j}`.

The loops live in ``tinycnn.kernels`` (``conv2d_forward`` / ``conv2d_backward``).
"""
import numpy as np

from tinycnn import backend
from tinycnn.init import as_generator, get_initializer
from tinycnn.layers.base import Layer, check_dy, check_input, check_positive_int, pair
from tinycnn.parameter import Parameter

__all__ = ["Conv2D"]


class Conv2D(Layer):
    """Convolution with ``out_channels`` filters of ``kernel_size`` over ``in_channels``.

    ``padding`` is an int, a pair ``(p_h, p_w)`` of zero rows/columns added on each side,
    or a word: ``"valid"`` (no padding, 0) or ``"same"`` (output as large as the input:
    :math:`p = (K-1)/2`). As in PyTorch, ``"same"`` needs ``stride=1`` -- with stride s,
    ``padding=K//2`` gives ``H_o = ceil(H / s)`` for an odd K -- and, because
    tinycnn pads both sides equally, an odd kernel size.

    >>> Conv2D(3, 8, kernel_size=3, padding="same", rng=0).output_shape((3, 32, 32))
    (8, 32, 32)
    >>> conv = Conv2D(1, 6, kernel_size=5, padding=2, rng=0)
    >>> conv.forward(np.zeros((2, 1, 28, 28), np.float32)).shape
    (2, 6, 28, 28)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, *,
                 init="he", rng=None, dtype=np.float32):
        super().__init__()
        name = f"Conv2D({in_channels}→{out_channels}, k={kernel_size})"
        self.in_channels = check_positive_int(in_channels, "in_channels", name)
        self.out_channels = check_positive_int(out_channels, "out_channels", name)
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride = pair(stride, "stride", name)
        self.padding_mode = padding if isinstance(padding, str) else None
        self.padding = pair(self._padding_from_word(padding, name), "padding", name, minimum=0)
        self.init = init if isinstance(init, str) else getattr(init, "__name__", "custom")
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        self.weight = Parameter(get_initializer(init)(shape, as_generator(rng), dtype), "weight")
        # bias=False: no bias parameter at all (the conv-before-BatchNorm pattern, where
        # BatchNorm's β does the shifting); the kernels then add a constant zero vector
        self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype), "bias") if bias else None

    def _b(self):
        """The bias vector the kernels add: the parameter, or zeros without one."""
        if self.bias is not None:
            return self.bias.data
        return np.zeros(self.out_channels, dtype=self.weight.data.dtype)

    def _padding_from_word(self, padding, name):
        """``"valid"`` -> 0, ``"same"`` -> (K-1)/2 per axis; numbers pass through."""
        if not isinstance(padding, str):
            return padding
        if padding == "valid":
            return 0
        if padding != "same":
            raise ValueError(f"{name}: padding must be an int, a pair of ints, 'same' or 'valid'; "
                             f"got {padding!r}")
        if self.stride != (1, 1):
            raise ValueError(
                f"{name}: padding='same' needs stride 1 (as in PyTorch), got stride {self.stride}; "
                "with an odd kernel, padding=kernel_size//2 gives H_out = ceil(H / stride)")
        if any(k % 2 == 0 for k in self.kernel_size):
            raise ValueError(
                f"{name}: padding='same' needs an odd kernel size, got {self.kernel_size}: an even "
                "kernel needs one more padded row on one side than on the other (PyTorch puts it "
                "at the bottom/right) and tinycnn pads both sides equally; use an odd kernel or an "
                "explicit padding")
        return tuple((k - 1) // 2 for k in self.kernel_size)

    def forward(self, x):
        check_input(self, x, ndim=4, dtype=self.weight.data.dtype)
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self!r}: expected {self.in_channels} input channel(s) (x.shape[1]), "
                f"got {x.shape[1]} in an input of shape {x.shape}"
            )
        (ph, pw), (kh, kw) = self.padding, self.kernel_size
        if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
            raise ValueError(
                f"{self!r}: kernel {kh}×{kw} is larger than the padded input "
                f"{x.shape[2] + 2 * ph}×{x.shape[3] + 2 * pw} (input {x.shape}, padding {self.padding})"
            )
        self._cache = x
        return backend.kernels().conv2d_forward(x, self.weight.data, self._b(),
                                                self.stride, self.padding)

    def backward(self, dy):
        x = self._cached()
        check_dy(self, dy, (x.shape[0],) + self.output_shape(x.shape[1:]))
        dx, dw, db = backend.kernels().conv2d_backward(dy.astype(x.dtype, copy=False), x,
                                                       self.weight.data, self.stride, self.padding,
                                                       need_dx=self.input_grad)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def output_shape(self, input_shape):
        """``(F, H_o, W_o)`` for a per-sample ``(C, H, W)``; ValueError if it does not fit."""
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"{self!r} expects a per-sample input ({self.in_channels}, H, W), "
                             f"got {tuple(input_shape)}")
        _, H, W = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if H + 2 * ph < kh or W + 2 * pw < kw:
            raise ValueError(f"{self!r}: kernel {kh}×{kw} is larger than the padded input "
                             f"{H + 2 * ph}×{W + 2 * pw} (input {tuple(input_shape)})")
        return (self.out_channels, (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1)

    def receptive_window(self, input_shape):
        """Kernel, stride and padding per axis: ``((KH, s_h, p_h), (KW, s_w, p_w))``."""
        return tuple(zip(self.kernel_size, self.stride, self.padding))

    def param_formula(self):
        kh, kw = self.kernel_size
        if self.bias is None:
            return f"{kh}·{kw}·{self.in_channels}·{self.out_channels}"
        return f"({kh}·{kw}·{self.in_channels} + 1)·{self.out_channels}"

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": self.padding_mode or list(self.padding), "bias": self.bias is not None}

    @classmethod
    def array_shapes(cls, config):
        """``weight (F, C, KH, KW)`` and ``bias (F,)`` for a saved ``config`` (no allocation)."""
        name = f"Conv2D({config.get('in_channels')}→{config.get('out_channels')})"
        C = check_positive_int(config["in_channels"], "in_channels", name)
        F = check_positive_int(config["out_channels"], "out_channels", name)
        shapes = {"weight": (F, C) + pair(config["kernel_size"], "kernel_size", name)}
        if config.get("bias", True):            # no bias array for Conv2D(..., bias=False)
            shapes["bias"] = (F,)
        return shapes

    def __repr__(self):
        k = self.kernel_size[0] if self.kernel_size[0] == self.kernel_size[1] else self.kernel_size
        extra = ""
        if self.stride != (1, 1):
            extra += f", s={self.stride[0] if self.stride[0] == self.stride[1] else self.stride}"
        if self.padding_mode is not None:
            extra += f", p={self.padding_mode}"
        elif self.padding != (0, 0):
            extra += f", p={self.padding[0] if self.padding[0] == self.padding[1] else self.padding}"
        if self.bias is None:
            extra += ", no bias"
        return f"Conv2D({self.in_channels}→{self.out_channels}, k={k}{extra})"
