"""Cases worked out on paper: they pin the conventions (cross-correlation, NCHW, strides)."""
import numpy as np
import pytest

from tinycnn import layers, use_backend

X4 = np.array([[1, 2, 3, 0],
               [0, 1, 2, 3],
               [3, 0, 1, 2],
               [2, 3, 0, 1]], dtype=np.float64)[None, None]
K2 = np.array([[1, 2],
               [3, 4]], dtype=np.float64)[None, None]


def conv_with(kernel, **kwargs):
    conv = layers.Conv2D(1, 1, kernel_size=kernel.shape[-1], dtype=np.float64, **kwargs)
    conv.weight.data = kernel.copy()
    return conv


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_conv_4x4_by_2x2_on_paper(backend):
    # y[0,0] = 1·1 + 2·2 + 3·0 + 4·1 = 9;  y[0,1] = 1·2 + 2·3 + 3·1 + 4·2 = 19; ...
    expected = np.array([[9, 19, 21],
                         [11, 9, 19],
                         [21, 11, 9]], dtype=np.float64)
    with use_backend(backend):
        conv = conv_with(K2)
        np.testing.assert_array_equal(conv.forward(X4)[0, 0], expected)
        dx = conv.backward(np.ones((1, 1, 3, 3)))
        # dw[i,j] = sum of the 3x3 block of x starting at (i, j); db = number of outputs
        np.testing.assert_array_equal(conv.weight.grad[0, 0], [[13, 14], [12, 13]])
        np.testing.assert_array_equal(conv.bias.grad, [9])
        # each x pixel receives the kernel taps that saw it: corner (0,0) only tap w[0,0] = 1
        assert dx[0, 0, 0, 0] == 1 and dx[0, 0, 3, 3] == 4 and dx[0, 0, 1, 1] == 1 + 2 + 3 + 4
        strided = conv_with(K2, stride=2)
        np.testing.assert_array_equal(strided.forward(X4)[0, 0], [[9, 21], [21, 9]])


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_maxpool_gradient_routes_to_argmax(backend):
    x = np.array([[1, 5, 2, 0],
                  [3, 4, 8, 1],
                  [0, 2, 6, 7],
                  [9, 1, 3, 4]], dtype=np.float64)[None, None]
    with use_backend(backend):
        pool = layers.MaxPool2D(2)
        np.testing.assert_array_equal(pool.forward(x)[0, 0], [[5, 8], [9, 7]])
        dx = pool.backward(np.array([[[[1, 2], [3, 4]]]], dtype=np.float64))[0, 0]
    expected = np.zeros((4, 4))
    expected[0, 1], expected[1, 2], expected[3, 0], expected[2, 3] = 1, 2, 3, 4
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_avgpool_spreads_gradient_evenly_and_overlaps_add_up(backend):
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    with use_backend(backend):
        pool = layers.AvgPool2D(2, stride=1)            # overlapping 2x2 windows on 3x3
        np.testing.assert_array_equal(pool.forward(x)[0, 0], [[2, 3], [5, 6]])
        dx = pool.backward(np.ones((1, 1, 2, 2)))[0, 0]
    # the centre pixel is in all four windows, corners in one: 4·¼ and 1·¼
    np.testing.assert_array_equal(dx, [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])


def test_maxpool_tie_goes_to_first_maximum():
    x = np.ones((1, 1, 2, 2))
    pool = layers.MaxPool2D(2)
    pool.forward(x)
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1)))[0, 0], [[1, 0], [0, 0]])


@pytest.mark.parametrize("H, K, s, p, expected", [(28, 5, 1, 2, 28), (28, 5, 1, 0, 24), (7, 3, 2, 1, 4),
                                                  (8, 3, 3, 0, 2), (5, 5, 1, 0, 1), (6, 1, 2, 0, 3)])
def test_output_size_formula(H, K, s, p, expected):
    # H_out = (H + 2p - K) // s + 1
    conv = layers.Conv2D(1, 2, kernel_size=K, stride=s, padding=p, rng=0)
    y = conv.forward(np.zeros((1, 1, H, H), np.float32))
    assert y.shape == (1, 2, expected, expected) == (1,) + conv.output_shape((1, H, H))
    assert (H + 2 * p - K) // s + 1 == expected


def test_pool_output_size_formula():
    # H_out = (H - K) // s + 1, stride defaults to K
    assert layers.MaxPool2D(2).forward(np.zeros((1, 1, 7, 7))).shape == (1, 1, 3, 3)
    assert layers.MaxPool2D(3, stride=1).forward(np.zeros((1, 1, 7, 5))).shape == (1, 1, 5, 3)


def test_dense_is_y_equals_Wx_plus_b():
    dense = layers.Dense(3, 2, dtype=np.float64)
    dense.weight.data = np.array([[1.0, 0, -1], [2, 1, 0]])
    dense.bias.data = np.array([0.5, -1])
    np.testing.assert_array_equal(dense.forward(np.array([[1.0, 2, 3]])), [[-1.5, 3]])
