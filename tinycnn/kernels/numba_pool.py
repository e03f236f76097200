r"""Numba loops for max and average pooling.

Nothing here is public: :mod:`tinycnn.kernels.fast` reshapes ``(N, C, H, W)`` to
``(N*C, H, W)`` -- pooling treats every channel of every sample alike -- and allocates the
outputs. Every loop nest starts with the plane index ``p in range(lo, hi)``, so one plane
of ``dx`` is written by one iteration only: the caller may hand disjoint ranges of planes
to different threads, and the result does not depend on the split.

Each kernel has a general window loop and, for the 2x2 / stride-2 pooling nearly every
CNN uses, a branch with the window written out: with the loop bounds known, LLVM keeps
everything in registers (max-pool forward 0.87 -> 0.15 ms on LeNet's 64x6x28x28).
The branch lives inside the same kernel, so it costs no extra compilation.

In the backward passes the 2x2 / stride-2 branch *writes* every pixel its windows cover
once with ``=`` (the windows tile the plane: no pixel is in two of them) instead of adding
into a zeroed ``dx``: the caller hands over an uninitialised array and zeroes only the
rows and columns no window reaches. Each write is ``g + zero`` rather than ``g``, so a
``-0.0`` gradient lands as ``+0.0``, bit for bit what ``0 + g`` gives in the reference.
The general loops still add into a zeroed ``dx``: an ``=`` path there too made the
kernels slower to compile (~0.1 s each, measured) for pool shapes few networks use.
"""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def maxpool_forward(x, kh, kw, sh, sw, y, lo, hi):
    r"""y[p,h,q] = max_{i<kh, j<kw} x[p, h*sh+i, q*sw+j]  (fills ``y``).

    ``v > m or v != v``: a NaN wins, as with ``np.maximum`` in the reference.
    """
    Ho, Wo = y.shape[1], y.shape[2]
    if kh == 2 and kw == 2 and sh == 2 and sw == 2:
        for p in range(lo, hi):
            for h in range(Ho):
                for q in range(Wo):
                    m = x[p, 2 * h, 2 * q]
                    v = x[p, 2 * h, 2 * q + 1]
                    if v > m or v != v:
                        m = v
                    v = x[p, 2 * h + 1, 2 * q]
                    if v > m or v != v:
                        m = v
                    v = x[p, 2 * h + 1, 2 * q + 1]
                    if v > m or v != v:
                        m = v
                    y[p, h, q] = m
        return
    for p in range(lo, hi):
        for h in range(Ho):
            for q in range(Wo):
                m = x[p, h * sh, q * sw]
                for i in range(kh):
                    for j in range(kw):
                        v = x[p, h * sh + i, q * sw + j]
                        if v > m or v != v:
                            m = v
                y[p, h, q] = m


@njit(cache=True, nogil=True)
def maxpool_backward(dy, x, kh, kw, sh, sw, dx, lo, hi):
    r"""dx[p, h*sh+i*, q*sw+j*] += dy[p,h,q], (i*, j*) the window's first maximum.

    The argmax is found again from ``x`` scanning the window in row-major order with the
    forward's test ``v > m or v != v``: ties go to the first maximum, a NaN beats any
    number and a later NaN replaces an earlier one (the last NaN wins), exactly as in the
    reference and in PyTorch. The 2x2 / stride-2 branch writes its windows whole with
    ``=`` (``dx`` may hold anything there on entry); otherwise ``dx`` must be zero on
    entry and overlapping windows add up.
    """
    Ho, Wo = dy.shape[1], dy.shape[2]
    zero = np.zeros(1, dx.dtype)[0]      # a zero of dx's dtype (``g * 0`` would be float64)
    if kh == 2 and kw == 2 and sh == 2 and sw == 2:
        # Per output row, two passes. 1: the scan hands the winner's gradient down
        # through selects into four scratch rows, one per window pixel (a, b, c, d):
        # contiguous stores, no branch, no tap index. 2: those rows are interleaved into
        # dx's two rows with ``=`` (no read of dx, no zeroing pass), one dx row per loop.
        # Measured (LeNet's 64x6x28x28 after ReLU, 1 thread, CPU time, this loop alone,
        # AMD Zen 5), float32: 0.38 ms with a tap index k and ``+=`` into np.zeros, 0.26
        # with k and ``=``, 0.17 with the selects storing straight into dx (four
        # interleaved stores per window, which LLVM did not vectorise; one store per
        # window took 0.03), 0.075 like this (64x16x10x10: 0.15 -> 0.04). float64 is
        # the exception: 0.19 against 0.17 on 28x28 planes, 0.08 against 0.07 on 10x10,
        # but 0.06 against 0.14 on 64x64. The scratch rows are separate arrays: four
        # rows of one (4, Wo) array ran 2.7x slower in float64 on 64x64 planes. Variants
        # that LLVM compiled to jumps ran 2-4x slower on ReLU outputs (ties at 0).
        ga, gb = np.empty(Wo, dx.dtype), np.empty(Wo, dx.dtype)
        gc, gd = np.empty(Wo, dx.dtype), np.empty(Wo, dx.dtype)
        for p in range(lo, hi):
            for h in range(Ho):
                for q in range(Wo):
                    a, b = x[p, 2 * h, 2 * q], x[p, 2 * h, 2 * q + 1]
                    c, d = x[p, 2 * h + 1, 2 * q], x[p, 2 * h + 1, 2 * q + 1]
                    g = dy[p, h, q] + zero
                    tb = b > a or b != b         # the forward's scan over a, b, c, d
                    m = b if tb else a
                    tc = c > m or c != c
                    m = c if tc else m
                    td = d > m or d != d
                    gd[q] = g if td else zero    # the last to win keeps g ...
                    g = zero if td else g        # ... and the earlier ones lose it
                    gc[q] = g if tc else zero
                    g = zero if tc else g
                    gb[q] = g if tb else zero
                    ga[q] = zero if tb else g
                for q in range(Wo):
                    dx[p, 2 * h, 2 * q] = ga[q]
                    dx[p, 2 * h, 2 * q + 1] = gb[q]
                for q in range(Wo):
                    dx[p, 2 * h + 1, 2 * q] = gc[q]
                    dx[p, 2 * h + 1, 2 * q + 1] = gd[q]
        return
    for p in range(lo, hi):
        for h in range(Ho):
            for q in range(Wo):
                best = x[p, h * sh, q * sw]
                bi, bj = 0, 0
                for i in range(kh):
                    for j in range(kw):
                        v = x[p, h * sh + i, q * sw + j]
                        if v > best or v != v:
                            best, bi, bj = v, i, j
                dx[p, h * sh + bi, q * sw + bj] += dy[p, h, q]


@njit(cache=True, nogil=True)
def avgpool_forward(x, kh, kw, sh, sw, area, y, lo, hi):
    r"""y[p,h,q] = sum_{i<kh, j<kw} x[p, h*sh+i, q*sw+j] / area, area = kh*kw (fills ``y``).

    ``area`` arrives as a scalar of x's dtype, so float32 stays float32 throughout.
    """
    Ho, Wo = y.shape[1], y.shape[2]
    if kh == 2 and kw == 2 and sh == 2 and sw == 2:
        for p in range(lo, hi):
            for h in range(Ho):
                for q in range(Wo):
                    s = x[p, 2 * h, 2 * q] + x[p, 2 * h, 2 * q + 1]
                    s += x[p, 2 * h + 1, 2 * q]
                    s += x[p, 2 * h + 1, 2 * q + 1]
                    y[p, h, q] = s / area
        return
    zero = np.zeros(1, y.dtype)[0]       # accumulate in y's dtype (``x * 0`` is float64)
    for p in range(lo, hi):
        for h in range(Ho):
            for q in range(Wo):
                s = zero
                for i in range(kh):
                    for j in range(kw):
                        s += x[p, h * sh + i, q * sw + j]
                y[p, h, q] = s / area


@njit(cache=True, nogil=True)
def avgpool_backward(dy, kh, kw, sh, sw, area, dx, lo, hi):
    r"""dx[p, h*sh+i, q*sw+j] += dy[p,h,q] / area for every tap of the window (area = kh*kw).

    The 2x2 / stride-2 branch writes its windows with ``=`` (``dx`` may hold anything
    there on entry); otherwise ``dx`` must be zero on entry and overlapping windows add up.
    """
    Ho, Wo = dy.shape[1], dy.shape[2]
    if kh == 2 and kw == 2 and sh == 2 and sw == 2:
        # ``=`` into an uninitialised dx, window written out: 0.26 -> 0.05 ms on
        # 64x6x28x28 float32 (the general loop read-modify-wrote a zeroed dx). The +0.0
        # of dx's dtype is ``area - area``: ``np.zeros(1, dtype)[0]`` pulls in Numba's
        # allocation code, ~0.1 s more compilation for this kernel (measured).
        zero = area - area
        for p in range(lo, hi):
            for h in range(Ho):
                for q in range(Wo):
                    share = dy[p, h, q] / area + zero
                    dx[p, 2 * h, 2 * q] = share
                    dx[p, 2 * h, 2 * q + 1] = share
                    dx[p, 2 * h + 1, 2 * q] = share
                    dx[p, 2 * h + 1, 2 * q + 1] = share
        return
    for p in range(lo, hi):
        for h in range(Ho):
            for q in range(Wo):
                share = dy[p, h, q] / area
                for i in range(kh):
                    for j in range(kw):
                        dx[p, h * sh + i, q * sw + j] += share
