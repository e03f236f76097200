"""Sequential, fit/evaluate/predict, summary and model files."""
import json
import os

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import layers, losses, optim


def lenet(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return tc.Sequential(
        layers.Conv2D(1, 6, kernel_size=5, stride=1, padding=2, rng=rng, dtype=dtype), layers.ReLU(),
        layers.MaxPool2D(2),
        layers.Conv2D(6, 16, kernel_size=5, rng=rng, dtype=dtype), layers.ReLU(),
        layers.AvgPool2D(2),
        layers.Flatten(),
        layers.Dense(16 * 5 * 5, 120, rng=rng, dtype=dtype), layers.ReLU(),
        layers.Dense(120, 84, rng=rng, dtype=dtype), layers.ReLU(),
        layers.Dense(84, 10, rng=rng, dtype=dtype),
    )


def blobs(n=200, seed=0):
    """Two separable classes of 1×6×6 images: a bright left half or a bright right half."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 0.1, (n, 1, 6, 6)).astype(np.float32)
    x[y == 0, :, :, :3] += 1
    x[y == 1, :, :, 3:] += 1
    return x, y


def small_model(seed=0):
    rng = np.random.default_rng(seed)
    return tc.Sequential(layers.Conv2D(1, 4, kernel_size=3, rng=rng), layers.ReLU(), layers.MaxPool2D(2),
                         layers.Flatten(), layers.Dropout(0.2), layers.Dense(16, 2, rng=rng))


def test_lenet_parameter_count_and_summary():
    model = lenet()
    assert sum(p.size for p in model.parameters()) == 61_706
    text = model.summary(input_shape=(1, 28, 28))
    assert "Conv2D(1→6, k=5, p=2)" in text and "(N, 6, 28, 28)" in text
    assert "(5·5·1 + 1)·6 = 156" in text and "(400 + 1)·120 = 48,120" in text
    assert "(N, 16, 5, 5)" in text and "(N, 10)" in text
    assert text.strip().endswith("Total parameters: 61,706 (trainable: 61,706, frozen: 0)")


def test_fit_learns_a_separable_problem():
    x, y = blobs()
    model = small_model()
    history = model.fit(x, y, loss=losses.SoftmaxCrossEntropy(), optimizer=optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                        epochs=8, batch_size=16, validation_data=blobs(100, seed=1), seed=0, verbose=False)
    assert history.history["accuracy"][-1] == 1.0
    assert history.history["val_accuracy"][-1] == 1.0
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate(*blobs(100, seed=2))["accuracy"] == 1.0


def test_same_seed_same_history_and_weights():
    x, y = blobs()
    runs = []
    for _ in range(2):
        model = small_model(seed=3)
        h = model.fit(x, y, loss=losses.SoftmaxCrossEntropy(), optimizer=optim.Adam(model.parameters(), lr=0.01),
                      epochs=3, batch_size=32, seed=42, verbose=False)
        runs.append((h.history["loss"], [p.data.copy() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    model = small_model(seed=3)
    h = model.fit(x, y, loss=losses.SoftmaxCrossEntropy(), optimizer=optim.Adam(model.parameters(), lr=0.01),
                  epochs=3, batch_size=32, seed=7, verbose=False)
    assert h.history["loss"] != runs[0][0]


def test_fit_with_schedule_augment_and_early_stopping():
    x, y = blobs()
    model = small_model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    seen = []

    def augment(xb, rng):
        seen.append(len(xb))
        return xb + rng.normal(0, 0.01, xb.shape).astype(xb.dtype)

    stop = tc.EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0)   # no epoch beats epoch 1 by 10
    h = model.fit(x, y, loss=losses.SoftmaxCrossEntropy(), optimizer=opt, epochs=5, batch_size=50,
                  validation_data=blobs(50, seed=1), scheduler=optim.StepLR(opt, 1, 0.5), callbacks=[stop],
                  augment=augment, seed=0, verbose=False)
    assert h.epoch == [1, 2] and h.history["lr"] == [0.1, 0.05]
    assert sum(seen) == 2 * len(x)
    assert stop.best_epoch == 1


def test_predict_is_batched_eval_mode_and_keeps_no_cache():
    x, y = blobs(70)
    model = small_model()
    probs = model.predict(x, batch_size=32)
    assert probs.shape == (70, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(probs, model.predict(x, batch_size=7))    # dropout is off
    assert all(layer._cache is None for layer in model.layers)
    assert model.training
    with pytest.raises(ValueError, match="backward\\(\\) called before forward"):
        model.backward(np.ones((70, 2), np.float32))


def test_to_float64_and_mismatched_dtype_message():
    model = small_model().to(np.float64)
    assert model.dtype == np.float64
    with pytest.raises(TypeError, match=r"input dtype float32 differs from the layer's parameters \(float64\)"):
        model.forward(np.zeros((1, 1, 6, 6), np.float32))


def test_save_load_round_trip_is_exact(tmp_path):
    model = lenet(seed=5)
    model.meta.update({"mean": 0.13, "std": 0.31, "class_names": [str(k) for k in range(10)]})
    x = np.random.default_rng(0).random((9, 1, 28, 28)).astype(np.float32)
    path = tmp_path / "lenet.npz"
    model.save(path)
    loaded = tc.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.meta["class_names"][3] == "3" and loaded.meta["mean"] == 0.13
    assert [repr(a) for a in loaded.layers] == [repr(b) for b in model.layers]
    assert not [f for f in os.listdir(tmp_path) if f != "lenet.npz"]     # no temp file left


def _rewrite(path, out, edit):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    spec = json.loads(str(arrays["architecture"]))
    edit(spec, arrays)
    arrays["architecture"] = np.array(json.dumps(spec))
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize("edit, message", [
    (lambda s, a: s["layers"][0].update({"class": "EvilLayer"}), "unknown class 'EvilLayer'"),
    (lambda s, a: a.pop("layer0.weight"), "missing weights 'layer0.weight'"),
    (lambda s, a: a.update({"layer9.weight": np.zeros(3)}), "weights no layer uses"),
    (lambda s, a: a.update({"layer0.bias": np.zeros(5, np.float32)}), r"has shape \(5,\), expected \(4,\)"),
    (lambda s, a: s.update({"format": 99}), "format 99"),
])
def test_bad_model_files(tmp_path, edit, message):
    good = small_model().save(tmp_path / "good.npz")
    bad = _rewrite(good, tmp_path / "bad.npz", edit)
    with pytest.raises(ValueError, match=message):
        tc.load_model(bad)


def test_model_file_with_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, architecture=np.array([{"class": "Dense"}], dtype=object))
    with pytest.raises(ValueError, match="not a valid tinycnn model file"):
        tc.load_model(path)


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    small_model().save(path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        small_model(seed=9).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]
