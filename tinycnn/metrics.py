r"""Classification metrics, written out so each formula is visible.

With true positives TP, false positives FP, true negatives TN and false negatives FN:

.. math::
    \text{precision} = \frac{TP}{TP+FP} \qquad
    \text{recall} = \text{sensitivity} = \text{TPR} = \frac{TP}{TP+FN} \qquad
    \text{specificity} = \frac{TN}{TN+FP} = 1 - \text{FPR} \qquad
    F_1 = \frac{2\,PR}{P+R}

The ROC curve plots TPR against FPR as the decision threshold on a score sweeps from
high to low; its area (AUC) equals the probability that a random positive scores higher
than a random negative (ties count one half) -- the Mann-Whitney U statistic divided by
``n_pos * n_neg``. AUC does not depend on the threshold or on class prevalence, which is
why screening studies report it; accuracy does depend on prevalence: at 20 % positives a
model that always answers "healthy" is 80 % accurate and useless.

Labels are integer class indices; binary metrics take 1 as the positive class.

>>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
0.75
"""
import numpy as np

__all__ = [
    "accuracy", "confusion_matrix", "precision_recall_f1", "sensitivity_specificity",
    "roc_curve", "roc_auc", "best_threshold", "classification_report",
]


def _pair(y_true, y_other, where, other="y_pred"):
    y_true = np.asarray(y_true)
    y_other = np.asarray(y_other)
    if y_true.ndim != 1 or y_other.ndim != 1:
        raise ValueError(
            f"{where}: expected 1-D arrays; got y_true {y_true.shape} and {other} {y_other.shape}"
            " (for logits/probabilities (N, K) pass argmax(axis=1) or one score column)"
        )
    if len(y_true) != len(y_other):
        raise ValueError(f"{where}: y_true has {len(y_true)} entries but {other} has {len(y_other)}")
    if len(y_true) == 0:
        raise ValueError(f"{where}: empty input")
    return y_true, y_other


def _classes(a, name, where):
    if not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.bool_):
            return a.astype(np.int64)
        if not (np.issubdtype(a.dtype, np.floating) and np.all(a == np.round(a))):
            raise ValueError(f"{where}: {name} must hold integer class indices; got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.min() < 0:
        raise ValueError(f"{where}: {name} holds a negative class index ({a.min()})")
    return a


def _binary(y, name, where):
    y = _classes(y, name, where)
    if y.max() > 1:
        raise ValueError(f"{where}: {name} must be binary (0/1); found class {y.max()}")
    return y


def accuracy(y_true, y_pred):
    """Fraction of predictions equal to the truth: ``mean(y_pred == y_true)``."""
    y_true, y_pred = _pair(y_true, y_pred, "accuracy")
    return float(np.mean(y_true == y_pred))


def confusion_matrix(y_true, y_pred, num_classes=None):
    """``cm[i, j]`` = number of samples of true class ``i`` predicted as class ``j``.

    Rows are the truth, columns the prediction (as in scikit-learn), so the diagonal holds
    the correct answers and ``cm.sum(axis=1)`` is each class's support.
    ``num_classes`` defaults to ``max(label) + 1``. Returns an int64 ``(K, K)`` array.

    >>> confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2]).tolist()
    [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    """
    y_true, y_pred = _pair(y_true, y_pred, "confusion_matrix")
    y_true = _classes(y_true, "y_true", "confusion_matrix")
    y_pred = _classes(y_pred, "y_pred", "confusion_matrix")
    K = int(max(y_true.max(), y_pred.max())) + 1
    if num_classes is not None:
        if K > num_classes:
            raise ValueError(
                f"confusion_matrix: found class index {K - 1} but num_classes={num_classes}"
            )
        K = int(num_classes)
    # each (true, pred) pair is one cell of a K*K grid, counted in one pass
    return np.bincount(y_true * K + y_pred, minlength=K * K).reshape(K, K).astype(np.int64)


def _safe_div(a, b):
    """a / b elementwise with 0 where b == 0 (scikit-learn's zero_division=0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros_like(a), where=b != 0)


def precision_recall_f1(y_true, y_pred, num_classes=None):
    """Per-class precision, recall, F1 and support, plus their macro (unweighted) means.

    Returns a dict: ``"precision"``, ``"recall"``, ``"f1"`` (float arrays ``(K,)``),
    ``"support"`` (int array, true samples per class) and ``"macro_precision"``,
    ``"macro_recall"``, ``"macro_f1"`` (floats). A ratio with a zero denominator (a class
    never predicted, or absent) counts as 0.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm)
    precision = _safe_div(tp, cm.sum(axis=0))     # column: everything predicted as k
    recall = _safe_div(tp, cm.sum(axis=1))        # row: everything truly k
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return {
        "precision": precision, "recall": recall, "f1": f1, "support": cm.sum(axis=1),
        "macro_precision": float(precision.mean()), "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
    }


def sensitivity_specificity(y_true, y_score, threshold=None):
    """``(sensitivity, specificity)`` of a binary decision.

    With ``threshold=None``, ``y_score`` must already be 0/1 predictions; otherwise a
    sample is called positive when ``y_score >= threshold``. Sensitivity = TP / (TP + FN)
    (share of sick found), specificity = TN / (TN + FP) (share of healthy cleared); each is
    ``nan`` when its denominator class is absent from ``y_true``.

    >>> sensitivity_specificity([0, 0, 0, 1, 1], [0.1, 0.6, 0.2, 0.7, 0.4], threshold=0.5)
    (0.5, 0.6666666666666666)
    """
    y_true, y_score = _pair(y_true, y_score, "sensitivity_specificity", "y_score")
    y_true = _binary(y_true, "y_true", "sensitivity_specificity")
    if threshold is None:
        if not np.all(np.isin(y_score, (0, 1))):
            raise ValueError(
                "sensitivity_specificity: without a threshold, y_score must be binary 0/1 "
                "predictions; for scores or probabilities pass threshold=... (e.g. 0.5)"
            )
        y_pred = y_score.astype(np.int64)
    else:
        y_pred = (y_score.astype(np.float64) >= threshold).astype(np.int64)
    pos, neg = y_true == 1, y_true == 0
    sens = float(np.mean(y_pred[pos] == 1)) if pos.any() else float("nan")
    spec = float(np.mean(y_pred[neg] == 0)) if neg.any() else float("nan")
    return sens, spec


def _scores(y_true, scores, where):
    y_true, scores = _pair(y_true, scores, where, "scores")
    y_true = _binary(y_true, "y_true", where)
    scores = scores.astype(np.float64)
    if np.isnan(scores).any():
        raise ValueError(f"{where}: scores contain NaN")
    n_pos = int(y_true.sum())
    if n_pos == 0 or n_pos == len(y_true):
        raise ValueError(
            f"{where}: y_true holds only class {y_true[0]}; ROC needs both positives and "
            "negatives (is the validation set stratified?)"
        )
    return y_true, scores


def roc_curve(y_true, scores):
    """ROC curve of binary labels against scores (higher score = more likely positive).

    Returns ``(fpr, tpr, thresholds)``, float arrays of equal length: point ``i`` is the
    (FPR, TPR) obtained by calling positive every sample with ``score >= thresholds[i]``.
    ``thresholds`` decreases from ``+inf`` (nobody positive: the point (0, 0)) to the
    lowest score (everybody positive: (1, 1)). Tied scores move together, so a tie
    between a positive and a negative makes one diagonal step, not a staircase.

    >>> fpr, tpr, thr = roc_curve([0, 1, 0, 1], [0.2, 0.5, 0.5, 0.9])
    >>> fpr.tolist(), tpr.tolist(), thr.tolist()
    ([0.0, 0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.0], [inf, 0.9, 0.5, 0.2])
    """
    y_true, scores = _scores(y_true, scores, "roc_curve")
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], y_true[order]
    # cumulative TP/FP after each sample, read only at the last of each run of tied scores
    last_of_tie = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tps = np.cumsum(t)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return fpr, tpr, np.r_[np.inf, s[last_of_tie]]


def roc_auc(y_true, scores):
    """Area under the ROC curve by the trapezoid rule, in [0, 1] (0.5 = chance).

    Equal to P(score of a random positive > score of a random negative) + ½ P(tie).
    Raises ``ValueError`` if ``y_true`` holds a single class.
    """
    fpr, tpr, _ = roc_curve(y_true, scores)
    # trapezoids between consecutive points: a tied step is a diagonal, worth half a box
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def best_threshold(y_true, scores, criterion="youden"):
    """The score threshold (call positive when ``score >= t``) that maximises ``criterion``.

    * ``"youden"`` -- Youden's J = sensitivity + specificity - 1 = TPR - FPR, the ROC point
      farthest above the chance diagonal;
    * ``"f1"`` -- F1 of the positive class;
    * ``"accuracy"`` -- plain accuracy (beware: tends to favour the majority class).

    Choose it on *validation* data, then report metrics at that threshold on the test set;
    picking it on the test set flatters the result. Returns a float (the lowest threshold
    among equally good ones is not guaranteed; the first ROC point reaching the maximum is).

    >>> best_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.8
    """
    fpr, tpr, thr = roc_curve(y_true, scores)
    y = np.asarray(y_true)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if criterion == "youden":
        value = tpr - fpr
    elif criterion == "f1":
        tp, fp = tpr * n_pos, fpr * n_neg
        value = _safe_div(2 * tp, tp + fp + n_pos)   # 2TP / (2TP + FP + FN)
    elif criterion == "accuracy":
        value = (tpr * n_pos + (1 - fpr) * n_neg) / (n_pos + n_neg)
    else:
        raise ValueError(
            f"best_threshold: unknown criterion {criterion!r}; expected 'youden', 'f1' or 'accuracy'"
        )
    value[0] = -np.inf                   # the +inf threshold calls nobody positive: never useful
    return float(thr[int(np.argmax(value))])


def classification_report(y_true, y_pred, class_names=None, num_classes=None, digits=3):
    """A text table of precision, recall, F1 and support per class, with macro averages
    and overall accuracy -- print it.

    >>> print(classification_report([0, 1, 1], [0, 1, 0], class_names=["healthy", "lesion"]))
                 precision  recall  f1-score  support
    healthy          0.500   1.000     0.667        1
    lesion           1.000   0.500     0.667        2
    <BLANKLINE>
    macro avg        0.750   0.750     0.667        3
    accuracy                           0.667        3
    """
    r = precision_recall_f1(y_true, y_pred, num_classes)
    K = len(r["support"])
    if class_names is None:
        class_names = [str(k) for k in range(K)]
    if len(class_names) != K:
        raise ValueError(f"classification_report: {len(class_names)} class names for {K} classes")
    w = max(12, max(len(str(c)) for c in class_names) + 2)
    row = f"{{:<{w}}}{{:>10.{digits}f}}{{:>8.{digits}f}}{{:>10.{digits}f}}{{:>9d}}"
    lines = [f"{'':<{w}} precision  recall  f1-score  support"]
    for k, name in enumerate(class_names):
        lines.append(row.format(str(name), r["precision"][k], r["recall"][k], r["f1"][k],
                                int(r["support"][k])))
    n = int(r["support"].sum())
    lines.append("")
    lines.append(row.format("macro avg", r["macro_precision"], r["macro_recall"], r["macro_f1"], n))
    acc = f"{{:<{w + 18}}}{{:>10.{digits}f}}{{:>9d}}".format("accuracy", accuracy(y_true, y_pred), n)
    lines.append(acc)
    return "\n".join(lines)
