"""The Numba kernels (``tinycnn.kernels.fast``) equal their reference twins.

Property tests draw random batch sizes, channels, kernel sizes, strides (below, at and
above the kernel size), paddings and odd spatial sizes, in float32 and float64, with
contiguous and non-contiguous (transposed / strided view) inputs. Tolerances: relative to
the largest reference value, 1e-5 in float32 and 1e-12 in float64.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinycnn.kernels import fast, numba_paths, reference

TOL = {np.float32: 1e-5, np.float64: 1e-12}
DTYPES = st.sampled_from([np.float32, np.float64])


def assert_close(got, want, what):
    """Max error relative to max |want|; on failure name the array, index and both values."""
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, reference gives {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, reference gives {want.shape}"
    if want.size == 0:
        return
    tol = TOL[want.dtype.type]
    err = np.abs(got.astype(np.float64) - want)
    scale = max(float(np.max(np.abs(want))), np.finfo(want.dtype).tiny)
    k = np.unravel_index(np.argmax(err), err.shape)
    assert err[k] <= tol * scale, (
        f"{what} differs from the reference at index {k}: expected {want[k]!r}, got {got[k]!r} "
        f"(error {err[k]:.3g} > {tol:g} x max|ref| = {tol * scale:.3g})")


def layout(a, how):
    """The same values as ``a`` in another memory layout (``how``: contiguous or not)."""
    if how == "contiguous":
        return a
    if how == "transposed":            # an (.., W, H) array viewed back as (.., H, W)
        return np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)   # every other column
    wide[..., ::2] = a
    return wide[..., ::2]


LAYOUTS = st.sampled_from(["contiguous", "transposed", "strided"])


@st.composite
def conv_cases(draw):
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    padding = draw(st.sampled_from([(0, 0), 1, 2, (0, 1), (2, 1), (1, 2)]))
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return dict(
        N=draw(st.integers(1, 3)), C=draw(st.sampled_from([1, 1, 2, 3, 5])),
        F=draw(st.integers(1, 4)), KH=KH, KW=KW,
        H=max(1, KH - 2 * ph) + draw(st.integers(0, 7)),     # odd and even sizes
        W=max(1, KW - 2 * pw) + draw(st.integers(0, 7)),
        stride=draw(st.sampled_from([1, 2, 3, 5, (1, 2), (3, 1)])),
        padding=padding,
    )


def conv_arrays(case, dtype, rng):
    N, C, F, KH, KW, H, W = (case[k] for k in "N C F KH KW H W".split())
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, KH, KW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return x, w, b


@settings(max_examples=60, deadline=None)
@given(case=conv_cases(), dtype=DTYPES, x_layout=LAYOUTS, w_layout=LAYOUTS,
       seed=st.integers(0, 2**16))
def test_conv2d_equals_reference(case, dtype, x_layout, w_layout, seed):
    rng = np.random.default_rng(seed)
    x, w, b = conv_arrays(case, dtype, rng)
    s, p = case["stride"], case["padding"]
    y_ref = reference.conv2d_forward(x, w, b, s, p)
    xv, wv = layout(x, x_layout), layout(w, w_layout)
    assert_close(fast.conv2d_forward(xv, wv, b, s, p), y_ref, f"conv2d_forward y {case}")
    dy = layout(rng.standard_normal(y_ref.shape).astype(dtype), x_layout)
    got = fast.conv2d_backward(dy, xv, wv, s, p)
    want = reference.conv2d_backward(dy, x, w, s, p)
    for name, g, r in zip(("dx", "dw", "db"), got, want):
        assert_close(g, r, f"conv2d_backward {name} {case}")


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return dict(
        N=draw(st.integers(1, 3)), C=draw(st.integers(1, 4)),
        H=kh + draw(st.integers(0, 8)), W=kw + draw(st.integers(0, 8)),
        kernel_size=draw(st.sampled_from([(kh, kw), kh if kh <= kw else (kh, kw)])),
        stride=draw(st.sampled_from([None, 1, 2, 3, 5, (1, 2), (2, 1)])),
        ties=draw(st.booleans()),
    )


@settings(max_examples=60, deadline=None)
@given(case=pool_cases(), dtype=DTYPES, how=LAYOUTS, seed=st.integers(0, 2**16))
def test_pooling_equals_reference(case, dtype, how, seed):
    rng = np.random.default_rng(seed)
    shape = (case["N"], case["C"], case["H"], case["W"])
    if case["ties"]:         # few distinct values: windows with several equal maxima
        x = rng.integers(0, 3, shape).astype(dtype)
    else:
        x = rng.standard_normal(shape).astype(dtype)
    k, s = case["kernel_size"], case["stride"]
    for kind in ("maxpool2d", "avgpool2d"):
        fwd_ref = getattr(reference, kind + "_forward")
        bwd_ref = getattr(reference, kind + "_backward")
        y_ref = fwd_ref(x, k, s)
        assert_close(getattr(fast, kind + "_forward")(layout(x, how), k, s), y_ref,
                     f"{kind}_forward {case}")
        dy = rng.standard_normal(y_ref.shape).astype(dtype)
        assert_close(getattr(fast, kind + "_backward")(layout(dy, how), layout(x, how), k, s),
                     bwd_ref(dy, x, k, s), f"{kind}_backward {case}")


@settings(max_examples=20, deadline=None)
@given(N=st.integers(1, 5), I=st.integers(1, 9), O=st.integers(1, 9), dtype=DTYPES,
       seed=st.integers(0, 2**16))
def test_dense_equals_reference(N, I, O, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, I)).astype(dtype)
    w = rng.standard_normal((O, I)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    dy = rng.standard_normal((N, O)).astype(dtype)
    assert_close(fast.dense_forward(x, w, b), reference.dense_forward(x, w, b), "dense_forward")
    for name, g, r in zip(("dx", "dw", "db"), fast.dense_backward(dy, x, w),
                          reference.dense_backward(dy, x, w)):
        assert_close(g, r, f"dense_backward {name}")


def test_maxpool_ties_go_to_first_maximum():
    x = np.array([[[[1., 3., 3.], [3., 0., 3.], [2., 3., 1.]]]])   # one 3x3 window, five 3s
    dx = fast.maxpool2d_backward(np.ones((1, 1, 1, 1)), x, 3)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = 1                                        # first 3 in row-major order
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride", [None, 2])
def test_pool_2x2_fast_branch_equals_reference(dtype, stride):
    """The written-out 2x2 / stride-2 branch: ties (ReLU zeros), odd sizes, NaN."""
    rng = np.random.default_rng(3)
    x = np.maximum(rng.integers(-2, 3, (3, 4, 9, 7)), 0).astype(dtype)   # many tied zeros
    x[0, 0, 0, 1] = np.nan
    for kind in ("maxpool2d", "avgpool2d"):
        y_ref = getattr(reference, kind + "_forward")(x, 2, stride)
        y = getattr(fast, kind + "_forward")(x, 2, stride)
        np.testing.assert_array_equal(y, y_ref)                 # NaN where the reference has it
        dy = rng.standard_normal(y.shape).astype(dtype)
        xf = np.nan_to_num(x)
        assert_close(getattr(fast, kind + "_backward")(dy, xf, 2, stride),
                     getattr(reference, kind + "_backward")(dy, xf, 2, stride), kind)


@pytest.mark.parametrize("C", [1, 6])        # direct path, im2col path
def test_results_do_not_depend_on_the_thread_count(C):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((32, C, 20, 20)).astype(np.float32)
    w = rng.standard_normal((8, C, 5, 5)).astype(np.float32)
    dy = rng.standard_normal((32, 8, 20, 20)).astype(np.float32)
    before = fast.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            fast.set_num_threads(threads)
            results.append(fast.conv2d_backward(dy, x, w, 1, 2)
                           + (fast.maxpool2d_backward(x, x, 1),))
    finally:
        fast.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b), "results changed with the number of threads"


@pytest.mark.parametrize("C", [1, 6])        # direct path, im2col path
def test_backward_is_deterministic(C):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, C, 14, 14)).astype(np.float32)
    w = rng.standard_normal((8, C, 5, 5)).astype(np.float32)
    dy = rng.standard_normal((16, 8, 14, 14)).astype(np.float32)
    first = fast.conv2d_backward(dy, x, w, 1, 2)
    for _ in range(3):
        for a, b in zip(first, fast.conv2d_backward(dy, x, w, 1, 2)):
            assert np.array_equal(a, b), "conv2d_backward is not bit-identical run to run"
    y = fast.maxpool2d_forward(x, 2)
    assert np.array_equal(fast.maxpool2d_backward(y, x, 2), fast.maxpool2d_backward(y, x, 2))


def test_outputs_are_fresh_arrays():
    """Results never alias the kernels' reused scratch buffers."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = np.zeros(4, np.float32)
    y1 = fast.conv2d_forward(x, w, b, 1, 1)
    keep = y1.copy()
    dx1, _, _ = fast.conv2d_backward(y1, x, w, 1, 1)
    keep_dx = dx1.copy()
    fast.conv2d_forward(2 * x, w, b, 1, 1)
    fast.conv2d_backward(3 * y1, 2 * x, w, 1, 1)
    np.testing.assert_array_equal(y1, keep)
    np.testing.assert_array_equal(dx1, keep_dx)


def test_output_dtype_follows_input_and_bad_shapes_raise():
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((3, 2, 3, 3), np.float64)                     # weights cast to x's dtype
    assert fast.conv2d_forward(x, w, np.zeros(3), 1, 0).dtype == np.float32
    with pytest.raises(ValueError, match="dy has shape"):
        fast.conv2d_backward(np.ones((1, 3, 4, 4), np.float32), x, w, 1, 0)
    with pytest.raises(ValueError, match="same C"):
        fast.conv2d_forward(x, np.ones((3, 4, 3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="dy has shape"):
        fast.maxpool2d_backward(np.ones((1, 2, 3, 3), np.float32), x, 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        fast.maxpool2d_forward(x.astype(np.int64), 2)


def test_warmup_compiles_both_dtypes():
    assert fast.warmup(dtypes=("float32", "float64")) >= 0


def test_conv2d_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 11, 9))
    w = rng.standard_normal((5, 3, 3, 4))
    b = rng.standard_normal(5)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=(2, 1), padding=(1, 2))
    dy = rng.standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(dy))
    assert_close(fast.conv2d_forward(x, w, b, (2, 1), (1, 2)), yt.detach().numpy(), "y vs torch")
    for name, g, t in zip(("dx", "dw", "db"), fast.conv2d_backward(dy, x, w, (2, 1), (1, 2)),
                          (xt, wt, bt)):
        assert_close(g, t.grad.numpy(), f"{name} vs torch")


def test_import_tinycnn_does_not_import_numba():
    code = "import sys, tinycnn; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


JIT_DISABLED_SCRIPT = textwrap.dedent("""
    import numpy as np
    from tinycnn.kernels import fast, numba_paths, reference
    rng = np.random.default_rng(0)
    fast.DIRECT_MIN_POSITIONS = 0
    for C, s, p in ((1, 1, 1), (2, 1, 0), (2, 2, 0)):   # direct, direct, im2col + GEMM
        x = rng.standard_normal((2, C, 5, 6))
        w = rng.standard_normal((3, C, 3, 2))
        b = rng.standard_normal(3)
        y = fast.conv2d_forward(x, w, b, s, p)
        assert np.allclose(y, reference.conv2d_forward(x, w, b, s, p), rtol=0, atol=1e-12)
        for g, r in zip(fast.conv2d_backward(y, x, w, s, p),
                        reference.conv2d_backward(y, x, w, s, p)):
            assert np.allclose(g, r, rtol=0, atol=1e-12)
    x = rng.integers(0, 3, (2, 2, 5, 5)).astype(np.float32)
    for kind in ("maxpool2d", "avgpool2d"):
        y = getattr(fast, kind + "_forward")(x, 2, 1)
        assert np.allclose(y, getattr(reference, kind + "_forward")(x, 2, 1))
        assert np.allclose(getattr(fast, kind + "_backward")(y, x, 2, 1),
                           getattr(reference, kind + "_backward")(y, x, 2, 1))
    print("ok")
""")


def test_kernels_run_as_python_with_jit_disabled():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", JIT_DISABLED_SCRIPT], env=env, check=True,
                         capture_output=True, text=True)
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("path", ["gemm", "direct", "direct in blocks"])
@settings(max_examples=25, deadline=None)
@given(case=conv_cases(), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_every_conv_path_equals_reference(path, case, dtype, seed):
    """Force each algorithm on any shape: im2col+GEMM, or the direct loops (wherever
    stride 1 and padding < kernel allow them), also with blocks of 16 positions so that
    rows longer than a block and a last, shorter block are covered."""
    rng = np.random.default_rng(seed)
    x, w, b = conv_arrays(case, dtype, rng)
    s, p = case["stride"], case["padding"]
    saved = fast.DIRECT_MIN_POSITIONS, fast.DIRECT_MAX_CHANNELS, numba_paths.BLOCK
    fast.DIRECT_MIN_POSITIONS = 10**9 if path == "gemm" else 0
    fast.DIRECT_MAX_CHANNELS = 10**9
    numba_paths.BLOCK = 16 if path == "direct in blocks" else saved[2]
    try:
        y = fast.conv2d_forward(x, w, b, s, p)
        got = fast.conv2d_backward(y, x, w, s, p)
        first_layer = fast.conv2d_backward(y, x, w, s, p, need_dx=False)
    finally:
        fast.DIRECT_MIN_POSITIONS, fast.DIRECT_MAX_CHANNELS, numba_paths.BLOCK = saved
    assert_close(y, reference.conv2d_forward(x, w, b, s, p), f"conv2d_forward [{path}] {case}")
    for name, g, r in zip(("dx", "dw", "db"), got, reference.conv2d_backward(y, x, w, s, p)):
        assert_close(g, r, f"conv2d_backward {name} [{path}] {case}")
    assert first_layer[0] is None
    assert np.array_equal(first_layer[1], got[1]) and np.array_equal(first_layer[2], got[2])


def test_direct_loops_take_inf_like_the_reference():
    """The padding taps (zero weights) read a zero tail, never real pixels: an inf in x
    gives inf/nan only where the reference has them."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 9, 9))
    x[1, 1, 4, 0] = np.inf
    w = rng.standard_normal((3, 2, 2, 2))                  # 8 taps: one padding tap
    b = rng.standard_normal(3)
    saved = fast.DIRECT_MIN_POSITIONS
    fast.DIRECT_MIN_POSITIONS = 0
    try:
        y = fast.conv2d_forward(x, w, b, 1, 1)
    finally:
        fast.DIRECT_MIN_POSITIONS = saved
    want = reference.conv2d_forward(x, w, b, 1, 1)
    assert np.array_equal(np.isfinite(y), np.isfinite(want))
    finite = np.isfinite(want)
    assert np.allclose(y[finite], want[finite], rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_on_several_threads_equals_reference(dtype):
    """Large enough to be split across threads (rows of y and dx, rows of dw)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 300)).astype(dtype)
    w = rng.standard_normal((50, 300)).astype(dtype)
    b = rng.standard_normal(50).astype(dtype)
    dy = rng.standard_normal((64, 50)).astype(dtype)
    before = fast.get_num_threads(), fast.DENSE_SPLIT_MIN_WORK
    fast.DENSE_SPLIT_MIN_WORK = 0
    try:
        got = {}
        for threads in (1, 2):
            fast.set_num_threads(threads)
            got[threads] = (fast.dense_forward(x, w, b),) + fast.dense_backward(dy, x, w)
    finally:
        fast.set_num_threads(before[0])
        fast.DENSE_SPLIT_MIN_WORK = before[1]
    want = (reference.dense_forward(x, w, b),) + reference.dense_backward(dy, x, w)
    for name, g1, g2, r in zip(("y", "dx", "dw", "db"), got[1], got[2], want):
        assert_close(g2, r, f"dense {name} on 2 threads")
        assert_close(g1, r, f"dense {name} on 1 thread")


def test_blas_runs_single_threaded_inside_kernels_and_is_restored():
    """threadpoolctl (a run-time dependency) switches BLAS to one thread inside, then back.

    Checked on the libraries the switch controls (found once, NumPy's BLAS among them --
    the one the kernels call; a BLAS another package loads later, e.g. torch's, is not
    ours to switch).
    """
    import threadpoolctl
    from tinycnn.kernels.numba_runtime import _blas_libraries, blas_single_threaded

    libs = _blas_libraries()
    numpy_blas = [i["filepath"] for i in threadpoolctl.ThreadpoolController().info()
                  if i["user_api"] == "blas" and "numpy" in i["filepath"]]
    assert libs and set(numpy_blas) <= {lib.filepath for lib in libs}
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        assert {lib.get_num_threads() for lib in libs} == {2}
        with blas_single_threaded():
            assert {lib.get_num_threads() for lib in libs} == {1}
        assert {lib.get_num_threads() for lib in libs} == {2}


@pytest.mark.parametrize("C, stride", [(1, 1), (1, 2), (3, 1)])   # planes/rows, im2col
@pytest.mark.parametrize("kern", [fast, reference], ids=["numba", "reference"])
def test_conv_backward_without_dx_gives_the_same_dw_db(kern, C, stride):
    rng = np.random.default_rng(6)
    for H in (9, 50):                                          # whole planes, rows
        x = rng.standard_normal((3, C, H, H)).astype(np.float32)
        w = rng.standard_normal((4, C, 3, 3)).astype(np.float32)
        dy = rng.standard_normal(kern.conv2d_forward(x, w, np.zeros(4, np.float32),
                                                     stride, 1).shape).astype(np.float32)
        dx, dw, db = kern.conv2d_backward(dy, x, w, stride, 1)
        none, dw2, db2 = kern.conv2d_backward(dy, x, w, stride, 1, need_dx=False)
        assert none is None and dx is not None
        np.testing.assert_array_equal(dw2, dw)
        np.testing.assert_array_equal(db2, db)


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_training_backward_skips_the_first_layers_dx_with_the_same_gradients(backend, monkeypatch):
    """Sequential.backward(dy, input_grad=False): same p.grad, no dx for the data."""
    import tinycnn as tc
    from tinycnn import layers
    model = tc.Sequential(layers.ReLU(), layers.Conv2D(2, 3, kernel_size=3, padding=1, rng=0),
                          layers.ReLU(), layers.MaxPool2D(2), layers.Conv2D(3, 4, 3, rng=1),
                          layers.Flatten(), layers.Dense(4 * 2 * 2, 5, rng=2))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 2, 8, 8)).astype(np.float32)
    dy = rng.standard_normal((4, 5)).astype(np.float32)
    kern = tc.backend.kernels(backend)
    calls = []
    real = kern.conv2d_backward
    monkeypatch.setattr(kern, "conv2d_backward",
                        lambda *a, need_dx=True: calls.append(need_dx) or real(*a, need_dx=need_dx))
    grads = {}
    with tc.use_backend(backend):
        for input_grad in (True, False):
            model.zero_grad()
            model.forward(x)
            out = model.backward(dy, input_grad=input_grad)
            assert (out is None) == (not input_grad)
            grads[input_grad] = [p.grad.copy() for p in model.parameters()]
    assert calls == [True, True, True, False]          # the first Conv2D skipped dx
    assert all(layer.input_grad for layer in model.layers)
    for a, b in zip(grads[True], grads[False]):
        np.testing.assert_array_equal(a, b)
