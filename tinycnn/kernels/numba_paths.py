"""How each convolution algorithm is driven: padding, scratch layouts, kernel calls.

:mod:`tinycnn.kernels.fast` checks the arguments and picks an algorithm; the functions
here lay the data out the way that algorithm's loops (:mod:`numba_conv`) want it, call
them on the thread pool (:func:`numba_runtime.split`) and write the results into the
caller's arrays. Every scratch array comes from the reused workspace.
"""
import functools

import numpy as np

from tinycnn.kernels import numba_conv as _conv
from tinycnn.kernels.numba_runtime import fixed_chunks as _fixed_chunks
from tinycnn.kernels.numba_runtime import run_chunks as _run_chunks
from tinycnn.kernels.numba_runtime import split as _split
from tinycnn.kernels.numba_runtime import workspace as _ws


def _pad(x, ph, pw, name="xp"):
    """Zero-padded copy of ``x`` in the workspace (``x`` itself when there is nothing to pad)."""
    N, C, H, W = x.shape
    if ph == 0 and pw == 0:
        return x
    xp = _ws.get(name, (N, C, H + 2 * ph, W + 2 * pw), x.dtype)
    xp.fill(0)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    return xp


# ------------------------------------------------------- direct loops, by kernel taps

# The direct loops (``numba_conv.taps_forward`` / ``taps_weight_grad``) work on flat rows of
# padded planes and pass over them in blocks of BLOCK positions (16 KiB of float32 for the
# four outputs of a pass: they stay in L1 on any image size). Every flat row is computed
# to a multiple of LANES positions (zero inputs, outputs cropped): a loop LLVM vectorises
# 16 floats at a time then never ends in a scalar tail of up to 15 positions.
BLOCK = 1024
LANES = 16
FILTERS, TAPS = 4, 3          # what one pass of the loops handles (see numba_conv)


def _up(n, m):
    """``n`` rounded up to a multiple of ``m``."""
    return -(-n // m) * m


def tap_planes(a, top, left, R, rows, L, name):
    """``a`` (N, C, H, W) in the flat tap layout of :mod:`numba_conv`: returns (af, P).

    af[n, c*P + h*R + q] = a[n, c, h - top, q - left] (zero around it), P = rows * R, then
    a zero tail long enough for every window the loops read: the tap offset ``C * P``
    (see :func:`tap_offsets`) is a window of zeros. The zeros are written once per
    geometry (``workspace.framed``); each call writes the interior only.
    """
    N, C, H, W = a.shape
    P = rows * R
    key = (name, a.shape, top, left, R, rows, L)
    af = _ws.framed(key, (N, C * P + L + R + LANES), a.dtype)
    af[:, :C * P].reshape(N, C, rows, R)[:, :, top:top + H, left:left + W] = a
    return af, P


@functools.lru_cache(maxsize=64)
def tap_offsets(C, KH, KW, P, R, channel_fastest=False):
    """offsets[k] = c*P + i*R + j: where the window of tap k = (c, i, j) starts.

    Taps in the order of ``w.reshape(F, C*KH*KW)``'s columns, (c, i, j); or (i, j, c)
    with ``channel_fastest`` (for :func:`numba_conv.taps_input_grad`, whose three windows
    per pass must lie in different planes). Padded to a multiple of TAPS with ``C * P``,
    the zero tail of :func:`tap_planes`: a padding tap (zero weights) reads zeros, so it
    adds exact zeros even next to an inf.
    """
    c, i, j = np.meshgrid(np.arange(C), np.arange(KH), np.arange(KW), indexing="ij")
    table = c * P + i * R + j
    if channel_fastest:
        table = table.transpose(1, 2, 0)
    offsets = np.full(_up(C * KH * KW, TAPS), C * P, dtype=np.int64)
    offsets[:C * KH * KW] = table.ravel()
    offsets.flags.writeable = False          # cached: one table per layer shape
    return offsets


def tap_weights(w, channel_fastest=False):
    """w (F, C, KH, KW) as the (F, K) matrix of the taps' weights, in the taps' order,
    zero-padded to (a multiple of FILTERS, a multiple of TAPS)."""
    F, K = w.shape[0], w[0].size
    wk = _ws.framed(("wk", w.shape, channel_fastest), (_up(F, FILTERS), _up(K, TAPS)), w.dtype)
    wk[:F, :K] = (w.transpose(0, 2, 3, 1) if channel_fastest else w).reshape(F, K)
    return wk


def direct_forward(x, w, b, ph, pw, y):
    """y = bias + the sum of shifted windows times weights (stride 1; fills y).

    Output (h, q) sits at position t = h*R + q of a flat row R = W + 2*pw wide; the loops
    compute L positions (Ho*R rounded up to LANES) and y keeps the Wo real columns.
    """
    N, F, Ho, Wo = y.shape
    C, H, W = x.shape[1:]
    KH, KW = w.shape[2], w.shape[3]
    R = W + 2 * pw
    L = _up(Ho * R, LANES)
    xf, P = tap_planes(x, ph, pw, R, H + 2 * ph, L, "xf")
    wk = tap_weights(w)
    bias = _ws.framed("bias", (len(wk),), x.dtype)      # rows past F: padding filters, cropped
    bias[:F] = b
    yf = _ws.get("yf", (N, len(wk), L), x.dtype)
    _split(_conv.taps_forward, N, yf.size * wk.shape[1], xf, tap_offsets(C, KH, KW, P, R),
           wk, bias, BLOCK, yf)
    y[...] = yf[:, :F, :Ho * R].reshape(N, F, Ho, R)[..., :Wo]


# The im2col paths work on fixed chunks of the batch, about this many elements of
# ``cols`` each (1 MiB in float32, the L2 cache of one core here). The chunk size comes
# from the shapes only, never from the thread count: every GEMM then has the same shapes,
# and every sum the same order, on any number of threads. Measured on one thread (Zen 5
# EPYC, CPU time, batch 64, forward / backward ms): resnet_mini's 64->64 3x3 on 7x7
# 2.36 / 4.56 with chunks of 2**16 elements (2 samples), 2.16 / 4.21 with 2**18, 2.05 /
# 4.10 with 2**20; its 16->32 3x3 stride 2 1.92-2.09 / 3.91-4.49 for all four sizes.
GEMM_CHUNK = 2**18


def _gemm_chunks(N, K, P):
    """Sample ranges of the im2col paths: ``GEMM_CHUNK // (K * P)`` samples each."""
    return _fixed_chunks(N, GEMM_CHUNK // (K * P))


def gemm_forward(x, w, b, sh, sw, ph, pw, y):
    """im2col (Numba), one GEMM (BLAS), then the (F, B, P) result into y's NCHW order.

    Chunk by chunk of the batch (samples lo..hi-1, B = hi - lo): its im2col columns,
    ``Y = W cols`` for those columns, its samples of y. Chunks run on the thread pool;
    each thread keeps its own ``cols`` and ``Y`` scratch.
    """
    N, F, Ho, Wo = y.shape
    KH, KW = w.shape[2], w.shape[3]
    K, P = w[0].size, Ho * Wo
    xp = _pad(x, ph, pw)
    W2, y3 = w.reshape(F, K), y.reshape(N, F, P)

    def chunk(k, lo, hi):
        B = hi - lo
        cols = _ws.get("cols", (K, B, P), x.dtype)
        Y = _ws.get("Y", (F, B, P), x.dtype)
        _conv.im2col(xp, KH, KW, sh, sw, Ho, Wo, cols, lo, hi)
        np.matmul(W2, cols.reshape(K, B * P), out=Y.reshape(F, B * P))
        np.add(Y.transpose(1, 0, 2), b[:, None], out=y3[lo:hi])

    _run_chunks(chunk, _gemm_chunks(N, K, P), 2 * K * N * P * F)


def _crop_into(dx, dxp, ph, pw):
    """dx = dxp without its padding (no-op when dxp is dx)."""
    if dxp is not dx:
        H, W = dx.shape[2], dx.shape[3]
        dx[...] = dxp[:, :, ph:ph + H, pw:pw + W]


# The weight gradient sums over the batch: each fixed chunk of DW_SAMPLES samples adds into
# its own partial dw, and the partials are added in chunk order -- the same sums for any
# number of threads (the chunks depend on N only).
DW_SAMPLES = 8


def direct_backward(dy, x, w, ph, pw, dx):
    """dw as the taps' dot products, dx by scattering dy back through the taps (fills dx,
    returns dw). ``dx=None``: the input's gradient is not wanted (a first layer).

    Both read ``dy`` in the forward's R-wide layout, with zeros at the junk positions.
    (dx is also a plain convolution of dy padded by KH-1-ph, KW-1-pw with the flipped
    kernel -- the same loop as the forward. Measured as a whole backward pass, one
    thread: as fast on 'same' 3x3 convolutions (resnet_mini's 16->16 on 28x28: 3.90 against
    3.73 ms for the scatter) and slower on LeNet's conv2 (1.29 against 0.85 ms), where it
    computes 2.4x the products; so only the scatter is kept.)
    """
    N, F, Ho, Wo = dy.shape
    C, H, W = x.shape[1:]
    KH, KW = w.shape[2], w.shape[3]
    R, Hp = W + 2 * pw, H + 2 * ph
    L = _up(Ho * R, LANES)
    xf, P = tap_planes(x, ph, pw, R, Hp, L, "xf")
    dyf = _ws.framed(("dyf", dy.shape, R, L), (N, _up(F, FILTERS), L), x.dtype)  # zero junk
    dyf[:, :F, :Ho * R].reshape(N, F, Ho, R)[..., :Wo] = dy
    offsets = tap_offsets(C, KH, KW, P, R)
    bounds = _fixed_chunks(N, DW_SAMPLES)
    dwk = _ws.get("dwk", (len(bounds), dyf.shape[1], len(offsets)), x.dtype)
    dwk.fill(0)

    def chunk(k, lo, hi):
        _conv.taps_weight_grad(dyf, xf, offsets, BLOCK, dwk[k], lo, hi)

    _run_chunks(chunk, bounds, dyf.size * len(offsets))
    dw = dwk[0]
    if len(bounds) > 1:
        dw = dw.copy()
        for k in range(1, len(bounds)):                       # in chunk order
            dw += dwk[k]
    if dx is not None:
        # The three windows of a scatter pass lie in three different planes: taps ordered
        # (i, j, c), channels padded to a multiple of TAPS with zero weights that scatter
        # into spare planes. (With one input channel, three taps of one plane overlap and
        # LLVM's run-time overlap check sent the loop to its scalar version: LeNet's conv1
        # dx took 2.3 ms instead of 0.6 ms.)
        C3 = _up(C, TAPS)
        dxf = _ws.get("dxf", (N, C3 * P + L + R + LANES), x.dtype)
        dxf.fill(0)
        w3 = w if C3 == C else np.concatenate(
            [w, np.zeros((F, C3 - C, KH, KW), w.dtype)], axis=1)
        wk = tap_weights(w3, channel_fastest=True)
        _split(_conv.taps_input_grad, N, dyf.size * wk.shape[1], dyf,
               tap_offsets(C3, KH, KW, P, R, channel_fastest=True), wk, BLOCK, dxf)
        dx[...] = dxf[:, :C * P].reshape(N, C, Hp, R)[:, :, ph:ph + H, pw:pw + W]
    return np.ascontiguousarray(dw[:F, :C * KH * KW]).reshape(w.shape)


def gemm_backward(dy, x, w, sh, sw, ph, pw, dx):
    """im2col again, dw = dY cols^T and dcols = W^T dY (BLAS), col2im (Numba).

    As a formula (shapes: dY (F, N*P), cols (K, N*P))::

        dw = (dY @ cols.reshape(K, N * P).T).reshape(w.shape)

    The code works chunk by chunk of the batch (as :func:`gemm_forward`): each chunk k
    computes its partial ``dw^T`` -- the transpose, ``cols @ dY^T``, the same dot products
    in the orientation BLAS runs faster (LeNet's conv2: 0.43 ms against 0.75-1.1 ms) --
    and its samples' ``dcols`` and col2im. The partials are then added in chunk order:
    the same shapes and the same sums for any number of threads. ``dx=None``: only dw.
    """
    N, F, Ho, Wo = dy.shape
    KH, KW = w.shape[2], w.shape[3]
    K, P = w[0].size, Ho * Wo
    xp = _pad(x, ph, pw)
    dxp = dx
    if dx is not None and xp is not x:
        dxp = _ws.get("dxp", xp.shape, x.dtype)
        dxp.fill(0)
    W2, dy3 = w.reshape(F, K), dy.reshape(N, F, P)
    bounds = _gemm_chunks(N, K, P)
    dwT_k = _ws.get("dwT_k", (len(bounds), K, F), x.dtype)     # one partial per chunk

    def chunk(k, lo, hi):
        B = hi - lo
        cols = _ws.get("cols", (K, B, P), x.dtype)
        dY = _ws.get("dY", (F, B, P), x.dtype)
        _conv.im2col(xp, KH, KW, sh, sw, Ho, Wo, cols, lo, hi)
        dY[...] = dy3[lo:hi].transpose(1, 0, 2)              # (B, F, P) -> (F, B, P)
        np.matmul(cols.reshape(K, B * P), dY.reshape(F, B * P).T, out=dwT_k[k])
        if dxp is not None:
            dcols = _ws.get("dcols", (K, B, P), x.dtype)
            np.matmul(W2.T, dY.reshape(F, B * P), out=dcols.reshape(K, B * P))
            _conv.col2im(dcols, KH, KW, sh, sw, Ho, Wo, dxp, lo, hi)

    _run_chunks(chunk, bounds, (1 + (dx is not None)) * K * N * P * F)
    dwT = dwT_k[0].copy()
    for k in range(1, len(bounds)):                           # in chunk order
        dwT += dwT_k[k]
    if dx is not None:
        _crop_into(dx, dxp, ph, pw)
    return np.ascontiguousarray(dwT.T).reshape(w.shape)


# ------------------------------------------------------- dense, in fixed chunks

# Rows per chunk of the chunked dense path (samples for y and dx, outputs for dw).
DENSE_ROWS = 64


def dense_forward_chunked(x, w, b):
    """y = x w^T + b, DENSE_ROWS samples (rows of y) per chunk."""
    y = np.empty((len(x), len(w)), dtype=x.dtype)

    def rows(k, lo, hi):
        np.matmul(x[lo:hi], w.T, out=y[lo:hi])
        y[lo:hi] += b

    _run_chunks(rows, _fixed_chunks(len(x), DENSE_ROWS), x.size * len(w))
    return y


def dense_backward_chunked(dy, x, w):
    """dx = dy w by chunks of samples (rows of dx); dw = dy^T x by chunks of outputs
    (rows of dw), each row of dw one whole dot product over the batch: no split sums."""
    dx = np.empty_like(x)
    dw = np.empty((dy.shape[1], x.shape[1]), dtype=x.dtype)

    def samples(k, lo, hi):
        np.matmul(dy[lo:hi], w, out=dx[lo:hi])

    def outputs(k, lo, hi):
        np.matmul(dy[:, lo:hi].T, x, out=dw[lo:hi])

    _run_chunks(samples, _fixed_chunks(len(x), DENSE_ROWS), x.size * len(w))
    _run_chunks(outputs, _fixed_chunks(len(w), DENSE_ROWS), x.size * len(w))
    return dx, dw, dy.sum(axis=0)
