"""Results are bit-identical for any number of threads, on both backends (issue 9).

The fast backend guarantees it by construction (``tinycnn/kernels/numba_runtime.py``): the
thread count only decides which thread runs which piece of work, never the shapes of a
GEMM or the order of a sum. These tests run every kernel, and whole two-epoch training
runs, at 1, 2 and 3 threads and compare with ``array_equal``. The work thresholds are
lowered for the kernel tests so that small arrays really are shared out (and the tests
check that the threads were used). The last test repeats the whole file in subprocesses
under other OpenBLAS kernels (``OPENBLAS_CORETYPE``): a GEMM's rounding depends on the
micro-kernel, so a split that happened to agree under one of them may not under another.
"""
from contextlib import contextmanager
import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import threadpoolctl

import tinycnn as tc
from tinycnn import layers, losses, optim
from tinycnn.kernels import fast, numba_paths, numba_runtime, reference

THREADS = (1, 2, 3)
BACKENDS = {"numba": fast, "reference": reference}


@pytest.fixture
def used_threads(monkeypatch):
    """A list that records how many threads each split of work used."""
    seen = []
    real = numba_runtime.threads_for

    def recording(n, work):
        seen.append(real(n, work))
        return seen[-1]

    monkeypatch.setattr(numba_runtime, "threads_for", recording)
    return seen


@contextmanager
def threads(n):
    """tinycnn's pool and BLAS (which the reference backend calls directly) at n threads."""
    before = fast.get_num_threads()
    fast.set_num_threads(n)
    try:
        with threadpoolctl.threadpool_limits(n, user_api="blas"):
            yield
    finally:
        fast.set_num_threads(before)


def every_kernel(kern):
    """Each kernel of ``kern`` on inputs that take every algorithm of the fast backend."""
    rng = np.random.default_rng(7)
    out = []
    #        C  stride pad  H : direct planes, direct rows (large plane), im2col, stride 2
    for C, s, p, H in ((1, 1, 2, 12), (1, 1, 1, 50), (6, 1, 2, 12), (3, 2, 1, 13)):
        x = rng.standard_normal((8, C, H, H)).astype(np.float32)
        w = rng.standard_normal((5, C, 5, 5)).astype(np.float32)
        b = rng.standard_normal(5).astype(np.float32)
        y = kern.conv2d_forward(x, w, b, s, p)
        out += [y, *kern.conv2d_backward(np.cos(y), x, w, s, p)]
    x = np.maximum(rng.standard_normal((8, 6, 12, 12)), 0).astype(np.float32)   # ReLU ties
    for kind in ("maxpool2d", "avgpool2d"):
        for k, s in ((2, None), (3, 2)):
            y = getattr(kern, kind + "_forward")(x, k, s)
            out += [y, getattr(kern, kind + "_backward")(np.cos(y), x, k, s)]
    x = rng.standard_normal((150, 70)).astype(np.float32)   # 3 chunks of samples
    w = rng.standard_normal((90, 70)).astype(np.float32)    # 2 chunks of outputs
    y = kern.dense_forward(x, w, np.ones(90, np.float32))
    out += [y, *kern.dense_backward(np.cos(y), x, w)]
    return out


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_kernels_are_bit_identical_on_1_2_3_threads(backend, used_threads, monkeypatch):
    monkeypatch.setattr(numba_runtime, "SPLIT_MIN_WORK", 0)     # share out even tiny work
    monkeypatch.setattr(fast, "DENSE_SPLIT_MIN_WORK", 0)
    monkeypatch.setattr(numba_paths, "GEMM_CHUNK", 2**12)       # several im2col chunks
    results = {}
    for n in THREADS:
        used_threads.clear()
        with threads(n):
            results[n] = every_kernel(BACKENDS[backend])
        if backend == "numba":
            assert max(used_threads) == n, f"the kernels used {max(used_threads)} threads, not {n}"
    for n in THREADS[1:]:
        for k, (a, b) in enumerate(zip(results[1], results[n])):
            assert np.array_equal(a, b), f"{backend}: result {k} differs between 1 and {n} threads"


def small_cnn():
    """Both conv algorithms, max pooling, and a Dense layer on the chunked (threaded) path."""
    return tc.Sequential(
        layers.Conv2D(1, 4, kernel_size=3, padding=1, rng=1), layers.ReLU(),   # direct
        layers.MaxPool2D(2),
        layers.Conv2D(4, 8, kernel_size=3, padding=1, rng=2), layers.ReLU(),   # im2col
        layers.Flatten(),
        layers.Dense(8 * 8 * 8, 512, rng=3), layers.ReLU(),
        layers.Dense(512, 10, rng=4),
    )


BATCH = 96


def train_two_epochs(backend, n):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2 * BATCH, 1, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 2 * BATCH)
    model = small_cnn()
    with tc.use_backend(backend), threads(n):
        model.fit(x, y, loss=losses.SoftmaxCrossEntropy(), epochs=2, batch_size=BATCH, seed=0,
                  optimizer=optim.SGD(model.parameters(), lr=0.01, momentum=0.9), verbose=False)
    return [p.data.copy() for p in model.parameters()]


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_two_epochs_of_training_are_bit_identical_on_1_2_3_threads(backend, used_threads):
    # the big Dense layer really takes the chunked path, in more than one chunk of samples
    assert BATCH * 512 * 512 >= fast.DENSE_SPLIT_MIN_WORK and BATCH > numba_paths.DENSE_ROWS
    weights = {}
    for n in THREADS:
        used_threads.clear()
        weights[n] = train_two_epochs(backend, n)
        if backend == "numba":
            assert max(used_threads) == n, f"training used {max(used_threads)} threads, not {n}"
    for n in THREADS[1:]:
        for k, (a, b) in enumerate(zip(weights[1], weights[n])):
            assert np.array_equal(a, b), (
                f"{backend}: parameter {k} after two epochs differs between 1 and {n} threads")


CORETYPES = {"x86_64": ("Haswell", "Sandybridge"),
             "aarch64": ("ARMV8", "NEOVERSEN1")}

CORETYPE_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy, threadpoolctl, pytest
    blas = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
    arch = blas[0]["architecture"] if blas else None
    print("OpenBLAS kernel:", arch)
    if arch is None or arch.lower() != os.environ["OPENBLAS_CORETYPE"].lower():
        sys.exit(3)                      # this machine's OpenBLAS refuses that kernel
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", sys.argv[1], "-k", "numba and not coretype"]))
""")


def test_bit_identical_under_other_openblas_coretypes():
    """Rerun the tests above with OpenBLAS forced to other kernels (only in subprocesses)."""
    accepted = []
    for coretype in CORETYPES.get(platform.machine(), ()):
        env = dict(os.environ, OPENBLAS_CORETYPE=coretype)
        run = subprocess.run([sys.executable, "-c", CORETYPE_SCRIPT, __file__], env=env,
                             capture_output=True, text=True)
        if run.returncode == 3:
            continue
        assert run.returncode == 0, f"OPENBLAS_CORETYPE={coretype}:\n{run.stdout}\n{run.stderr}"
        accepted.append(coretype)
    assert len(accepted) >= 2, (
        f"OpenBLAS accepted only {accepted} of {CORETYPES.get(platform.machine())} on "
        f"{platform.machine()}: the check needs two kernels")
