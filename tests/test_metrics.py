"""Metrics against values worked out by hand (ties included) and against scikit-learn."""
import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinycnn.metrics import (
    accuracy, best_threshold, classification_report, confusion_matrix, precision_recall_f1,
    roc_auc, roc_curve, sensitivity_specificity,
)


def test_accuracy_and_confusion_matrix_by_hand():
    y_true = [0, 0, 1, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 2, 2]
    assert accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    cm = confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 1], [0, 0, 1]])
    assert cm.dtype == np.int64
    cm5 = confusion_matrix(y_true, y_pred, num_classes=5)
    assert cm5.shape == (5, 5) and cm5[3:].sum() == 0
    with pytest.raises(ValueError, match="num_classes=2"):
        confusion_matrix(y_true, y_pred, num_classes=2)


def test_precision_recall_f1_by_hand():
    r = precision_recall_f1([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 2, 2])
    # class 0: TP 1, predicted 1, true 2 -> P 1, R 1/2; class 1: TP 2, pred 3, true 3; class 2: TP 1, pred 2, true 1
    np.testing.assert_allclose(r["precision"], [1, 2 / 3, 1 / 2])
    np.testing.assert_allclose(r["recall"], [1 / 2, 2 / 3, 1])
    np.testing.assert_allclose(r["f1"], [2 / 3, 2 / 3, 2 / 3])
    np.testing.assert_array_equal(r["support"], [2, 3, 1])
    assert r["macro_precision"] == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    assert r["macro_f1"] == pytest.approx(2 / 3)
    # a class never predicted: precision 0 (not NaN)
    r = precision_recall_f1([0, 1], [0, 0])
    np.testing.assert_allclose(r["precision"], [0.5, 0.0])
    np.testing.assert_allclose(r["f1"], [2 / 3, 0.0])


def test_sensitivity_specificity_with_and_without_threshold():
    y = [1, 1, 1, 0, 0]
    assert sensitivity_specificity(y, [1, 0, 1, 0, 1]) == pytest.approx((2 / 3, 1 / 2))
    scores = [0.9, 0.5, 0.2, 0.5, 0.1]
    assert sensitivity_specificity(y, scores, threshold=0.5) == pytest.approx((2 / 3, 1 / 2))
    assert sensitivity_specificity(y, scores, threshold=0.6) == pytest.approx((1 / 3, 1.0))
    sens, spec = sensitivity_specificity([0, 0], [0, 1])
    assert np.isnan(sens) and spec == 0.5
    with pytest.raises(ValueError, match="binary"):
        sensitivity_specificity(y, [0.9, 0.5, 0.2, 0.5, 0.1])


def test_roc_curve_with_ties_is_one_step_per_distinct_score():
    y = [0, 0, 1, 1, 0, 1]
    s = [0.1, 0.4, 0.4, 0.8, 0.8, 0.9]
    fpr, tpr, thr = roc_curve(y, s)
    # thresholds inf, .9, .8, .4, .1; at >=.8: TP 2 FP 1; at >=.4: TP 3 FP 2
    np.testing.assert_allclose(thr, [np.inf, 0.9, 0.8, 0.4, 0.1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 1 / 3, 2 / 3, 1])
    # area: 0 + (1/3)(1/3+2/3)/2 + (1/3)(2/3+1)/2 + (1/3)(1) = 1/6 + 5/18 + 1/3 = 7/9
    assert roc_auc(y, s) == pytest.approx(7 / 9)


def mann_whitney(y, s):
    y, s = np.asarray(y), np.asarray(s, dtype=float)
    pos, neg = s[y == 1], s[y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_hand_cases():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5      # all tied: the diagonal
    assert roc_auc([0, 1], [0.3, 0.3]) == 0.5
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert roc_auc([False, True, True], [0.2, 0.1, 0.3]) == 0.5


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 4)), min_size=2, max_size=30))
def test_auc_equals_mann_whitney_with_half_ties(pairs):
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs], dtype=float)      # few distinct values: many ties
    if y.min() == y.max():
        with pytest.raises(ValueError, match="only class"):
            roc_auc(y, s)
        return
    assert roc_auc(y, s) == pytest.approx(mann_whitney(y, s))
    fpr, tpr, thr = roc_curve(y, s)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert len(thr) == len(np.unique(s)) + 1


def test_best_threshold_criteria():
    y = [0, 0, 0, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.6, 0.5, 0.7, 0.9]
    # youden: at >=0.5: TPR 1, FPR 1/4 -> J 0.75 (best); at >=0.7: TPR 2/3, FPR 0 -> 0.667
    assert best_threshold(y, s) == 0.5
    # f1 at 0.5: 2*3/(2*3+1+0)=6/7; at 0.7: 4/5 -> 0.5
    assert best_threshold(y, s, criterion="f1") == 0.5
    # accuracy at 0.7: 6/7 ; at 0.5: 6/7 -> first reached (highest threshold) wins
    assert best_threshold(y, s, criterion="accuracy") == 0.7
    with pytest.raises(ValueError, match="criterion"):
        best_threshold(y, s, criterion="magic")


def test_errors_are_clear():
    with pytest.raises(ValueError, match="3 entries but y_pred has 2"):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        confusion_matrix([], [])
    with pytest.raises(ValueError, match="only class 1"):
        roc_auc([1, 1, 1], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="binary"):
        roc_curve([0, 2, 1], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="1-D"):
        roc_auc([0, 1], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="integer class"):
        confusion_matrix([0.5, 1], [0, 1])
    with pytest.raises(ValueError, match="negative"):
        confusion_matrix([-1, 1], [0, 1])


def test_classification_report_lists_classes_and_totals():
    text = classification_report([0, 1, 1, 2], [0, 1, 2, 2], class_names=["cat", "dog", "eel"])
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[2].split() == ["dog", "1.000", "0.500", "0.667", "2"]
    assert lines[-1].split() == ["accuracy", "0.750", "4"]
    with pytest.raises(ValueError, match="2 class names for 3"):
        classification_report([0, 1, 2], [0, 1, 2], class_names=["a", "b"])


# ------------------------------------------------------------------ scikit-learn as an oracle
# An independent implementation (the `test` extra; tinycnn itself never imports it).

labels_and_scores = st.integers(2, 40).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 1), min_size=n, max_size=n),
    st.lists(st.integers(0, 6), min_size=n, max_size=n)))       # few distinct scores: ties


@settings(max_examples=150, deadline=None)
@given(labels_and_scores)
def test_roc_curve_and_auc_match_scikit_learn(data):
    from sklearn import metrics as sk
    y, s = np.array(data[0]), np.array(data[1], dtype=float) / 6
    assume(y.min() != y.max())                       # one class: both refuse (tested above)
    fpr, tpr, thr = roc_curve(y, s)
    sk_fpr, sk_tpr, sk_thr = sk.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])  # the first point's stand-in differs by version
    assert roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
    j = sk_tpr - sk_fpr
    j[0] = -np.inf
    assert best_threshold(y, s) == sk_thr[int(np.argmax(j))]


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 6).flatmap(lambda k: st.tuples(
    st.just(k),
    st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=60))))
def test_confusion_matrix_and_precision_recall_f1_match_scikit_learn(data):
    from sklearn import metrics as sk
    K, pairs = data
    y_true, y_pred = np.array(pairs).T
    classes = list(range(K))
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, num_classes=K),
                                  sk.confusion_matrix(y_true, y_pred, labels=classes))
    r = precision_recall_f1(y_true, y_pred, num_classes=K)
    p, rec, f1, support = sk.precision_recall_fscore_support(y_true, y_pred, labels=classes,
                                                             zero_division=0)
    np.testing.assert_allclose(r["precision"], p)
    np.testing.assert_allclose(r["recall"], rec)
    np.testing.assert_allclose(r["f1"], f1)
    np.testing.assert_array_equal(r["support"], support)
    assert r["macro_f1"] == pytest.approx(sk.f1_score(y_true, y_pred, labels=classes, average="macro",
                                                      zero_division=0))
    assert accuracy(y_true, y_pred) == pytest.approx(sk.accuracy_score(y_true, y_pred))


@settings(max_examples=100, deadline=None)
@given(labels_and_scores, st.sampled_from([0.0, 0.2, 0.5, 0.51, 1.0]))
def test_sensitivity_specificity_match_scikit_learn_recall(data, t):
    from sklearn import metrics as sk
    y, s = np.array(data[0]), np.array(data[1], dtype=float) / 6
    assume(y.min() != y.max())
    y_pred = (s >= t).astype(int)
    sens, spec = sensitivity_specificity(y, s, threshold=t)
    assert sens == pytest.approx(sk.recall_score(y, y_pred, pos_label=1))
    assert spec == pytest.approx(sk.recall_score(y, y_pred, pos_label=0))
