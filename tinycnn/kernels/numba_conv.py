r"""Numba loops for convolution: the direct kernels and the im2col / col2im moves.

Nothing here is public: :mod:`tinycnn.kernels.fast` checks arguments and picks the
algorithm, :mod:`numba_paths` pads, lays out and allocates, then calls these loops. Every
kernel runs its outermost loop over samples ``n in range(lo, hi)`` and writes only what
belongs to those samples, so disjoint ranges of the batch can run on different threads
(``nogil=True``). Every function takes C-contiguous arrays and plain ints, so each
compiles to exactly one specialisation per dtype (float32, float64). Inputs arrive
already zero-padded (``xp``); gradients w.r.t. the padded input (``dxp``) are cropped by
the caller.

Why the loops look the way they do:

* the direct kernels (stride 1) run their innermost loop along contiguous memory -- the
  output positions of a flattened plane -- so LLVM vectorises it; the textbook order
  (loops nested as the formula reads, ``i, j`` innermost) was 2-14x slower (measured on a
  2-core AVX-512 Xeon);
* kernel-window bounds are never tested inside the hot loops: padding is materialised
  once, which costs one copy of a small input and keeps every inner loop branch-free;
* hot loops index 1-D slices from 0 with the loop counter, which LLVM proves
  non-negative: no negative-index wraparound fix-ups are left in the inner loops.
"""
import numpy as np
from numba import njit

# Reassociation lets LLVM vectorise the dot-product reductions of the backward pass (sum
# into one accumulator -> several SIMD lanes); contraction allows fused multiply-add. Both
# change rounding in the last bits only (the tests compare to the reference at 1e-5/1e-12),
# and the compiled order is fixed, so results stay bit-identical run to run.
FASTMATH = {"reassoc", "contract"}


# ------------------------------------------------------- direct, by kernel taps (stride 1)
#
# The layout (built by ``numba_paths.tap_planes``): each sample's padded input planes are
# laid end to end in one flat row, every plane row stored ``R`` wide, so that
#
#     xp[n, c, h + i, q + j] = xf[n, offsets[k] + h*R + q],   offsets[k] = c*P + i*R + j
#
# for tap k = (c, i, j) (P = one plane's length). Output position (h, q) is t = h*R + q:
# one tap is then ONE shifted window ``xf[n, offsets[k] + t]`` of the flat row, and the
# whole convolution of a sample is a sum of shifted windows times weights -- im2col's
# matrix without the copy. Outputs at columns q >= Wo are junk the caller crops.
#
# Register blocking (the whole speed-up, measured on a 2-core Zen 5 EPYC, float32, one
# thread, CPU time): each pass of the inner loop handles FOUR filters and THREE taps, so a
# window loaded once feeds four filters and an output loaded once takes three taps --
# 12 multiply-adds per 7 loads and 4 stores, against 1 per 2 loads and a store for one
# tap at a time. The kernel alone, forward, batch 64: LeNet's conv2 (6x14x14 -> 16, k5)
# 1.68 ms with one filter and one tap per pass, 0.31 ms like this (100 GFLOP/s);
# resnet_mini's 16 -> 16 3x3 on 28x28 5.03 ms against 1.24-1.58 ms (150-190 GFLOP/s).
# The caller pads the filters to a multiple of 4 and the taps to a multiple of 3 (zero
# weights, taps that read a zero tail).
#
# ``block`` positions at a time (a multiple of 16): the four outputs' blocks stay in L1
# however large the image (a 224 x 226 plane is 50,624 positions).


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def taps_forward(xf, offsets, wk, bias, block, yf, lo, hi):
    r"""yf[n,f,t] = bias[f] + sum_k wk[f,k] * xf[n, offsets[k] + t]   (fills ``yf``).

    With the layout above this is y[n,f,h,q] = b[f] + sum_{c,i,j} w[f,c,i,j] * xp[n,c,h+i,q+j].
    """
    F4, L = yf.shape[1], yf.shape[2]
    K3 = wk.shape[1]
    for n in range(lo, hi):
        xn = xf[n]
        for f in range(0, F4, 4):
            for t0 in range(0, L, block):
                T = min(block, L - t0)
                y0, y1 = yf[n, f, t0:t0 + T], yf[n, f + 1, t0:t0 + T]
                y2, y3 = yf[n, f + 2, t0:t0 + T], yf[n, f + 3, t0:t0 + T]
                y0[:], y1[:], y2[:], y3[:] = bias[f], bias[f + 1], bias[f + 2], bias[f + 3]
                for k in range(0, K3, 3):
                    u = xn[offsets[k] + t0:offsets[k] + t0 + T]           # three windows
                    v = xn[offsets[k + 1] + t0:offsets[k + 1] + t0 + T]
                    z = xn[offsets[k + 2] + t0:offsets[k + 2] + t0 + T]
                    a0, a1, a2 = wk[f, k], wk[f, k + 1], wk[f, k + 2]      # x four filters
                    b0, b1, b2 = wk[f + 1, k], wk[f + 1, k + 1], wk[f + 1, k + 2]
                    c0, c1, c2 = wk[f + 2, k], wk[f + 2, k + 1], wk[f + 2, k + 2]
                    d0, d1, d2 = wk[f + 3, k], wk[f + 3, k + 1], wk[f + 3, k + 2]
                    for t in range(T):
                        # loaded once, before the stores: a store to y0 might alias a
                        # window as far as LLVM knows, and re-reading after it cost 40%
                        ut, vt, zt = u[t], v[t], z[t]
                        y0[t] += a0 * ut + a1 * vt + a2 * zt
                        y1[t] += b0 * ut + b1 * vt + b2 * zt
                        y2[t] += c0 * ut + c1 * vt + c2 * zt
                        y3[t] += d0 * ut + d1 * vt + d2 * zt


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def taps_weight_grad(dyf, xf, offsets, block, dwk, lo, hi):
    r"""dwk[f,k] += sum_{n=lo}^{hi-1} sum_t dyf[n,f,t] * xf[n, offsets[k] + t]   (adds into ``dwk``).

    dw[f,c,i,j] = sum_{n,h,q} dy[n,f,h,q] * xp[n,c,h+i,q+j]: twelve dot products (four
    filters x three taps) per pass over the positions. ``dyf`` is ``dy`` in the same
    R-wide layout with ZEROS at the junk positions, so those add nothing. The caller
    gives each fixed chunk of the batch its own ``dwk`` (zero on entry) and adds them in
    chunk order.
    """
    F4, L = dyf.shape[1], dyf.shape[2]
    K3 = dwk.shape[1]
    for n in range(lo, hi):
        xn = xf[n]
        for f in range(0, F4, 4):
            for t0 in range(0, L, block):
                T = min(block, L - t0)
                g0, g1 = dyf[n, f, t0:t0 + T], dyf[n, f + 1, t0:t0 + T]
                g2, g3 = dyf[n, f + 2, t0:t0 + T], dyf[n, f + 3, t0:t0 + T]
                for k in range(0, K3, 3):
                    u = xn[offsets[k] + t0:offsets[k] + t0 + T]
                    v = xn[offsets[k + 1] + t0:offsets[k + 1] + t0 + T]
                    z = xn[offsets[k + 2] + t0:offsets[k + 2] + t0 + T]
                    # start from dwk's values: typed zeros on entry (``dy[0] * 0`` would be
                    # float64 in Numba, and a float32 sum would then run in float64)
                    a0, a1, a2 = dwk[f, k], dwk[f, k + 1], dwk[f, k + 2]
                    b0, b1, b2 = dwk[f + 1, k], dwk[f + 1, k + 1], dwk[f + 1, k + 2]
                    c0, c1, c2 = dwk[f + 2, k], dwk[f + 2, k + 1], dwk[f + 2, k + 2]
                    d0, d1, d2 = dwk[f + 3, k], dwk[f + 3, k + 1], dwk[f + 3, k + 2]
                    for t in range(T):
                        a0 += g0[t] * u[t]
                        a1 += g0[t] * v[t]
                        a2 += g0[t] * z[t]
                        b0 += g1[t] * u[t]
                        b1 += g1[t] * v[t]
                        b2 += g1[t] * z[t]
                        c0 += g2[t] * u[t]
                        c1 += g2[t] * v[t]
                        c2 += g2[t] * z[t]
                        d0 += g3[t] * u[t]
                        d1 += g3[t] * v[t]
                        d2 += g3[t] * z[t]
                    dwk[f, k], dwk[f, k + 1], dwk[f, k + 2] = a0, a1, a2
                    dwk[f + 1, k], dwk[f + 1, k + 1], dwk[f + 1, k + 2] = b0, b1, b2
                    dwk[f + 2, k], dwk[f + 2, k + 1], dwk[f + 2, k + 2] = c0, c1, c2
                    dwk[f + 3, k], dwk[f + 3, k + 1], dwk[f + 3, k + 2] = d0, d1, d2


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def taps_input_grad(dyf, offsets, wk, block, dxf, lo, hi):
    r"""dxf[n, offsets[k] + t] += sum_f wk[f,k] * dyf[n,f,t]   (adds into ``dxf``, zero on entry).

    The adjoint of :func:`taps_forward`: every product w[f,c,i,j] * xp[n,c,h+i,q+j] of the
    forward sum sends dy[n,f,h,q] * w[f,c,i,j] back to the pixel it read. Each pass adds
    four filters into three windows. The three windows of a pass should not overlap (if
    they do, the result is still right, but LLVM's run-time check then picks the scalar
    loop), so the caller orders the taps (i, j, c) -- channel fastest -- with the channels
    padded to a multiple of three: three planes, disjoint windows. ``dyf`` has zeros at
    the junk positions (they scatter exact zeros).
    """
    F4, L = dyf.shape[1], dyf.shape[2]
    K3 = wk.shape[1]
    for n in range(lo, hi):
        dxn = dxf[n]
        for t0 in range(0, L, block):
            T = min(block, L - t0)
            for k in range(0, K3, 3):
                u = dxn[offsets[k] + t0:offsets[k] + t0 + T]
                v = dxn[offsets[k + 1] + t0:offsets[k + 1] + t0 + T]
                z = dxn[offsets[k + 2] + t0:offsets[k + 2] + t0 + T]
                for f in range(0, F4, 4):
                    g0, g1 = dyf[n, f, t0:t0 + T], dyf[n, f + 1, t0:t0 + T]
                    g2, g3 = dyf[n, f + 2, t0:t0 + T], dyf[n, f + 3, t0:t0 + T]
                    a0, a1, a2 = wk[f, k], wk[f, k + 1], wk[f, k + 2]
                    b0, b1, b2 = wk[f + 1, k], wk[f + 1, k + 1], wk[f + 1, k + 2]
                    c0, c1, c2 = wk[f + 2, k], wk[f + 2, k + 1], wk[f + 2, k + 2]
                    d0, d1, d2 = wk[f + 3, k], wk[f + 3, k + 1], wk[f + 3, k + 2]
                    for t in range(T):
                        p0, p1, p2, p3 = g0[t], g1[t], g2[t], g3[t]    # before the stores
                        u[t] += a0 * p0 + b0 * p1 + c0 * p2 + d0 * p3
                        v[t] += a1 * p0 + b1 * p1 + c1 * p2 + d1 * p3
                        z[t] += a2 * p0 + b2 * p1 + c2 * p2 + d2 * p3


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
                    col = cols[(c * KH + i) * KW + j, m]      # tap (c, i, j), sample n
                    for h in range(Ho):
                        row = xp[n, c, h * sh + i]
                        # Unsigned indices: Numba then drops the fix-up it adds for
                        # negative indices (wraparound), which kept these short loops
                        # from vectorising -- 15-45% of im2col's time on resnet_mini's
                        # 7x7 and stride-2 layers. The stride-1 case has its own loop.
                        if sw == 1:
                            for q in range(Wo):
                                col[np.uint64(h * Wo + q)] = row[np.uint64(j + q)]
                        else:
                            for q in range(Wo):
                                col[np.uint64(h * Wo + q)] = row[np.uint64(j + q * sw)]


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
                    dcol = dcols[(c * KH + i) * KW + j, m]    # read in order
                    for h in range(Ho):
                        drow = dxp[n, c, h * sh + i]
                        if sw == 1:                           # unsigned: see im2col
                            for q in range(Wo):
                                drow[np.uint64(j + q)] += dcol[np.uint64(h * Wo + q)]
                        else:
                            for q in range(Wo):
                                drow[np.uint64(j + q * sw)] += dcol[np.uint64(h * Wo + q)]
