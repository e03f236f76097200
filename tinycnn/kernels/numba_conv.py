r"""Numba loops for convolution: the direct kernels and the im2col / col2im moves.

Nothing here is public: :mod:`tinycnn.kernels.fast` checks arguments and picks the
algorithm, :mod:`numba_paths` pads, lays out and allocates, then calls these loops. Every
kernel runs its outermost loop over samples ``n in range(lo, hi)`` and writes only what
belongs to those samples, so disjoint ranges of the batch can run on different threads
(``nogil=True``). Every function takes C-contiguous arrays and plain ints, so each
compiles to exactly one specialisation per dtype (float32, float64). Inputs arrive
already zero-padded (``xp``); gradients w.r.t. the padded input (``dxp``) are cropped by
the caller.

Why the loops look the way they do (measured on a 2-core AVX-512 Xeon):

* the direct kernels (stride 1 only) run their innermost loop along contiguous memory:
  one output row (:func:`row_forward`) or a whole flattened output plane
  (:func:`plane_forward`), so LLVM vectorises it. The textbook order (loops nested as
  the formula reads, ``i, j`` innermost) was 2-14x slower;
* kernel-window bounds are never tested inside the hot loops: padding is materialised
  once, which costs one copy of a small input and keeps every inner loop branch-free;
* hot loops index whole arrays (``y[n, f, h, q]``) or 1-D slices indexed from 0; row
  views handed to small helper functions with offsets ran ~8x slower here.
"""
import numpy as np
from numba import njit

# Reassociation lets LLVM vectorise the dot-product reductions of the backward pass (sum
# into one accumulator -> several SIMD lanes); contraction allows fused multiply-add. Both
# change rounding in the last bits only (the tests compare to the reference at 1e-5/1e-12),
# and the compiled order is fixed, so results stay bit-identical run to run.
FASTMATH = {"reassoc", "contract"}


# ------------------------------------------------------- direct, whole plane (stride 1)

@njit(cache=True, nogil=True, fastmath=FASTMATH)
def plane_forward(xf, w, b, R, yf, lo, hi):
    r"""y[n,f,h,q] = b[f] + sum_{c,i,j} w[f,c,i,j] * xp[n,c,h+i,q+j]  (stride 1; fills ``yf``).

    Flattened planes: every input row is stored ``R`` wide (``R >= Wp``, zeros on the
    right) and ``yf[n, f, h*R + q]`` holds ``y[n, f, h, q]`` (columns ``q >= Wo`` are junk
    the caller crops). Then ``xp[n, c, h+i, q+j] = xf[n, c, i*R + j + (h*R + q)]``: one
    kernel tap is ONE contiguous multiply-add over the whole output plane -- a long loop
    LLVM vectorises without a scalar tail, and the plane stays in L1 while the C*KH*KW
    taps are added into it. Used when the plane is small (LeNet: 28 x 32 floats).
    """
    F, L = yf.shape[1], yf.shape[2]
    C = xf.shape[1]
    KH, KW = w.shape[2], w.shape[3]
    for n in range(lo, hi):
        for f in range(F):
            y = yf[n, f]                     # 1-D views indexed from 0: these vectorise
            y[:] = b[f]
            for c in range(C):
                for i in range(KH):
                    for j in range(KW):
                        x = xf[n, c, i * R + j:i * R + j + L]
                        wv = w[f, c, i, j]
                        for t in range(L):
                            y[t] += wv * x[t]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def plane_backward(dyf, xf, w, R, need_dx, dxf, dw_n, lo, hi):
    r"""The loops of :func:`plane_forward`, read in reverse (adds into ``dxf``, ``dw_n``).

    dw_n[n,f,c,i,j] += sum_t dyf[n,f,t] * xf[n,c,i*R+j+t]
    dxf[n,c,i*R+j+t] += dyf[n,f,t] * w[f,c,i,j]          (only if ``need_dx``)

    ``dyf`` is ``dy`` in the same R-wide layout with ZEROS in the junk columns, so those
    positions add nothing to ``dw`` or ``dx``. One partial ``dw`` per sample (``dw_n``,
    zero on entry), summed over ``n`` by the caller in a fixed order.
    """
    F, L = dyf.shape[1], dyf.shape[2]
    C = xf.shape[1]
    KH, KW = w.shape[2], w.shape[3]
    for n in range(lo, hi):
        for f in range(F):
            dy = dyf[n, f]
            for c in range(C):
                for i in range(KH):
                    for j in range(KW):
                        x = xf[n, c, i * R + j:i * R + j + L]
                        # starts from dw_n's zero: a typed zero (``dy[0] * 0`` is float64
                        # in Numba, and the float32 sum then ran in float64, 25% slower)
                        acc = dw_n[n, f, c, i, j]
                        for t in range(L):
                            acc += dy[t] * x[t]
                        dw_n[n, f, c, i, j] = acc
                        if need_dx:
                            dx = dxf[n, c, i * R + j:i * R + j + L]
                            wv = w[f, c, i, j]
                            for t in range(L):     # a separate loop: fused, it ran slower
                                dx[t] += wv * dy[t]


# ------------------------------------------------------- direct, row by row

@njit(cache=True, nogil=True, fastmath=FASTMATH)
def row_forward(xp, w, b, y, lo, hi):
    r"""y[n,f,h,q] = b[f] + sum_{c,i,j} w[f,c,i,j] * xp[n,c,h+i,q+j]  (stride 1; fills ``y``).

    Loop order n, f, h | c, i, j | q: one output row stays in L1 while all C*KH*KW taps
    are added into it, each tap one vectorised pass along the row. For planes too large
    for :func:`plane_forward` (a 224 x 224 image: no 9x im2col copy needed).
    """
    C = xp.shape[1]
    F, _, KH, KW = w.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for n in range(lo, hi):
        for f in range(F):
            for h in range(Ho):
                for q in range(Wo):
                    y[n, f, h, q] = b[f]
                for c in range(C):
                    for i in range(KH):
                        for j in range(KW):
                            wv = w[f, c, i, j]
                            for q in range(Wo):
                                y[n, f, h, q] += wv * xp[n, c, h + i, q + j]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def row_backward(dy, xp, w, need_dx, dxp, dw_n, lo, hi):
    r"""The loops of :func:`row_forward`, read in reverse (adds into ``dxp``, ``dw_n``).

    dw_n[n,f,c,i,j] += sum_{h,q} dy[n,f,h,q] * xp[n,c,h+i,q+j]
    dxp[n,c,h+i,q+j] += dy[n,f,h,q] * w[f,c,i,j]          (only if ``need_dx``)

    ``dw_n`` keeps one partial weight gradient per sample; the caller sums it over ``n``
    in a fixed order.
    """
    C = xp.shape[1]
    F, _, KH, KW = w.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    for n in range(lo, hi):
        for f in range(F):
            for h in range(Ho):
                for c in range(C):
                    for i in range(KH):
                        for j in range(KW):
                            acc = dw_n[n, f, c, i, j]
                            for q in range(Wo):
                                acc += dy[n, f, h, q] * xp[n, c, h + i, q + j]
                            dw_n[n, f, c, i, j] = acc
                            if need_dx:
                                wv = w[f, c, i, j]
                                for q in range(Wo):
                                    dxp[n, c, h + i, q + j] += wv * dy[n, f, h, q]


# ------------------------------------------------------- im2col + GEMM (many channels)

@njit(cache=True, nogil=True)
def im2col(xp, KH, KW, sh, sw, Ho, Wo, cols, lo, hi):
    r"""Gather: cols[(c*KH+i)*KW+j, n-lo, h*Wo+q] = xp[n,c,h*sh+i,q*sw+j]  (fills ``cols``).

    One row of ``cols`` per kernel tap (c, i, j), one column per output pixel (n, h, q)
    of samples lo..hi-1, so that ``w.reshape(F, -1) @ cols`` is the convolution of those
    samples as one matrix product.
    """
    C = xp.shape[1]
    for m in range(hi - lo):
        n = lo + m
        for c in range(C):
            for i in range(KH):
                for j in range(KW):
                    r = (c * KH + i) * KW + j
                    for h in range(Ho):
                        hh = h * sh + i
                        if sw == 1:
                            for q in range(Wo):
                                cols[r, m, h * Wo + q] = xp[n, c, hh, j + q]
                        else:
                            for q in range(Wo):
                                cols[r, m, h * Wo + q] = xp[n, c, hh, j + q * sw]


@njit(cache=True, nogil=True)
def col2im(dcols, KH, KW, sh, sw, Ho, Wo, dxp, lo, hi):
    r"""Scatter-add, the mirror of :func:`im2col` (adds into ``dxp``, zero on entry):

    dxp[n,c,h*sh+i,q*sw+j] += dcols[(c*KH+i)*KW+j, n-lo, h*Wo+q]   (n = lo..hi-1)

    ``n`` is the outermost loop, so one sample's slice of ``dxp`` is written by one
    iteration only: the batch can be split across threads without races.
    """
    C = dxp.shape[1]
    for m in range(hi - lo):
        n = lo + m
        for c in range(C):
            for i in range(KH):
                for j in range(KW):
                    r = (c * KH + i) * KW + j          # read row r of dcols in order
                    for h in range(Ho):
                        hh = h * sh + i
                        if sw == 1:
                            for q in range(Wo):
                                dxp[n, c, hh, j + q] += dcols[r, m, h * Wo + q]
                        else:
                            for q in range(Wo):
                                dxp[n, c, hh, j + q * sw] += dcols[r, m, h * Wo + q]
