"""Run-time plumbing of the Numba backend: reused scratch buffers and the thread pool.

No Numba here: these helpers only decide *where* the kernels of :mod:`numba_conv` and
:mod:`numba_pool` write and *which thread* runs which part of the batch.
"""
import math
import threading

import numpy as np

__all__ = ["workspace", "clear_workspace", "set_num_threads", "get_num_threads", "split",
           "fixed_chunks", "run_chunks", "threads_for", "blas_single_threaded"]


class Workspace(threading.local):
    """Scratch arrays reused from call to call (one set per thread).

    A fresh multi-megabyte ``np.empty`` is page-faulted in on first touch, every call;
    for LeNet's conv2 that cost more than the GEMM itself. Only internal temporaries
    (padded input, im2col columns, GEMM results) live here -- never an array we return.
    """

    def __init__(self):
        self.buffers = {}

    def get(self, name, shape, dtype):
        """An uninitialised array of ``shape`` and ``dtype``, reused under ``name``."""
        size = math.prod(shape)
        key = (name, dtype)
        buf = self.buffers.get(key)
        if buf is None or buf.size < size:
            buf = aligned_empty(size, dtype)
            self.buffers[key] = buf
        return buf[:size].reshape(shape)

    def framed(self, key, shape, dtype):
        """A zero-filled array of ``shape``, the same one every call with this ``key``.

        For layouts that are zeros around an interior the caller rewrites on every call
        (padded planes): the key names the whole geometry, so the frame is zeroed once,
        when the array is made, instead of on every call (on resnet_mini's 28x28 planes
        that zeroing was a tenth of a convolution). One array per geometry in use is kept
        until :func:`clear_workspace`.
        """
        key = ("framed", key, tuple(shape), np.dtype(dtype))
        buf = self.buffers.get(key)
        if buf is None:
            buf = self.buffers[key] = aligned_empty(math.prod(shape), dtype).reshape(shape)
            buf.fill(0)
        return buf


ALIGN = 64     # bytes: one cache line, one AVX-512 vector


def aligned_empty(size, dtype):
    """An uninitialised 1-D array of ``size`` elements whose data starts on an ALIGN-byte
    boundary. NumPy only promises 16 bytes; the direct convolution loop ran ~20% slower
    on outputs 16-48 bytes past a 64-byte boundary (LeNet's conv2: 0.38 against 0.31 ms)."""
    dtype = np.dtype(dtype)
    raw = np.empty(size * dtype.itemsize + ALIGN, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + size * dtype.itemsize].view(dtype)


workspace = Workspace()


# ---------------------------------------------------------------- threads
#
# Why not ``@njit(parallel=True)`` + ``prange``? Measured here: (1) a parallel kernel took
# 5.3 s to compile against 1.9 s serial, which alone would break the "first training step
# within 5 s" budget; (2) the issue's scratch code lost 2.5x in the BLAS calls between
# kernels to Numba's OpenMP workers spinning (LeNet b64: 17 ms one thread, 43 ms two
# threads, 23 ms with the workqueue layer). Instead every kernel is serial and ``nogil``,
# and this module splits the batch into contiguous chunks run on a tiny thread pool. Idle
# pool threads block on a lock (they never spin), so BLAS keeps the cores between kernels;
# each chunk writes only its own samples (and its own per-sample partial ``dw``), so the
# result is bit-identical whatever the number of threads. Measured on LeNet's conv1
# backward: 3.1 ms serial, 1.6 ms on two threads; dispatch overhead 0.03 ms. Whole LeNet
# b64 training step (BLAS on one thread, 1 and 2 threads alternating in one process):
# 11.1 ms -> 9.5 ms (best of 40). On a busy machine the gain shrinks, but a blocked pool
# thread never stalls the caller the way a spinning pool does.

_threads = None          # None: NUMBA_NUM_THREADS (its default is the number of CPUs)
_executor = None         # (pool, number of workers), created on first use
# Multiply-adds (or elements) below which one thread is faster: a hand-off to the pool costs
# tens of microseconds. Measured on LeNet's training step, 2 threads against 1 (wall time,
# quiet 2-core Zen 5, alternating, medians): batch 64 2.18 ms on one thread, 1.99 ms on two
# with a threshold of 200k, 1.89 ms with 1M to 4M; batch 256 12.9 ms on one thread, 10.1
# ms on two with 200k or 1M, 10.4-10.8 ms with 2M-4M.
SPLIT_MIN_WORK = 1_000_000


def set_num_threads(n):
    """Use ``n`` threads (>= 1) for the Numba loops; BLAS keeps its own setting."""
    global _threads, _executor
    if int(n) < 1:
        raise ValueError(f"set_num_threads: need at least 1 thread, got {n}")
    _threads = int(n)
    if _executor is not None:
        _executor[0].shutdown(wait=True)
        _executor = None


def get_num_threads():
    """Threads the Numba loops use (default: ``NUMBA_NUM_THREADS``, i.e. the CPU count)."""
    global _threads
    if _threads is None:
        import numba
        _threads = max(1, int(numba.config.NUMBA_NUM_THREADS))
    return _threads


def threads_for(n, work):
    """How many threads :func:`split` / :func:`run_chunks` use for ``n`` items and ``work``."""
    return 1 if work < SPLIT_MIN_WORK else max(1, min(get_num_threads(), n))


def _pool(T):
    """The executor, with at least ``T - 1`` workers (the caller is the T-th thread)."""
    global _executor
    if _executor is None or _executor[1] < T - 1:
        from concurrent.futures import ThreadPoolExecutor
        _executor = (ThreadPoolExecutor(T - 1, thread_name_prefix="tinycnn"), T - 1)
    return _executor[0]


# Bit-identical for any thread count, by construction. The thread count may only decide
# WHO runs a piece of work, never WHAT a piece computes:
#
# * ``split`` is for Numba loops over samples (or planes) whose outputs for item n depend
#   on item n alone, with nothing carried from one n to the next (no running sums across
#   samples: a per-sample partial dw instead). Item n then runs the same instructions
#   whichever call covers it, so cutting [0, n) differently changes nothing.
# * Everything else -- every BLAS product, every sum over the batch -- goes through
#   ``fixed_chunks`` + ``run_chunks``: chunk sizes come from the array shapes only, each
#   chunk is one call with the same shapes whichever thread runs it (a GEMM's rounding
#   depends on its shapes: OpenBLAS handles edge tiles with other micro-kernels), and
#   per-chunk partial sums are added by the caller in chunk order.

def split(kernel, n, work, *args):
    """``kernel(*args, lo, hi)`` over ``[0, n)``, in contiguous pieces run concurrently.

    Only for per-item kernels (see the comment above): their results cannot depend on
    where the pieces are cut.
    """
    T = threads_for(n, work)
    if T == 1:
        kernel(*args, 0, n)
        return
    pool = _pool(T)
    bounds = [n * k // T for k in range(T + 1)]
    futures = [pool.submit(kernel, *args, bounds[k], bounds[k + 1]) for k in range(1, T)]
    kernel(*args, bounds[0], bounds[1])                # this thread takes the first piece
    for f in futures:
        f.result()


def fixed_chunks(n, size):
    """``[(lo, hi), ...]`` cutting ``[0, n)`` into pieces of ``size`` (the last may be
    shorter). Depends on ``n`` and ``size`` only -- never on the number of threads."""
    size = max(1, int(size))
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def run_chunks(task, bounds, work):
    """``task(k, lo, hi)`` for every chunk ``k`` of ``bounds``, spread over the threads.

    :func:`split` over the chunk indices: each thread runs a contiguous run of whole
    chunks; the chunks themselves (and so every result) are the same for any thread count.
    """
    def chunks(first, last):
        for k in range(first, last):
            task(k, *bounds[k])

    split(chunks, len(bounds), work)


def clear_workspace():
    """Free the scratch buffers the convolution kernels keep between calls."""
    workspace.buffers.clear()


# ---------------------------------------------------------------- BLAS threads
#
# OpenBLAS's worker threads spin for a while after each GEMM. Alongside our own pool they
# fight for the same two cores: LeNet b64 training took 13.5-16.1 ms with both pools at 2
# threads, 9.6-11.4 ms with BLAS at 1 and our pool at 2 (inference b256: 16.6-20.6 vs
# 13.7-15.4 ms). Worse, when another process holds one core, a 2-thread GEMM waits for a
# whole scheduler slice: LeNet's conv2 forward took 8 ms instead of 1.3 ms. So the fast
# kernels always call BLAS single-threaded and give each thread of our pool its own
# slice of every GEMM (see numba_paths): big products still use every core, and the
# number of threads tinycnn uses is exactly get_num_threads(). It matters for the results
# too: a multi-threaded GEMM may round differently for each BLAS thread count. BLAS's
# setting is restored on the way out. The switch goes through threadpoolctl, which knows
# OpenBLAS, MKL and BLIS on Linux, macOS and Windows.

_blas = None    # threadpoolctl's controllers of the BLAS libraries, found on first use


def _blas_libraries():
    """threadpoolctl's controller of every BLAS loaded (OpenBLAS, MKL, BLIS...), found once.

    NumPy, imported at the top of this module, has loaded its BLAS by then, so NumPy's own
    BLAS is always among them.
    """
    global _blas
    if _blas is None:
        import threadpoolctl
        _blas = threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas


class _SingleThreadedBLAS:
    """Context manager: every BLAS on one thread inside (its setting restored on exit).

    Costs ~5 us when BLAS has several threads (one get and two sets through
    threadpoolctl's controllers), ~1 us when it already has one.
    """

    def __enter__(self):
        self.before = []
        for lib in _blas_libraries():
            n = lib.get_num_threads() or 1
            if n > 1:
                lib.set_num_threads(1)
                self.before.append((lib, n))
        return self

    def __exit__(self, *exc):
        for lib, n in self.before:
            lib.set_num_threads(n)
            if hasattr(lib, "clear_controlling_thread"):     # OpenBLAS: free the limit
                lib.clear_controlling_thread()               # for other Python threads
        return False


def blas_single_threaded():
    """``with blas_single_threaded(): ...`` -- BLAS on one thread; our pool does the rest."""
    return _SingleThreadedBLAS()
