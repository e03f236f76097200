"""Conv2D(padding="same" | "valid"): shapes, equivalence to numeric padding, errors, save/load."""
import numpy as np
import pytest

import tinycnn as tc
from tinycnn import layers


@pytest.mark.parametrize("kernel_size, numeric", [(1, (0, 0)), (3, (1, 1)), (5, (2, 2)), ((3, 7), (1, 3))])
def test_same_keeps_the_size_and_equals_half_kernel_padding(kernel_size, numeric):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 10)).astype(np.float32)
    same = layers.Conv2D(3, 4, kernel_size, padding="same", rng=1)
    explicit = layers.Conv2D(3, 4, kernel_size, padding=numeric, rng=1)
    assert same.padding == numeric and same.output_shape((3, 9, 10)) == (4, 9, 10)
    y = same.forward(x)
    assert y.shape == (2, 4, 9, 10)
    np.testing.assert_array_equal(y, explicit.forward(x))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(same.backward(dy), explicit.backward(dy))


def test_valid_is_no_padding():
    conv = layers.Conv2D(1, 2, kernel_size=3, padding="valid", rng=0)
    assert conv.padding == (0, 0) and conv.output_shape((1, 8, 8)) == (2, 6, 6)
    assert repr(conv) == "Conv2D(1→2, k=3, p=valid)" and conv.config()["padding"] == "valid"


def test_same_passes_gradcheck():
    rng = np.random.default_rng(2)
    conv = layers.Conv2D(2, 3, kernel_size=3, padding="same", rng=rng, dtype=np.float64)
    conv.bias.data = rng.standard_normal(3)
    report = tc.assert_gradients_close(conv, rng.standard_normal((2, 2, 5, 5)))
    assert report.passed and report.kinks == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"kernel_size": 3, "stride": 2, "padding": "same"},
     r"Conv2D\(1→2, k=3\): padding='same' needs stride 1 \(as in PyTorch\), got stride \(2, 2\); "
     r"with an odd kernel, padding=kernel_size//2 gives H_out = ceil\(H / stride\)"),
    ({"kernel_size": 4, "padding": "same"}, r"padding='same' needs an odd kernel size, got \(4, 4\)"),
    ({"kernel_size": 3, "padding": "full"}, r"padding must be an int, a pair of ints, 'same' or 'valid'; got 'full'"),
])
def test_bad_padding_words_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.Conv2D(1, 2, **kwargs)


def test_stride_hint_is_true():
    """The hint in the stride error: padding=K//2 with stride s gives ceil(H / s)."""
    for H in range(5, 12):
        for s in (2, 3):
            conv = layers.Conv2D(1, 1, kernel_size=5, stride=s, padding=2)
            assert conv.output_shape((1, H, H))[1] == -(-H // s)


def test_same_and_valid_survive_save_and_load(tmp_path):
    model = tc.Sequential(layers.Conv2D(1, 2, kernel_size=3, padding="same", rng=0), layers.ReLU(),
                          layers.Conv2D(2, 2, kernel_size=3, padding="valid", rng=1))
    model.save(tmp_path / "m.npz")
    loaded = tc.load_model(tmp_path / "m.npz")
    assert [repr(layer) for layer in loaded] == [repr(layer) for layer in model]
    assert loaded[0].padding_mode == "same" and loaded[2].padding_mode == "valid"
    x = np.random.default_rng(3).standard_normal((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
