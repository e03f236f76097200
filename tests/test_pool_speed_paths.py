"""The pooling backward paths that *write* ``dx`` instead of adding into zeros.

For 2x2 windows with stride 2 the Numba kernels store every covered pixel once with ``=``
into an uninitialised array, and ``fast._pool_dx`` zeroes only the row and column no
window reaches; every other shape adds into zeros. These tests pin what that must not change: results
bit for bit equal to the reference (sign of zero included: ``0 + (-0.0)`` is ``+0.0``),
ties to the first maximum, the last NaN of a window winning, odd sizes, and no trace of
whatever the uninitialised memory held.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinycnn.kernels import fast, numba_pool, reference

KINDS = ("maxpool2d", "avgpool2d")


def bits(a):
    """The raw bit patterns, so that -0.0 != +0.0 and NaN == NaN when compared."""
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def assert_same_bits(got, want, what):
    assert got.dtype == want.dtype and got.shape == want.shape, what
    diff = np.argwhere(bits(got) != bits(want))
    assert diff.size == 0, (f"{what}: first difference at {tuple(diff[0])}: "
                            f"got {got[tuple(diff[0])]!r}, reference {want[tuple(diff[0])]!r}")


def tricky_input(rng, shape, dtype):
    """Ties (ReLU-like zeros and repeated values), a few NaNs, -0.0 and infinities."""
    x = np.maximum(rng.integers(-2, 3, shape), 0).astype(dtype)
    flat = x.reshape(-1)
    for value in (np.nan, np.nan, np.nan, -0.0, np.inf, -np.inf):
        flat[rng.integers(flat.size)] = value
    return x


@pytest.mark.filterwarnings("ignore:invalid value encountered in add")   # inf + -inf, on purpose
@settings(max_examples=40, deadline=None)
@given(N=st.integers(1, 3), C=st.integers(1, 3), k=st.sampled_from([1, 2, 3, (2, 3)]),
       extra_h=st.integers(0, 5), extra_w=st.integers(0, 5), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_tiling_windows_equal_reference_bit_for_bit(N, C, k, extra_h, extra_w, dtype, seed):
    """stride == kernel (k = 2: the ``=`` branch), odd sizes leaving uncovered rows and
    columns."""
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(seed)
    x = tricky_input(rng, (N, C, kh + extra_h, kw + extra_w), dtype)
    for kind in KINDS:
        y = getattr(reference, kind + "_forward")(x, k)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dy.reshape(-1)[rng.integers(dy.size)] = -0.0            # lands as +0.0 in the reference
        got = getattr(fast, kind + "_backward")(dy, x, k)
        assert_same_bits(got, getattr(reference, kind + "_backward")(dy, x, k), f"{kind} k={k}")


@pytest.mark.parametrize("stride", [1, 3, (2, 1)])
def test_overlapping_and_gapped_windows_still_add_into_zeros(stride):
    """stride != kernel keeps the scatter-add: overlapping windows add up, gaps stay 0."""
    rng = np.random.default_rng(1)
    x = tricky_input(rng, (2, 3, 9, 8), np.float32)
    for kind in KINDS:
        y = getattr(reference, kind + "_forward")(x, 2, stride)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        # overlapping windows add in another order than the reference's: equal to rounding
        np.testing.assert_allclose(getattr(fast, kind + "_backward")(dy, x, 2, stride),
                                   getattr(reference, kind + "_backward")(dy, x, 2, stride),
                                   rtol=1e-6, atol=1e-6, err_msg=f"{kind} stride {stride}")


def test_last_nan_of_a_window_wins_and_ties_go_to_the_first_maximum():
    x = np.array([[[[np.nan, 1, 5, 5],
                    [np.nan, 0, 5, 2]]]], np.float32)
    dx = fast.maxpool2d_backward(np.array([[[[10, 20]]]], np.float32), x, 2)
    np.testing.assert_array_equal(dx, [[[[0, 0, 20, 0],
                                          [10, 0, 0, 0]]]])


@pytest.mark.parametrize("kind", KINDS)
def test_kernels_overwrite_every_covered_pixel(kind):
    """Called on a dx full of garbage (NaN), the 2x2 / stride-2 branches leave none of it
    in the windows: they write, they do not add."""
    k = 2
    rng = np.random.default_rng(2)
    x = tricky_input(rng, (2, 2, 3 * k, 2 * k), np.float64)
    y = getattr(reference, kind + "_forward")(x, k)
    dy = rng.standard_normal(y.shape)
    dx = np.full((4,) + x.shape[2:], np.nan)
    planes_dy, planes_x = dy.reshape((4,) + y.shape[2:]), x.reshape(dx.shape)
    if kind == "maxpool2d":
        numba_pool.maxpool_backward(planes_dy, planes_x, k, k, k, k, dx, 0, 4)
    else:
        numba_pool.avgpool_backward(planes_dy, k, k, k, k, np.float64(k * k), dx, 0, 4)
    assert_same_bits(dx.reshape(x.shape), getattr(reference, kind + "_backward")(dy, x, k), kind)


@pytest.mark.parametrize("kind", KINDS)
def test_rows_and_columns_no_window_covers_are_zeroed(kind, monkeypatch):
    """``_pool_dx`` starts from uninitialised memory: make it NaN to see that the
    uncovered bottom rows and right columns are zeroed, not left as they were."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)      # 7x9: one row, one column left
    dy = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)
    want = getattr(reference, kind + "_backward")(dy, x, 2)
    real_empty = np.empty
    monkeypatch.setattr(fast.np, "empty", lambda shape, dtype: np.full(shape, np.nan, dtype))
    got = getattr(fast, kind + "_backward")(dy, x, 2)
    monkeypatch.setattr(fast.np, "empty", real_empty)
    assert_same_bits(got, want, kind)


JIT_DISABLED_SCRIPT = textwrap.dedent("""
    import numpy as np
    from tinycnn.kernels import fast, reference
    rng = np.random.default_rng(0)
    x = np.maximum(rng.integers(-1, 3, (2, 2, 7, 8)), 0).astype(np.float32)
    x[0, 0, 0, 0] = np.nan
    for k, s in ((2, None), (3, None), (2, 1)):
        for kind in ("maxpool2d", "avgpool2d"):
            y = getattr(reference, kind + "_forward")(x, k, s)
            dy = rng.standard_normal(y.shape).astype(np.float32)
            got = getattr(fast, kind + "_backward")(dy, x, k, s)
            want = getattr(reference, kind + "_backward")(dy, x, k, s)
            same = np.array_equal(got, want) if s is None else np.allclose(got, want, atol=1e-6)
            assert same, (kind, k, s)
    print("ok")
""")


def test_tiling_paths_run_as_python_with_jit_disabled():
    """NUMBA_DISABLE_JIT=1 runs the same kernels as plain Python (to step through them)."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", JIT_DISABLED_SCRIPT], env=env, check=True,
                         capture_output=True, text=True)
    assert out.stdout.strip() == "ok"
