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


def titles(fig):
    """Every title in a figure: its suptitle and each axes' title."""
    found = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    return found + [ax.get_title() for ax in fig.axes if ax.get_title()]


def colorbar_labels(fig):
    """Labels of the colourbars (matplotlib gives each its own axes)."""
    return [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]


def test_plot_history_from_history_object_and_dict(tmp_path):
    h = tc.History()
    for e, (l, vl, a, va) in enumerate([(1.0, 1.1, 0.5, 0.4), (0.5, 0.7, 0.8, 0.7)], start=1):
        h.append(e, {"loss": l, "val_loss": vl, "accuracy": a, "val_accuracy": va})
    fig = viz.plot_history(h, save=tmp_path / "curves.png")
    check_png(fig, tmp_path / "curves.png")
    assert len(fig.axes) == 2
    assert "Learning curves" in titles(fig)[0]
    assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes] == [("epoch", "loss"), ("epoch", "accuracy")]
    assert len(viz.plot_history({"loss": [3, 2, 1]}).axes) == 1
    with pytest.raises(ValueError, match="loss"):
        viz.plot_history({"accuracy": [0.5]})


def test_confusion_matrix_shows_counts_and_row_percentages_and_hides_zeros(tmp_path):
    fig = viz.plot_confusion_matrix(np.array([[5, 0], [2, 6]]), ["healthy", "lesion"],
                                    save=tmp_path / "cm.png")
    check_png(fig, tmp_path / "cm.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["5\n100%", "2\n25%", "6\n75%"]   # no "0" cell
    assert "count" in ax.get_title() and "% of the true class (row)" in ax.get_title()
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted class", "true class")
    assert colorbar_labels(fig) == ["% of the true class (row)"]
    np.testing.assert_allclose(ax.images[0].get_array(), [[100, 0], [25, 75]])   # colour = row %
    fig = viz.plot_confusion_matrix(np.array([[999, 1], [0, 3]]), normalize=True)
    assert [t.get_text() for t in fig.axes[0].texts] == ["100%", "0.1%", "100%"]
    with pytest.raises(ValueError, match="square"):
        viz.plot_confusion_matrix(np.zeros((2, 3)))


def test_roc_marks_the_threshold_value(tmp_path):
    fig = viz.plot_roc([0, 0.5, 1], [0, 0.8, 1], auc=0.65, point=(0.5, 0.8), threshold=0.4271,
                       save=tmp_path / "roc.png")
    check_png(fig, tmp_path / "roc.png")
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "0.650" in legend[0] and "threshold 0.427" in legend
    assert [t.get_text() for t in ax.texts] == ["threshold 0.427\nTPR 0.80, FPR 0.50"]
    assert "ROC" in ax.get_title() and "false positive rate" in ax.get_xlabel()
    fig = viz.plot_roc([0, 1], [0, 1], point=(0.9, 0.1))        # no value given: still marked
    assert "chosen threshold" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_plot_images_has_a_title(tmp_path):
    fig = viz.plot_images(np.zeros((5, 1, 8, 8)), labels=list("abcde"), max_images=4,
                          save=tmp_path / "img.png")
    check_png(fig, tmp_path / "img.png")
    assert titles(fig)[0] == "4 of 5 images, titled with the labels given"
    assert viz.plot_images(np.zeros((2, 8, 8)), title="two blanks")._suptitle.get_text() == "two blanks"


def test_plot_filters_diverging_zero_centred_with_colourbar(tmp_path):
    conv = layers.Conv2D(1, 6, kernel_size=5, rng=0)
    fig = viz.plot_filters(conv, save=tmp_path / "filters.png")
    check_png(fig, tmp_path / "filters.png")
    images = [im for ax in fig.axes for im in ax.images]
    assert len(images) == 6
    top = np.abs(conv.weight.data).max()
    for im in images:                                  # one scale for all, centred on zero
        assert im.get_cmap().name == "RdBu_r" and im.get_clim() == pytest.approx((-top, top))
    assert colorbar_labels(fig) == ["weight (0 = white)"]
    assert "6 filters" in titles(fig)[0] and "red = positive" in titles(fig)[0]
    fig = viz.plot_filters(np.ones((3, 10, 3, 3)), max_filters=2, max_channels=4)
    assert sum(bool(ax.images) for ax in fig.axes) == 8          # 2 filters x 4 channels
    assert "2 of 3 filters, 4 of 10 input channels" in titles(fig)[0]
    assert [ax.get_ylabel() for ax in fig.axes if ax.images][::4] == ["filter 0", "filter 1"]
    with pytest.raises(ValueError, match=r"\(F, C, KH, KW\)"):
        viz.plot_filters(np.zeros((3, 3)))


def test_plot_feature_maps_labels_channels_and_shares_a_scale_per_layer(tmp_path):
    m = small_cnn(dtype=np.float32).train()
    x = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)
    fig = viz.plot_feature_maps(m, x, max_channels=2, save=tmp_path / "fm.png")
    check_png(fig, tmp_path / "fm.png")
    rows = [ax.get_ylabel() for ax in fig.axes if ax.images and ax.get_ylabel()]
    assert rows[0].startswith("input") and rows[1].startswith("0: Conv2D\n3×8×8\n2 of 3 ch")
    assert any(r.startswith("2: MaxPool2D") for r in rows)
    assert not any("Flatten" in r for r in rows)
    channel_titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert channel_titles[:3] == ["ch 0", "ch 0", "ch 1"]          # input, then conv channels
    assert "2 of 3 channels shown" in titles(fig)[0]
    conv_images = [ax.images[0] for ax in fig.axes if ax.images][1:3]
    assert conv_images[0].get_clim() == conv_images[1].get_clim()    # one scale per layer
    assert colorbar_labels(fig)[:2] == ["pixel value", "activation"]
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
    assert titles(fig)[0].startswith("Grad-CAM: which pixels")
    assert colorbar_labels(fig) == ["influence on the score (higher = more)"]
    with pytest.raises(ValueError, match="no Conv2D"):
        viz.grad_cam(tc.Sequential(layers.Flatten(), layers.Dense(64, 2, rng=0)), x)
    with pytest.raises(ValueError, match="differ in size"):
        viz.plot_saliency(x, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="one image"):
        viz.saliency_map(m, np.zeros((2, 1, 8, 8)))
