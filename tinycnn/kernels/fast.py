r"""Fast kernels: the reference twins' math, compiled with Numba (the default backend).

Every public function here has exactly the signature and results of its twin in
:mod:`tinycnn.kernels.reference` (the spec; tested equal in ``tests/test_fast_kernels.py``).
The functions in this module are thin Python wrappers: they normalise ``stride`` /
``padding`` / ``kernel_size`` to pairs, make inputs C-contiguous in the input's dtype,
allocate outputs and call ``@njit(cache=True)`` loops from :mod:`numba_conv` and
:mod:`numba_pool`. Importing this module compiles nothing; each loop is compiled (or loaded
from Numba's on-disk cache) on first use, once per dtype -- or ahead of time by
:func:`warmup`.

Which algorithm, and why (measured on the project's 2-core AVX-512 Xeon, float32; the
numbers are in ``benchmarks/RESULTS.md``):

* **One input channel, stride 1 (LeNet's conv1, a 224x224 grey image): direct loops.**
  im2col would copy every pixel KH*KW times (9x for 3x3, 25x for 5x5) only to feed a GEMM
  whose inner dimension is a tiny KH*KW. Small planes use the whole-plane kernel, large
  ones the row kernel (see :data:`PLANE_MAX`); neither needs extra memory.
* **Several input channels, or any stride > 1: im2col + BLAS GEMM.** With C*KH*KW >= ~50
  the matrix product does most of the work and BLAS does it far better than a hand loop
  (LeNet conv2: 1.8 ms forward vs 3.0 ms for the best direct loop); the gather (im2col)
  and the scatter-add of the backward pass (col2im) stay Numba loops.
* **Dense: BLAS** (``x @ w.T``), as in the reference: it is one GEMM already.

Threads: the Numba loops are serial, ``nogil`` functions; :func:`_split` runs them on
contiguous chunks of the batch on a small thread pool (:func:`set_num_threads`), and BLAS
keeps its own pool. The comment above :func:`set_num_threads` says why this and not
``parallel=True``.
"""
import threading

import numpy as np

from tinycnn.kernels import numba_conv as _conv
from tinycnn.kernels import numba_pool as _pool

__all__ = [
    "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward",
    "avgpool2d_forward", "avgpool2d_backward",
    "dense_forward", "dense_backward",
    "warmup", "clear_workspace", "set_num_threads", "get_num_threads",
]

_DTYPES = (np.float32, np.float64)


# ---------------------------------------------------------------- argument plumbing

def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _as(a, dtype, name, kernel):
    """``a`` as a C-contiguous array of ``dtype`` (a no-op when it already is)."""
    a = np.asarray(a)
    if a.dtype.type not in _DTYPES:
        raise TypeError(f"{kernel}: {name} has dtype {a.dtype}; the fast kernels take "
                        "float32 or float64 (cast with x.astype(np.float32))")
    return np.ascontiguousarray(a, dtype=dtype)


class _Workspace(threading.local):
    """Scratch arrays reused from call to call (one set per thread).

    A fresh multi-megabyte ``np.empty`` is page-faulted in on first touch, every call;
    for LeNet's conv2 that cost more than the GEMM itself. Only internal temporaries
    (padded input, im2col columns, GEMM results) live here -- never an array we return.
    """

    def __init__(self):
        self.buffers = {}

    def get(self, name, shape, dtype):
        size = int(np.prod(shape))
        buf = self.buffers.get((name, np.dtype(dtype)))
        if buf is None or buf.size < size:
            buf = np.empty(size, dtype=dtype)
            self.buffers[(name, np.dtype(dtype))] = buf
        return buf[:size].reshape(shape)


_ws = _Workspace()


# ---------------------------------------------------------------- threads
#
# Why not ``@njit(parallel=True)`` + ``prange``? Measured here: (1) a parallel kernel took
# 5.3 s to compile against 1.9 s serial, which alone would break the "first training step
# within 5 s" budget; (2) the issue's scratch code lost 2.5x in the BLAS calls between
# kernels to Numba's OpenMP workers spinning (LeNet b64: 17 ms one thread, 43 ms two
# threads, 23 ms with the workqueue layer). Instead every kernel is serial and ``nogil``,
# and this module splits the batch into contiguous chunks run on a tiny thread pool. Idle
# pool threads block on a lock (they never spin), so BLAS keeps the cores between kernels;
# each chunk writes only its own samples (and its own per-sample partial ``dw``), so the
# result is bit-identical whatever the number of threads. Measured on LeNet's conv1
# backward: 3.1 ms serial, 1.6 ms on two threads; dispatch overhead 0.03 ms.

_threads = None          # None: NUMBA_NUM_THREADS (its default is the number of CPUs)
_executor = None         # (pool, number of workers), created on first use
SPLIT_MIN_WORK = 200_000  # multiply-adds (or elements) below which one thread is faster


def set_num_threads(n):
    """Use ``n`` threads (>= 1) for the Numba loops; BLAS keeps its own setting."""
    global _threads, _executor
    if int(n) < 1:
        raise ValueError(f"set_num_threads: need at least 1 thread, got {n}")
    _threads = int(n)
    if _executor is not None:
        _executor[0].shutdown(wait=True)
        _executor = None


def get_num_threads():
    """Threads the Numba loops use (default: ``NUMBA_NUM_THREADS``, i.e. the CPU count)."""
    if _threads is None:
        import numba
        return max(1, int(numba.config.NUMBA_NUM_THREADS))
    return _threads


def _split(kernel, n, work, *args):
    """``kernel(*args, lo, hi)`` over ``[0, n)``, in contiguous chunks run concurrently."""
    global _executor
    T = min(get_num_threads(), n)
    if T <= 1 or work < SPLIT_MIN_WORK:
        kernel(*args, 0, n)
        return
    if _executor is None or _executor[1] < T - 1:
        from concurrent.futures import ThreadPoolExecutor
        _executor = (ThreadPoolExecutor(T - 1, thread_name_prefix="tinycnn"), T - 1)
    bounds = [n * k // T for k in range(T + 1)]
    futures = [_executor[0].submit(kernel, *args, bounds[k], bounds[k + 1])
               for k in range(1, T)]
    kernel(*args, bounds[0], bounds[1])                # this thread takes the first chunk
    for f in futures:
        f.result()


def clear_workspace():
    """Free the scratch buffers the convolution kernels keep between calls."""
    _ws.buffers.clear()


def _pad(x, ph, pw, name="xp", width=None):
    """Zero-padded copy of ``x`` in the workspace (``x`` itself when there is nothing to pad).

    ``width`` widens the rows further on the right (more zeros), see :data:`LANES`.
    """
    N, C, H, W = x.shape
    Wp = max(W + 2 * pw, width or 0)
    if ph == 0 and Wp == W:
        return x
    xp = _ws.get(name, (N, C, H + 2 * ph, Wp), x.dtype)
    xp.fill(0)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    return xp


# The direct loops run along output rows. LLVM vectorises such a loop in blocks (16 floats
# here) and finishes the rest one element at a time, so LeNet's 28-wide rows spent almost
# half their time in that scalar tail. Computing rows rounded up to a multiple of LANES --
# zero input columns on the right, the extra outputs cropped off -- made conv1 ~30% faster
# (8 and 32 were no better, rows already a multiple of 16 are left alone).
LANES = 16


def _lanes(Wo):
    return -(-Wo // LANES) * LANES


def _conv_out(x_shape, w_shape, stride, padding, kernel):
    """(Ho, Wo), after checking what the loops rely on (they skip bounds checks)."""
    if len(x_shape) != 4 or len(w_shape) != 4 or x_shape[1] != w_shape[1]:
        raise ValueError(f"{kernel}: expected x (N, C, H, W) and w (F, C, KH, KW) with the "
                         f"same C, got x {x_shape} and w {w_shape}")
    (sh, sw), (ph, pw) = stride, padding
    if min(sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{kernel}: stride must be >= 1 and padding >= 0, got {stride}, {padding}")
    Ho = (x_shape[2] + 2 * ph - w_shape[2]) // sh + 1
    Wo = (x_shape[3] + 2 * pw - w_shape[3]) // sw + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"{kernel}: kernel {w_shape[2:]} is larger than the padded input "
                         f"(x {x_shape}, padding {padding})")
    return Ho, Wo


def _check_dy(dy, shape, kernel):
    if dy.shape != tuple(shape):
        raise ValueError(f"{kernel}: dy has shape {dy.shape}, expected {tuple(shape)} "
                         "(the shape of the forward output)")


# Direct loops for inputs with at most this many channels, im2col + GEMM above (module
# docstring). The tests also set it to 0 and to 8 to check each path on every shape.
DIRECT_MAX_CHANNELS = 1


def _use_direct(C, sh, sw):
    """Direct loops need stride 1: with stride 2 a single-channel im2col copies only
    KH*KW/4 values per pixel, and BLAS then beat the strided loops 2.6x (32x1x64x64)."""
    return C <= DIRECT_MAX_CHANNELS and sh == sw == 1


# ---------------------------------------------------------------- convolution

def conv2d_forward(x, w, b, stride=1, padding=0):
    r"""2-D convolution (cross-correlation); twin of ``reference.conv2d_forward``.

    .. math::
        y_{n,f,h,w} = b_f + \sum_{c}\sum_{i<KH}\sum_{j<KW}
                      w_{f,c,i,j}\; x^{pad}_{n,c,\,h s_h + i,\,w s_w + j}

    x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) -> y: (N, F, Ho, Wo).

    Algorithm: direct loops when C == 1 (:func:`numba_conv.plane_forward` / ``row_forward``); otherwise
    im2col gather (Numba) then one GEMM ``w.reshape(F, C*KH*KW) @ cols`` (BLAS) and a
    Numba move of the result into NCHW with the bias added.
    """
    x = _as(x, None, "x", "conv2d_forward")
    w, b = _as(w, x.dtype, "w", "conv2d_forward"), _as(b, x.dtype, "b", "conv2d_forward")
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    Ho, Wo = _conv_out(x.shape, w.shape, (sh, sw), (ph, pw), "conv2d_forward")
    if b.shape != (F,):
        raise ValueError(f"conv2d_forward: bias shape {b.shape} does not match {F} filters")
    y = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    if y.size == 0:
        return y
    if _use_direct(C, sh, sw):
        _direct_forward(x, w, b, ph, pw, y)
    else:
        _gemm_forward(x, w, b, sh, sw, ph, pw, y)
    return y


# Whole-plane direct loops (stride 1) while one output plane is at most this many
# elements: then the plane stays in L1 across all taps. LeNet's conv1 (28 x 32): forward
# 1.6 -> 0.9 ms, backward 3.0 -> 1.9 ms; for a 64 x 66 plane the row loops were as fast
# forward and faster backward, for 224 x 226 clearly faster.
PLANE_MAX = 2048


def _flat_planes(a, ph, pw, R, name):
    """``a`` zero-padded, rows R wide, one spare row below; shape (N, C, (Hp + 1) * R)."""
    N, C, H, W = a.shape
    Hp = H + 2 * ph
    af = _ws.get(name, (N, C, (Hp + 1) * R), a.dtype)
    af.fill(0)
    af[:, :, :Hp * R].reshape(N, C, Hp, R)[:, :, ph:ph + H, pw:pw + W] = a
    return af


def _use_plane(x, pw, Ho):
    return Ho * (x.shape[3] + 2 * pw) <= PLANE_MAX


def _direct_forward(x, w, b, ph, pw, y):
    """Direct loops: whole planes when small and stride 1, else rows (fills y)."""
    N, F, Ho, Wo = y.shape
    if _use_plane(x, pw, Ho):
        R = x.shape[3] + 2 * pw
        xf = _flat_planes(x, ph, pw, R, "xf")
        yf = _ws.get("yf", (N, F, Ho, R), x.dtype)
        _split(_conv.plane_forward, N, y.size * w[0].size, xf, w, b, R, yf.reshape(N, F, Ho * R))
        y[...] = yf[..., :Wo]
        return
    Wq = _lanes(Wo)
    xp = _pad(x, ph, pw, width=Wq - 1 + w.shape[3])
    if Wq == Wo:
        _split(_conv.row_forward, N, y.size * w[0].size, xp, w, b, y)
    else:
        yq = _ws.get("yq", (N, F, Ho, Wq), x.dtype)
        _split(_conv.row_forward, N, yq.size * w[0].size, xp, w, b, yq)
        y[...] = yq[..., :Wo]


def _gemm_forward(x, w, b, sh, sw, ph, pw, y):
    """im2col (Numba), one GEMM (BLAS), then the (F, N, P) result into y's NCHW order."""
    N, F, Ho, Wo = y.shape
    K, P = w[0].size, Ho * Wo
    xp = _pad(x, ph, pw)
    cols = _ws.get("cols", (K, N, P), x.dtype)
    _split(_conv.im2col, N, cols.size, xp, w.shape[2], w.shape[3], sh, sw, Ho, Wo, cols)
    Y = _ws.get("Y", (F, N, P), x.dtype)
    np.matmul(w.reshape(F, K), cols.reshape(K, N * P), out=Y.reshape(F, N * P))
    np.add(Y.transpose(1, 0, 2), b[:, None], out=y.reshape(N, F, P))


def conv2d_backward(dy, x, w, stride=1, padding=0):
    r"""Gradients of :func:`conv2d_forward`; twin of ``reference.conv2d_backward``.

    .. math::
        \frac{\partial L}{\partial b_f} = \sum_{n,h,w} dy_{n,f,h,w}
        \qquad
        \frac{\partial L}{\partial w_{f,c,i,j}} =
            \sum_{n,h,w} dy_{n,f,h,w}\; x^{pad}_{n,c,\,h s_h+i,\,w s_w+j}

        \frac{\partial L}{\partial x^{pad}_{n,c,\,h s_h+i,\,w s_w+j}} \mathrel{+}=
            \sum_f dy_{n,f,h,w}\; w_{f,c,i,j}

    dy: (N, F, Ho, Wo) -> dx: (N, C, H, W), dw: (F, C, KH, KW), db: (F,).

    Algorithm: C == 1, the forward's direct loops in reverse
    (``plane_backward`` / ``row_backward``, one partial ``dw`` per sample summed in order).
    Otherwise im2col again, ``dw = dY @ cols.T`` and ``dcols = W.T @ dY`` (BLAS), and the
    Numba col2im scatter-add of ``dcols`` into ``dx``. Deterministic: no two threads ever
    add into one element.
    """
    x = _as(x, None, "x", "conv2d_backward")
    dy = _as(dy, x.dtype, "dy", "conv2d_backward")
    w = _as(w, x.dtype, "w", "conv2d_backward")
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    Ho, Wo = _conv_out(x.shape, w.shape, (sh, sw), (ph, pw), "conv2d_backward")
    _check_dy(dy, (N, F, Ho, Wo), "conv2d_backward")
    db = dy.sum(axis=(0, 2, 3))
    dx = np.zeros_like(x)
    if dy.size == 0 or x.size == 0:
        return dx, np.zeros_like(w), db
    if _use_direct(C, sh, sw):
        dw = _direct_backward(dy, x, w, ph, pw, dx)
    else:
        dw = _gemm_backward(dy, x, w, sh, sw, ph, pw, dx)
    return dx, dw, db


def _crop_into(dx, dxp, ph, pw):
    """dx = dxp without its padding (no-op when dxp is dx)."""
    if dxp is not dx:
        H, W = dx.shape[2], dx.shape[3]
        dx[...] = dxp[:, :, ph:ph + H, pw:pw + W]


def _direct_backward(dy, x, w, ph, pw, dx):
    """Direct loops in reverse (planes or rows, as the forward); fills dx, returns dw."""
    N, F, Ho, Wo = dy.shape
    dw_n = _ws.get("dw_n", (N,) + w.shape, x.dtype)
    dw_n.fill(0)
    if _use_plane(x, pw, Ho):
        C, H, W = x.shape[1:]
        R, Hp = W + 2 * pw, H + 2 * ph
        xf = _flat_planes(x, ph, pw, R, "xf")
        dyf = _pad(dy, 0, 0, name="dyf", width=R)    # zero junk columns add nothing
        dxf = _ws.get("dxf", xf.shape, x.dtype)
        dxf.fill(0)
        _split(_conv.plane_backward, N, 2 * dyf.size * w[0].size,
               dyf.reshape(N, F, Ho * R), xf, w, R, dxf, dw_n)
        dx[...] = dxf[:, :, :Hp * R].reshape(N, C, Hp, R)[:, :, ph:ph + H, pw:pw + W]
        return dw_n.sum(axis=0)
    Wq = _lanes(Wo)
    xp = _pad(x, ph, pw, width=Wq - 1 + w.shape[3])
    dyq = _pad(dy, 0, 0, name="dyq", width=Wq)      # zero columns add nothing to dw, dx
    dxp = dx
    if xp is not x:
        dxp = _ws.get("dxp", xp.shape, x.dtype)
        dxp.fill(0)
    _split(_conv.row_backward, N, 2 * dyq.size * w[0].size, dyq, xp, w, dxp, dw_n)
    _crop_into(dx, dxp, ph, pw)
    return dw_n.sum(axis=0)


def _gemm_backward(dy, x, w, sh, sw, ph, pw, dx):
    """im2col again, dw = dY cols^T and dcols = W^T dY (BLAS), col2im (Numba)."""
    N, F, Ho, Wo = dy.shape
    K, P = w[0].size, Ho * Wo
    xp = _pad(x, ph, pw)
    cols = _ws.get("cols", (K, N, P), x.dtype)
    _split(_conv.im2col, N, cols.size, xp, w.shape[2], w.shape[3], sh, sw, Ho, Wo, cols)
    dY = _ws.get("dY", (F, N, P), x.dtype)
    dY[...] = dy.reshape(N, F, P).transpose(1, 0, 2)        # (N, F, P) -> (F, N, P)
    dY = dY.reshape(F, N * P)
    dw = (dY @ cols.reshape(K, N * P).T).reshape(w.shape)
    dcols = _ws.get("dcols", (K, N, P), x.dtype)
    np.matmul(w.reshape(F, K).T, dY, out=dcols.reshape(K, N * P))
    dxp = dx
    if xp is not x:
        dxp = _ws.get("dxp", xp.shape, x.dtype)
        dxp.fill(0)
    _split(_conv.col2im, N, dcols.size, dcols, w.shape[2], w.shape[3], sh, sw, Ho, Wo, dxp)
    _crop_into(dx, dxp, ph, pw)
    return dw


# ---------------------------------------------------------------- pooling

def _pool_geometry(x, kernel_size, stride, kernel):
    kh, kw = _pair(kernel_size)
    sh, sw = _pair(kernel_size if stride is None else stride)
    if x.ndim != 4 or min(kh, kw, sh, sw) < 1 or kh > x.shape[2] or kw > x.shape[3]:
        raise ValueError(f"{kernel}: expected x (N, C, H, W) at least as large as the "
                         f"kernel {(kh, kw)}, stride >= 1; got x {x.shape}, stride {(sh, sw)}")
    N, C, H, W = x.shape
    return kh, kw, sh, sw, (H - kh) // sh + 1, (W - kw) // sw + 1


def _planes(a):
    """View (N, C, H, W) as (N*C, H, W): pooling treats every plane alike."""
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2], a.shape[3])


def maxpool2d_forward(x, kernel_size, stride=None):
    r"""Max pooling; twin of ``reference.maxpool2d_forward``.

    .. math:: y_{n,c,h,w} = \max_{i<K_h,\,j<K_w} x_{n,c,\,h s_h+i,\,w s_w+j}

    x: (N, C, H, W) -> y: (N, C, Ho, Wo). Algorithm: one window loop per output pixel.
    """
    x = _as(x, None, "x", "maxpool2d_forward")
    kh, kw, sh, sw, Ho, Wo = _pool_geometry(x, kernel_size, stride, "maxpool2d_forward")
    y = np.empty(x.shape[:2] + (Ho, Wo), dtype=x.dtype)
    if y.size:
        _split(_pool.maxpool_forward, x.shape[0] * x.shape[1], x.size, _planes(x), kh, kw, sh, sw, _planes(y))
    return y


def maxpool2d_backward(dy, x, kernel_size, stride=None):
    r"""Gradient of max pooling; twin of ``reference.maxpool2d_backward``.

    .. math::
        \frac{\partial L}{\partial x_{n,c,\,h s_h+i^*,\,w s_w+j^*}} \mathrel{+}= dy_{n,c,h,w},
        \quad (i^*, j^*) = \operatorname{argmax}_{i,j}\, x_{n,c,\,h s_h+i,\,w s_w+j}

    Ties go to the first maximum in row-major window order. Algorithm: the forward's
    window loop again, remembering the argmax, then one scatter-add per window.
    """
    x = _as(x, None, "x", "maxpool2d_backward")
    dy = _as(dy, x.dtype, "dy", "maxpool2d_backward")
    kh, kw, sh, sw, Ho, Wo = _pool_geometry(x, kernel_size, stride, "maxpool2d_backward")
    _check_dy(dy, x.shape[:2] + (Ho, Wo), "maxpool2d_backward")
    dx = np.zeros_like(x)
    if dy.size:
        _split(_pool.maxpool_backward, x.shape[0] * x.shape[1], 2 * x.size, _planes(dy),
               _planes(x), kh, kw, sh, sw, _planes(dx))
    return dx


def avgpool2d_forward(x, kernel_size, stride=None):
    r"""Average pooling; twin of ``reference.avgpool2d_forward``.

    .. math:: y_{n,c,h,w} = \frac{1}{K_h K_w}\sum_{i<K_h}\sum_{j<K_w} x_{n,c,\,h s_h+i,\,w s_w+j}

    Algorithm: one window loop per output pixel.
    """
    x = _as(x, None, "x", "avgpool2d_forward")
    kh, kw, sh, sw, Ho, Wo = _pool_geometry(x, kernel_size, stride, "avgpool2d_forward")
    y = np.empty(x.shape[:2] + (Ho, Wo), dtype=x.dtype)
    if y.size:
        _split(_pool.avgpool_forward, x.shape[0] * x.shape[1], x.size, _planes(x), kh, kw, sh, sw,
               x.dtype.type(kh * kw), _planes(y))
    return y


def avgpool2d_backward(dy, x, kernel_size, stride=None):
    r"""Gradient of average pooling; twin of ``reference.avgpool2d_backward``.

    .. math::
        \frac{\partial L}{\partial x_{n,c,\,h s_h+i,\,w s_w+j}} \mathrel{+}=
            \frac{dy_{n,c,h,w}}{K_h K_w}

    Algorithm: each ``dy`` spread over its window (a scatter-add; windows may overlap).
    """
    x = np.asarray(x)
    dy = _as(dy, x.dtype, "dy", "avgpool2d_backward")
    kh, kw, sh, sw, Ho, Wo = _pool_geometry(x, kernel_size, stride, "avgpool2d_backward")
    _check_dy(dy, x.shape[:2] + (Ho, Wo), "avgpool2d_backward")
    dx = np.zeros(x.shape, dtype=x.dtype)
    if dy.size:
        _split(_pool.avgpool_backward, x.shape[0] * x.shape[1], 2 * x.size, _planes(dy), kh, kw, sh, sw,
               x.dtype.type(kh * kw), _planes(dx))
    return dx


# ---------------------------------------------------------------- dense

def dense_forward(x, w, b):
    r"""Fully connected layer; twin of ``reference.dense_forward``.

    .. math:: y_{n,o} = \sum_i x_{n,i}\, w_{o,i} + b_o \qquad (Y = X W^T + b)

    x: (N, I), w: (O, I), b: (O,) -> y: (N, O). Algorithm: one BLAS GEMM -- a Numba loop
    cannot beat it, and ``w.T`` is a free transposed view (BLAS reads it in place).
    """
    x = np.asarray(x)
    return x @ w.T.astype(x.dtype, copy=False) + b.astype(x.dtype, copy=False)


def dense_backward(dy, x, w):
    r"""Gradients of :func:`dense_forward`; twin of ``reference.dense_backward``.

    .. math::
        \frac{\partial L}{\partial x} = dY\, W \qquad
        \frac{\partial L}{\partial W} = dY^T X \qquad
        \frac{\partial L}{\partial b} = \sum_n dY_{n,:}

    dy: (N, O) -> dx: (N, I), dw: (O, I), db: (O,). Algorithm: two BLAS GEMMs.
    """
    x = np.asarray(x)
    dy = np.asarray(dy).astype(x.dtype, copy=False)
    return dy @ w.astype(x.dtype, copy=False), dy.T @ x, dy.sum(axis=0)


# ---------------------------------------------------------------- warm-up

def warmup(dtypes=("float32", "float64"), verbose=False):
    """Compile (or load from Numba's cache) every loop, for each dtype in ``dtypes``.

    Runs each public kernel once on a tiny input that takes both algorithm paths, so
    the first real training step pays no JIT cost. Returns the seconds it took.
    """
    import time

    t0 = time.perf_counter()
    for name in dtypes:
        dt = np.dtype(name)
        rng = np.random.default_rng(0)
        for C in (1, 2):                                    # direct path, im2col path
            x = rng.standard_normal((1, C, 5, 5)).astype(dt)
            w = rng.standard_normal((2, C, 3, 3)).astype(dt)
            y = conv2d_forward(x, w, np.zeros(2, dt), 1, 1)
            conv2d_backward(y, x, w, 1, 1)
        for fwd, bwd in ((maxpool2d_forward, maxpool2d_backward),
                         (avgpool2d_forward, avgpool2d_backward)):
            bwd(fwd(x, 2), x, 2)
        if verbose:
            print(f"tinycnn.warmup: {dt} kernels ready after {time.perf_counter() - t0:.2f} s")
    return time.perf_counter() - t0
