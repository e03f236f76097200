"""Run-time plumbing of the Numba backend: reused scratch buffers and the thread pool.

No Numba here: these helpers only decide *where* the kernels of :mod:`numba_conv` and
:mod:`numba_pool` write and *which thread* runs which part of the batch.
"""
import math
import threading

import numpy as np

__all__ = ["workspace", "clear_workspace", "set_num_threads", "get_num_threads", "split"]


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
            buf = np.empty(size, dtype=dtype)
            self.buffers[key] = buf
        return buf[:size].reshape(shape)


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
SPLIT_MIN_WORK = 200_000  # multiply-adds (or elements) below which one thread is faster


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


def split(kernel, n, work, *args):
    """``kernel(*args, lo, hi)`` over ``[0, n)``, in contiguous chunks run concurrently."""
    global _executor
    T = min(get_num_threads(), n)
    if T <= 1 or work < SPLIT_MIN_WORK:
        kernel(*args, 0, n)
        return
    if _executor is None or _executor[1] < T - 1:
        from concurrent.futures import ThreadPoolExecutor
        _executor = (ThreadPoolExecutor(T - 1, thread_name_prefix="tinycnn"), T - 1)
    bounds = [n * k // T for k in range(T + 1)]
    futures = [_executor[0].submit(kernel, *args, bounds[k], bounds[k + 1])
               for k in range(1, T)]
    kernel(*args, bounds[0], bounds[1])                # this thread takes the first chunk
    for f in futures:
        f.result()


def clear_workspace():
    """Free the scratch buffers the convolution kernels keep between calls."""
    workspace.buffers.clear()
