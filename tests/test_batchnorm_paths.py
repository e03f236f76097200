"""BatchNorm's two implementations: the NumPy spec and its Numba twin (issue 14).

``tinycnn.kernels.batchnorm`` (reference backend) and ``tinycnn.kernels.numba_batchnorm``
(numba backend) must agree on any shape, dtype and mode; both must pass float64 finite
differences through the layer; the Numba one must give bit-identical results for any
thread count, run as plain Python with ``NUMBA_DISABLE_JIT=1``, and be imported only when
a BatchNorm runs on the numba backend.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import layers
from tinycnn.kernels import batchnorm as reference
from tinycnn.kernels import numba_batchnorm as fast
from tinycnn.kernels import numba_runtime

BACKENDS = pytest.mark.parametrize("backend", ["reference", "numba"])


@st.composite
def bn_arrays(draw):
    """x, dy, gamma, beta of one dtype; x sometimes non-contiguous, offset and scaled."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    N, C = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    spatial = draw(st.sampled_from([(), (1, 1), (3, 5), (7, 7), (4, 9)]))
    shape = (N, C) + spatial
    x = rng.standard_normal(shape) * draw(st.sampled_from([0.1, 1.0, 30.0])) + draw(
        st.sampled_from([0.0, 2.0, -50.0]))
    if draw(st.booleans()):                     # a non-contiguous view of the same values
        x = np.swapaxes(np.ascontiguousarray(np.swapaxes(x, 0, 1)), 0, 1)
    cast = lambda a: a.astype(dtype)           # noqa: E731
    return (cast(x), cast(rng.standard_normal(shape)), cast(rng.standard_normal(C) + 1.5),
            cast(rng.standard_normal(C)), cast(rng.random(C) + 0.5), cast(rng.standard_normal(C)))


def assert_close(got, want, what):
    """float64: to 1e-10 of the array's scale; float32: to 2e-5 of it (float32 arithmetic
    in the fast loops against float64 in the reference)."""
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    tol = 1e-10 if want.dtype == np.float64 else 2e-5
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


@given(bn_arrays(), st.booleans(), st.booleans())
def test_numba_batchnorm_equals_reference(arrays, training, need_dx):
    x, dy, gamma, beta, run_var, run_mean = arrays
    if training and x.size // x.shape[1] < 2:
        x = np.concatenate([x, x + 1])              # training needs two values per channel
        dy = np.concatenate([dy, dy[::-1]])
    statistics = () if training else (run_mean, run_var)
    got = fast.batchnorm_forward(x, gamma, beta, 1e-5, *statistics)
    want = reference.batchnorm_forward(x, gamma, beta, 1e-5, *statistics)
    for name, g, w in zip(("y", "mean", "var", "inv_std"), got, want):
        assert_close(g, w, f"forward {name} (training={training}, {x.dtype}, {x.shape})")
    _, mean, _, inv_std = want
    got = fast.batchnorm_backward(dy, x, gamma, mean, inv_std, training, need_dx=need_dx)
    want = reference.batchnorm_backward(dy, x, gamma, mean, inv_std, training, need_dx=need_dx)
    for name, g, w in zip(("dx", "dgamma", "dbeta"), got, want):
        if w is None:
            assert g is None, f"backward {name}: need_dx=False must return None"
            continue
        assert_close(g, w, f"backward {name} (training={training}, {x.dtype}, {x.shape})")


@pytest.mark.parametrize("kernels", [reference, fast], ids=["reference", "numba"])
def test_float32_stays_exact_when_the_mean_dwarfs_the_spread(kernels):
    # mean 1e4, spread 1e-2: E[x^2] - mean^2 would cancel all of float32's digits (and 8 of
    # float64's), and the mean rounded to float32 (off by up to 5e-4) would shift x_hat by
    # up to 5%. The statistics, y and dx of the float32 values must match float64's.
    rng = np.random.default_rng(0)
    x = (1e4 + 1e-2 * rng.standard_normal((16, 3, 9, 9))).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    gamma, beta = np.array([1.0, -2.0, 0.5], np.float32), np.array([0.0, 1.0, -3.0], np.float32)
    y, mean, var, inv_std = kernels.batchnorm_forward(x, gamma, beta, 1e-5)
    exact = x.astype(np.float64)
    np.testing.assert_allclose(mean, exact.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(var, exact.var(axis=(0, 2, 3)), rtol=1e-6)
    y64, mean64, _, inv_std64 = reference.batchnorm_forward(exact, gamma.astype(np.float64),
                                                            beta.astype(np.float64), 1e-5)
    np.testing.assert_allclose(y, y64, rtol=0, atol=1e-5)
    dx = kernels.batchnorm_backward(dy, x, gamma, mean, inv_std, True)[0]
    dx64 = reference.batchnorm_backward(dy.astype(np.float64), exact, gamma.astype(np.float64),
                                        mean64, inv_std64, True)[0]
    np.testing.assert_allclose(dx, dx64, rtol=0, atol=1e-5 * np.abs(dx64).max())


@BACKENDS
@given(st.integers(2, 4), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31))
def test_batchnorm2d_gradients_in_eval_mode(backend, N, C, H, W, seed):
    rng = np.random.default_rng(seed)
    bn = layers.BatchNorm2D(C, dtype=np.float64)
    bn.weight.data = rng.standard_normal(C) + 2.0
    bn.bias.data = rng.standard_normal(C)
    bn.running_mean[:] = rng.standard_normal(C)
    bn.running_var[:] = rng.random(C) + 0.5
    with tc.use_backend(backend):
        tc.assert_gradients_close(bn.eval(), rng.standard_normal((N, C, H, W)) * 2 + 1)


@BACKENDS
@given(st.integers(2, 6), st.integers(1, 5), st.integers(0, 2**31))
def test_batchnorm1d_gradients_on_both_backends(backend, N, C, seed):
    rng = np.random.default_rng(seed)
    bn = layers.BatchNorm1D(C, dtype=np.float64)
    bn.weight.data = rng.standard_normal(C) + 2.0
    with tc.use_backend(backend):
        tc.assert_gradients_close(bn, rng.standard_normal((N, C)) * 3 - 1)
        bn.running_var[:] = rng.random(C) + 0.5
        tc.assert_gradients_close(bn.eval(), rng.standard_normal((N, C)))


@BACKENDS
def test_skipping_dx_leaves_the_parameter_gradients_unchanged(backend):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 3, 5, 5)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    grads = []
    with tc.use_backend(backend):
        for input_grad in (True, False):
            bn = layers.BatchNorm2D(3)
            bn.forward(x)
            bn.input_grad = input_grad
            dx = bn.backward(dy)
            assert (dx is None) == (not input_grad)
            grads.append((bn.weight.grad.copy(), bn.bias.grad.copy()))
    assert all(np.array_equal(a, b) for a, b in zip(*grads))


def test_numba_batchnorm_is_bit_identical_on_1_2_3_threads(monkeypatch):
    monkeypatch.setattr(numba_runtime, "SPLIT_MIN_WORK", 0)     # share out even small work
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((8, 7, 6, 6)) * 3 + 1).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    gamma, beta = rng.standard_normal(7).astype(np.float32), rng.standard_normal(7).astype(np.float32)
    before = numba_runtime.get_num_threads()
    results = {}
    try:
        for n in (1, 2, 3, 1):
            numba_runtime.set_num_threads(n)
            out = []
            for statistics in ((), (np.zeros(7, np.float32), np.full(7, 2.0, np.float32))):
                y, mean, var, inv_std = fast.batchnorm_forward(x, gamma, beta, 1e-5, *statistics)
                out += [y, mean, var, inv_std,
                        *fast.batchnorm_backward(dy, x, gamma, mean, inv_std, not statistics)]
            results.setdefault(n, []).append(out)
    finally:
        numba_runtime.set_num_threads(before)
    first = results[1][0]
    for n, runs in results.items():
        for out in runs:
            for k, (a, b) in enumerate(zip(first, out)):
                assert np.array_equal(a, b), f"result {k} differs between 1 thread and {n} threads"


LAZY_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tinycnn as tc
    from tinycnn.models import resnet_mini
    name = "tinycnn.kernels.numba_batchnorm"
    model = resnet_mini(widths=(2, 4), blocks_per_stage=1, input_size=8)
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    with tc.use_backend("reference"):
        model.forward(x)
    print(name in sys.modules)
    model.forward(x)
    print(name in sys.modules)
""")


def test_the_numba_kernels_are_imported_only_when_a_batchnorm_runs_on_numba():
    out = subprocess.run([sys.executable, "-c", LAZY_SCRIPT], check=True, capture_output=True,
                         text=True)
    assert out.stdout.split() == ["False", "True"]


JIT_DISABLED_SCRIPT = textwrap.dedent("""
    import numpy as np
    from tinycnn.kernels import batchnorm as reference, numba_batchnorm as fast
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((3, 2, 3, 4)), rng.standard_normal((3, 2, 3, 4))
    g, b = rng.standard_normal(2), rng.standard_normal(2)
    for stats in ((), (np.zeros(2), np.ones(2))):
        got, want = fast.batchnorm_forward(x, g, b, 1e-5, *stats), reference.batchnorm_forward(x, g, b, 1e-5, *stats)
        assert all(np.allclose(p, q, rtol=1e-12) for p, q in zip(got, want))
        m, s = want[1], want[3]
        got = fast.batchnorm_backward(dy, x, g, m, s, not stats)
        want = reference.batchnorm_backward(dy, x, g, m, s, not stats)
        assert all(np.allclose(p, q, rtol=1e-12, atol=1e-14) for p, q in zip(got, want))
    print("ok")
""")


def test_numba_batchnorm_runs_as_python_with_jit_disabled():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", JIT_DISABLED_SCRIPT], env=env, check=True,
                         capture_output=True, text=True)
    assert out.stdout.strip() == "ok"
