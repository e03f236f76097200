# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Solutions — Tutorial 07, Performance
#
# Worked answers to the exercises of `tutorials/07_performance.py`. Timings depend on the
# machine and on what else runs on it, so — as in the tutorial — the code asserts only
# that implementations *agree*, never which one is faster; the text says what to look for
# and what we saw on a busy 2-core machine. `TINYCNN_FAST=1` shrinks the sizes.

# %%
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import matplotlib.pyplot as plt
import numba
from numba import njit, prange

from tinycnn.tutorial_helpers import FAST, show
from tinycnn.kernels import fast, reference

REPEATS = 3 if FAST else 15


def median_seconds(fn, repeats=REPEATS, warmup=1):
    """Median wall time of ``fn()`` over ``repeats`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def make_problem(N, C, H, W, F, K, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, C, H, W)).astype(dtype), rng.standard_normal((F, C, K, K)).astype(dtype),
            rng.standard_normal(F).astype(dtype))


def conv_with(loops, x, w, b, stride=1, padding=0):
    """Pad, allocate, run ``loops`` (the tutorial's bookkeeping)."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.empty((N, F, (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1), x.dtype)
    loops(xp, w, b, stride, y)
    return y


# %% [markdown]
# ## Exercise 1 — `NUMBA_DISABLE_JIT=1`
#
# With the variable set, every `@njit` function is plain Python. Sections 2, 4, 5 and 6
# become slow wherever our own loops run (`conv_loops`, `conv_loops_parallel`,
# `conv_loops_rows`, `im2col`, the `double_*` loops), and so does `tinycnn fast`, whose
# kernels are `@njit` too; the NumPy reference kernel, `sliding_window_view`, the GEMM
# and PyTorch are unaffected (they never were Python loops). The slowdown is the
# interpreter's cost per operation. Measured on our busy machine: the literal loops
# 430× (fast mode's tiny problem) to 1,400× (full mode) slower; tinycnn's fast kernel
# 13–41× (part of its work is a BLAS call, which stays compiled); the NumPy reference
# unchanged.
#
# Rather than re-running the whole tutorial twice, we time a representative part of it —
# the literal convolution loop and the tinycnn fast kernel next to the NumPy reference —
# in two fresh processes, JIT on and off, on a shrunken problem.

# %%
PROBE = textwrap.dedent("""
    import time, numpy as np
    from numba import njit
    from tinycnn.kernels import fast, reference

    @njit
    def loops(xp, w, y):
        N, C = xp.shape[0], xp.shape[1]
        F, _, KH, KW = w.shape
        for n in range(N):
            for f in range(F):
                for h in range(y.shape[2]):
                    for q in range(y.shape[3]):
                        acc = 0.0
                        for c in range(C):
                            for i in range(KH):
                                for j in range(KW):
                                    acc += w[f, c, i, j] * xp[n, c, h + i, q + j]
                        y[n, f, h, q] = acc

    rng = np.random.default_rng(0)
    x = rng.standard_normal(({N}, 3, 12, 12)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = np.zeros(4, np.float32)
    y = np.empty((x.shape[0], 4, 10, 10), np.float32)
    def _once(fn):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    def best(fn, k=3):
        fn()                                   # warm-up (compiles when the JIT is on)
        return min(_once(fn) for _ in range(k))
    print(best(lambda: loops(x, w, y)), best(lambda: fast.conv2d_forward(x, w, b, 1, 0)),
          best(lambda: reference.conv2d_forward(x, w, b, 1, 0)))
""")
seconds = {}
for jit in ("on", "off"):
    env = dict(os.environ, NUMBA_DISABLE_JIT="1" if jit == "off" else "0")
    out = subprocess.run([sys.executable, "-c", PROBE.format(N=1 if FAST else 4)], env=env,
                         capture_output=True, text=True, check=True).stdout
    seconds[jit] = [float(v) for v in out.split()]
for k, name in enumerate(("literal conv loops", "tinycnn fast kernel", "NumPy reference")):
    on, off = seconds["on"][k], seconds["off"][k]
    print(f"Exercise 1: {name:20s} JIT on {on * 1e3:9.3f} ms, JIT off {off * 1e3:9.3f} ms ({off / on:7.1f}×)")
assert all(np.isfinite(seconds["off"]))

# %% [markdown]
# ## Exercise 2 — row-innermost loops with `prange` over `n`
#
# Splitting over the batch axis gives each thread whole images; iterations write disjoint
# parts of `y`, so there are no races and the result is the same whatever the number of
# threads. Whether it beats `conv_loops_parallel` depends on the machine: both do the same
# work split the same number of ways, but the row-innermost version vectorises its inner
# loop, so it wins wherever the serial row-innermost loop won in section 5 (full mode on
# our busy 2-core machine: 34 ms against 72 ms, 2.1× faster). With $N$ smaller than the
# number of threads,
# `prange` over `n` leaves threads idle; `conv_loops_parallel` splits $N \cdot F$ planes
# and does not have that problem.

# %%
@njit(cache=True, parallel=True)
def conv_loops_parallel(xp, w, b, stride, y):
    """The tutorial's taps-innermost loops, (n, f) planes spread over threads."""
    N, C = xp.shape[0], xp.shape[1]
    F, _, KH, KW = w.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for nf in prange(N * F):
        n, f = nf // F, nf % F
        for h in range(Ho):
            for q in range(Wo):
                acc = b[f]
                for c in range(C):
                    for i in range(KH):
                        for j in range(KW):
                            acc += w[f, c, i, j] * xp[n, c, h * stride + i, q * stride + j]
                y[n, f, h, q] = acc


@njit(cache=True, parallel=True)
def conv_loops_rows_parallel(xp, w, b, stride, y):
    """Output row innermost (as conv_loops_rows), the batch axis n spread over threads."""
    N, C = xp.shape[0], xp.shape[1]
    F, _, KH, KW = w.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for n in prange(N):
        for f in range(F):
            for h in range(Ho):
                for q in range(Wo):
                    y[n, f, h, q] = b[f]
                for c in range(C):
                    for i in range(KH):
                        for j in range(KW):
                            wv = w[f, c, i, j]
                            if stride == 1:
                                for q in range(Wo):
                                    y[n, f, h, q] += wv * xp[n, c, h + i, q + j]
                            else:
                                for q in range(Wo):
                                    y[n, f, h, q] += wv * xp[n, c, h * stride + i, q * stride + j]


xb, wb, bb = make_problem(8 if FAST else 64, 6, 14, 14, 16, 5)
yb_ref = reference.conv2d_forward(xb, wb, bb)
for stride in (1, 2):
    np.testing.assert_allclose(conv_with(conv_loops_rows_parallel, xb, wb, bb, stride),
                               reference.conv2d_forward(xb, wb, bb, stride, 0), rtol=1e-4, atol=1e-4)
if FAST:   # compiling a parallel function takes seconds: the timing race runs in full mode only
    print("Exercise 2: conv_loops_rows_parallel == reference (strides 1 and 2)")
else:
    np.testing.assert_allclose(conv_with(conv_loops_parallel, xb, wb, bb), yb_ref, rtol=1e-4, atol=1e-4)
    t_planes = median_seconds(lambda: conv_with(conv_loops_parallel, xb, wb, bb))
    t_rows = median_seconds(lambda: conv_with(conv_loops_rows_parallel, xb, wb, bb))
    print(f"Exercise 2: == reference (strides 1 and 2); {numba.get_num_threads()} threads: prange over (n, f) "
          f"with taps innermost {t_planes * 1e3:.2f} ms, prange over n with rows innermost {t_rows * 1e3:.2f} ms")

# %% [markdown]
# ## Exercise 3 — loop order against array size
#
# A $s \times s$ float64 array takes $8 s^2$ bytes: 78 KiB at 100, 0.7 MiB at 300, 7.6 MiB
# at 1000 and 69 MiB at 3000, and two arrays are touched (`a` and `out`). Two effects add
# up. Even when everything is in cache, the row-by-row loop is faster because its inner
# loop is contiguous and LLVM turns it into SIMD instructions, which the column walk
# cannot use. Once the arrays outgrow the L2 cache, every jump of a row is a trip to a
# slower level (L3, then main memory), and the gap opens further. Measured in full mode
# on our machine (L2 1 MiB per core, L3 32 MiB; printed below from `/sys`, which is what
# `lscpu` shows): 2.9× at side 100, 2.1× at 300, 6.8× at 1000 (15 MiB: past L2) and 8.0×
# at 3000 (137 MiB: past L3). So the gap opens up between 300 and 1000, where the arrays
# stop fitting in L2.

# %%
@njit(cache=True)
def double_row_by_row(a, out):
    for r in range(a.shape[0]):
        for c in range(a.shape[1]):
            out[r, c] = 2.0 * a[r, c]


@njit(cache=True)
def double_column_by_column(a, out):
    for c in range(a.shape[1]):
        for r in range(a.shape[0]):
            out[r, c] = 2.0 * a[r, c]


caches = {}
for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
    try:
        level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
        caches[f"L{level} {kind}"] = size
    except OSError:
        pass
print("caches:", caches or "not readable here (try lscpu)")
sides = (100, 300, 1000) if FAST else (100, 300, 1000, 3000)
ratios = []
for side in sides:
    a = np.random.default_rng(1).random((side, side))
    out = np.empty_like(a)
    t_row = median_seconds(lambda: double_row_by_row(a, out))
    t_col = median_seconds(lambda: double_column_by_column(a, out))
    np.testing.assert_array_equal(out, 2 * a)
    ratios.append(t_col / t_row)
    print(f"Exercise 3: side {side:5d} ({2 * a.nbytes / 2**20:7.2f} MiB in a and out): row by row "
          f"{t_row * 1e3:8.3f} ms, column by column {t_col * 1e3:8.3f} ms ({ratios[-1]:.1f}×)")

fig, ax = plt.subplots(figsize=(6.5, 4))
ax.semilogx(sides, ratios, "o-")
ax.axhline(1, color="grey", ls=":")
ax.set_xlabel("array side s (s × s float64)")
ax.set_ylabel("time column-by-column / row-by-row")
ax.set_title("the cost of walking against the memory layout")
show(fig, "07_solution_loop_order")

# %% [markdown]
# ## Exercise 4 — the backward pass with im2col
#
# With $Y = W\,\text{cols} + b$ (shapes $(F, P) = (F, CK_HK_W)(CK_HK_W, P)$, $P = N H_o W_o$)
# the matrix-product rules of tutorial 03 give $dW = dY\,\text{cols}^T$,
# $d\text{cols} = W^T dY$ and $db = \sum_P dY$. Every column of `cols` was copied out of
# the padded input, so `col2im` adds each entry of $d\text{cols}$ back to the pixel it came
# from — with `+=`, because a pixel appears in up to $K_H K_W$ columns (exactly the "gradients
# add up" of overlapping pooling windows in tutorial 02). Finally the padding is cut off.

# %%
@njit(cache=True)
def im2col(xp, KH, KW, stride, Ho, Wo, cols):
    """cols[(c*KH + i)*KW + j, (n*Ho + h)*Wo + q] = xp[n, c, h*stride + i, q*stride + j]."""
    N, C = xp.shape[0], xp.shape[1]
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                r = (c * KH + i) * KW + j
                for n in range(N):
                    for h in range(Ho):
                        for q in range(Wo):
                            cols[r, (n * Ho + h) * Wo + q] = xp[n, c, h * stride + i, q * stride + j]


@njit(cache=True)
def col2im(dcols, KH, KW, stride, Ho, Wo, dxp):
    """The mirror image of im2col: dxp[n, c, h*stride + i, q*stride + j] += dcols[row, col]."""
    N, C = dxp.shape[0], dxp.shape[1]
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                r = (c * KH + i) * KW + j
                for n in range(N):
                    for h in range(Ho):
                        for q in range(Wo):
                            dxp[n, c, h * stride + i, q * stride + j] += dcols[r, (n * Ho + h) * Wo + q]


def conv_im2col_backward(dy, x, w, stride=1, padding=0):
    """(dx, dw, db) of the convolution, through im2col, two GEMMs and col2im."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((C * KH * KW, N * Ho * Wo), x.dtype)
    im2col(xp, KH, KW, stride, Ho, Wo, cols)
    dY = dy.transpose(1, 0, 2, 3).reshape(F, -1)              # (F, P), columns ordered like cols
    dw = (dY @ cols.T).reshape(w.shape)
    dcols = w.reshape(F, -1).T @ dY
    dxp = np.zeros_like(xp)
    col2im(dcols, KH, KW, stride, Ho, Wo, dxp)
    return dxp[:, :, padding:padding + H, padding:padding + W], dw, dY.sum(axis=1)


for stride, padding in ((1, 0), (1, 2), (2, 1)):
    x4, w4, _ = make_problem(3, 2, 9, 8, 4, 3, seed=stride + padding, dtype=np.float64)
    dy4 = np.random.default_rng(5).standard_normal(reference.conv2d_forward(x4, w4, np.zeros(4), stride, padding).shape)
    for ours, theirs in zip(conv_im2col_backward(dy4, x4, w4, stride, padding),
                            fast.conv2d_backward(dy4, x4, w4, stride, padding)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
print("Exercise 4: im2col backward (dx, dw, db) == fast.conv2d_backward for (stride, padding) "
      "(1, 0), (1, 2), (2, 1)")

# %% [markdown]
# ## Exercise 5 — float32 against float64
#
# One multiply-add takes the same time in either precision, but a SIMD register (256 bits
# with AVX2) holds 8 float32 or 4 float64, so one vector instruction does twice as many
# float32 operations; and float32 arrays are half the bytes, so twice as many values fit
# in every cache level and every memory transfer. conv2 goes through tinycnn's direct
# shifted-windows loops (tutorial section 6), whose inner loop LLVM vectorises: with
# AVX-512 one instruction does 16 float32 or 8 float64 multiply-adds, so the arithmetic
# can approach 2× faster in float32, while per-call costs (laying the planes out,
# cropping the junk columns) shrink less. Measured on a 2-core AMD EPYC (Zen 5), one
# thread, CPU time, batch 64, medians of 21 interleaved rounds: 0.45 ms in float32,
# 0.70 ms in float64 (1.6×). On fast mode's tiny batch of 8 fixed per-call costs weigh
# more, so expect a smaller and noisier ratio.

# %%
x5, w5, b5 = make_problem(8 if FAST else 64, 6, 14, 14, 16, 5)
t32 = median_seconds(lambda: fast.conv2d_forward(x5, w5, b5, 1, 0))
x64, w64, b64 = x5.astype(np.float64), w5.astype(np.float64), b5.astype(np.float64)
t64 = median_seconds(lambda: fast.conv2d_forward(x64, w64, b64, 1, 0))
np.testing.assert_allclose(fast.conv2d_forward(x5, w5, b5, 1, 0), fast.conv2d_forward(x64, w64, b64, 1, 0),
                           rtol=1e-4, atol=1e-4)
assert fast.conv2d_forward(x5, w5, b5, 1, 0).dtype == np.float32
print(f"Exercise 5: conv2 forward, batch {len(x5)}: float32 {t32 * 1e3:.3f} ms, float64 {t64 * 1e3:.3f} ms "
      f"({t64 / t32:.2f}×)")
