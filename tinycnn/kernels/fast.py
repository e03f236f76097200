r"""Fast kernels: the reference twins' math, compiled with Numba (the default backend).

Every public function here has exactly the signature and results of its twin in
:mod:`tinycnn.kernels.reference` (the spec; tested equal in ``tests/test_fast_kernels.py``).
The functions in this module are thin Python wrappers: they normalise ``stride`` /
``padding`` / ``kernel_size`` to pairs, make inputs C-contiguous in the input's dtype,
allocate outputs and call ``@njit(cache=True)`` loops from :mod:`numba_conv` and
:mod:`numba_pool`. Importing this module compiles nothing; each loop is compiled (or loaded
from Numba's on-disk cache) on first use, once per dtype -- or ahead of time by
:func:`warmup`.

Which algorithm, and why (measured on the project's 2-core Zen 5 EPYC, float32, one
thread, CPU time; the numbers are in ``benchmarks/RESULTS.md``):

* **Stride 1: direct loops over the kernel taps** (``numba_conv.taps_forward``), up to
  32 input channels. The input planes are laid flat so that every tap (c, i, j) is one
  shifted window of the same array -- im2col's matrix without the copy -- and each pass
  of the inner loop multiplies three windows into four filters' outputs, in registers.
  The backward pass reads the same windows: dot products for ``dw``, a scatter for
  ``dx``. Whole calls, batch 64, against im2col + BLAS on the same shape: LeNet's conv2
  0.36 / 0.76 ms forward / backward against 0.45 / 1.01 ms; resnet_mini's 16->16 3x3 on
  28x28 1.49 / 3.83 against 3.14 / 6.43 ms.
* **Stride > 1, tiny planes, many channels, or padding >= kernel size: im2col + BLAS
  GEMM.** From 64 input channels the GEMM's long inner dimension lets BLAS match or beat
  the loops (:data:`DIRECT_MAX_CHANNELS`). With stride 2 the direct loops would compute
  4x the outputs they keep; on a 7x7 plane the flat rows are so short that the loops'
  set-up outweighs them (resnet_mini's last stage, 64 -> 64: 3.35 / 7.72 ms forward /
  backward against 2.38 / 4.72 ms for GEMM). The gather (im2col) and the scatter-add of
  the backward pass (col2im) stay Numba loops.
* **Dense: BLAS** (``x @ w.T``), as in the reference: it is one GEMM already.

Threads: the Numba loops are serial ``nogil`` functions; ``numba_runtime.split`` runs them
on contiguous pieces of the batch on a small thread pool (:func:`set_num_threads`, default
``NUMBA_NUM_THREADS``). BLAS is called single-threaded inside these kernels; every BLAS
product is cut into chunks whose sizes depend on the shapes only, and the pool threads
share out whole chunks, so two thread pools never fight over the cores and the results
are bit-identical for any thread count (BLAS's own setting, switched through threadpoolctl, is restored on return).
The comments in :mod:`numba_runtime` give the rule, the measurements, and why not
``parallel=True``.
"""
import numpy as np

from tinycnn.kernels import numba_paths as _paths
from tinycnn.kernels import numba_activations as _act
from tinycnn.kernels import numba_pool as _pool
from tinycnn.kernels.numba_runtime import blas_single_threaded as _blas_single_threaded
from tinycnn.kernels.numba_runtime import clear_workspace, get_num_threads, set_num_threads
from tinycnn.kernels.numba_runtime import split as _split

__all__ = [
    "conv2d_forward", "conv2d_backward",
    "maxpool2d_forward", "maxpool2d_backward",
    "avgpool2d_forward", "avgpool2d_backward",
    "relu_forward", "relu_backward",
    "dense_forward", "dense_backward",
    "warmup", "clear_workspace", "set_num_threads", "get_num_threads",
]

_DTYPES = (np.float32, np.float64)


# ---------------------------------------------------------------- argument plumbing

def _pair(v):
    if isinstance(v, (tuple, list, np.ndarray)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _as(a, dtype, name, kernel):
    """``a`` as a C-contiguous array of ``dtype`` (a no-op when it already is)."""
    a = np.asarray(a)
    if a.dtype.type not in _DTYPES:
        raise TypeError(f"{kernel}: {name} has dtype {a.dtype}; the fast kernels take "
                        "float32 or float64 (cast with x.astype(np.float32))")
    return np.ascontiguousarray(a, dtype=dtype)


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


# The direct loops need at least this many output positions per flat row (Ho x (W + 2*pw),
# see numba_paths): below it, im2col + GEMM (module docstring; 7x7 planes with padding 1
# give 63). And at most this many input channels: with more, the GEMM's inner dimension
# C*KH*KW is long enough for BLAS to outrun the loops. Measured (one thread, CPU time,
# forward + backward 3x3, direct / GEMM time): 16 -> 16 on 28x28 0.60, 32 -> 32 on 14x14
# 0.74, 64 -> 64 on 14x14 1.04, on 16x16 1.13, on 28x28 1.00; 64 -> 64 on 8x8 1.73.
# The tests set both to extremes to check each path on every shape.
DIRECT_MIN_POSITIONS = 128
DIRECT_MAX_CHANNELS = 32


def _use_direct(x_shape, w_shape, stride, padding, Ho):
    """The rule: stride 1, padding smaller than the kernel (more would only add rows and
    columns of zeros to every plane), at most DIRECT_MAX_CHANNELS input channels and a flat
    row of DIRECT_MIN_POSITIONS."""
    (sh, sw), (ph, pw) = stride, padding
    KH, KW = w_shape[2], w_shape[3]
    return (sh == sw == 1 and ph < KH and pw < KW and x_shape[1] <= DIRECT_MAX_CHANNELS
            and Ho * (x_shape[3] + 2 * pw) >= DIRECT_MIN_POSITIONS)


# ---------------------------------------------------------------- convolution

def conv2d_forward(x, w, b, stride=1, padding=0):
    r"""2-D convolution (cross-correlation); twin of ``reference.conv2d_forward``.

    .. math::
        y_{n,f,h,w} = b_f + \sum_{c}\sum_{i<KH}\sum_{j<KW}
                      w_{f,c,i,j}\; x^{pad}_{n,c,\,h s_h + i,\,w s_w + j}

    x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) -> y: (N, F, Ho, Wo).

    Algorithm (:func:`_use_direct`): stride 1, the direct loops over kernel taps
    (``numba_conv.taps_forward``); otherwise the im2col gather (Numba), one GEMM
    ``w.reshape(F, C*KH*KW) @ cols`` (BLAS), and the result moved into NCHW plus bias.
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
    if _use_direct(x.shape, w.shape, (sh, sw), (ph, pw), Ho):
        _paths.direct_forward(x, w, b, ph, pw, y)
    else:
        with _blas_single_threaded():
            _paths.gemm_forward(x, w, b, sh, sw, ph, pw, y)
    return y


def conv2d_backward(dy, x, w, stride=1, padding=0, need_dx=True):
    r"""Gradients of :func:`conv2d_forward`; twin of ``reference.conv2d_backward``.

    .. math::
        \frac{\partial L}{\partial b_f} = \sum_{n,h,w} dy_{n,f,h,w}
        \qquad
        \frac{\partial L}{\partial w_{f,c,i,j}} =
            \sum_{n,h,w} dy_{n,f,h,w}\; x^{pad}_{n,c,\,h s_h+i,\,w s_w+j}

        \frac{\partial L}{\partial x^{pad}_{n,c,\,h s_h+i,\,w s_w+j}} \mathrel{+}=
            \sum_f dy_{n,f,h,w}\; w_{f,c,i,j}

    dy: (N, F, Ho, Wo) -> dx: (N, C, H, W), dw: (F, C, KH, KW), db: (F,).

    Algorithm: where the forward ran the direct loops, ``dw`` by their dot products
    (``numba_conv.taps_weight_grad``, one partial ``dw`` per fixed chunk of samples, added
    in order) and ``dx`` by scattering ``dy`` back through the same windows
    (``taps_input_grad``).
    Otherwise im2col again, ``dw = dY @ cols.T`` and ``dcols = W.T @ dY`` (BLAS), and the
    Numba col2im scatter-add of ``dcols`` into ``dx``. Deterministic: no two threads ever
    add into one element. ``need_dx=False`` (a first layer, whose input is the data)
    skips ``dx`` -- about half the work -- and returns ``None`` in its place.
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
    dx = np.zeros_like(x) if need_dx else None
    if dy.size == 0 or x.size == 0:
        return dx, np.zeros_like(w), db
    if _use_direct(x.shape, w.shape, (sh, sw), (ph, pw), Ho):
        dw = _paths.direct_backward(dy, x, w, ph, pw, dx)
    else:
        with _blas_single_threaded():
            dw = _paths.gemm_backward(dy, x, w, sh, sw, ph, pw, dx)
    return dx, dw, db


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


def _pool_dx(x, kh, kw, sh, sw, Ho, Wo):
    """``dx`` for a pooling backward: zeros for the kernels' general loops (they add), or,
    for 2x2 windows with stride 2 -- whose branch writes every pixel they cover with
    ``=`` -- an uninitialised array with only the bottom row and right column no window
    reaches zeroed (a zeroing pass over all of ``dx`` would be wasted)."""
    if (kh, kw, sh, sw) != (2, 2, 2, 2):
        return np.zeros(x.shape, x.dtype)          # C order even for a strided x
    dx = np.empty(x.shape, x.dtype)
    dx[:, :, 2 * Ho:, :] = 0
    dx[:, :, :2 * Ho, 2 * Wo:] = 0
    return dx


def maxpool2d_forward(x, kernel_size, stride=None):
    r"""Max pooling; twin of ``reference.maxpool2d_forward``.

    .. math:: y_{n,c,h,w} = \max_{i<K_h,\,j<K_w} x_{n,c,\,h s_h+i,\,w s_w+j}

    x: (N, C, H, W) -> y: (N, C, Ho, Wo). Algorithm: one window loop per output pixel.
    """
    x = _as(x, None, "x", "maxpool2d_forward")
    kh, kw, sh, sw, Ho, Wo = _pool_geometry(x, kernel_size, stride, "maxpool2d_forward")
    y = np.empty(x.shape[:2] + (Ho, Wo), dtype=x.dtype)
    if y.size:
        _split(_pool.maxpool_forward, len(_planes(x)), x.size,
               _planes(x), kh, kw, sh, sw, _planes(y))
    return y


def maxpool2d_backward(dy, x, kernel_size, stride=None):
    r"""Gradient of max pooling; twin of ``reference.maxpool2d_backward``.

    .. math::
        \frac{\partial L}{\partial x_{n,c,\,h s_h+i^*,\,w s_w+j^*}} \mathrel{+}= dy_{n,c,h,w},
        \quad (i^*, j^*) = \operatorname{argmax}_{i,j}\, x_{n,c,\,h s_h+i,\,w s_w+j}

    Ties go to the first maximum in row-major window order. Algorithm: the forward's
    window loop again, remembering the argmax; 2x2 windows with stride 2 write their
    pixels once with ``=``, other windows scatter-add into zeros.
    LeNet's 64x6x28x28 after ReLU, 1 thread (CPU time, old and new alternating): float32
    0.40 -> 0.08 ms per call (64x16x10x10: 0.16 -> 0.05 ms; the forward takes 0.04 ms),
    float64 0.42 -> 0.19 ms.
    """
    x = _as(x, None, "x", "maxpool2d_backward")
    dy = _as(dy, x.dtype, "dy", "maxpool2d_backward")
    kh, kw, sh, sw, Ho, Wo = _pool_geometry(x, kernel_size, stride, "maxpool2d_backward")
    _check_dy(dy, x.shape[:2] + (Ho, Wo), "maxpool2d_backward")
    dx = _pool_dx(x, kh, kw, sh, sw, Ho, Wo)
    if dy.size:
        _split(_pool.maxpool_backward, len(_planes(x)), 2 * x.size,
               _planes(dy), _planes(x), kh, kw, sh, sw, _planes(dx))
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
        _split(_pool.avgpool_forward, len(_planes(x)), x.size,
               _planes(x), kh, kw, sh, sw, x.dtype.type(kh * kw), _planes(y))
    return y


def avgpool2d_backward(dy, x, kernel_size, stride=None):
    r"""Gradient of average pooling; twin of ``reference.avgpool2d_backward``.

    .. math::
        \frac{\partial L}{\partial x_{n,c,\,h s_h+i,\,w s_w+j}} \mathrel{+}=
            \frac{dy_{n,c,h,w}}{K_h K_w}

    Algorithm: each ``dy`` spread over its window, written with ``=`` for 2x2 windows
    with stride 2, a scatter-add into zeros otherwise (windows may overlap).
    64x6x28x28 float32, 1 thread (CPU time, alternating): 0.26 -> 0.05 ms per call.
    """
    x = np.asarray(x)
    dy = _as(dy, x.dtype, "dy", "avgpool2d_backward")
    kh, kw, sh, sw, Ho, Wo = _pool_geometry(x, kernel_size, stride, "avgpool2d_backward")
    _check_dy(dy, x.shape[:2] + (Ho, Wo), "avgpool2d_backward")
    dx = _pool_dx(x, kh, kw, sh, sw, Ho, Wo)
    if dy.size:
        _split(_pool.avgpool_backward, len(_planes(x)), 2 * x.size,
               _planes(dy), kh, kw, sh, sw, x.dtype.type(kh * kw), _planes(dx))
    return dx


# ---------------------------------------------------------------- ReLU

# ReLU only streams memory, so a thread hand-off pays late. Measured (wall time, 1 against
# 2 threads, shared 2-core Zen 5): 2 threads were slower up to 1.2M elements (LeNet's first
# ReLU at batch 256: 0.08 against 0.10 ms forward); from 1.6M on the backward gained
# (0.21 -> 0.13 ms), the forward stayed even. Two elements count as one unit of
# ``split``'s work (``numba_runtime.SPLIT_MIN_WORK``, 1M): the loops are split from 2M
# elements on, the same cut for any thread count (each element is computed alike
# whoever runs it).
RELU_ELEMENTS_PER_WORK = 2


def _relu_work(x):
    return x.size // RELU_ELEMENTS_PER_WORK


def _reference():
    from tinycnn.kernels import reference
    return reference


def relu_forward(x):
    r"""Rectified linear unit; twin of ``reference.relu_forward``.

    .. math:: y = \max(0, x)

    Any shape. Algorithm: one pass over the elements (``numba_activations``); float16 and
    other dtypes the loops are not compiled for take the reference's NumPy expression.
    """
    x = np.asarray(x)
    if x.dtype.kind == "f" and x.dtype.type not in _DTYPES:        # float16
        return _reference().relu_forward(x)
    x = _as(x, None, "x", "relu_forward")
    y = np.empty_like(x)
    _split(_act.relu_forward, x.size, _relu_work(x), x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(dy, x):
    r"""Gradient of :func:`relu_forward`; twin of ``reference.relu_backward``.

    .. math:: dx = dy \odot [x > 0]

    Algorithm: one pass, no boolean temporary (``numba_activations``); other dtypes than
    float32 / float64 as in the reference.
    """
    x = np.asarray(x)
    if x.dtype.kind == "f" and x.dtype.type not in _DTYPES:        # float16
        return _reference().relu_backward(dy, x)
    x = _as(x, None, "x", "relu_backward")
    dy = _as(dy, x.dtype, "dy", "relu_backward")
    _check_dy(dy, x.shape, "relu_backward")
    dx = np.empty_like(x)
    _split(_act.relu_backward, x.size, _relu_work(x), dy.reshape(-1), x.reshape(-1),
           dx.reshape(-1))
    return dx


# ---------------------------------------------------------------- dense

# Dense layers are cut into fixed chunks of rows (``numba_paths.DENSE_ROWS``, shared by
# the threads) from this many multiply-adds on (~0.3 ms on one core): below, the thread
# hand-offs cost more than they save (LeNet's 400->120 layer at batch 64, 3M
# multiply-adds, got slower split). The choice depends on the shapes only -- never on the
# thread count -- so 1 and 8 threads run exactly the same GEMMs.
DENSE_SPLIT_MIN_WORK = 2**23


def dense_forward(x, w, b):
    r"""Fully connected layer; twin of ``reference.dense_forward``.

    .. math:: y_{n,o} = \sum_i x_{n,i}\, w_{o,i} + b_o \qquad (Y = X W^T + b)

    x: (N, I), w: (O, I), b: (O,) -> y: (N, O). Algorithm: one BLAS GEMM -- a Numba loop
    cannot beat it, and ``w.T`` is a free transposed view (BLAS reads it in place). From
    ``DENSE_SPLIT_MIN_WORK`` multiply-adds on, one GEMM per fixed chunk of rows, shared
    out among the threads (the same chunks for any thread count).
    """
    x = np.asarray(x)
    with _blas_single_threaded():
        if x.size * len(w) >= DENSE_SPLIT_MIN_WORK:
            return _paths.dense_forward_chunked(x, w.astype(x.dtype, copy=False),
                                              b.astype(x.dtype, copy=False))
        return x @ w.T.astype(x.dtype, copy=False) + b.astype(x.dtype, copy=False)


def dense_backward(dy, x, w):
    r"""Gradients of :func:`dense_forward`; twin of ``reference.dense_backward``.

    .. math::
        \frac{\partial L}{\partial x} = dY\, W \qquad
        \frac{\partial L}{\partial W} = dY^T X \qquad
        \frac{\partial L}{\partial b} = \sum_n dY_{n,:}

    dy: (N, O) -> dx: (N, I), dw: (O, I), db: (O,). Algorithm: two BLAS GEMMs (in fixed
    chunks of rows of ``dx`` and of ``dw`` for large layers, as in :func:`dense_forward`).
    """
    x = np.asarray(x)
    dy = np.asarray(dy).astype(x.dtype, copy=False)
    with _blas_single_threaded():
        if len(x) < 8:
            # For a handful of rows ``np.dot`` is much faster than ``@``: at N = 1 (an
            # outer product) matmul took 87 us here and dot 18 us, a fifth of a batch-1
            # training step.
            return dy @ w.astype(x.dtype, copy=False), np.dot(dy.T, x), dy.sum(axis=0)
        if x.size * len(w) >= DENSE_SPLIT_MIN_WORK:
            return _paths.dense_backward_chunked(dy, x, w.astype(x.dtype, copy=False))
        return dy @ w.astype(x.dtype, copy=False), dy.T @ x, dy.sum(axis=0)


# ---------------------------------------------------------------- warm-up

def warmup(dtypes=("float32", "float64"), verbose=False):
    """Compile (or load from Numba's cache) every loop, for each dtype in ``dtypes``.

    Runs each public kernel once on small inputs that take every algorithm (direct
    loops, im2col + GEMM, both pooling branches), so the first real
    training step pays no JIT cost. The first call on a machine compiles (a few seconds
    per dtype); later processes load the cached machine code. Returns the seconds taken.
    """
    import time

    t0 = time.perf_counter()
    for name in dtypes:
        dt = np.dtype(name)
        rng = np.random.default_rng(0)
        for s in (1, 2):                              # direct loops, im2col + GEMM
            x = rng.standard_normal((1, 2, 12, 12)).astype(dt)
            w = rng.standard_normal((2, 2, 3, 3)).astype(dt)
            y = conv2d_forward(x, w, np.zeros(2, dt), s, 1)
            conv2d_backward(y, x, w, s, 1)
        for fwd, bwd in ((maxpool2d_forward, maxpool2d_backward),
                         (avgpool2d_forward, avgpool2d_backward)):
            bwd(fwd(x, 2), x, 2)
        relu_backward(relu_forward(x), x)
        if verbose:
            print(f"tinycnn.warmup: {dt} kernels ready after {time.perf_counter() - t0:.2f} s")
    return time.perf_counter() - t0
