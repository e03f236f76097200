r"""Numba loops for max and average pooling.

Nothing here is public: :mod:`tinycnn.kernels.fast` reshapes ``(N, C, H, W)`` to
``(N*C, H, W)`` -- pooling treats every channel of every sample alike -- and allocates the
outputs. Every loop nest starts with the plane index ``p``, so one plane of ``dx`` is
written by one iteration only (safe to split across threads, deterministic).

Pooling moves little data and does almost no arithmetic, so the plain window loop is as
fast as anything cleverer here; it runs at memory speed.
"""
from numba import njit


@njit(cache=True, nogil=True)
def maxpool_forward(x, kh, kw, sh, sw, y):
    r"""y[p,h,q] = max_{i<kh, j<kw} x[p, h*sh+i, q*sw+j]  (fills ``y``)."""
    P, Ho, Wo = y.shape
    for p in range(P):
        for h in range(Ho):
            for q in range(Wo):
                m = x[p, h * sh, q * sw]
                for i in range(kh):
                    for j in range(kw):
                        v = x[p, h * sh + i, q * sw + j]
                        if v > m or v != v:            # v != v: NaN wins, as np.maximum
                            m = v
                y[p, h, q] = m


@njit(cache=True, nogil=True)
def maxpool_backward(dy, x, kh, kw, sh, sw, dx):
    r"""dx[p, h*sh+i*, q*sw+j*] += dy[p,h,q], (i*, j*) the window's first maximum.

    The argmax is found again from ``x`` with a strict ``>`` scanning the window in
    row-major order, so ties go to the first maximum, exactly as in the reference.
    ``dx`` must be zero on entry; overlapping windows add up.
    """
    P, Ho, Wo = dy.shape
    for p in range(P):
        for h in range(Ho):
            for q in range(Wo):
                best = x[p, h * sh, q * sw]
                bi, bj = 0, 0
                for i in range(kh):
                    for j in range(kw):
                        v = x[p, h * sh + i, q * sw + j]
                        if v > best:
                            best, bi, bj = v, i, j
                dx[p, h * sh + bi, q * sw + bj] += dy[p, h, q]


@njit(cache=True, nogil=True)
def avgpool_forward(x, kh, kw, sh, sw, area, y):
    r"""y[p,h,q] = sum_{i<kh, j<kw} x[p, h*sh+i, q*sw+j] / area, area = kh*kw (fills ``y``).

    ``area`` arrives as a scalar of x's dtype, so float32 stays float32 throughout.
    """
    P, Ho, Wo = y.shape
    for p in range(P):
        for h in range(Ho):
            for q in range(Wo):
                s = x[p, h * sh, q * sw] * 0
                for i in range(kh):
                    for j in range(kw):
                        s += x[p, h * sh + i, q * sw + j]
                y[p, h, q] = s / area


@njit(cache=True, nogil=True)
def avgpool_backward(dy, kh, kw, sh, sw, area, dx):
    r"""dx[p, h*sh+i, q*sw+j] += dy[p,h,q] / area for every tap of the window (area = kh*kw)."""
    P, Ho, Wo = dy.shape
    for p in range(P):
        for h in range(Ho):
            for q in range(Wo):
                share = dy[p, h, q] / area
                for i in range(kh):
                    for j in range(kw):
                        dx[p, h * sh + i, q * sw + j] += share
