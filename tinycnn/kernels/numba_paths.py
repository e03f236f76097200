"""How each convolution algorithm is driven: padding, scratch layouts, kernel calls.

:mod:`tinycnn.kernels.fast` checks the arguments and picks an algorithm; the functions
here lay the data out the way that algorithm's loops (:mod:`numba_conv`) want it, call
them on the thread pool (:func:`numba_runtime.split`) and write the results into the
caller's arrays. Every scratch array comes from the reused workspace.
"""
import numpy as np

from tinycnn.kernels import numba_conv as _conv
from tinycnn.kernels.numba_runtime import fixed_chunks as _fixed_chunks
from tinycnn.kernels.numba_runtime import run_chunks as _run_chunks
from tinycnn.kernels.numba_runtime import split as _split
from tinycnn.kernels.numba_runtime import workspace as _ws


def _pad(x, ph, pw, name="xp", width=None):
    """Zero-padded copy of ``x`` in the workspace (``x`` itself when there is nothing to pad).

    ``width`` widens the rows further on the right (more zeros), see ``LANES``.
    """
    N, C, H, W = x.shape
    Wp = max(W + 2 * pw, width or 0)
    if ph == 0 and Wp == W:
        return x
    xp = _ws.get(name, (N, C, H + 2 * ph, Wp), x.dtype)
    xp.fill(0)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    return xp


# The row kernels run along output rows. LLVM vectorises such a loop in blocks (16 floats
# here) and finishes the rest one element at a time, so 28-wide rows spent a large part of
# their time in that scalar tail. Computing rows rounded up to a multiple of LANES -- zero
# input columns on the right, the extra outputs cropped off -- took LeNet's conv1 from
# 1.7 to 1.2 ms forward, 4.7 to 3.6 ms backward with the row kernels (before the plane
# kernels took that case over); 8 and 32 were no better. Rows already a multiple of 16
# are left alone.
LANES = 16


def _lanes(Wo):
    return -(-Wo // LANES) * LANES


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


def direct_forward(x, w, b, ph, pw, y):
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


# The im2col paths work on fixed chunks of the batch, about this many elements of
# ``cols`` each (256 KB in float32: the chunk's columns stay in L2 while the GEMM reads
# them). The chunk size comes from the shapes only, never from the thread count: every
# GEMM then has the same shapes, and every sum the same order, on any number of threads.
# Measured on one thread (AMD EPYC, CPU time): chunks of 2**16 were as fast as the whole
# batch in one GEMM for LeNet's conv2 at N=64 (0.64 / 1.27 ms fwd / bwd against 0.60 /
# 1.25) and faster at N=256 (2.7 / 5.4 against 3.6 / 9.2 ms); 2**14 was slower.
GEMM_CHUNK = 2**16


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


def direct_backward(dy, x, w, ph, pw, dx):
    """Direct loops in reverse (planes or rows, as the forward); fills dx, returns dw.

    ``dx=None``: the input's gradient is not wanted (the first layer) -- only dw.
    """
    N, F, Ho, Wo = dy.shape
    need_dx = dx is not None
    dw_n = _ws.get("dw_n", (N,) + w.shape, x.dtype)
    dw_n.fill(0)
    if _use_plane(x, pw, Ho):
        C, H, W = x.shape[1:]
        R, Hp = W + 2 * pw, H + 2 * ph
        xf = _flat_planes(x, ph, pw, R, "xf")
        dyf = _pad(dy, 0, 0, name="dyf", width=R)    # zero junk columns add nothing
        dxf = _ws.get("dxf", xf.shape if need_dx else (1, 1, 1), x.dtype)
        dxf.fill(0)
        _split(_conv.plane_backward, N, (1 + need_dx) * dyf.size * w[0].size,
               dyf.reshape(N, F, Ho * R), xf, w, R, need_dx, dxf, dw_n)
        if need_dx:
            dx[...] = dxf[:, :, :Hp * R].reshape(N, C, Hp, R)[:, :, ph:ph + H, pw:pw + W]
        return dw_n.sum(axis=0)
    Wq = _lanes(Wo)
    xp = _pad(x, ph, pw, width=Wq - 1 + w.shape[3])
    dyq = _pad(dy, 0, 0, name="dyq", width=Wq)      # zero columns add nothing to dw, dx
    if not need_dx:
        dxp = _ws.get("dxp", (1, 1, 1, 1), x.dtype)
    elif xp is x:
        dxp = dx
    else:
        dxp = _ws.get("dxp", xp.shape, x.dtype)
        dxp.fill(0)
    _split(_conv.row_backward, N, (1 + need_dx) * dyq.size * w[0].size,
           dyq, xp, w, need_dx, dxp, dw_n)
    if need_dx:
        _crop_into(dx, dxp, ph, pw)
    return dw_n.sum(axis=0)


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
