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
# # Tutorial 07 — Performance: from Python loops to Numba
#
# The convolution formula is seven nested loops. Written literally in Python it is
# correct and hopelessly slow; the same loops, compiled, are fast; and the fastest way of
# all often does not look like the formula at all. This tutorial times one computation
# several ways and explains each difference, so that you can read
# `tinycnn/kernels/fast.py` and know why it is written the way it is.
#
# **What you will learn**
#
# 1. how to time code honestly: `time.perf_counter`, warm-up, the median of repeats — and
#    why timings on a shared machine are noisy;
# 2. the interpreter's cost: the same loops in Python and compiled by Numba (`@njit`);
# 3. NumPy vectorisation: the reference kernel loops over only the $K_H K_W$ kernel taps;
# 4. Numba details: compile time, `cache=True`, `prange` threads;
# 5. loop order and memory layout: why the innermost loop must walk contiguous memory;
# 6. im2col + matrix multiply versus direct loops: where the time goes, how tinycnn's direct
#    kernels see every kernel tap as a shifted window, and why tinycnn uses each where it does;
# 7. threads that hurt: BLAS on a busy 2-core machine;
# 8. (if PyTorch is installed, full mode) how tinycnn compares with PyTorch.
#
# **All timings depend on the machine and on what else it is doing.** The numbers quoted
# in the text were measured on a 2-core virtual machine shared with other jobs; rerun the
# tutorial and trust your own. The tutorial asserts only that all implementations compute
# the same thing — never that one is faster (STYLE: timing lives in `benchmarks/`).

# %%
import os

# One BLAS thread for every timing in this process: section 7 shows (in separate
# processes) why two threads can make small matrix products much slower on a busy
# 2-core machine; here we want numbers that do not swing with the load of the machine.
# It only takes effect before NumPy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import subprocess
import sys
import time

import numpy as np
import matplotlib.pyplot as plt
import numba
from numba import njit, prange

from tinycnn.tutorial_helpers import FAST, show
import tinycnn as tc
from tinycnn.kernels import fast, reference

np.set_printoptions(precision=4, suppress=True, linewidth=100)
print("tinycnn", tc.__version__, "| numba", numba.__version__, f"({numba.config.NUMBA_NUM_THREADS} threads)",
      "| CPUs:", os.cpu_count(), "| fast mode:", FAST)

# %% [markdown]
# ## 1. Timing honestly
#
# * `time.perf_counter()` is the right clock: monotonic, the highest resolution
#   available. (`time.time()` can jump when the system clock is adjusted.)
# * **Warm up** first: the first call pays one-off costs — Numba compilation, memory
#   being mapped, caches being filled.
# * Repeat and take the **median**: other processes, the garbage collector and CPU
#   frequency changes add delays that only ever make a run *slower*. The median ignores
#   the outliers; the mean does not.

# %%
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


def pretty(seconds):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


a = np.random.default_rng(0).standard_normal((300, 300))
samples = []
for _ in range(30 if FAST else 200):
    t0 = time.perf_counter()
    a @ a
    samples.append(time.perf_counter() - t0)
samples = np.array(samples)
print(f"300×300 matrix product, {len(samples)} runs: min {pretty(samples.min())}, "
      f"median {pretty(np.median(samples))}, mean {pretty(samples.mean())}, max {pretty(samples.max())}")

# %% [markdown]
# On a quiet machine min and median are close; on a busy one the maximum can be many
# times the median. (When the median itself is far above the minimum, the machine is
# overloaded — all the numbers below are then only rough.)
#
# ## 2. The same loops, interpreted and compiled
#
# The convolution of tutorial 01, for a batch $x$ (N, C, H, W) and filters $w$ (F, C, KH,
# KW), on an input that is already zero-padded:
#
# $$y_{n,f,h,q} = b_f + \sum_{c}\sum_{i}\sum_{j} w_{f,c,i,j}\; x^{pad}_{n,c,\,hs+i,\,qs+j}.$$
#
# Below it is written as literally as possible, decorated with Numba's `@njit`. Numba
# compiles the function to machine code the first time it is called (for the argument
# types it sees). The undecorated Python function is still available as `.py_func`, so we
# can time **exactly the same source** interpreted and compiled.

# %%
@njit(cache=True)
def conv_loops(xp, w, b, stride, y):
    """y[n,f,h,q] = b[f] + sum_{c,i,j} w[f,c,i,j] * xp[n,c,h*stride+i,q*stride+j] (fills y)."""
    N, C = xp.shape[0], xp.shape[1]
    F, _, KH, KW = w.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for n in range(N):
        for f in range(F):
            for h in range(Ho):
                for q in range(Wo):
                    acc = b[f]
                    for c in range(C):
                        for i in range(KH):
                            for j in range(KW):
                                acc += w[f, c, i, j] * xp[n, c, h * stride + i, q * stride + j]
                    y[n, f, h, q] = acc


def conv_with(loops, x, w, b, stride=1, padding=0):
    """Pad, allocate, run ``loops`` -- the bookkeeping around any of the loop kernels here."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.empty((N, F, (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1), x.dtype)
    loops(xp, w, b, stride, y)
    return y


def make_problem(N, C, H, W, F, K, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, C, H, W)).astype(dtype), rng.standard_normal((F, C, K, K)).astype(dtype),
            rng.standard_normal(F).astype(dtype))


def mac_count(x, w, y):
    """Multiply-adds of a convolution: one per (output element, c, i, j)."""
    return y.size * w.shape[1] * w.shape[2] * w.shape[3]


# a small problem, so the pure-Python version finishes quickly
x, w, b = make_problem(*((1, 2, 10, 10, 3, 3) if FAST else (2, 3, 16, 16, 4, 3)))
y_ref = reference.conv2d_forward(x, w, b, 1, 1)
macs = mac_count(x, w, y_ref)

t0 = time.perf_counter()
y_numba = conv_with(conv_loops, x, w, b, padding=1)          # first call: compile (or load cache)
first_call = time.perf_counter() - t0
# .py_func is the original Python function (with NUMBA_DISABLE_JIT=1 @njit returns it as is)
conv_loops_python = getattr(conv_loops, "py_func", conv_loops)
y_python = conv_with(conv_loops_python, x, w, b, padding=1)
np.testing.assert_allclose(y_python, y_ref, rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(y_numba, y_ref, rtol=1e-5, atol=1e-5)

timings = {
    "Python loops": median_seconds(lambda: conv_with(conv_loops_python, x, w, b, padding=1), repeats=min(REPEATS, 5)),
    "Numba loops (same source)": median_seconds(lambda: conv_with(conv_loops, x, w, b, padding=1)),
    "NumPy: reference kernel": median_seconds(lambda: reference.conv2d_forward(x, w, b, 1, 1)),
    "tinycnn fast kernel": median_seconds(lambda: fast.conv2d_forward(x, w, b, 1, 1)),
}
print(f"x {x.shape}, w {w.shape}: {macs:,} multiply-adds; first Numba call {pretty(first_call)}")
for name, t in timings.items():
    print(f"  {name:28s} {pretty(t):>9s}   {1e9 * t / macs:8.2f} ns per multiply-add")
print(f"the same source, interpreted / compiled: {timings['Python loops'] / timings['Numba loops (same source)']:.0f}×")

# %% [markdown]
# The interpreted loop spends tens to hundreds of nanoseconds per multiply-add: every
# `acc += w[...] * xp[...]` looks up names, checks types, creates Python float objects and
# calls NumPy's indexing machinery — thousands of machine instructions for one
# multiplication. The compiled loop knows all types in advance and does roughly one
# instruction per operation: a speed-up of tens to a thousand times from one decorator
# (the ratio printed above; on one 2-core machine we have seen anything from about 60×
# to about 1,000×, depending on the input size and on how busy the machine was).
#
# The first call was slow because it compiled the function (or, with `cache=True`, loaded
# the machine code saved by an earlier run from `__pycache__`) — and because the very
# first Numba call of a process also initialises the compiler itself. On such tiny inputs
# every compiled variant is dominated by fixed per-call overheads (argument checks,
# `np.pad`, allocation), not by the arithmetic — a reminder to time the sizes you
# actually care about.
#
# ## 3. NumPy: vectorise all but the kernel taps
#
# NumPy is fast when one call does a lot of work in compiled C. The reference kernel
# (`tinycnn/kernels/reference.py`) keeps only the loops over the kernel offsets $(i, j)$
# in Python — 9 iterations for a 3×3 kernel — and for each offset does *all* $n, f, c,
# h, q$ at once: the input pixels seen through tap $(i, j)$ form a strided view
# `x_pad[:, :, i::s, j::s]`, and `np.einsum("fc,nchw->nfhw", ...)` contracts it with
# `w[:, :, i, j]`:
#
# ```python
# for i in range(KH):
#     for j in range(KW):
#         y += np.einsum("fc,nchw->nfhw", w[:, :, i, j], _tap(x_pad, i, j, sh, sw, Ho, Wo))
# ```
#
# A second NumPy formulation gathers every patch at once with
# `numpy.lib.stride_tricks.sliding_window_view` (a view, no copy) and turns the whole
# convolution into **one** tensor contraction, i.e. one matrix product:

# %%
from numpy.lib.stride_tricks import sliding_window_view


def conv_sliding_window(x, w, b, padding=0):
    """Stride 1: patches (N, C, Ho, Wo, KH, KW) contracted with w (F, C, KH, KW) over c, i, j."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    patches = sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    return np.tensordot(patches, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2) + b[:, None, None]


np.testing.assert_allclose(conv_sliding_window(x, w, b, 1), y_ref, rtol=1e-5, atol=1e-5)
print("sliding_window_view + tensordot == reference kernel")

# %% [markdown]
# `tensordot` has to copy the strided patches into a contiguous matrix first — that copy
# *is* im2col (section 6) — and then calls BLAS.
#
# ## 4. Numba: compile time, caching and threads
#
# `@njit` ("no Python") compiles the whole function or refuses with an error: inside it
# only NumPy arrays, numbers and a subset of NumPy functions are allowed. Three options
# matter most:
#
# * `cache=True` writes the machine code to `__pycache__/*.nbi|*.nbc` next to the source
#   and loads it in later runs instead of compiling again (tinycnn's kernels all use it);
# * `parallel=True` with `numba.prange` in place of `range` splits that loop's iterations
#   over threads (`NUMBA_NUM_THREADS`, default: all cores);
# * `fastmath=...` lets LLVM reorder floating-point sums (e.g. into SIMD lanes), which
#   changes rounding in the last bits.
#
# Setting the environment variable `NUMBA_DISABLE_JIT=1` turns every `@njit` into plain
# Python — slow, but you can step through the kernel in a debugger.
#
# A parallel version of our loops: each thread gets whole output planes $(n, f)$. No two
# iterations write the same element of `y`, so there are no races and the result does
# not depend on how the work is split.

# %%
@njit(cache=True, parallel=True)
def conv_loops_parallel(xp, w, b, stride, y):
    """conv_loops with the (n, f) planes spread over threads by prange."""
    N, C = xp.shape[0], xp.shape[1]
    F, _, KH, KW = w.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for nf in prange(N * F):                     # one output plane per iteration
        n, f = nf // F, nf % F
        for h in range(Ho):
            for q in range(Wo):
                acc = b[f]
                for c in range(C):
                    for i in range(KH):
                        for j in range(KW):
                            acc += w[f, c, i, j] * xp[n, c, h * stride + i, q * stride + j]
                y[n, f, h, q] = acc


# a bigger problem, a LeNet-conv2-like layer: 6 -> 16 channels, 5×5, 14×14 inputs
xb, wb, bb = make_problem(8 if FAST else 64, 6, 14, 14, 16, 5)
yb_ref = reference.conv2d_forward(xb, wb, bb)
np.testing.assert_allclose(conv_with(conv_loops_parallel, xb, wb, bb), yb_ref, rtol=1e-4, atol=1e-4)
T = numba.get_num_threads()


def parallel_on(threads):
    """conv_loops_parallel with ``threads`` Numba threads (restored to T afterwards)."""
    numba.set_num_threads(threads)
    try:
        return conv_with(conv_loops_parallel, xb, wb, bb)
    finally:
        numba.set_num_threads(T)


def interleaved_medians(fns, repeats=REPEATS):
    """Median time of each ``fn``, measured in rounds that call every fn once, in turn.

    Interleaving gives every candidate the same share of a warm or a throttled CPU, of a
    quiet or a busy machine; timing one candidate after the other would not."""
    for fn in fns.values():
        fn()                                       # warm-up (and compilation)
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


par = interleaved_medians({"serial": lambda: conv_with(conv_loops, xb, wb, bb),
                           "prange, 1 thread": lambda: parallel_on(1),
                           f"prange, {T} threads": lambda: parallel_on(T)})
t_serial, t_par1, t_parallel = par.values()
print(f"x {xb.shape}, w {wb.shape}:")
for name, t in par.items():
    print(f"  {name:20s} {pretty(t):>9s}")
print(f"speed-up over the serial function: {t_serial / t_parallel:.2f}× on {T} threads = "
      f"{t_serial / t_par1:.2f}× (different code, one thread) × {t_par1 / t_parallel:.2f}× (threads, same code)")

# %% [markdown]
# How much can $T$ threads gain? Splitting the *same* code over $T$ cores can make it at
# most about $T$ times faster — the work is the same, only shared. (Slightly more is
# possible: each core brings its own private cache, so the data of one thread's share
# may fit where all of it did not.) On a 2-core machine shared with other work you will
# see less, sometimes none; for small inputs starting the threads costs more than it
# saves; and when the cores are busy with other processes the threaded version can be
# many times *slower*, because the call waits for its slowest thread and a thread that
# is not scheduled waits for a core (section 7 shows the same effect in BLAS).
#
# Yet the speed-up over the serial function printed above can come out **larger than
# $T$** (earlier runs of this tutorial printed more than 2× on 2 threads). The third
# measurement explains why: `conv_loops_parallel` on **one** thread is not the same
# program as `conv_loops`. With `parallel=True`, Numba moves the body of the `prange`
# loop into a separate function (a "gufunc") that it compiles with its own optimisation
# passes, and the loop is written over the flattened index `nf` — and that code can be
# faster than the serial loops even on one thread (in our runs at batch 64: between
# about 1.0× and 1.7×, the larger values on a busy machine). The printout splits the
# speed-up over the serial function into that code effect (serial ÷ prange-on-1-thread)
# and the part that threads really buy (prange-on-1 ÷ prange-on-$T$, at most about $T$).
# Both factors vary with the machine, its load and the problem size, so read them off
# your own run. Two other ways a comparison can cheat, both avoided here: measuring the
# candidates one after the other (turbo clocks, a warming CPU or a neighbour's job then
# favour one of them — `interleaved_medians` alternates them), and comparing different
# problem sizes. How tinycnn's own fast kernels use threads, and the
# measurements behind that choice, is described at the top of `tinycnn/kernels/fast.py`.
# Note also that BLAS keeps a thread pool of its own (section 7).
#
# What `cache=True` saves is easiest to see in fresh processes. Full mode runs a small
# script twice with an empty cache folder: the first process compiles, the second loads.

# %%
CACHE_DEMO = """
import time
t0 = time.perf_counter()
import numpy as np
from numba import njit
t1 = time.perf_counter()

@njit(cache=True)
def conv_loops(xp, w, y):
    for n in range(y.shape[0]):
        for f in range(y.shape[1]):
            for h in range(y.shape[2]):
                for q in range(y.shape[3]):
                    acc = 0.0
                    for c in range(xp.shape[1]):
                        for i in range(w.shape[2]):
                            for j in range(w.shape[3]):
                                acc += w[f, c, i, j] * xp[n, c, h + i, q + j]
                    y[n, f, h, q] = acc

t2 = time.perf_counter()
conv_loops(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), np.empty((1, 1, 3, 3)))
t3 = time.perf_counter()
print(f"{t1 - t0:.3f} {t3 - t2:.3f}")
"""
if FAST:
    print("(cache demo skipped in fast mode: it starts two Python processes)")
else:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "cache_demo.py")
        with open(script, "w") as fh:
            fh.write(CACHE_DEMO)
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "cache"))
        for run in ("first run (compiles)", "second run (loads the cache)"):
            out = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, check=True)
            imports, first_call = map(float, out.stdout.split())
            print(f"{run:30s} import numpy+numba {imports:.2f} s, first call {first_call:.3f} s")

# %% [markdown]
# ## 5. Loop order and memory layout
#
# A NumPy array is one block of memory. In the default C order the *last* index varies
# fastest: `a[r, 0], a[r, 1], ...` are neighbours. The CPU loads memory in 64-byte cache
# lines (8 float64 or 16 float32) and prefetches the next ones when it sees a sequential
# pattern. A loop whose innermost index walks along contiguous memory uses every byte it
# loads and lets the compiler use SIMD instructions (4–8 float64 per instruction on
# AVX2/AVX-512); a loop that jumps by a whole row each step uses 8 bytes of every 64 it
# loads for the float64 arrays below (4 bytes for float32).

# %%
@njit(cache=True)
def double_row_by_row(a, out):
    for r in range(a.shape[0]):
        for c in range(a.shape[1]):          # innermost along a row: contiguous in C order
            out[r, c] = 2.0 * a[r, c]


@njit(cache=True)
def double_column_by_column(a, out):
    for c in range(a.shape[1]):
        for r in range(a.shape[0]):          # innermost down a column: a jump of a whole row
            out[r, c] = 2.0 * a[r, c]


side = 1000 if FAST else 3000
a_c = np.random.default_rng(1).random((side, side))   # C order (row-major)
a_f = np.asfortranarray(a_c)                           # the same values, column-major
layout = {}
for name, arr in (("C order", a_c), ("Fortran order", a_f)):
    out = np.empty_like(arr)                           # same layout as the input
    for fn in (double_row_by_row, double_column_by_column):
        layout[(name, fn.__name__)] = median_seconds(lambda: fn(arr, out))
        np.testing.assert_array_equal(out, 2 * a_c)
print(f"out = 2 * a for a {side}×{side} float64 array ({a_c.nbytes / 2**20:.0f} MiB):")
for (name, fn_name), t in layout.items():
    print(f"  {name:14s} {fn_name:24s} {pretty(t):>9s}")

# %% [markdown]
# The fast combination is always "innermost loop along the contiguous axis": row by row
# for C order, column by column for Fortran order. (The gap is largest for arrays that do
# not fit in the CPU caches.) Transposes, `x[:, ::2]` slices and `np.asfortranarray` all
# change which axis is contiguous; `fast.py` therefore makes every input C-contiguous
# (`np.ascontiguousarray`) before its loops run, a cheap copy compared with a slow loop.
#
# ### Loop order in the convolution
#
# Our `conv_loops` has the three kernel loops $c, i, j$ innermost: for each output pixel
# it gathers a small, scattered patch, and the innermost loop runs only $K_W = 5$ times —
# too short to vectorise. Reorder the *same* sum so that the innermost loop runs along
# one **output row** $q$: for a fixed tap $(c, i, j)$,
# `y[n, f, h, :] += w[f, c, i, j] * xp[n, c, h + i, j : j + Wo]` — a long, contiguous
# multiply-add that LLVM turns into SIMD instructions. (tinycnn's own direct kernels,
# section 6, go one step further: their innermost loop runs along a whole flattened
# image.) Does the new order
# change the result? Floating-point addition is **not associative** — every addition
# rounds its result, so $(a + b) + c$ and $a + (b + c)$ can differ in the last bit
# (`(0.1 + 0.2) + 0.3 == 0.1 + (0.2 + 0.3)` is `False` in Python) — and a sum added up in
# another order is in general a slightly different number. But look at what was
# reordered here: for each output element both versions still add the same terms
# $b_f, w_{f,c,i,j}\,x_{\dots}$ in the same order ($c$, then $i$, then $j$); only the
# *interleaving* of work on different output elements changed. So the two results should
# be bit-identical, and the printout below checks it. Orders that do change the sum
# inside one output element — the blocked sums of a BLAS GEMM (section 6), or letting
# LLVM reassociate with `fastmath` (tinycnn's `numba_conv.py` does) — change the last
# bits, which is why comparisons between implementations use `assert_allclose` with a
# tolerance. One more detail matters:
# LLVM only vectorises the access `xp[..., q + j]` if it *knows* the step is 1, so the
# stride-1 case gets its own copy of the inner loop (`numba_conv.im2col` does the same).

# %%
@njit(cache=True)
def conv_loops_rows(xp, w, b, stride, y):
    """The same sum, with the output row q innermost (stride-1 inputs are then contiguous)."""
    N, C = xp.shape[0], xp.shape[1]
    F, _, KH, KW = w.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for n in range(N):
        for f in range(F):
            for h in range(Ho):
                for q in range(Wo):
                    y[n, f, h, q] = b[f]
                for c in range(C):
                    for i in range(KH):
                        for j in range(KW):
                            wv = w[f, c, i, j]
                            if stride == 1:      # a separate copy: LLVM vectorises only
                                for q in range(Wo):  # the contiguous (stride-1) access
                                    y[n, f, h, q] += wv * xp[n, c, h + i, q + j]
                            else:
                                for q in range(Wo):
                                    y[n, f, h, q] += wv * xp[n, c, h * stride + i, q * stride + j]


y_taps, y_rows = conv_with(conv_loops, xb, wb, bb), conv_with(conv_loops_rows, xb, wb, bb)
np.testing.assert_allclose(y_rows, yb_ref, rtol=1e-4, atol=1e-4)
assert (0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3)        # not associative
print(f"taps innermost vs rows innermost (same order within each sum): {np.mean(y_taps != y_rows):.1%} "
      f"of the outputs differ (largest difference {np.max(np.abs(y_taps - y_rows)):.1e})")
t_rows = median_seconds(lambda: conv_with(conv_loops_rows, xb, wb, bb))
print(f"conv {xb.shape} * {wb.shape}: kernel taps innermost {pretty(t_serial)}, "
      f"output row innermost {pretty(t_rows)} ({t_serial / t_rows:.1f}× faster)")

# %% [markdown]
# ## 6. im2col + GEMM versus direct loops
#
# **im2col** ("image to columns") copies every patch the kernel sees into a column of a
# matrix `cols` of shape $(C K_H K_W,\; N H_o W_o)$. The convolution is then a single
# matrix product (a GEMM):
#
# $$Y_{(F,\;N H_o W_o)} = W_{(F,\;C K_H K_W)} \cdot \text{cols}_{(C K_H K_W,\;N H_o W_o)} + b.$$
#
# GEMM is the most optimised routine in numerical computing: BLAS libraries block it for
# every cache level and use every SIMD unit, reaching a large fraction of the CPU's peak.
# The price is memory and copying: every input pixel is copied up to $K_H K_W$ times (25×
# for a 5×5 kernel). Here is a small Numba im2col and the GEMM after it:

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


def conv_im2col(x, w, b, stride=1, padding=0):
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    Ho, Wo = (H + 2 * padding - KH) // stride + 1, (W + 2 * padding - KW) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((C * KH * KW, N * Ho * Wo), x.dtype)
    im2col(xp, KH, KW, stride, Ho, Wo, cols)
    Y = w.reshape(F, -1) @ cols                                     # the GEMM (BLAS)
    return Y.reshape(F, N, Ho, Wo).transpose(1, 0, 2, 3) + b[:, None, None]


y_gemm = conv_im2col(xb, wb, bb)
np.testing.assert_allclose(y_gemm, yb_ref, rtol=1e-4, atol=1e-4)
print(f"im2col + GEMM == reference kernel to rounding: against our loops (float32), {np.mean(y_gemm != y_taps):.0%} "
      f"of the outputs differ, by at most {np.max(np.abs(y_gemm - y_taps)):.1e} (values up to "
      f"{np.max(np.abs(y_taps)):.0f}) -- a GEMM is free to add each sum in its own order")

# %% [markdown]
# ### Where the time goes: the copy costs as much as the product
#
# It is tempting to think that the GEMM is all the work and the copy is a detail. Time
# the two halves separately, on the LeNet-conv2-like problem of section 4:

# %%
Kb, Hob = wb.shape[2], xb.shape[2] - wb.shape[2] + 1        # conv2: no padding, so xp = x
cols_b = np.empty((wb[0].size, len(xb) * Hob * Hob), np.float32)
W2b = wb.reshape(len(wb), -1)
Yb = np.empty((len(wb), cols_b.shape[1]), np.float32)
halves = interleaved_medians({"im2col (the copy)": lambda: im2col(xb, Kb, Kb, 1, Hob, Hob, cols_b),
                              "GEMM (BLAS, 1 thread)": lambda: np.matmul(W2b, cols_b, out=Yb)})
print(f"conv {xb.shape} * {wb.shape}: cols is {cols_b.shape[0]} × {cols_b.shape[1]} "
      f"({cols_b.nbytes / 2**20:.1f} MiB, {cols_b.size / xb.size:.0f}× the input)")
for name, t in halves.items():
    print(f"  {name:22s} {pretty(t):>9s}")
print(f"  the GEMM runs at {2 * Yb.size * W2b.shape[1] / halves['GEMM (BLAS, 1 thread)'] / 1e9:.0f} GFLOP/s; "
      f"the copy takes {halves['im2col (the copy)'] / sum(halves.values()):.0%} of the two")

# %% [markdown]
# The copy is not a detail, and not only in our naive version: tinycnn's own im2col
# (`numba_conv.im2col`) shows the same (measured on a 2-core AMD EPYC, Zen 5 with
# AVX-512, one thread, CPU time, N = 64): for LeNet's conv2 im2col took 0.23 ms and the
# GEMM 0.23 ms; for a 16 → 16 channel 3×3 layer on 28×28 images (`resnet_mini`'s first
# stage) 1.95 ms and 3.44 ms — there the `cols` matrix is 27.6 MiB, far larger than a
# core's 1 MiB L2 cache, so the GEMM reads it from the slower L3 cache. And the GEMM itself is
# not at its best: with only $F = 16$ rows in $W$, each value of `cols` is used for 16
# products and then never again, so BLAS cannot reuse data the way it does for big
# square matrices.
#
# With im2col + GEMM, tinycnn's multi-channel layers were *slower* than PyTorch's: LeNet's
# conv2 forward took 2.6× PyTorch's time, the 16 → 16 layer's 2.8× (measured as above;
# section 8 has the table). tinycnn's direct loops existed only for
# one input channel. So the question became: can direct loops handle many channels
# without paying for the copy?
#
# ### Every kernel tap is a shifted window
#
# The trick is a memory layout. Lay each sample's zero-padded planes end to end in one
# flat row, every plane row $R = W + 2p$ values wide (one plane is $P = R\,(H + 2p)$
# values), and number the outputs by their position $t = hR + q$ in the same row
# pitch. Then the pixel that kernel tap $(c, i, j)$ multiplies for output $(h, q)$ is
#
# $$x^{pad}_{n,c,\,h+i,\,q+j} = x^{flat}_{n,\;cP + (h+i)R + (q+j)} = x^{flat}_{n,\;\underbrace{cP + iR + j}_{\text{offset of tap } (c,i,j)} \;+\; t}$$
#
# — for **every** output at once, the tap reads one contiguous window of the flat row,
# shifted by its offset. A 5-wide padded plane ($R = 5$, one channel) and a 3×3 kernel
# ($H_o = W_o = 3$):
#
# ```text
#  padded plane
#  a b c d e                       flat row: a b c d e f g h i j k l m n o p q r s t u v w x y
#  f g h i j
#  k l m n o                              t: 0 1 2 3 4 5 6 7 8 9 ...
#  p q r s t            tap (0,0), offset 0: a b c d e f g h i j ...
#  u v w x y            tap (0,1), offset 1: b c d e f g h i j k ...
#                 tap (1,2), offset R+2 = 7: h i j k l m n o p q ...
#                                            ^ t = 0, output (0, 0): a, b, ..., h, ... = its 3x3 patch
#                                                  ^ t = 3, (h, q) = (0, 3): q >= Wo, junk
# ```
#
# Output $t = 0$ gets $a, b, \dots, h, \dots$ — exactly its 3×3 patch. This is im2col's
# matrix **without the copy**: row $(c, i, j)$ of `cols` is just the window at that
# tap's offset. The price: positions $t = hR + q$ with $q \ge W_o$ (the last $R - W_o$
# of every row) are computed too — a patch that wraps around into the next row — and
# thrown away. The last window runs $K_W - 1$ values past the last plane, so the flat
# row gets that many zeros at its end.

# %%
@njit(cache=True)
def taps_loops(xf, offsets, wk, b, yf):
    """yf[n, f, t] = b[f] + sum_k wk[f, k] * xf[n, offsets[k] + t]: one filter, one tap per pass."""
    N, F, L = yf.shape
    for n in range(N):
        for f in range(F):
            y = yf[n, f]
            y[:] = b[f]
            for k in range(len(offsets)):
                window = xf[n, offsets[k]:offsets[k] + L]     # tap k: one shifted window
                wv = wk[f, k]
                for t in range(L):
                    y[t] += wv * window[t]


def conv_taps(x, w, b, padding=0):
    """Stride-1 convolution by shifted windows of the flat padded planes (then crop the junk)."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    R, rows = W + 2 * padding, H + 2 * padding
    P = rows * R                                      # one padded plane, flattened
    Ho, Wo = rows - KH + 1, R - KW + 1
    xf = np.zeros((N, C * P + KW - 1), x.dtype)       # planes end to end, KW-1 zeros after
    xf[:, :C * P].reshape(N, C, rows, R)[:, :, padding:padding + H, padding:padding + W] = x
    c, i, j = np.meshgrid(np.arange(C), np.arange(KH), np.arange(KW), indexing="ij")
    offsets = (c * P + i * R + j).ravel()             # in the order of w.reshape(F, C*KH*KW)
    yf = np.empty((N, F, Ho * R), x.dtype)            # positions t = h*R + q
    taps_loops(xf, offsets, w.reshape(F, -1), b, yf)
    return yf.reshape(N, F, Ho, R)[..., :Wo]          # keep the Wo real columns


for pad in (0, 2):
    np.testing.assert_allclose(conv_taps(xb, wb, bb, pad), reference.conv2d_forward(xb, wb, bb, 1, pad),
                               rtol=1e-4, atol=1e-4)
R_b = xb.shape[3]
print(f"conv_taps == reference kernel (padding 0 and 2); conv2 computes {Hob * R_b} positions per "
      f"output plane and keeps {Hob * Hob} ({1 - Hob / R_b:.0%} junk)")

# %% [markdown]
# `taps_loops` is short and readable, but it does one multiply-add per two loads
# (`y[t]`, `window[t]`) and one store. tinycnn's `numba_conv.taps_forward` is the same
# loop with one change, **register blocking**: each pass of the innermost loop handles
# **four filters and three taps**. It loads three windows' values once and uses each for
# four filters, and it loads and stores each of four outputs once for three taps:
#
# ```python
# for t in range(T):
#     ut, vt, zt = u[t], v[t], z[t]              # three taps' windows
#     y0[t] += a0 * ut + a1 * vt + a2 * zt       # x four filters: 12 multiply-adds
#     y1[t] += b0 * ut + b1 * vt + b2 * zt       #   per 7 loads and 4 stores
#     y2[t] += c0 * ut + c1 * vt + c2 * zt
#     y3[t] += d0 * ut + d1 * vt + d2 * zt
# ```
#
# The line `ut, vt, zt = u[t], v[t], z[t]` looks redundant and is not. Without it, LLVM
# must load `u[t]` again after the store to `y0[t]`: for all it knows, `y0` and `u` could
# be views of the same memory (they are not, but both are just float arrays), so the
# store might have changed it. Loading into local variables *before* any store says the
# values cannot change. Measured on the EPYC above (one thread, CPU time, medians of 21
# interleaved rounds, the kernel alone at N = 64):
#
# | LeNet's conv2 forward (6 → 16, 5×5, 14×14) | kernel time | useful GFLOP/s |
# |---|---|---|
# | one filter × one tap per pass (as `taps_loops`) | 1.68 ms | 18 |
# | four filters × three taps, windows re-read after the stores | 0.64 ms | 48 |
# | four filters × three taps, windows loaded first (`taps_forward`) | 0.31 ms | 98 |
#
# (For the 16 → 16 3×3 layer on 28×28: 5.03, 2.87 and 1.58 ms.) Two more details of
# `numba_paths`: every flat row is computed to a multiple of 16 positions, so the loop that
# LLVM vectorises 16 floats at a time has no scalar remainder; and the zero frame around
# the planes is written once and kept between calls (only the interior is rewritten).
# The backward pass uses the same windows: $dw_{f,(c,i,j)}$ is a dot product of
# $dy_{n,f,\cdot}$ with the tap's window (twelve dot products per pass,
# `taps_weight_grad`), and $dx$ is the adjoint — $dy \cdot w$ scattered back through the
# same windows (`taps_input_grad`; its taps are ordered $(i, j, c)$, channel fastest, and
# the channels are padded to a multiple of three with zero weights, so that the three
# windows a pass writes lie in three different planes and never overlap — with one input
# channel they overlapped, and LLVM's run-time overlap check sent the loop to its slow
# scalar version).
#
# Now the race, on both layers of LeNet-5, forward only, a batch of 64 (8 in fast mode),
# every candidate on one thread (our loops are serial, BLAS has one thread here, and
# tinycnn's own thread pool is set to one thread for the comparison), measured
# interleaved:

# %%
N_BATCH = 8 if FAST else 64
shapes = {"conv1: 1×28×28 → 6, k5 p2": (N_BATCH, 1, 28, 28, 6, 5, 2),
          "conv2: 6×14×14 → 16, k5": (N_BATCH, 6, 14, 14, 16, 5, 0)}
table = {}
pool_threads = fast.get_num_threads()
tc.set_num_threads(1)                            # like for like: one thread for every candidate
for label, (N, C, H, W, F, K, pad) in shapes.items():
    xs, ws, bs = make_problem(N, C, H, W, F, K)
    expected = reference.conv2d_forward(xs, ws, bs, 1, pad)
    candidates = {
        "NumPy reference": lambda: reference.conv2d_forward(xs, ws, bs, 1, pad),
        "direct, taps innermost": lambda: conv_with(conv_loops, xs, ws, bs, 1, pad),
        "direct, rows innermost": lambda: conv_with(conv_loops_rows, xs, ws, bs, 1, pad),
        "im2col + GEMM": lambda: conv_im2col(xs, ws, bs, 1, pad),
        "shifted windows, 1×1": lambda: conv_taps(xs, ws, bs, pad),
        "tinycnn fast": lambda: fast.conv2d_forward(xs, ws, bs, 1, pad),
    }
    for name, fn in candidates.items():
        np.testing.assert_allclose(fn(), expected, rtol=1e-4, atol=1e-4)
    table[label] = interleaved_medians(candidates)
    copies = C * K * K * N * expected.shape[2] * expected.shape[3] / xs.size
    print(f"{label}   (im2col matrix = {copies:.0f}× the input)")
    for name, t in table[label].items():
        print(f"  {name:24s} {pretty(t):>9s}")
tc.set_num_threads(pool_threads)

from matplotlib.ticker import FormatStrFormatter, NullFormatter

fig, axes = plt.subplots(1, len(table), figsize=(12, 3.8), sharey=True, layout="constrained")
for ax, (label, row) in zip(axes, table.items()):
    ms = np.array(list(row.values())) * 1e3
    ax.barh(list(row), ms, color="tab:blue")
    for k, v in enumerate(ms):
        ax.text(v * 1.05, k, f"{v:.2g} ms", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(ms.min() / 4, ms.max() * 4)          # bars start well left of the shortest
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("median time per forward call (ms, log scale)")
    ax.set_title(f"{label}, N = {N_BATCH}", fontsize=9)
axes[0].invert_yaxis()
show(fig, "07_conv_timings")

# %% [markdown]
# Things to notice in your own numbers:
#
# * reordering the loops (rows innermost) always helps the textbook direct convolution;
# * on conv2 (150-long GEMM rows) our simple im2col + GEMM beats both textbook loops
#   clearly, despite its copy;
# * the shifted-windows loop `conv_taps` still does one multiply-add per two loads and a
#   store, like the row-innermost loop, but its inner loop runs along a whole plane
#   (896 positions for conv1, 140 for conv2) instead of one 28- or 10-wide row, and it
#   copies nothing: it should beat both textbook loops by far, and im2col + GEMM on
#   conv1. On conv2 the GEMM should still win — the layout alone is not enough;
# * `tinycnn fast` is that layout with register blocking (four filters × three taps per
#   pass), `fastmath` reassociation and rows padded to a multiple of 16: on both layers
#   it should be the fastest row, well ahead of im2col + GEMM (the table in
#   `benchmarks/RESULTS.md` has the same comparison at batch 64 for more shapes);
# * the NumPy reference kernel is respectable — 25 large `einsum` calls — and far easier
#   to read, which is why it is the *specification* the fast kernels are tested against.
#
# ### Where direct loops lose: junk columns, tiny planes, stride 2
#
# The shifted windows compute all $R = W + 2p$ positions of every output row and keep
# only $W_o = R - K_W + 1$ of them. How much of the work is thrown away, for every
# convolution of LeNet-5 and `resnet_mini`, and which algorithm `fast.conv2d_forward`
# picks (`fast._use_direct`, the rule stated in the code):

# %%
convs = {   # (C, H, W, F, K, stride, padding)
    "LeNet conv1: 1×28×28 → 6, k5 p2": (1, 28, 28, 6, 5, 1, 2),
    "LeNet conv2: 6×14×14 → 16, k5": (6, 14, 14, 16, 5, 1, 0),
    "resnet_mini: 16×28×28 → 16, k3 p1": (16, 28, 28, 16, 3, 1, 1),
    "resnet_mini: 32×14×14 → 32, k3 p1": (32, 14, 14, 32, 3, 1, 1),
    "resnet_mini: 64×7×7 → 64, k3 p1": (64, 7, 7, 64, 3, 1, 1),
    "resnet_mini: 16×28×28 → 32, k3 p1 s2": (16, 28, 28, 32, 3, 2, 1),
}
print(f"{'':38s} {'kept / computed positions':>26s}   fast.conv2d_forward uses")
for label, (C, H, W, F, K, s, p) in convs.items():
    Ho, Wo = (H + 2 * p - K) // s + 1, (W + 2 * p - K) // s + 1
    computed = (H + 2 * p - K + 1) * (W + 2 * p)     # every stride-1 position of every flat row
    direct = fast._use_direct((1, C, H, W), (F, C, K, K), (s, s), (p, p), Ho)
    print(f"{label:38s} {Ho * Wo:5d} / {computed:4d} = {Ho * Wo / computed:4.0%}        "
          f"{'direct, shifted windows' if direct else 'im2col + GEMM'}")

# %% [markdown]
# Four cases stay with im2col + GEMM:
#
# * **Stride 2.** The windows trick needs neighbouring outputs to read neighbouring
#   inputs. With stride 2 it would compute every stride-1 position and keep a quarter of
#   them (the last row above: 4× the work plus the junk), while im2col copies exactly the
#   patches the strided outputs need.
# * **Padding at least the kernel size** only adds rows and columns of zeros to every
#   plane — more junk — and is rare.
# * **Many channels.** From 64 input channels the GEMM's inner dimension $C K_H K_W$
#   (576 for a 3×3 kernel) is long enough for BLAS to match or beat the loops, so the rule
#   keeps the windows for at most `fast.DIRECT_MAX_CHANNELS` (32) input channels. Measured
#   on the EPYC below (one thread, CPU time, forward + backward, direct time ÷ GEMM time):
#   0.60 for 16 → 16 on 28×28, 0.74 for 32 → 32 on 14×14, 1.00–1.13 for 64 → 64 on 14×14
#   to 28×28.
# * **Tiny planes.** On `resnet_mini`'s last stage (7×7 images, padding 1) a flat output
#   row has only 63 positions, 49 of them real. The kernel's fixed costs per pass —
#   slicing the windows, loading twelve weights, starting the loop — are paid for very
#   few positions, while the GEMM, with $F = 64$ rows and $C K_H K_W = 576$ columns, is
#   large enough for BLAS to run well. The rule therefore asks for at least
#   `fast.DIRECT_MIN_POSITIONS` (128) positions per flat row: 14×14 planes (224) qualify,
#   7×7 (63) do not. The tests set this threshold to 0 and to a huge value to run every
#   shape through both paths, and so can we — the 7×7 layer, forward, both ways:

# %%
x7, w7, b7 = make_problem(N_BATCH, 64, 7, 7, 64, 3)
threshold, max_channels = fast.DIRECT_MIN_POSITIONS, fast.DIRECT_MAX_CHANNELS


def conv7(min_positions):
    """fast.conv2d_forward on the 7×7 layer with the rule's threshold set to ``min_positions``
    (and no channel limit, so that 0 really forces the direct loops)."""
    fast.DIRECT_MIN_POSITIONS = min_positions       # 0: direct whenever stride 1; huge: never
    fast.DIRECT_MAX_CHANNELS = 10**9
    try:
        return fast.conv2d_forward(x7, w7, b7, 1, 1)
    finally:
        fast.DIRECT_MIN_POSITIONS, fast.DIRECT_MAX_CHANNELS = threshold, max_channels


tc.set_num_threads(1)
try:
    np.testing.assert_allclose(conv7(0), conv7(10**9), rtol=1e-4, atol=1e-3)
    seven = interleaved_medians({"direct (forced)": lambda: conv7(0), "im2col + GEMM": lambda: conv7(10**9)})
finally:
    tc.set_num_threads(pool_threads)
print(f"64×7×7 → 64, k3 p1, N = {N_BATCH}, forward: " +
      ", ".join(f"{name} {pretty(t)}" for name, t in seven.items()))

# %% [markdown]
# Measured on the EPYC above (one thread, CPU time, N = 64, medians of 21 interleaved
# rounds): forward 3.35 ms direct against 2.38 ms with im2col + GEMM, backward 7.72
# against 4.72 ms. (In fast mode the batch is 8, so fixed costs per call weigh more and
# your numbers may differ.)
#
# The junk is also why LeNet's conv2 is the hardest case for the direct loops: 29% of
# what they compute is thrown away (14 positions per row, 10 kept: the table above),
# against 12% for conv1 and 7% for the 28×28 `resnet_mini` layers.
#
# ## 7. When threads hurt: BLAS on a busy machine
#
# NumPy's matrix products call OpenBLAS, which by default starts one thread per core. For
# big matrices that is a clear win. For small ones — LeNet's dense layers multiply
# 64×400 by 400×120 — the threads must be woken up and synchronised for a few
# microseconds of work each, and on a machine whose cores are busy with other processes a
# thread that is not scheduled keeps the others waiting. We time the same product in two
# fresh processes, with `OPENBLAS_NUM_THREADS` 1 and 2 (it must be set before NumPy is
# imported, hence the subprocesses):

# %%
BLAS_DEMO = """
import time, numpy as np
x = np.random.default_rng(0).standard_normal((64, 400)).astype(np.float32)
w = np.random.default_rng(1).standard_normal((120, 400)).astype(np.float32)
for _ in range(5):
    x @ w.T
t = []
for _ in range({repeats}):
    t0 = time.perf_counter(); x @ w.T; t.append(time.perf_counter() - t0)
print(float(np.median(t)), float(np.max(t)), float(np.sum(t)))
"""
blas = {}
repeats = 20 if FAST else 200
for threads in ("1", "2"):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
    out = subprocess.run([sys.executable, "-c", BLAS_DEMO.format(repeats=repeats)], env=env,
                         capture_output=True, text=True, check=True)
    blas[threads] = dict(zip(("median", "slowest", "total"), map(float, out.stdout.split()[-3:])))
    print(f"OPENBLAS_NUM_THREADS={threads}: 64×400 @ 400×120, {repeats} calls: median {pretty(blas[threads]['median'])}, "
          f"slowest {pretty(blas[threads]['slowest'])}, total {pretty(blas[threads]['total'])}")
print(f"two threads vs one: median ×{blas['2']['median'] / blas['1']['median']:.2f}, "
      f"total ×{blas['2']['total'] / blas['1']['total']:.2f}, slowest two-thread call = "
      f"{blas['2']['slowest'] / blas['1']['median']:.0f}× a typical one-thread call")

# %% [markdown]
# Read three numbers. The **median** is a typical call; the **slowest** call and the
# **total** are what a training epoch pays, because it makes thousands of such calls and
# waits for every one. With one thread a call is delayed only when the operating system
# takes the core away from our process — which happens on a busy machine too (look at
# the one-thread slowest call). With two threads every call needs *both* threads to run:
# the median may even be better (two cores share the work when both are free), but any
# call during which one of the two waits for a core stalls until it gets one, and the
# waiting thread spins or sleeps meanwhile. Stalls become more frequent and longer, and
# a handful of them dominate the total. How large the effect is depends entirely
# on what else the machine is doing while you measure, so it changes from run to run:
# compare the printed totals and slowest calls, and rerun on a quiet and on a busy
# machine. On an idle machine the two settings are close; on a busy one, one thread is
# the safe choice for small matrices. That is why
# tutorials 05 and 06 start with `os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")`;
# for your own scripts, set it in the shell (`export OPENBLAS_NUM_THREADS=1`) when the
# matrices are small or the machine is shared, and measure.
#
# ## 8. Against PyTorch
#
# PyTorch's CPU convolutions call heavily optimised libraries (oneDNN among them),
# written for large layers and many cores. If PyTorch is installed (it is optional;
# tinycnn never needs it), full mode times the forward pass, and a forward + backward
# pass, of both LeNet convolutions and of `resnet_mini`'s 16 → 16 layer, and, as a bonus,
# checks that the two libraries compute the same gradients. conv1 is a network's first
# layer: nobody needs the gradient of its input (the data), so neither library computes
# it (`need_dx=False` in tinycnn — what a `Conv2D` gets when it is the first layer and the
# training loop calls `model.backward(dy, input_grad=False)` — and an input without
# `requires_grad` in PyTorch).
#
# For a like-for-like comparison **both** libraries get one thread: `torch.set_num_threads(1)`
# for PyTorch; `tc.set_num_threads(1)` for tinycnn's own thread pool (which splits a batch
# over threads, see `tinycnn/kernels/numba_runtime.py`); and one BLAS thread for the GEMMs
# tinycnn hands to NumPy (`threadpoolctl` enforces it whatever the environment says).
# The printed line shows the settings in force during the timing.

# %%
try:
    if FAST:
        raise ImportError("skipped in fast mode (importing torch takes seconds)")
    import torch
except ImportError as why:
    torch = None
    print("PyTorch comparison skipped:", why)

if torch is not None:
    from threadpoolctl import threadpool_info, threadpool_limits

    torch_threads_before, tc_threads_before = torch.get_num_threads(), fast.get_num_threads()
    torch.set_num_threads(1)                        # one thread each: a like-for-like comparison
    tc.set_num_threads(1)
    blas_limit = threadpool_limits(limits=1, user_api="blas")
    blas_threads = sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
    print(f"threads during the timing: PyTorch {torch.get_num_threads()}, tinycnn pool {fast.get_num_threads()}, "
          f"BLAS {blas_threads}")
    torch_shapes = dict(shapes, **{"resnet_mini: 16×28×28 → 16, k3 p1": (N_BATCH, 16, 28, 28, 16, 3, 1)})
    for label, (N, C, H, W, F, K, pad) in torch_shapes.items():
        xs, ws, bs = make_problem(N, C, H, W, F, K)
        ys = fast.conv2d_forward(xs, ws, bs, 1, pad)
        dys = np.random.default_rng(2).standard_normal(ys.shape).astype(np.float32)
        need_dx = C > 1                                 # conv1 is a first layer: no dx
        xt = torch.tensor(xs, requires_grad=need_dx)
        wt, bt = (torch.tensor(v, requires_grad=True) for v in (ws, bs))

        def torch_step():
            for t in (xt, wt, bt):
                t.grad = None
            torch.nn.functional.conv2d(xt, wt, bt, padding=pad).backward(torch.tensor(dys))

        def tinycnn_step():
            fast.conv2d_forward(xs, ws, bs, 1, pad)
            return fast.conv2d_backward(dys, xs, ws, 1, pad, need_dx=need_dx)

        def torch_forward():
            with torch.no_grad():
                return torch.nn.functional.conv2d(xt, wt, bt, padding=pad)

        torch_step()
        dx, dw, db = tinycnn_step()
        assert (dx is None) == (xt.grad is None) == (not need_dx)
        for ours, theirs in ((dx, xt.grad), (dw, wt.grad), (db, bt.grad)):
            if ours is not None:
                np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(ys, torch_forward().numpy(), rtol=1e-3, atol=1e-3)
        timed = interleaved_medians({"tinycnn forward": lambda: fast.conv2d_forward(xs, ws, bs, 1, pad),
                                     "PyTorch forward": torch_forward,
                                     "tinycnn step": tinycnn_step, "PyTorch step": torch_step})
        print(f"{label} (N = {N}{'' if need_dx else ', no dx'}): gradients agree")
        for part in ("forward", "step"):
            t_ours, t_torch = timed[f"tinycnn {part}"], timed[f"PyTorch {part}"]
            print(f"  {'forward' if part == 'forward' else 'forward+backward':16s} tinycnn {pretty(t_ours):>9s}, "
                  f"PyTorch {pretty(t_torch):>9s}   tinycnn time / PyTorch time = {t_ours / t_torch:.2f}")
    blas_limit.restore_original_limits()
    torch.set_num_threads(torch_threads_before)
    tc.set_num_threads(tc_threads_before)

# %% [markdown]
# Which library is faster depends on the layer and the machine — read the ratios above
# (below 1: tinycnn is faster). Here is what the direct design changed, measured on the
# 2-core AMD EPYC of section 6 (one thread each, CPU time, N = 64, float32, medians of
# 21 calls; "before" is tinycnn at the start of this work — direct loops for one input
# channel, im2col + GEMM for more — run in its own process, alternating with "now";
# PyTorch timed as in the cell above, in a separate process):
#
# | layer | forward, ms: before / now / PyTorch | forward + backward, ms: before / now / PyTorch |
# |---|---|---|
# | LeNet conv1, 1 → 6, 5×5, 28×28 (no $dx$) | 0.38 / 0.20 / 0.32 | 0.79 / 0.44 / 0.64 |
# | LeNet conv2, 6 → 16, 5×5, 14×14 | 0.46 / 0.36 / 0.18 | 1.46 / 1.12 / 1.12 |
# | `resnet_mini`, 16 → 16, 3×3, 28×28 | 3.09 / 1.46 / 1.10 | 9.12 / 5.26 / 8.6–9.0 |
# | `resnet_mini`, 64 → 64, 3×3, 7×7 (im2col + GEMM) | 2.33 / 1.95 / 0.95 | 6.81 / 5.93 / 3.05 |
#
# The shifted windows cut the 28×28 layers' time by about 45% and made conv1 faster
# than PyTorch; conv2 now ties with it over forward + backward. PyTorch's forward is still faster on
# the multi-channel layers — twice as fast on conv2, where 29% of what the direct loops
# compute is junk — and PyTorch's forward + backward of the 16 → 16 layer varied between
# processes on this machine (8.6–9.0 ms in stand-alone processes, 4.6 ms in one full run
# of this tutorial), so compare your own printout rather than this table. The 7×7 layer
# stays on im2col + GEMM (section 6), where PyTorch is twice as fast (the copy's
# unsigned-index loops took its time from 2.33 to 1.95 ms forward). A training step is
# more than its convolutions (pooling, ReLU, the dense layers, the optimizer, per-call
# overheads), so the ratios that count are those of whole networks:
# `benchmarks/RESULTS.md` has them, for LeNet-5, the lesion CNN and `resnet_mini`, with a
# per-layer breakdown of where the time goes.
#
# At LeNet's sizes each call does little arithmetic, so fixed costs per call (checks,
# memory allocation, dispatch through layers of general code) weigh as much as the
# arithmetic itself; a small library specialised for these shapes can beat a general
# one on some layers and fall behind on others. The large-layer, many-core regime that
# the big libraries are built for is where they pull away — try a batch of 512 and 64
# channels.

# %% [markdown]
# For the full story — more shapes, memory use, compile times, threads — run the
# benchmark suite: `python -m tinycnn bench` (see `benchmarks/README.md`).
#
# ## Summary
#
# * Time with `perf_counter`, warm up, report the median; expect noise on shared machines.
# * The Python interpreter makes each arithmetic operation tens to a thousand times
#   slower (the ratio printed in section 2); `@njit` removes that cost without changing
#   the source (`.py_func` is the interpreted original).
# * NumPy is fast when each call does a lot of work: vectorise the big loops, keep small
#   ones (the kernel taps) in Python.
# * `cache=True` saves compilation across runs; `prange` splits independent iterations
#   over threads (write to disjoint outputs: no races, deterministic results).
# * The innermost loop should walk contiguous memory, and be long enough to vectorise.
# * Measure the pieces before optimising: in im2col + GEMM the copy cost as much as the
#   matrix product.
# * A layout can remove a copy: with the padded planes flattened, every kernel tap is one
#   shifted window of the same array (im2col's matrix without the copy), at the price of
#   junk outputs at the end of every row.
# * Keep data in registers: four filters × three taps per pass of the inner loop, and
#   values loaded into local variables before any store (otherwise LLVM must assume the
#   store changed them) — together several times faster than one tap at a time.
# * Choose per shape, by a rule written in the code (`fast._use_direct`): shifted windows
#   for stride 1, up to 32 input channels and rows of at least 128 positions; im2col +
#   GEMM for stride 2, many channels and tiny planes.
# * Compare like with like: the same code (a `prange` kernel on one thread, not a different
#   serial function), the same thread limits for every library, measurements interleaved.
# * More threads are not always faster: on a busy machine a small two-thread BLAS call can
#   stall for many times what the whole call takes on one thread; watch the total, not
#   only the median.
#
# ## Exercises
#
# 1. Run the tutorial with `NUMBA_DISABLE_JIT=1`. Which sections become slow, and by how
#    much? (Shrink the sizes first.)
# 2. Write `conv_loops_rows_parallel` with `prange` over `n`. Does it beat
#    `conv_loops_parallel`? Check the result against the reference kernel.
# 3. Time `double_row_by_row` on arrays of side 100, 300, 1000 and 3000. At which size does
#    the gap between the two loop orders open up, and how does that relate to your CPU's
#    cache sizes (`lscpu`)?
# 4. Extend `conv_im2col` to the backward pass: `dw = dY @ cols.T` and
#    `dcols = W.T @ dY`, then scatter `dcols` back with a "col2im" loop. Compare with
#    `fast.conv2d_backward`.
# 5. Time `fast.conv2d_forward` in float32 and float64 for conv2. Why is float32 faster,
#    even though the CPU does each operation in the same time?
