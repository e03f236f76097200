"""Finite-difference (float64) checks of every layer's and every loss's backward pass."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import layers, losses


def away_from_zero(rng, shape, margin=0.05):
    """Normal samples pushed at least ``margin`` from 0, so ReLU kinks are never crossed."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


def distinct(rng, shape):
    """Values whose pairwise gaps are >> eps: a random permutation of a spaced grid."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.01 - n * 0.005).reshape(shape)


BACKENDS = pytest.mark.parametrize("backend", ["reference", "numba"])


conv_cases = st.tuples(
    st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),       # N, C, F
    st.integers(1, 3), st.integers(1, 3),                          # KH, KW
    st.integers(1, 3), st.integers(1, 3),                          # stride
    st.integers(0, 2), st.integers(0, 2),                          # padding
    st.integers(3, 8), st.integers(3, 8), st.integers(0, 2**31),   # H, W, seed
)


@BACKENDS
@given(conv_cases)
def test_conv2d_gradients(backend, case):
    N, C, F, KH, KW, sh, sw, ph, pw, H, W, seed = case
    rng = np.random.default_rng(seed)
    conv = layers.Conv2D(C, F, (KH, KW), stride=(sh, sw), padding=(ph, pw), rng=rng, dtype=np.float64)
    conv.bias.data = rng.standard_normal(F)
    with tc.use_backend(backend):
        tc.assert_gradients_close(conv, rng.standard_normal((N, C, H, W)))


pool_cases = st.tuples(
    st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),   # N, C, KH, KW
    st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))),       # stride
    st.integers(3, 8), st.integers(3, 8), st.integers(0, 2**31),
)


@BACKENDS
@pytest.mark.parametrize("Pool", [layers.MaxPool2D, layers.AvgPool2D])
@given(pool_cases)
def test_pool_gradients(backend, Pool, case):
    N, C, KH, KW, stride, H, W, seed = case
    rng = np.random.default_rng(seed)
    with tc.use_backend(backend):
        tc.assert_gradients_close(Pool((KH, KW), stride=stride), distinct(rng, (N, C, H, W)))


@BACKENDS
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**31))
def test_dense_gradients(backend, N, I, O, seed):
    rng = np.random.default_rng(seed)
    dense = layers.Dense(I, O, rng=rng, dtype=np.float64)
    dense.bias.data = rng.standard_normal(O)
    with tc.use_backend(backend):
        tc.assert_gradients_close(dense, rng.standard_normal((N, I)))


@pytest.mark.parametrize("layer", [layers.ReLU(), layers.LeakyReLU(0.1), layers.Sigmoid(),
                                   layers.Tanh(), layers.Flatten(), layers.Dropout(0.4, rng=3)])
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 5), st.integers(0, 2**31))
def test_elementwise_gradients(layer, N, C, H, seed):
    rng = np.random.default_rng(seed)
    tc.assert_gradients_close(layer, away_from_zero(rng, (N, C, H, 3)))


def test_dropout_scales_survivors_and_is_identity_in_eval():
    x = np.ones((200, 50))
    drop = layers.Dropout(0.25, rng=0)
    y = drop.forward(x)
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(drop.backward(np.ones_like(x)), y)
    drop.eval()
    np.testing.assert_array_equal(drop.forward(x), x)


@given(st.integers(1, 5), st.integers(2, 5), st.booleans(), st.integers(0, 2**31))
def test_softmax_cross_entropy_gradient(N, K, weighted, seed):
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.2, 3, K) if weighted else None
    loss = losses.SoftmaxCrossEntropy(class_weights=weights)
    z = rng.standard_normal((N, K)) * 3
    t = rng.integers(0, K, N)
    tc.assert_gradients_close(layers.Flatten(), z, t, loss=loss)   # Flatten is identity on (N, K)


@given(st.integers(1, 5), st.integers(1, 4), st.integers(0, 2**31))
def test_mse_gradient(N, K, seed):
    rng = np.random.default_rng(seed)
    tc.assert_gradients_close(layers.Flatten(), rng.standard_normal((N, K)),
                              rng.standard_normal((N, K)), loss=losses.MSE())


@given(st.integers(1, 6), st.one_of(st.none(), st.floats(0.2, 5)), st.integers(0, 2**31))
def test_bce_with_logits_gradient(N, pos_weight, seed):
    rng = np.random.default_rng(seed)
    loss = losses.BinaryCrossEntropyWithLogits(pos_weight=pos_weight)
    tc.assert_gradients_close(layers.Flatten(), rng.standard_normal((N, 1)) * 4,
                              rng.integers(0, 2, (N, 1)), loss=loss)


def small_cnn(rng, dtype=np.float64):
    return tc.Sequential(
        layers.Conv2D(2, 3, kernel_size=3, padding=1, rng=rng, dtype=dtype), layers.LeakyReLU(0.1),
        layers.MaxPool2D(2),
        layers.Conv2D(3, 4, kernel_size=2, stride=2, rng=rng, dtype=dtype), layers.Tanh(),
        layers.AvgPool2D(2, stride=1),
        layers.Flatten(),
        layers.Dense(4, 5, rng=rng, dtype=dtype), layers.Sigmoid(),
        layers.Dense(5, 3, rng=rng, dtype=dtype),
    )


@BACKENDS
def test_whole_cnn_gradients(backend):
    rng = np.random.default_rng(0)
    model = small_cnn(rng)
    x = rng.standard_normal((3, 2, 8, 8))
    with tc.use_backend(backend):
        report = tc.assert_gradients_close(model, x, np.array([0, 2, 1]), loss=losses.SoftmaxCrossEntropy())
    assert len(report.entries) == 1 + len(model.parameters())


def test_gradcheck_catches_a_wrong_backward():
    class BrokenReLU(layers.ReLU):
        def _df(self, x, y, dy):
            return dy * (x > 0) * 1.01   # 1% off
    rng = np.random.default_rng(1)
    x = away_from_zero(rng, (2, 5))
    report = tc.gradcheck(BrokenReLU(), x)
    assert not report.passed
    with pytest.raises(AssertionError, match=r"input x at index \(\d+, \d+\): analytic .* vs numeric"):
        tc.assert_gradients_close(BrokenReLU(), x)
    assert "FAIL" in str(report)


def test_gradcheck_leaves_the_callers_model_alone():
    model = small_cnn(np.random.default_rng(0), dtype=np.float32)
    before = [p.data.copy() for p in model.parameters()]
    tc.gradcheck(model, np.random.default_rng(1).standard_normal((2, 2, 8, 8)))
    assert all(p.data.dtype == np.float32 for p in model.parameters())
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)
