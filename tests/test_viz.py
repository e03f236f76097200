"""Plots return Figures and write PNGs headless; saliency and Grad-CAM match hand math."""
import subprocess
import sys

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import layers, viz

PNG = b"\x89PNG"


def small_cnn(seed=0, dtype=np.float64):
    m = tc.Sequential(
        layers.Conv2D(1, 3, kernel_size=3, padding=1, rng=seed), layers.ReLU(), layers.MaxPool2D(2),
        layers.Conv2D(3, 4, kernel_size=3, padding=1, rng=seed + 1), layers.ReLU(),
        layers.Flatten(), layers.Dense(4 * 4 * 4, 2, rng=seed + 2),
    )
    return m.to(dtype)


def test_import_does_not_load_matplotlib():
    code = "import tinycnn, tinycnn.viz, tinycnn.transforms, tinycnn.datasets, sys; " \
           "print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def check_png(fig, path):
    from matplotlib.figure import Figure
    assert isinstance(fig, Figure)
    assert path.read_bytes()[:4] == PNG


def test_plot_history_from_history_object_and_dict(tmp_path):
    h = tc.History()
    for e, (l, vl, a, va) in enumerate([(1.0, 1.1, 0.5, 0.4), (0.5, 0.7, 0.8, 0.7)], start=1):
        h.append(e, {"loss": l, "val_loss": vl, "accuracy": a, "val_accuracy": va})
    fig = viz.plot_history(h, save=tmp_path / "curves.png")
    check_png(fig, tmp_path / "curves.png")
    assert len(fig.axes) == 2
    assert len(viz.plot_history({"loss": [3, 2, 1]}).axes) == 1
    with pytest.raises(ValueError, match="loss"):
        viz.plot_history({"accuracy": [0.5]})


def test_plot_confusion_matrix_roc_images(tmp_path):
    fig = viz.plot_confusion_matrix(np.array([[5, 1], [2, 7]]), ["healthy", "lesion"],
                                    save=tmp_path / "cm.png")
    check_png(fig, tmp_path / "cm.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["5", "1", "2", "7"]
    with pytest.raises(ValueError, match="square"):
        viz.plot_confusion_matrix(np.zeros((2, 3)))
    fig = viz.plot_roc([0, 0.5, 1], [0, 0.8, 1], auc=0.65, point=(0.5, 0.8), save=tmp_path / "roc.png")
    check_png(fig, tmp_path / "roc.png")
    assert "0.650" in fig.axes[0].get_legend().get_texts()[0].get_text()
    fig = viz.plot_images(np.zeros((5, 1, 8, 8)), labels=list("abcde"), save=tmp_path / "img.png")
    check_png(fig, tmp_path / "img.png")


def test_plot_filters_from_layer_or_array(tmp_path):
    conv = layers.Conv2D(1, 6, kernel_size=5, rng=0)
    fig = viz.plot_filters(conv, save=tmp_path / "filters.png")
    check_png(fig, tmp_path / "filters.png")
    assert sum(ax.get_visible() and bool(ax.images) for ax in fig.axes) == 6
    fig = viz.plot_filters(np.zeros((2, 3, 3, 3)))
    assert sum(bool(ax.images) for ax in fig.axes) == 6         # 2 filters x 3 channels
    with pytest.raises(ValueError, match=r"\(F, C, KH, KW\)"):
        viz.plot_filters(np.zeros((3, 3)))


def test_plot_feature_maps_rows_and_mode_restored(tmp_path):
    m = small_cnn(dtype=np.float32).train()
    x = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)
    fig = viz.plot_feature_maps(m, x, save=tmp_path / "fm.png")
    check_png(fig, tmp_path / "fm.png")
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles[0] == "input" and "0: Conv2D" in titles and "2: MaxPool2D" in titles
    assert "5: Flatten" not in titles
    assert m.training


def test_saliency_of_a_linear_model_is_abs_weights():
    rng = np.random.default_rng(0)
    m = tc.Sequential(layers.Flatten(), layers.Dense(2 * 3 * 3, 2, rng=0)).to(np.float64)
    x = rng.random((2, 3, 3))
    s = viz.saliency_map(m, x, target_class=1)
    w = m.layers[1].weight.data[1].reshape(2, 3, 3)      # d logit_1 / dx = W[1]
    np.testing.assert_allclose(s, np.abs(w).max(axis=0))
    assert all(np.all(p.grad == 0) for p in m.parameters())


def test_saliency_matches_finite_differences_and_keeps_mode():
    m = small_cnn().train()
    x = np.random.default_rng(1).random((1, 1, 8, 8))
    s = viz.saliency_map(m, x, target_class=0)
    assert s.shape == (8, 8) and np.all(s >= 0)
    assert m.training and all(np.all(p.grad == 0) for p in m.parameters())
    m.eval()
    eps, num = 1e-6, np.zeros((8, 8))
    for i in range(8):
        for j in range(8):
            xp, xm = x.copy(), x.copy()
            xp[0, 0, i, j] += eps
            xm[0, 0, i, j] -= eps
            num[i, j] = (m.forward(xp)[0, 0] - m.forward(xm)[0, 0]) / (2 * eps)
    np.testing.assert_allclose(s, np.abs(num), atol=1e-6)


def test_grad_cam_matches_hand_computation():
    rng = np.random.default_rng(0)
    conv = layers.Conv2D(1, 2, kernel_size=1, rng=0)
    dense = layers.Dense(2 * 4 * 4, 3, rng=1)
    m = tc.Sequential(conv, layers.Flatten(), dense).to(np.float64)
    x = rng.random((1, 1, 4, 4))
    cam = viz.grad_cam(m, x, target_class=2)
    A = conv.weight.data[:, 0, 0, 0][:, None, None] * x[0, 0] + conv.bias.data[:, None, None]
    dA = dense.weight.data[2].reshape(2, 4, 4)              # d score_2 / dA
    alpha = dA.mean(axis=(1, 2))
    expected = np.maximum((alpha[:, None, None] * A).sum(axis=0), 0)
    expected = expected / expected.max() if expected.max() > 0 else expected
    np.testing.assert_allclose(cam, expected, atol=1e-12)
    assert all(np.all(p.grad == 0) for p in m.parameters())


def test_grad_cam_default_layer_upsamples_and_errors(tmp_path):
    m = small_cnn()
    x = np.random.default_rng(2).random((1, 8, 8))
    cam = viz.grad_cam(m, x, target_class=1)             # last conv block, after its ReLU
    assert cam.shape == (8, 8) and cam.min() >= 0 and cam.max() <= 1
    np.testing.assert_array_equal(cam, viz.grad_cam(m, x, target_class=1, layer_index=4))
    assert not np.array_equal(cam, viz.grad_cam(m, x, target_class=1, layer_index=3))
    fig = viz.plot_saliency(x, cam, title="Grad-CAM", marks=[(3, 4, 2)], save=tmp_path / "cam.png")
    check_png(fig, tmp_path / "cam.png")
    with pytest.raises(ValueError, match="no Conv2D"):
        viz.grad_cam(tc.Sequential(layers.Flatten(), layers.Dense(64, 2, rng=0)), x)
    with pytest.raises(ValueError, match="differ in size"):
        viz.plot_saliency(x, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="one image"):
        viz.saliency_map(m, np.zeros((2, 1, 8, 8)))
