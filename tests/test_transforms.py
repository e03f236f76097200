"""Transforms on hand-made images: squares, steps, two-level pictures."""
import numpy as np
import pytest

import tinycnn
from tinycnn.transforms import (
    Binarize, Compose, Grayscale, Normalize, RandomFlip, RandomRotation, RandomShift, Resize,
    SobelEdges, Translate, otsu_threshold, resize, rotate, shift,
)


def square(size=8, top=2, left=3, side=3):
    img = np.zeros((size, size), np.float32)
    img[top:top + side, left:left + side] = 1.0
    return img


def test_grayscale_luma_and_passthrough():
    x = np.zeros((2, 3, 2, 2), np.float32)
    x[0, 0] = 1.0          # red
    x[1, 1] = 1.0          # green
    g = Grayscale()(x)
    assert g.shape == (2, 1, 2, 2) and g.dtype == np.float32
    np.testing.assert_allclose(g[0], 0.299, rtol=1e-6)
    np.testing.assert_allclose(g[1], 0.587, rtol=1e-6)
    one = np.random.default_rng(0).random((1, 5, 5))
    np.testing.assert_array_equal(Grayscale()(one), one)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        Grayscale()(np.zeros((1, 2, 4, 4)))


def test_resize_constant_stays_constant_and_shapes():
    x = np.full((2, 1, 5, 7), 0.3, np.float32)
    y = Resize((11, 3))(x)
    assert y.shape == (2, 1, 11, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y, 0.3, rtol=1e-6)
    assert resize(np.zeros((4, 4)), 8).shape == (8, 8)


def test_resize_hand_computed_values():
    # upsample [0, 1] by 2: centres at -0.25, 0.25, 0.75, 1.25 -> clamped, interpolated
    y = resize(np.array([[0.0, 1.0]]), (1, 4))
    np.testing.assert_allclose(y, [[0.0, 0.25, 0.75, 1.0]])
    # downsample by 2 averages neighbour pairs (samples land midway between pixels)
    np.testing.assert_allclose(resize(np.array([[0.0, 2.0, 4.0, 6.0]]), (1, 2)), [[1.0, 5.0]])
    # a linear ramp stays linear in the interior
    ramp = np.tile(np.arange(8.0), (3, 1))
    np.testing.assert_allclose(resize(ramp, (3, 8)), ramp)


def test_translate_moves_a_square_and_fills():
    img = square()
    out = Translate(1, -2)(img)
    np.testing.assert_array_equal(out, square(top=3, left=1))
    out = Translate(0, 6, fill=0.5)(img)
    assert out[0, 0] == 0.5 and out[2:5, :].max() == 0.5     # square pushed off the right edge
    np.testing.assert_array_equal(shift(img, 0, 0), img)
    np.testing.assert_array_equal(shift(img, 9, 0), 0)        # shifted out entirely


def test_shift_per_sample():
    x = np.stack([square(), square()])[:, None]
    out = shift(x, np.array([0, 2]), np.array([1, 0]))
    np.testing.assert_array_equal(out[0, 0], square(left=4))
    np.testing.assert_array_equal(out[1, 0], square(top=4))


def test_normalize_fit_store_and_invert():
    rng = np.random.default_rng(0)
    x = (rng.random((20, 2, 4, 4)) * [[[[2.0]], [[4.0]]]] + 1).astype(np.float32)
    n = Normalize.fit(x)
    assert isinstance(n.mean, float) and isinstance(n.std, float)
    y = n(x)
    assert y.dtype == np.float32
    assert abs(y.mean()) < 1e-5 and abs(y.std() - 1) < 1e-5
    pc = Normalize.fit(x, per_channel=True)
    assert isinstance(pc.mean, list) and len(pc.mean) == 2
    z = pc(x)
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-5)
    again = Normalize.from_dict(pc.to_dict())
    np.testing.assert_array_equal(again(x), z)
    np.testing.assert_allclose(pc.inverse(z), x, rtol=1e-5)
    np.testing.assert_allclose(Normalize(0.5, 0.25)(np.array([[1.0]])), [[2.0]])
    with pytest.raises(ValueError, match="positive"):
        Normalize(0.0, 0.0)
    with pytest.raises(ValueError, match="2 channel means for 3"):
        pc(np.zeros((1, 3, 2, 2)))


def test_otsu_on_a_noisy_bimodal_image():
    rng = np.random.default_rng(0)
    img = np.where(rng.random((32, 32)) < 0.3, 0.8, 0.2) + rng.normal(0, 0.03, (32, 32))
    t = otsu_threshold(img)
    assert 0.35 < t < 0.65
    assert otsu_threshold(np.array([[0.2, 0.2], [0.8, 0.8]])) == pytest.approx(0.5)
    assert otsu_threshold(np.full((3, 3), 0.4)) == 0.4
    # unbalanced classes: the threshold still falls between the modes
    img2 = np.full(100, 0.1)
    img2[:5] = 0.9
    assert 0.1 < otsu_threshold(img2) < 0.9


def test_binarize_fixed_and_otsu_per_image():
    x = np.array([[[[0.1, 0.6]]], [[[0.3, 0.4]]]], np.float32)
    np.testing.assert_array_equal(Binarize(0.5)(x).ravel(), [0, 1, 0, 0])
    np.testing.assert_array_equal(Binarize("otsu")(x).ravel(), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="otsu"):
        Binarize("median")


@pytest.mark.parametrize("backend", ["reference", "numba"])
def test_sobel_on_a_step_edge(backend):
    img = np.zeros((1, 1, 6, 6), np.float32)
    img[..., 3:] = 1.0                                    # vertical edge between columns 2 and 3
    with tinycnn.use_backend(backend):
        e = SobelEdges()(img)
    assert e.shape == img.shape and e.dtype == np.float32
    np.testing.assert_allclose(e[0, 0, :, 2:4], 4.0)      # |Gx| = 1 + 2 + 1 on both sides
    np.testing.assert_allclose(e[0, 0, :, [0, 1, 4, 5]], 0.0)   # flat, and no fake border edges
    horiz = SobelEdges()(img.transpose(0, 1, 3, 2))
    np.testing.assert_allclose(horiz, e.transpose(0, 1, 3, 2))
    np.testing.assert_allclose(SobelEdges()(np.full((2, 3, 5, 5), 0.7)), 0.0, atol=1e-12)


def test_rotate_multiples_of_90_equal_rot90():
    a = np.arange(30, dtype=np.float64).reshape(5, 6)[:, :5]   # non-symmetric 5x5
    np.testing.assert_array_equal(rotate(a, 90), np.rot90(a))
    np.testing.assert_array_equal(rotate(a, 180), np.rot90(a, 2))
    np.testing.assert_array_equal(rotate(a, -90), np.rot90(a, -1))
    np.testing.assert_array_equal(rotate(a, 0), a)
    b = np.arange(16.0).reshape(4, 4)                          # even size: centre between pixels
    np.testing.assert_array_equal(rotate(b, 90), np.rot90(b))


def test_rotate_small_angle_bilinear_and_fill():
    img = np.ones((5, 5))
    out = rotate(img, 45, fill=0.0)
    assert out[2, 2] == 1.0 and out[0, 0] < 0.5                # corners come from outside
    # rotating a constant by a small angle keeps the interior constant
    np.testing.assert_allclose(rotate(np.full((9, 9), 0.3), 7)[2:7, 2:7], 0.3)
    x = np.stack([square(), square()])[:, None]
    out = rotate(x, np.array([0.0, 90.0]))
    np.testing.assert_array_equal(out[0, 0], square())
    np.testing.assert_array_equal(out[1, 0], np.rot90(square()))


def test_random_transforms_are_seeded_per_sample_and_keep_dtype():
    x = np.repeat(square()[None, None], 16, axis=0)
    for t in (RandomShift(2), RandomFlip(), RandomRotation(15)):
        a = t(x, np.random.default_rng(1))
        b = t(x, np.random.default_rng(1))
        np.testing.assert_array_equal(a, b)
        assert a.shape == x.shape and a.dtype == np.float32
        assert len({s.tobytes() for s in a}) > 1, f"{t!r} gave every sample the same draw"
        assert np.array_equal(x[0, 0], square()), "input modified in place"
    # without an rng, a random transform uses its own seeded generator
    np.testing.assert_array_equal(RandomShift(2, seed=3)(x), RandomShift(2, seed=3)(x))


def test_random_shift_only_whole_pixel_moves_within_range():
    x = np.repeat(square()[None, None], 50, axis=0)
    out = RandomShift(2)(x, np.random.default_rng(0))
    for o in out[:, 0]:
        assert o.sum() == 9                                      # square never leaves the image
        r, c = np.argwhere(o == 1).min(axis=0)
        assert abs(r - 2) <= 2 and abs(c - 3) <= 2


def test_random_flip_probabilities():
    x = np.repeat(square()[None, None], 200, axis=0)
    out = RandomFlip(horizontal=True, vertical=False)(x, np.random.default_rng(0))
    flipped = np.array([np.array_equal(o[0], square()[:, ::-1]) for o in out])
    same = np.array([np.array_equal(o[0], square()) for o in out])
    assert np.all(flipped | same) and 70 < flipped.sum() < 130
    out = RandomFlip(horizontal=False, vertical=True, p=1.0)(x[:2])
    np.testing.assert_array_equal(out[0, 0], square()[::-1])


def test_compose_order_rng_and_plain_functions():
    calls = []
    aug = Compose([Translate(1, 0), lambda x: calls.append(1) or x * 2, RandomShift(0)])
    out = aug(square()[None, None], np.random.default_rng(0))
    np.testing.assert_array_equal(out[0, 0], 2 * square(top=3))
    assert calls == [1]
    assert "Translate" in repr(aug)


def test_layouts_chw_hw_and_int_input():
    chw = np.zeros((1, 8, 8), np.uint8)
    out = RandomShift(1)(chw, np.random.default_rng(0))
    assert out.shape == (1, 8, 8) and out.dtype == np.float32
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        Resize(4)(np.zeros(5))
