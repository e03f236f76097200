"""tinycnn.receptive_field: hand-worked fields, and the same fields measured empirically as
the support of one unit's gradient with respect to the input (model.backward, one-hot dy).

Empirical set-up: float64, weights drawn from [0.1, 1] and inputs from [0.5, 1.5], biases 0,
so every pre-activation is positive (ReLU passes everything) and no two paths cancel; with
average pooling and stride <= kernel every pixel inside the (clipped) field then gets a
non-zero gradient and every pixel outside gets exactly zero. Max-pooling sends the gradient
to one winner per window, so there the support can only be a subset of the field.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import layers
from tinycnn.layers.base import Layer
from tinycnn.models import lenet5, lesion_cnn
from tinycnn.receptive_field import input_gradient


def _rows(rf):
    return [(r.size[0], None if r.jump is None else r.jump[0], r.start[0]) for r in rf]


def test_lenet5_by_hand():
    # conv5 p2: r 5, j 1, a -2 | pool2: 5 + 1·1 = 6, j 2 | conv5: 6 + 4·2 = 14 | pool2: 14 + 1·2 = 16, j 4
    rf = tc.receptive_field(lenet5(), (1, 28, 28))
    assert _rows(rf)[:6] == [(5, 1, -2), (5, 1, -2), (6, 2, -2), (14, 2, -2), (14, 2, -2), (16, 4, -2)]
    # Flatten ends the grid: union of the 5 units' fields, 16 + 4·4 = 32 wide, from -2
    assert _rows(rf)[6:] == [(32, None, -2)] * 6
    assert rf.box(-1) == ((0, 28), (0, 28))


def test_lesion_cnn_sees_18_by_18_before_the_global_pool():
    rf = tc.receptive_field(lesion_cnn(), (1, 32, 32))
    assert [r.size for r in rf][:8] == [(3, 3), (3, 3), (4, 4), (8, 8), (8, 8), (10, 10), (18, 18), (18, 18)]
    assert rf[6].jump == (4, 4) and rf[6].start == (-7, -7)
    assert rf[8].size == (46, 46) and rf[8].jump == (32, 32)     # the global max-pool: 18 + 7·4
    assert rf.box(6, (0, 0)) == ((0, 11), (0, 11))               # a corner unit: clipped by the border
    assert rf.box(6, (3, 4)) == ((5, 23), (9, 27))
    assert "18×18" in str(rf) and "Conv2D(16→32, k=3, p=1)" in str(rf)


def test_strided_convolutions_by_hand():
    m = tc.Sequential(layers.Conv2D(1, 1, 3, stride=2, padding=1, rng=0),
                      layers.Conv2D(1, 1, 3, stride=2, padding=1, rng=0))
    rf = tc.receptive_field(m, (1, 17, 17))
    # r 3, j 2, a -1; then r = 3 + 2·2 = 7, j 4, a = -1 - 1·2 = -3
    assert _rows(rf) == [(3, 2, -1), (7, 4, -3)]
    assert rf[-1].output_shape == (1, 5, 5)


class _DilatedGeometry(Layer):
    """Geometry-only stand-in for a 3×3 convolution with dilation ``d`` and 'same' padding."""

    def __init__(self, d):
        super().__init__()
        self.d = d

    def receptive_window(self, input_shape):
        return ((3, 1, self.d, self.d), (3, 1, self.d, self.d))


def test_dilation_arithmetic():
    # 3×3 kernels with dilations 1, 2, 4: effective kernels 3, 5, 9 -> fields 3, 7, 15
    rf = tc.receptive_field([_DilatedGeometry(1), _DilatedGeometry(2), _DilatedGeometry(4)], (1, 20, 20))
    assert [r.size for r in rf] == [(3, 3), (7, 7), (15, 15)]
    assert [r.start for r in rf] == [(-1, -1), (-3, -3), (-7, -7)]


def test_table_and_structured_data():
    rf = tc.receptive_field(lenet5())          # input shape from model.meta
    table = str(rf)
    assert table.splitlines()[0].split() == ["#", "Layer", "Output", "shape", "Field", "Jump", "Start", "Note"]
    assert "14×14" in table and "whole input" in table
    data = rf.to_list()
    assert data[3] == {"index": 3, "layer": "Conv2D(6→16, k=5)", "output_shape": [16, 10, 10],
                       "size": [14, 14], "jump": [2, 2], "start": [-2, -2]}
    assert len(rf) == len(lenet5()) and "final field 32×32" in repr(rf)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"input_shape must be one sample's \(C, H, W\)"):
        tc.receptive_field(tc.Sequential(layers.ReLU()))

    class Shrinks(Layer):                      # changes the grid but keeps the identity window
        def output_shape(self, input_shape):
            C, H, W = input_shape
            return (C, H // 2, W // 2)

    with pytest.raises(ValueError, match=r"layer 1 Shrinks\(\).*must override Layer.receptive_window"):
        tc.receptive_field([layers.ReLU(), Shrinks()], (1, 8, 8))

    class Bad(Layer):
        def receptive_window(self, input_shape):
            return (3, 1, 0)

    with pytest.raises(ValueError, match=r"Bad\(\).receptive_window\(\) must return None or two"):
        tc.receptive_field([Bad()], (1, 8, 8))


# ------------------------------------------------------------------ empirical check
def _positive(model, rng):
    for p in model.parameters():
        p.data[...] = rng.uniform(0.1, 1.0, p.shape) if p.data.ndim > 1 else 0.0
    return model


@st.composite
def stacks(draw, overlapping=True):
    """A random conv/pool stack that keeps a non-empty grid, and its input size."""
    H, W = draw(st.integers(6, 20)), draw(st.integers(6, 20))
    n, out, C = [H, W], [], 1
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "avg", "max", "relu"]))
        k = draw(st.integers(1, 4))
        s = draw(st.integers(1, k if overlapping else 3))
        p = draw(st.integers(0, k - 1)) if kind == "conv" else 0
        if kind == "relu":
            out.append(layers.ReLU())
            continue
        if min(n) + 2 * p < k:
            break
        if kind == "conv":
            F = draw(st.integers(1, 2))
            out.append(layers.Conv2D(C, F, (k, k), stride=s, padding=p, dtype=np.float64))
            C = F
        else:
            out.append((layers.AvgPool2D if kind == "avg" else layers.MaxPool2D)(k, stride=s))
        n = [(v + 2 * p - k) // s + 1 for v in n]
    if not out:
        out = [layers.ReLU()]
    if draw(st.booleans()):
        out += [layers.Flatten(), layers.Dense(C * n[0] * n[1], 2, dtype=np.float64)]
    return tc.Sequential(*out), (1, H, W), draw(st.integers(0, 2 ** 31 - 1))


def _support_and_box(model, shape, seed):
    rng = np.random.default_rng(seed)
    _positive(model, rng)
    rf = tc.receptive_field(model, shape)
    y_shape = rf[-1].output_shape
    unit = (0,) + tuple(int(rng.integers(v)) for v in y_shape[1:]) if len(y_shape) == 3 else (0,)
    x = rng.uniform(0.5, 1.5, shape)
    with tc.use_backend("reference"):
        support = input_gradient(model, x, unit=unit)[0] != 0
    (r0, r1), (c0, c1) = rf.box(-1, unit[1:] if len(unit) == 3 else (0, 0))
    box = np.zeros(shape[1:], bool)
    box[r0:r1, c0:c1] = True
    return support, box


@given(stacks(overlapping=True))
def test_field_equals_gradient_support(case):
    model, shape, seed = case
    has_max = any(isinstance(layer, layers.MaxPool2D) for layer in model.layers)
    support, box = _support_and_box(model, shape, seed)
    assert not (support & ~box).any(), "gradient outside the computed receptive field"
    if not has_max:                     # average pooling and convs reach every pixel of the field
        np.testing.assert_array_equal(support, box)


@given(stacks(overlapping=False))
def test_gradient_never_leaves_the_field_with_gaps(case):
    # a stride larger than the kernel leaves holes inside the field, never pixels outside it
    model, shape, seed = case
    support, box = _support_and_box(model, shape, seed)
    assert support.any() or not box.any()
    assert not (support & ~box).any()


def test_input_gradient_restores_state_and_matches_a_finite_difference():
    rng = np.random.default_rng(0)
    model = tc.Sequential(layers.Conv2D(1, 2, 3, padding=1, dtype=np.float64, rng=0), layers.Tanh(),
                          layers.Dropout(0.5, rng=0), layers.AvgPool2D(2))
    for p in model.parameters():
        p.grad[...] = 7.0
    x = rng.normal(size=(1, 6, 6))
    g = input_gradient(model, x, unit=(1, 2, 1))
    assert all((p.grad == 7.0).all() for p in model.parameters()) and model.training
    eps, (i, j) = 1e-6, (4, 3)
    xp, xm = x.copy(), x.copy()
    xp[0, i, j] += eps
    xm[0, i, j] -= eps
    model.eval()
    numeric = (model.forward(xp[None])[0, 1, 2, 1] - model.forward(xm[None])[0, 1, 2, 1]) / (2 * eps)
    np.testing.assert_allclose(g[0, i, j], numeric, rtol=1e-6)
    with pytest.raises(ValueError, match="expected one sample"):
        input_gradient(model, x[None])


def test_residual_blocks_field_matches_gradient_support():
    # Residual composes its branch through the same Layer interface; the shortcut's field
    # (a 1×1 conv, or the identity) lies inside the branch's, so the union is the branch's
    f64 = dict(dtype=np.float64)
    model = tc.Sequential(
        layers.Residual(layers.Conv2D(1, 2, 3, padding=1, **f64), layers.ReLU(),
                        layers.Conv2D(2, 1, 3, padding=1, **f64)),
        layers.ReLU(),
        layers.Residual(layers.Conv2D(1, 2, 3, stride=2, padding=1, **f64), layers.ReLU(),
                        layers.Conv2D(2, 2, 3, padding=1, **f64),
                        shortcut=[layers.Conv2D(1, 2, 1, stride=2, **f64)]),
        layers.AvgPool2D(2))
    rf = tc.receptive_field(model, (1, 16, 16))
    # block 1: 5×5 (start -2); block 2: 5 + 2·1 + 2·2 = 11, jump 2, start -2 - 1 - 2 = -5;
    # pool: 11 + 1·2 = 13, jump 4
    assert [(r.size[0], r.jump[0], r.start[0]) for r in rf] == [(5, 1, -2), (5, 1, -2), (11, 2, -5), (13, 4, -5)]
    for seed in range(3):
        for unit in [(0, 0, 0), (1, 1, 2), (0, 3, 3)]:
            support, box = _support_and_box_at(model, (1, 16, 16), seed, unit)
            np.testing.assert_array_equal(support, box)


def _support_and_box_at(model, shape, seed, unit):
    rng = np.random.default_rng(seed)
    _positive(model, rng)
    rf = tc.receptive_field(model, shape)
    with tc.use_backend("reference"):
        support = input_gradient(model, rng.uniform(0.5, 1.5, shape), unit=unit)[0] != 0
    (r0, r1), (c0, c1) = rf.box(-1, unit[1:])
    box = np.zeros(shape[1:], bool)
    box[r0:r1, c0:c1] = True
    return support, box
