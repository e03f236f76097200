"""How each convolution algorithm is driven: padding, scratch layouts, kernel calls.

:mod:`tinycnn.kernels.fast` checks the arguments and picks an algorithm; the functions
here lay the data out the way that algorithm's loops (:mod:`numba_conv`) want it, call
them on the thread pool (:func:`numba_runtime.split`) and write the results into the
caller's arrays. Every scratch array comes from the reused workspace.
"""
import numpy as np

from tinycnn.kernels import numba_conv as _conv
from tinycnn.kernels.numba_runtime import split as _split
from tinycnn.kernels.numba_runtime import threads_for
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


def gemm_forward(x, w, b, sh, sw, ph, pw, y):
    """im2col (Numba), one GEMM (BLAS), then the (F, N, P) result into y's NCHW order.

    On several threads each takes a slice of the batch from start to end: its im2col
    columns, its columns of the product ``Y = W cols`` and its samples of y.
    """
    N, F, Ho, Wo = y.shape
    K, P = w[0].size, Ho * Wo
    xp = _pad(x, ph, pw)
    cols = _ws.get("cols", (K, N, P), x.dtype)
    Y = _ws.get("Y", (F, N, P), x.dtype)
    work = 2 * K * N * P * F
    if threads_for(N, work) == 1:                          # the whole batch at once
        _conv.im2col(xp, w.shape[2], w.shape[3], sh, sw, Ho, Wo, cols, 0, N)
        np.matmul(w.reshape(F, K), cols.reshape(K, N * P), out=Y.reshape(F, N * P))
        np.add(Y.transpose(1, 0, 2), b[:, None], out=y.reshape(N, F, P))
        return

    def samples(lo, hi):                                   # the same, for samples lo..hi-1
        _conv.im2col(xp, w.shape[2], w.shape[3], sh, sw, Ho, Wo, cols, lo, hi)
        np.matmul(w.reshape(F, K), cols[:, lo:hi].reshape(K, -1),
                  out=Y[:, lo:hi].reshape(F, -1))
        np.add(Y[:, lo:hi].transpose(1, 0, 2), b[:, None], out=y.reshape(N, F, P)[lo:hi])

    _split(samples, N, work)


def _crop_into(dx, dxp, ph, pw):
    """dx = dxp without its padding (no-op when dxp is dx)."""
    if dxp is not dx:
        H, W = dx.shape[2], dx.shape[3]
        dx[...] = dxp[:, :, ph:ph + H, pw:pw + W]


def direct_backward(dy, x, w, ph, pw, dx):
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


def gemm_backward(dy, x, w, sh, sw, ph, pw, dx):
    """im2col again, dw = dY cols^T and dcols = W^T dY (BLAS), col2im (Numba).

    As a formula (shapes: dY (F, N*P), cols (K, N*P))::

        dw = (dY @ cols.reshape(K, N * P).T).reshape(w.shape)

    The code computes its transpose, ``dw^T = cols @ dY^T`` -- the same dot products,
    but BLAS runs this orientation faster (LeNet's conv2: 0.43 ms against 0.75-1.1 ms)
    and, split by rows of ``cols``, each thread reads only its own part of ``cols``.
    On several threads each also takes a slice of the batch for im2col, ``dcols`` and
    col2im. Every element of dw stays one unbroken BLAS dot product over the whole batch:
    the same bits for any number of threads.
    """
    N, F, Ho, Wo = dy.shape
    K, P = w[0].size, Ho * Wo
    xp = _pad(x, ph, pw)
    dxp = dx
    if xp is not x:
        dxp = _ws.get("dxp", xp.shape, x.dtype)
        dxp.fill(0)
    cols = _ws.get("cols", (K, N, P), x.dtype)
    dY = _ws.get("dY", (F, N, P), x.dtype)
    dcols = _ws.get("dcols", (K, N, P), x.dtype)
    dwT = np.empty((K, F), dtype=x.dtype)
    work = 2 * K * N * P * F
    if threads_for(N, work) == 1:                          # the whole batch at once
        _conv.im2col(xp, w.shape[2], w.shape[3], sh, sw, Ho, Wo, cols, 0, N)
        dY[...] = dy.reshape(N, F, P).transpose(1, 0, 2)        # (N, F, P) -> (F, N, P)
        dY = dY.reshape(F, N * P)
        np.matmul(cols.reshape(K, N * P), dY.T, out=dwT)
        np.matmul(w.reshape(F, K).T, dY, out=dcols.reshape(K, N * P))
        _conv.col2im(dcols, w.shape[2], w.shape[3], sh, sw, Ho, Wo, dxp, 0, N)
        _crop_into(dx, dxp, ph, pw)
        return np.ascontiguousarray(dwT.T).reshape(w.shape)

    def samples(lo, hi):                                   # the same, for samples lo..hi-1
        _conv.im2col(xp, w.shape[2], w.shape[3], sh, sw, Ho, Wo, cols, lo, hi)
        dY[:, lo:hi] = dy.reshape(N, F, P)[lo:hi].transpose(1, 0, 2)
        np.matmul(w.reshape(F, K).T, dY[:, lo:hi].reshape(F, -1),
                  out=dcols[:, lo:hi].reshape(K, -1))
        _conv.col2im(dcols, w.shape[2], w.shape[3], sh, sw, Ho, Wo, dxp, lo, hi)

    def taps(lo, hi):                                      # dw^T rows lo..hi-1, whole batch
        np.matmul(cols.reshape(K, N * P)[lo:hi], dY.reshape(F, N * P).T, out=dwT[lo:hi])

    _split(samples, N, work)
    _split(taps, K, work)
    _crop_into(dx, dxp, ph, pw)
    return np.ascontiguousarray(dwT.T).reshape(w.shape)


# ------------------------------------------------------- dense, on several threads

def dense_forward_split(x, w, b):
    """y = x w^T + b, each thread its own rows (samples) of y."""
    y = np.empty((len(x), len(w)), dtype=x.dtype)

    def rows(lo, hi):
        np.matmul(x[lo:hi], w.T, out=y[lo:hi])
        y[lo:hi] += b

    _split(rows, len(x), x.size * len(w))
    return y


def dense_backward_split(dy, x, w):
    """dx = dy w by rows of dx (samples); dw = dy^T x by rows of dw (outputs): no sum split."""
    dx = np.empty_like(x)
    dw = np.empty((dy.shape[1], x.shape[1]), dtype=x.dtype)

    def samples(lo, hi):
        np.matmul(dy[lo:hi], w, out=dx[lo:hi])

    def outputs(lo, hi):
        np.matmul(dy[:, lo:hi].T, x, out=dw[lo:hi])

    _split(samples, len(x), x.size * len(w))
    _split(outputs, len(w), x.size * len(w))
    return dx, dw, dy.sum(axis=0)

