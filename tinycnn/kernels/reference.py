r"""Reference kernels: readable NumPy that reads like the math. This file is the spec.

Every function here has a twin with the same signature in ``tinycnn.kernels.fast``;
the tests prove the two equal on random shapes. All arrays are NCHW; a kernel's output
has its input's dtype. ``stride``/``padding``/``kernel_size`` are ``(rows, cols)`` pairs
(an int means the same value for both).

Symbols: ``N`` batch, ``C`` input channels, ``F`` output channels (filters),
``H, W`` input size, ``KH, KW`` kernel size, ``s`` stride, ``p`` padding,
``Ho = (H + 2p - KH) // s + 1`` and ``Wo = (W + 2p - KW) // s + 1``.

The convolution and pooling kernels loop over the *kernel offsets* ``(i, j)`` and do the
rest with whole-array NumPy: for one offset, ``x_pad[:, :, i::s, j::s]`` (cut to
``Ho x Wo``) is exactly the input pixel each output position sees through tap ``(i, j)``.
"""
import numpy as np

__all__ = [
    "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward",
    "avgpool2d_forward", "avgpool2d_backward",
    "relu_forward", "relu_backward",
    "dense_forward", "dense_backward",
]


def _pair(v):
    return (v, v) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _pad(x, ph, pw):
    """Zero-pad the two spatial axes of an NCHW array."""
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _tap(x_pad, i, j, sh, sw, Ho, Wo):
    """x_pad[n, c, h*sh + i, w*sw + j] for all n, c, h < Ho, w < Wo (a strided view)."""
    return x_pad[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw]


# ---------------------------------------------------------------- convolution

def conv2d_forward(x, w, b, stride=1, padding=0):
    r"""2-D convolution (cross-correlation, as in every DL framework).

    .. math::
        y_{n,f,h,w} = b_f + \sum_{c}\sum_{i<KH}\sum_{j<KW}
                      w_{f,c,i,j}\; x^{pad}_{n,c,\,h s_h + i,\,w s_w + j}

    x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) -> y: (N, F, Ho, Wo).
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    Ho = (H + 2 * ph - KH) // sh + 1
    Wo = (W + 2 * pw - KW) // sw + 1
    x_pad = _pad(x, ph, pw)
    y = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for i in range(KH):
        for j in range(KW):
            # y[n,f,h,w] += sum_c w[f,c,i,j] * x_pad[n,c,h*s+i,w*s+j]
            y += np.einsum("fc,nchw->nfhw", w[:, :, i, j], _tap(x_pad, i, j, sh, sw, Ho, Wo))
    y += b.reshape(1, F, 1, 1)
    return y


def conv2d_backward(dy, x, w, stride=1, padding=0, need_dx=True):
    r"""Gradients of :func:`conv2d_forward`; the same loops, read in reverse.

    .. math::
        \frac{\partial L}{\partial b_f} = \sum_{n,h,w} dy_{n,f,h,w}
        \qquad
        \frac{\partial L}{\partial w_{f,c,i,j}} =
            \sum_{n,h,w} dy_{n,f,h,w}\; x^{pad}_{n,c,\,h s_h+i,\,w s_w+j}

        \frac{\partial L}{\partial x^{pad}_{n,c,\,h s_h+i,\,w s_w+j}} \mathrel{+}=
            \sum_f dy_{n,f,h,w}\; w_{f,c,i,j}

    and ``dx`` is ``dx_pad`` with the padding cut off.
    dy: (N, F, Ho, Wo) -> dx: (N, C, H, W), dw: (F, C, KH, KW), db: (F,).
    ``need_dx=False`` (the input is the data: nobody wants its gradient) returns
    ``(None, dw, db)``.
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    x_pad = _pad(x, ph, pw)
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = dy.sum(axis=(0, 2, 3))
    for i in range(KH):
        for j in range(KW):
            dw[:, :, i, j] = np.einsum("nfhw,nchw->fc", dy, _tap(x_pad, i, j, sh, sw, Ho, Wo))
            if need_dx:
                # for one tap (i, j) the positions h*s+i are all distinct: += cannot collide
                _tap(dx_pad, i, j, sh, sw, Ho, Wo)[...] += np.einsum("nfhw,fc->nchw", dy, w[:, :, i, j])
    if not need_dx:
        return None, dw, db
    dx = dx_pad[:, :, ph:ph + H, pw:pw + W]
    return np.ascontiguousarray(dx), dw, db


# ---------------------------------------------------------------- max pooling

def _pool_geometry(x, kernel_size, stride):
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    N, C, H, W = x.shape
    return kh, kw, sh, sw, (H - kh) // sh + 1, (W - kw) // sw + 1


def maxpool2d_forward(x, kernel_size, stride=None):
    r"""Max pooling.

    .. math:: y_{n,c,h,w} = \max_{i<K_h,\,j<K_w} x_{n,c,\,h s_h+i,\,w s_w+j}

    x: (N, C, H, W) -> y: (N, C, Ho, Wo), ``Ho = (H - KH) // s + 1``; stride defaults to
    the kernel size.
    """
    kh, kw, sh, sw, Ho, Wo = _pool_geometry(x, kernel_size, stride)
    y = np.full(x.shape[:2] + (Ho, Wo), -np.inf, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            np.maximum(y, _tap(x, i, j, sh, sw, Ho, Wo), out=y)
    return y


def maxpool2d_backward(dy, x, kernel_size, stride=None):
    r"""Gradient of :func:`maxpool2d_forward`: each ``dy`` goes to its window's argmax.

    .. math::
        \frac{\partial L}{\partial x_{n,c,\,h s_h+i^*,\,w s_w+j^*}} \mathrel{+}= dy_{n,c,h,w},
        \quad (i^*, j^*) = \operatorname{argmax}_{i,j}\, x_{n,c,\,h s_h+i,\,w s_w+j}

    Ties go to the first maximum in row-major order (as in PyTorch). A NaN counts as the
    maximum (the forward's ``y`` is NaN there) and every NaN replaces the running maximum,
    so of several NaNs the *last* one in row-major order gets ``dy`` -- PyTorch's CPU
    rule, ``val > maxval || isnan(val)``. Overlapping windows (stride < kernel) may send
    several ``dy`` to one input pixel; they add up.
    """
    kh, kw, sh, sw, Ho, Wo = _pool_geometry(x, kernel_size, stride)
    # pass 1: which tap k = i*KW + j holds each window's maximum (first max, last NaN)
    best = np.full(dy.shape, -np.inf, dtype=x.dtype)
    argmax = np.zeros(dy.shape, dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            tap = _tap(x, i, j, sh, sw, Ho, Wo)
            better = (tap > best) | np.isnan(tap)
            best[better] = tap[better]
            argmax[better] = i * kw + j
    # pass 2: route dy to that tap
    dx = np.zeros_like(x)
    for i in range(kh):
        for j in range(kw):
            _tap(dx, i, j, sh, sw, Ho, Wo)[...] += np.where(argmax == i * kw + j, dy, 0)
    return dx


# ---------------------------------------------------------------- average pooling

def avgpool2d_forward(x, kernel_size, stride=None):
    r"""Average pooling.

    .. math:: y_{n,c,h,w} = \frac{1}{K_h K_w}\sum_{i<K_h}\sum_{j<K_w} x_{n,c,\,h s_h+i,\,w s_w+j}
    """
    kh, kw, sh, sw, Ho, Wo = _pool_geometry(x, kernel_size, stride)
    y = np.zeros(x.shape[:2] + (Ho, Wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            y += _tap(x, i, j, sh, sw, Ho, Wo)
    return y / x.dtype.type(kh * kw)


def avgpool2d_backward(dy, x, kernel_size, stride=None):
    r"""Gradient of :func:`avgpool2d_forward`: every pixel of a window gets an equal share.

    .. math::
        \frac{\partial L}{\partial x_{n,c,\,h s_h+i,\,w s_w+j}} \mathrel{+}=
            \frac{dy_{n,c,h,w}}{K_h K_w}
    """
    kh, kw, sh, sw, Ho, Wo = _pool_geometry(x, kernel_size, stride)
    share = dy / x.dtype.type(kh * kw)
    dx = np.zeros_like(x)
    for i in range(kh):
        for j in range(kw):
            _tap(dx, i, j, sh, sw, Ho, Wo)[...] += share
    return dx


# ---------------------------------------------------------------- ReLU

def relu_forward(x):
    r"""Rectified linear unit, element by element (any shape, dtype kept).

    .. math:: y = \max(0, x)

    A NaN stays NaN (``np.maximum`` propagates it).
    """
    return np.maximum(x, 0)


def relu_backward(dy, x):
    r"""Gradient of :func:`relu_forward`: ``dy`` passes where the input was positive.

    .. math:: dx = dy \odot [x > 0]

    The derivative at ``x = 0`` is taken as 0, as in PyTorch.
    """
    return dy * (x > 0)


# ---------------------------------------------------------------- dense

def dense_forward(x, w, b):
    r"""Fully connected layer, one row per sample.

    .. math:: y_{n,o} = \sum_i x_{n,i}\, w_{o,i} + b_o \qquad (Y = X W^T + b)

    x: (N, I), w: (O, I), b: (O,) -> y: (N, O).

    ``einsum`` spells the sum out and, unlike ``x @ w.T``, never calls BLAS: a
    multi-threaded BLAS may round differently for each thread count, the spec must not.
    """
    return np.einsum("ni,oi->no", x, w) + b


def dense_backward(dy, x, w):
    r"""Gradients of :func:`dense_forward`.

    .. math::
        \frac{\partial L}{\partial x} = dY\, W \qquad
        \frac{\partial L}{\partial W} = dY^T X \qquad
        \frac{\partial L}{\partial b} = \sum_n dY_{n,:}

    dy: (N, O) -> dx: (N, I), dw: (O, I), db: (O,).
    """
    return np.einsum("no,oi->ni", dy, w), np.einsum("no,ni->oi", dy, x), dy.sum(axis=0)
