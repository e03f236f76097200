"""ReLU's kernel pair: the Numba loops (``fast``) equal the reference twins bit for bit.

Random shapes of any rank, both dtypes, non-contiguous inputs, and the values where
element-wise code can go wrong: NaN (stays NaN forward; ``dy * 0`` keeps a NaN ``dy``),
-0.0 (``max(0, -0.0)`` is +0.0), infinities, and exactly 0 (derivative 0).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinycnn as tc
from tinycnn import layers
from tinycnn.kernels import fast, numba_runtime, reference

SPECIAL = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, 1e-30, -1e-30])

# inf * 0 is NaN on purpose here (see test_special_values): NumPy's warning about it is noise
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in multiply")


def bits(a):
    """Raw bit patterns: -0.0 and +0.0 differ, NaN equals itself."""
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.itemsize])


def same_bits(got, want):
    return got.dtype == want.dtype and got.shape == want.shape and np.array_equal(bits(got), bits(want))


def sample(rng, shape, dtype):
    a = rng.standard_normal(shape).astype(dtype)
    flat = a.reshape(-1)
    k = min(flat.size, len(SPECIAL))
    flat[rng.choice(flat.size, k, replace=False)] = SPECIAL[:k]
    return a


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(0, 7), min_size=1, max_size=4).map(tuple),
       dtype=st.sampled_from([np.float32, np.float64]), strided=st.booleans(),
       seed=st.integers(0, 2**16))
def test_relu_equals_reference_bit_for_bit(shape, dtype, strided, seed):
    rng = np.random.default_rng(seed)
    x, dy = sample(rng, shape, dtype), sample(rng, shape, dtype)
    if strided:                   # non-contiguous views: reversed last axis, transposed
        x, dy = x[..., ::-1].T, dy[..., ::-1].T
    assert same_bits(fast.relu_forward(x), reference.relu_forward(x))
    assert same_bits(fast.relu_backward(dy, x), reference.relu_backward(dy, x))


def test_special_values():
    x = np.array([np.nan, -0.0, 0.0, -1.0, 2.0, -np.inf, np.inf], np.float32)
    dy = np.array([1.0, 1.0, 1.0, np.nan, -0.0, np.inf, 3.0], np.float32)
    y = fast.relu_forward(x)
    assert np.isnan(y[0]) and not np.signbit(y[1]) and y[1:].tolist() == [0, 0, 0, 2, 0, np.inf]
    dx = fast.relu_backward(dy, x)
    # x <= 0 multiplies dy by 0: a NaN or infinite dy there gives NaN, as dy * (x > 0) does
    assert dx[:3].tolist() == [0, 0, 0] and np.isnan(dx[3]) and np.isnan(dx[5])
    assert np.signbit(dx[4]) and dx[6] == 3.0


def test_results_do_not_depend_on_the_thread_count():
    """Above the split threshold (2M elements) the loops run in pieces on several threads."""
    rng = np.random.default_rng(0)
    n = 2 * numba_runtime.SPLIT_MIN_WORK * fast.RELU_ELEMENTS_PER_WORK + 3
    x, dy = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    before = fast.get_num_threads()
    try:
        runs = []
        for T in (1, 2, 3):
            fast.set_num_threads(T)
            runs.append((fast.relu_forward(x), fast.relu_backward(dy, x)))
    finally:
        fast.set_num_threads(before)
    for y, dx in runs[1:]:
        assert same_bits(y, runs[0][0]) and same_bits(dx, runs[0][1])
    assert same_bits(runs[0][0], reference.relu_forward(x))


def test_float16_takes_the_reference_and_other_dtypes_are_refused():
    x = np.array([-1.0, 0.5, np.nan], np.float16)
    assert same_bits(fast.relu_forward(x), reference.relu_forward(x))
    assert same_bits(fast.relu_backward(x, x), reference.relu_backward(x, x))
    with pytest.raises(TypeError, match="relu_forward: x has dtype int64"):
        fast.relu_forward(np.arange(3))
    with pytest.raises(ValueError, match=r"relu_backward: dy has shape \(2,\), expected \(3,\)"):
        fast.relu_backward(np.ones(2, np.float32), np.ones(3, np.float32))


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_layer_uses_the_backend_and_keeps_dtype(backend):
    rng = np.random.default_rng(1)
    x = sample(rng, (2, 3, 4), np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    with tc.use_backend(backend):
        relu = layers.ReLU()
        y = relu.forward(x)
        dx = relu.backward(dy.astype(np.float64))          # dy is cast to x's dtype
    assert y.dtype == dx.dtype == np.float32
    assert same_bits(y, np.maximum(x, 0)) and same_bits(dx, dy * (x > 0))
