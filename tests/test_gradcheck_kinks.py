"""gradcheck tells kinks (ReLU at 0, max-pool ties) from wrong gradients, and its report is
truthful in a boolean context."""
import numpy as np
import pytest

import tinycnn as tc
from tinycnn import layers, losses

EPS = 1e-6


def near_zero_relu_input():
    """Twelve inputs; the first four lie within eps of ReLU's kink, the rest far from it."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 12))
    x = np.sign(x) * (0.1 + np.abs(x))
    x[0, :4] = [0.0, 3e-7, -2e-7, 5e-8]
    return x


@pytest.mark.parametrize("layer", [layers.ReLU(), layers.LeakyReLU(0.1)], ids=repr)
def test_relu_zero_is_a_kink_not_a_failure(layer):
    report = tc.gradcheck(layer, near_zero_relu_input(), eps=EPS)
    entry = report["input x"]
    assert report.passed is True and bool(report)
    assert sorted(entry.kink_indices) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    assert entry.kinks == 4 and entry.checked == 12
    assert "input crossed 0" in entry.kink_where and repr(layer) in entry.kink_where
    text = str(report)
    assert "4 KINK" in text and "FAIL" not in text and text.endswith("passed")


def test_the_kink_entries_really_have_a_wrong_finite_difference():
    """The skipped entries are the ones a plain central difference gets wrong (by hand)."""
    x = near_zero_relu_input()[0, :4]
    numeric = (np.maximum(x + EPS, 0) - np.maximum(x - EPS, 0)) / (2 * EPS)
    analytic = (x > 0).astype(float)
    assert np.all(np.abs(numeric - analytic) > 0.3)


def test_max_pool_tie_is_a_kink():
    x = np.array([[[[2.0, 2.0], [1.0, 0.5]]]])          # two equal maxima in one window
    report = tc.gradcheck(layers.MaxPool2D(2), x)
    entry = report["input x"]
    assert report.passed and entry.kinks == 2
    assert sorted(entry.kink_indices) == [(0, 0, 0, 0), (0, 0, 0, 1)]
    assert "MaxPool2D(2) argmax changed" in entry.kink_where
    # away from the tie nothing is skipped and everything is compared
    clean = tc.gradcheck(layers.MaxPool2D(2), x + np.array([[[[0.0, 0.3], [0.1, 0.2]]]]))
    assert clean.passed and clean.kinks == 0 and clean.max_rel_error < 1e-8


def test_smooth_layers_report_no_kinks():
    rng = np.random.default_rng(2)
    model = tc.Sequential(layers.Conv2D(1, 2, kernel_size=3, rng=rng, dtype=np.float64), layers.Tanh(),
                          layers.AvgPool2D(2), layers.Flatten(), layers.Dense(8, 2, rng=rng, dtype=np.float64),
                          layers.Sigmoid())
    report = tc.gradcheck(model, rng.standard_normal((2, 1, 6, 6)))
    assert report.passed and report.kinks == 0 and "KINK" not in str(report)


def test_a_wrong_backward_still_fails_next_to_kinks():
    class BrokenReLU(layers.ReLU):
        def _df(self, x, y, dy):
            return dy * (x > 0) * 1.01   # 1% off

    report = tc.gradcheck(BrokenReLU(), near_zero_relu_input())
    assert report.passed is False and not report
    assert report["input x"].kinks == 4
    assert "FAIL at" in str(report) and str(report).endswith("FAILED: input x")
    with pytest.raises(AssertionError, match=r"input x at index"):
        tc.assert_gradients_close(BrokenReLU(), near_zero_relu_input())


def test_if_report_is_truthful():
    x = near_zero_relu_input()
    good = tc.gradcheck(layers.Tanh(), x)
    bad = tc.gradcheck(layers.Tanh(), x, tol=0.0, floor=1e-300)   # nothing is exactly equal
    assert good and good.passed
    assert not bad.passed and not bad
    assert bad.failures() and not bad.failures(tol=1e-5)


def test_model_on_images_with_empty_regions_passes_with_kinks():
    """All-zero pixels give exact ties in max pooling and exact zeros at ReLUs: the README case."""
    rng = np.random.default_rng(3)
    model = tc.Sequential(layers.Conv2D(1, 3, kernel_size=3, padding=1, rng=rng), layers.ReLU(),
                          layers.MaxPool2D(2), layers.Flatten(), layers.Dense(3 * 4 * 4, 4, rng=rng))
    x = np.zeros((2, 1, 8, 8), np.float32)
    x[:, :, 2:6, 3:5] = rng.uniform(0.5, 1.0, (2, 1, 4, 2))           # a stroke on a blank page
    report = tc.assert_gradients_close(model, x, np.array([1, 3]), loss=losses.SoftmaxCrossEntropy(),
                                       max_entries=200)
    assert report.passed and report["input x"].kinks > 0
    assert report["input x"].kink_where.startswith("layer ")
    compared = report["input x"].checked - report["input x"].kinks
    assert compared > 0 and report["input x"].max_rel_error < 1e-5


def test_a_container_reports_its_childrens_kinks_without_code_of_its_own():
    class Wrap(layers.Layer):                  # a minimal container: y = f(x) for one held layer f
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner.forward(x)

        def backward(self, dy):
            return self.inner.backward(dy)

        def children(self):
            return {"layers": [self.inner]}

    report = tc.gradcheck(tc.Sequential(Wrap(layers.ReLU())), near_zero_relu_input())
    entry = report["input x"]
    assert report.passed and entry.kinks == 4
    assert entry.kink_where == "layer 0 Wrap() layers[0] ReLU() input crossed 0"
