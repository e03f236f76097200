r"""Convolution as seven plain Python loops: the formula, one multiply-add at a time.

Only ever timed on a tiny shape -- it is the "before" picture (~10^6 times slower than
BLAS), and a third, independent check of the other backends.

.. math::
    y_{n,f,h,w} = b_f + \sum_{c,i,j} w_{f,c,i,j}\, x^{pad}_{n,c,\,h s+i,\,w s+j}
"""
import numpy as np


def conv2d_forward(x, w, b, stride=1, padding=0):
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    s, p = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))).tolist()
    Ho, Wo = (H + 2 * p - KH) // s + 1, (W + 2 * p - KW) // s + 1
    wl = w.tolist()
    y = [[[[0.0] * Wo for _ in range(Ho)] for _ in range(F)] for _ in range(N)]
    for n in range(N):
        for f in range(F):
            for h in range(Ho):
                for q in range(Wo):
                    acc = float(b[f])
                    for c in range(C):
                        for i in range(KH):
                            for j in range(KW):
                                acc += wl[f][c][i][j] * xp[n][c][h * s + i][q * s + j]
                    y[n][f][h][q] = acc
    return np.array(y, dtype=x.dtype)


def conv2d_backward(dy, x, w, stride=1, padding=0):
    """The same loops; each multiply-add of the forward pass sends two gradients back."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    s, p = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))).tolist()
    dxp = np.zeros((N, C, H + 2 * p, W + 2 * p)).tolist()
    dw = np.zeros(w.shape).tolist()
    wl, dyl = w.tolist(), dy.tolist()
    Ho, Wo = dy.shape[2], dy.shape[3]
    for n in range(N):
        for f in range(F):
            for h in range(Ho):
                for q in range(Wo):
                    g = dyl[n][f][h][q]
                    for c in range(C):
                        for i in range(KH):
                            for j in range(KW):
                                dw[f][c][i][j] += g * xp[n][c][h * s + i][q * s + j]
                                dxp[n][c][h * s + i][q * s + j] += g * wl[f][c][i][j]
    dx = np.array(dxp, dtype=x.dtype)[:, :, p:p + H, p:p + W]
    return dx, np.array(dw, dtype=x.dtype), dy.sum(axis=(0, 2, 3))
