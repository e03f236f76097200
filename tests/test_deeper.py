"""BatchNorm, global average pooling, Conv2D without bias, Residual and resnet_mini."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import layers, losses
from tinycnn.models import resnet_mini

BACKENDS = pytest.mark.parametrize("backend", ["reference", "numba"])


# ------------------------------------------------------------------ BatchNorm
def test_batchnorm_training_forward_by_hand():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2) ** 1.5
    bn = layers.BatchNorm2D(3, eps=1e-3, momentum=0.25, dtype=np.float64)
    bn.weight.data[:] = [1.0, 2.0, -0.5]
    bn.bias.data[:] = [0.0, 1.0, 3.0]
    y = bn.forward(x)
    for c in range(3):
        v = x[:, c].ravel()
        mu, var = v.mean(), ((v - v.mean()) ** 2).mean()                # biased
        want = bn.weight.data[c] * (x[:, c] - mu) / np.sqrt(var + 1e-3) + bn.bias.data[c]
        np.testing.assert_allclose(y[:, c], want, rtol=1e-12)
        assert bn.running_mean[c] == pytest.approx(0.25 * mu)
        assert bn.running_var[c] == pytest.approx(0.75 + 0.25 * var * 8 / 7)   # unbiased


def test_batchnorm_eval_uses_running_statistics_and_changes_nothing():
    rng = np.random.default_rng(0)
    bn = layers.BatchNorm2D(4)
    for _ in range(3):
        bn.forward(rng.standard_normal((8, 4, 3, 3)).astype(np.float32) * 3 + 1)
    mean, var = bn.running_mean.copy(), bn.running_var.copy()
    bn.eval()
    x = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    y1, y2 = bn.forward(x), bn.forward(x)
    assert np.array_equal(y1, y2)
    assert np.array_equal(mean, bn.running_mean) and np.array_equal(var, bn.running_var)
    want = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + bn.eps)
    np.testing.assert_allclose(y1, want, rtol=1e-5, atol=1e-6)
    # the running statistics are not parameters: no optimizer can touch them
    assert all(p.name in ("weight", "bias") for p in bn.parameters())


def test_batchnorm_errors_name_the_layer():
    bn = layers.BatchNorm2D(3)
    with pytest.raises(ValueError, match=r"BatchNorm2D\(3\): expected 3 channels"):
        bn.forward(np.zeros((2, 4, 2, 2), np.float32))
    with pytest.raises(ValueError, match="more than one value per channel"):
        bn.forward(np.zeros((1, 3, 1, 1), np.float32))
    with pytest.raises(ValueError, match="ndim|dimension|4"):
        bn.forward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="momentum"):
        layers.BatchNorm2D(3, momentum=2)


bn_cases = st.tuples(st.integers(2, 4), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4),
                     st.integers(0, 2**31))


@BACKENDS
@given(bn_cases)
def test_batchnorm2d_gradients_in_training_mode(backend, case):
    N, C, H, W, seed = case
    rng = np.random.default_rng(seed)
    bn = layers.BatchNorm2D(C, dtype=np.float64)
    bn.weight.data = rng.standard_normal(C) + 2.0
    bn.bias.data = rng.standard_normal(C)
    with tc.use_backend(backend):
        tc.assert_gradients_close(bn, rng.standard_normal((N, C, H, W)) * 2 + 1)


@given(st.integers(2, 6), st.integers(1, 5), st.integers(0, 2**31))
def test_batchnorm1d_gradients_in_training_and_eval_mode(N, C, seed):
    rng = np.random.default_rng(seed)
    bn = layers.BatchNorm1D(C, dtype=np.float64)
    bn.weight.data = rng.standard_normal(C) + 2.0
    tc.assert_gradients_close(bn, rng.standard_normal((N, C)))
    bn.running_var[:] = rng.random(C) + 0.5
    tc.assert_gradients_close(bn.eval(), rng.standard_normal((N, C)))


# ------------------------------------------------------------------ GlobalAvgPool2D, Conv2D(bias=False)
@BACKENDS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**31))
def test_global_avg_pool(backend, N, C, H, W, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    gap = layers.GlobalAvgPool2D()
    np.testing.assert_allclose(gap.forward(x), x.mean(axis=(2, 3)), rtol=1e-12)
    # the same as an average pool as large as the map
    np.testing.assert_allclose(gap.forward(x), layers.AvgPool2D((H, W)).forward(x)[:, :, 0, 0], rtol=1e-12)
    with tc.use_backend(backend):
        tc.assert_gradients_close(gap, x)


@BACKENDS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(0, 2**31))
def test_conv_without_bias(backend, C, F, K, stride, seed):
    rng = np.random.default_rng(seed)
    conv = layers.Conv2D(C, F, K, stride=stride, padding=1, bias=False, rng=rng, dtype=np.float64)
    assert conv.bias is None and [p.name for p in conv.parameters()] == ["weight"]
    with_bias = layers.Conv2D(C, F, K, stride=stride, padding=1, rng=0, dtype=np.float64)
    with_bias.weight.data = conv.weight.data.copy()
    x = rng.standard_normal((2, C, 6, 5))
    with tc.use_backend(backend):
        np.testing.assert_array_equal(conv.forward(x), with_bias.forward(x))     # bias is zero
        tc.assert_gradients_close(conv, x)


def test_conv_without_bias_in_summary_and_files(tmp_path):
    model = tc.Sequential(layers.Conv2D(1, 4, 3, bias=False, rng=0), layers.BatchNorm2D(4),
                          layers.Flatten(), layers.Dense(4 * 4 * 4, 2, rng=0), input_shape=(1, 6, 6))
    text = str(model.summary())
    assert "3·3·1·4 = 36" in text and "no bias" in text
    path = model.save(tmp_path / "m.npz")
    with np.load(path) as archive:
        assert not any(name.startswith("layer0.bias") or name.startswith("layers.0.bias")
                       for name in archive.files)
    back = tc.load_model(path)
    assert back.layers[0].bias is None
    assert sum(p.size for p in back.parameters()) == sum(p.size for p in model.parameters())


# ------------------------------------------------------------------ Residual
def test_residual_is_f_plus_s_and_backward_adds_the_branches():
    rng = np.random.default_rng(0)
    f1, f2 = layers.Dense(3, 3, rng=1, dtype=np.float64), layers.Tanh()
    block = layers.Residual(f1, f2)
    x = rng.standard_normal((4, 3))
    np.testing.assert_allclose(block.forward(x), np.tanh(f1.forward(x)) + x, rtol=1e-12)
    dy = rng.standard_normal((4, 3))
    dx = block.backward(dy)
    f1.zero_grad()
    f1.forward(x); f2.forward(f1.forward(x))
    np.testing.assert_allclose(dx, f1.backward(f2.backward(dy)) + dy, rtol=1e-12)


@BACKENDS
@given(st.integers(1, 3), st.integers(1, 3), st.sampled_from([1, 2]), st.integers(0, 2**31))
def test_residual_gradients(backend, C, F, stride, seed):
    rng = np.random.default_rng(seed)
    shortcut = None
    if stride != 1 or C != F:
        shortcut = [layers.Conv2D(C, F, 1, stride=stride, bias=False, rng=rng, dtype=np.float64),
                    layers.BatchNorm2D(F, dtype=np.float64)]
    block = layers.Residual(
        # no bias before BatchNorm: its gradient is exactly 0 (BN subtracts the channel mean),
        # so a finite difference could only measure rounding noise
        layers.Conv2D(C, F, 3, stride=stride, padding=1, bias=False, rng=rng, dtype=np.float64),
        layers.BatchNorm2D(F, dtype=np.float64), layers.Tanh(),
        layers.Conv2D(F, F, 3, padding=1, rng=rng, dtype=np.float64),
        shortcut=shortcut)
    # A conv followed by BatchNorm is scale-invariant (BN(a·z) = BN(z) for a > 0), so some
    # weight gradients are ~1e-4 or smaller while the finite difference carries ~1e-9 of
    # rounding noise (|loss|·1e-16/eps): compare gradients below 1e-3 absolutely (1e-8).
    with tc.use_backend(backend):
        tc.assert_gradients_close(block, rng.standard_normal((2, C, 5, 5)), floor=1e-3)


def test_residual_shape_mismatch_is_named_at_build_time_and_on_forward():
    block = layers.Residual(layers.Conv2D(2, 4, 3, padding=1, rng=0))
    with pytest.raises(ValueError, match=r"branch gives \(4, 6, 6\) but the shortcut gives \(2, 6, 6\)"):
        tc.Sequential(block, input_shape=(2, 6, 6)).summary()
    with pytest.raises(ValueError, match=r"branch gives shape \(1, 4, 6, 6\) but the shortcut gives \(1, 2, 6, 6\)"):
        block.forward(np.zeros((1, 2, 6, 6), np.float32))
    with pytest.raises(TypeError, match="not a tinycnn Layer"):
        layers.Residual(layers.ReLU(), "relu")


def test_containers_recurse():
    model = resnet_mini(widths=(2, 4), blocks_per_stage=1, input_size=8)
    inner = [layer for block in model.layers if isinstance(block, layers.Residual)
             for group in block.children().values() for layer in group]
    assert len(model.parameters()) == sum(len(layer.parameters()) for layer in model.layers)
    model.eval()
    assert not any(layer.training for layer in inner)
    model.to(np.float64)
    assert all(p.data.dtype == np.float64 for p in model.parameters())
    assert all(layer.running_mean.dtype == np.float64 for layer in inner if hasattr(layer, "running_mean"))
    model.freeze()
    assert not any(p.trainable for p in model.parameters())


# ------------------------------------------------------------------ resnet_mini end to end
def test_resnet_mini_default_size():
    model = resnet_mini()
    assert sum(p.size for p in model.parameters()) == 174_970
    assert model.forward(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)


@BACKENDS
def test_whole_resnet_mini_gradients(backend):
    rng = np.random.default_rng(3)
    model = resnet_mini(in_channels=2, num_classes=3, widths=(2, 3), blocks_per_stage=1,
                        input_size=6, rng=1, dtype=np.float64)
    x = rng.standard_normal((3, 2, 6, 6))
    y = np.array([0, 2, 1])
    with tc.use_backend(backend):
        report = tc.gradcheck(model, x, y, loss=losses.SoftmaxCrossEntropy(), floor=1e-3)
    assert report.passed, str(report)


def test_resnet_mini_save_load_keeps_running_statistics_and_predict_uses_eval(tmp_path):
    rng = np.random.default_rng(0)
    model = resnet_mini(widths=(4, 8), blocks_per_stage=1, input_size=12)
    x = rng.random((16, 1, 12, 12)).astype(np.float32)
    model.train()
    for _ in range(2):
        model.forward(x)                       # moves the running statistics
    p1 = model.predict(x)
    assert model.training                     # predict switched to eval and back
    assert np.array_equal(p1, model.predict(x))
    back = tc.load_model(model.save(tmp_path / "resnet.npz"))
    assert np.array_equal(back.predict(x), p1)


def test_resnet_mini_trains():
    (x, y), _ = tc.datasets.load_mnist5k(seed=0)
    x, y = x[:512], y[:512]
    model = resnet_mini(widths=(8, 16), blocks_per_stage=1)
    opt = tc.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    history = model.fit(x, y, loss=losses.SoftmaxCrossEntropy(), optimizer=opt, epochs=5,
                        batch_size=32, seed=0, verbose=False)
    assert history.history["loss"][-1] < 0.75 * history.history["loss"][0]
