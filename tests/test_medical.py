"""The medical-imaging case study: cross-validation, the lesion pipeline and its CLI."""
import json

import numpy as np
import pytest

from tinycnn import Sequential, layers, optim
from tinycnn.cli import build_parser, main
from tinycnn.lesions_job import (class_weights, darkest_pixel_score, lesion_splits,
                                 standardize_patches, train_detector)
from tinycnn.losses import SoftmaxCrossEntropy
from tinycnn.metrics import roc_auc
from tinycnn.models import lesion_cnn
from tinycnn.validation import CVResult, binary_report, cross_validate, positive_scores


def _blobs(n=60, seed=0):
    """Two Gaussian clouds in 2-D, 25 % positives: a problem a linear model nearly solves."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 4 == 0).astype(np.int64)
    x = rng.normal(size=(n, 2)) + 2.5 * y[:, None]
    return x.astype(np.float32), y


def _linear(fold):
    model = Sequential(layers.Dense(2, 2, rng=fold))
    return model, {"optimizer": optim.Adam(model.parameters(), lr=0.1)}


def test_cross_validate_folds_are_stratified_and_cover_every_sample_once():
    x, y = _blobs()
    seen = []

    def metric(y_true, scores):                  # records what each fold was scored on
        seen.append(y_true.copy())
        return roc_auc(y_true, scores)

    cv = cross_validate(_linear, x, y, k=5, metric=metric, seed=3, loss=SoftmaxCrossEntropy(), epochs=15)
    assert len(cv.folds) == 5 and len(cv.scores) == 5 and len(cv.histories) == 5
    test_parts = np.concatenate([test for _, test in cv.folds])
    assert sorted(test_parts.tolist()) == list(range(len(y)))            # each sample tested once
    for (train, test), y_seen in zip(cv.folds, seen):
        assert np.intersect1d(train, test).size == 0 and len(train) + len(test) == len(y)
        assert np.bincount(y[test]).tolist() == [9, 3]                   # 25 % positives in every fold
        np.testing.assert_array_equal(y_seen, y[test])


def test_cross_validate_mean_and_std():
    x, y = _blobs()
    cv = cross_validate(_linear, x, y, k=4, seed=0, loss=SoftmaxCrossEntropy(), epochs=15)
    s = cv.scores
    assert cv.mean == pytest.approx(sum(s) / 4)
    assert cv.std == pytest.approx(np.sqrt(((s - s.mean()) ** 2).sum() / 3))   # ddof = 1
    assert cv.mean > 0.9                                                      # separable: near-perfect AUC
    assert str(cv) == f"{cv.mean:.3f} ± {cv.std:.3f} (4 folds)"
    r = CVResult([0.8, 0.9, 1.0], folds=[], histories=[])
    assert (r.mean, r.std) == (pytest.approx(0.9), pytest.approx(0.1))


def test_cross_validate_prepares_on_training_folds_only_and_holds_out_validation():
    x, y = _blobs(80)
    fitted_on = []

    def prepare(x_train):                        # records which samples it was fitted on
        fitted_on.append(x_train[:, 1].copy())
        return lambda a: a

    cv = cross_validate(_linear, x, y, k=4, prepare=prepare, val_fraction=0.25, seed=1,
                        loss=SoftmaxCrossEntropy(), epochs=2)
    for (train, test), seen in zip(cv.folds, fitted_on):
        # 60 training samples (45 healthy, 15 lesion), minus a stratified quarter (11 + 4)
        assert len(seen) == 45
        assert np.isin(seen, x[train, 1]).all() and not np.isin(seen, x[test, 1]).any()
    assert all("val_loss" in h.history for h in cv.histories)


def test_cross_validate_mistakes():
    x, y = _blobs()
    with pytest.raises(ValueError, match="val_fraction"):
        cross_validate(_linear, x, y, validation_data=(x, y), loss=SoftmaxCrossEntropy())
    with pytest.raises(ValueError, match="no optimizer"):
        cross_validate(lambda i: Sequential(layers.Dense(2, 2)), x, y, loss=SoftmaxCrossEntropy())
    with pytest.raises(ValueError, match="fewer than k"):
        cross_validate(_linear, x[:8], y[:8], k=5, loss=SoftmaxCrossEntropy())


def test_positive_scores_and_binary_report():
    assert positive_scores(np.array([[0.7], [0.2]])).tolist() == [0.7, 0.2]
    assert positive_scores(np.array([0.3, 0.4])).tolist() == [0.3, 0.4]
    with pytest.raises(ValueError, match="positive_scores"):
        positive_scores(np.ones((2, 3)))
    y = np.array([0, 0, 0, 1, 1])
    r = binary_report(y, [0.1, 0.6, 0.2, 0.7, 0.4], threshold=0.5)
    assert r["confusion"].tolist() == [[2, 1], [1, 1]]
    assert (r["sensitivity"], r["specificity"], r["accuracy"]) == (0.5, pytest.approx(2 / 3), 0.6)
    assert r["auc"] == pytest.approx(5 / 6)            # positives win 5 of the 6 (pos, neg) pairs


def test_preprocessing_helpers():
    x = np.random.default_rng(0).uniform(0.2, 0.9, size=(5, 1, 8, 8)).astype(np.float32)
    x *= np.arange(1, 6, dtype=np.float32)[:, None, None, None]
    z = standardize_patches(x)
    assert z.dtype == np.float32 and z.shape == x.shape
    np.testing.assert_allclose(z.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(1, 2, 3)), 1, atol=1e-4)
    np.testing.assert_allclose(standardize_patches(3 * x + 1), z, atol=1e-4)     # gain/offset gone
    np.testing.assert_allclose(class_weights(np.array([0] * 8 + [1] * 2)), [0.625, 2.5])
    assert darkest_pixel_score(x).tolist() == (-x.reshape(5, -1).min(axis=1)).astype(np.float64).tolist()


def test_lesion_cnn():
    model = lesion_cnn()
    assert sum(p.size for p in model.parameters()) == 5954
    assert model.forward(np.zeros((3, 1, 32, 32), np.float32)).shape == (3, 2)
    assert lesion_cnn(input_size=28, in_channels=3).forward(np.zeros((2, 3, 28, 28), np.float32)).shape == (2, 2)
    with pytest.raises(ValueError, match="multiple of 4"):
        lesion_cnn(input_size=30)


def test_lesion_splits_and_balanced_sampler_training():
    data = lesion_splits(200, seed=2)
    assert [len(data[k][1]) for k in ("train", "val", "test")] == [120, 30, 50]
    assert [int(data[k][1].sum()) for k in ("train", "val", "test")] == [24, 6, 10]
    np.testing.assert_allclose(data["test"][0].std(axis=(1, 2, 3)), 1, atol=1e-4)
    model, history = train_detector(*data["train"], *data["val"], epochs=1, imbalance="sampler", seed=0)
    assert history.epoch == [1] and model.predict(data["test"][0]).shape == (50, 2)
    with pytest.raises(ValueError, match="imbalance"):
        train_detector(*data["train"], *data["val"], imbalance="oversample")


def test_cli_defaults_depend_on_the_dataset():
    from tinycnn.cli import _check_train_args
    args = build_parser().parse_args(["train"])
    _check_train_args(args)
    assert (args.epochs, args.lr) == (30, 0.02)                 # LeNet-5: issue 15 recipe
    args = build_parser().parse_args(["train", "--dataset", "lesions"])
    _check_train_args(args)
    assert (args.epochs, args.lr, args.samples) == (25, 2e-3, 4000)


def test_cli_lesions_short_run(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", "--dataset", "lesions", "--samples", "300", "--epochs", "2",
                 "--out", str(out), "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "test AUC" in printed and "sensitivity" in printed and "not for clinical use" in printed
    (folder,) = list(out.iterdir())
    assert sorted(p.name for p in folder.iterdir()) == [
        "confusion.png", "curves.png", "explain_lesion.html", "history.json", "model.npz", "roc.png"]
    record = json.loads((folder / "history.json").read_text())
    assert 0.0 <= record["test_auc"] <= 1.0 and 0.0 <= record["baseline_darkest_pixel_auc"] <= 1.0
    assert 0.0 <= record["sensitivity"] <= 1.0 and 0.0 <= record["specificity"] <= 1.0
    assert np.array(record["confusion"]).sum() == 75                 # 25 % of 300 patches
    assert main(["evaluate", str(folder / "model.npz")]) == 0
    printed = capsys.readouterr().out
    assert "ROC AUC" in printed and "lesions test split: 75 images" in printed


def test_cli_lesions_mistakes(capsys):
    assert main(["train", "--dataset", "lesions", "--samples", "10"]) == 2
    assert "--samples must be >= 50" in capsys.readouterr().err
