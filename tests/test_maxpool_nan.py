"""Max pooling over windows that contain NaN: one rule on both backends, PyTorch's (issue 10).

The rule: a NaN counts as the window's maximum (``y`` is NaN) and gets the gradient; of
several NaNs the LAST one in row-major window order wins, because each NaN replaces the
running maximum (PyTorch's CPU kernel tests ``val > maxval || isnan(val)``); among equal
numbers the FIRST wins. ``dy = 1`` makes ``dx`` count the windows routed to each pixel,
so the routing is compared exactly.
"""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinycnn.kernels import fast, reference

nan, inf = np.nan, np.inf
KERNELS = {"numba": fast, "reference": reference}


def routed(kern, window, kernel_size=None, stride=None):
    """dx of one (1, 1, H, W) input for dy = 1 everywhere."""
    x = np.array(window, np.float32)[None, None]
    k = kernel_size or x.shape[2:]
    y = kern.maxpool2d_forward(x, k, stride)
    return kern.maxpool2d_backward(np.ones_like(y), x, k, stride)[0, 0]


# (window, the pixel that gets the gradient), whole-window pooling
CASES = [
    ([[1, nan], [nan, 5]], (1, 0)),          # two NaNs: the last one
    ([[nan, 1], [5, nan]], (1, 1)),
    ([[1, 2], [3, nan]], (1, 1)),            # a NaN beats every number
    ([[nan, nan], [nan, nan]], (1, 1)),
    ([[inf, nan], [1, 1]], (0, 1)),          # ... even +inf
    ([[7, 7], [nan, 7]], (1, 0)),
    ([[7, 7], [2, 7]], (0, 0)),              # no NaN: ties go to the first maximum
    ([[-inf, -inf], [-inf, -inf]], (0, 0)),
    ([[1, nan, 3], [nan, 2, 9], [0, 0, 0]], (1, 0)),   # 3x3: the general loop
    ([[9, 0, 0], [0, 0, 0], [0, 0, nan]], (2, 2)),
]


@pytest.mark.parametrize("backend", sorted(KERNELS))
@pytest.mark.parametrize("window, winner", CASES)
def test_the_gradient_goes_to_the_last_nan(backend, window, winner):
    dx = routed(KERNELS[backend], window)
    want = np.zeros_like(dx)
    want[winner] = 1
    np.testing.assert_array_equal(dx, want)


nan_arrays = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(2, 7),
                       st.integers(2, 7), st.integers(0, 2**16))


@settings(max_examples=40, deadline=None)
@given(shape=nan_arrays, k=st.integers(1, 3), stride=st.sampled_from([None, 1, 2]),
       dtype=st.sampled_from([np.float32, np.float64]), nan_share=st.sampled_from([0.1, 0.5]))
def test_fast_routes_nans_exactly_like_the_reference(shape, k, stride, dtype, nan_share):
    """Random NaNs (and ties) in every layout of window: the 2x2 branch and the general loop."""
    *nchw, seed = shape
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, nchw).astype(dtype)                     # ties too
    x[rng.random(nchw) < nan_share] = np.nan
    k = min(k, nchw[2], nchw[3])
    y_ref = reference.maxpool2d_forward(x, k, stride)
    np.testing.assert_array_equal(fast.maxpool2d_forward(x, k, stride), y_ref)
    ones = np.ones_like(y_ref)
    np.testing.assert_array_equal(fast.maxpool2d_backward(ones, x, k, stride),
                                  reference.maxpool2d_backward(ones, x, k, stride))


def _torch():
    """torch, or a skip -- but a failure in CI, where the interop extra is installed."""
    if os.environ.get("CI") == "true":
        import torch
        return torch
    return pytest.importorskip("torch")


@pytest.mark.parametrize("backend", sorted(KERNELS))
@pytest.mark.parametrize("k, stride", [(2, None), (2, 1), (3, 2), (3, 1)])
def test_nan_routing_matches_torch(backend, k, stride):
    torch = _torch()
    rng = np.random.default_rng(k * 10 + (stride or 0))
    x = rng.integers(0, 3, (2, 3, 8, 7)).astype(np.float64)
    x[rng.random(x.shape) < 0.3] = np.nan
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.max_pool2d(xt, k, stride)
    yt.backward(torch.ones_like(yt))
    kern = KERNELS[backend]
    y = kern.maxpool2d_forward(x, k, stride)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(kern.maxpool2d_backward(np.ones_like(y), x, k, stride),
                                  xt.grad.numpy())
