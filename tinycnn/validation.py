r"""Honest estimates of how well a model will do on data it has not seen.

* :func:`cross_validate` -- stratified k-fold cross-validation: train ``k`` fresh models,
  each tested on the one fold it did not see, and report the score as mean ± std;
* :func:`positive_scores` -- one score per sample from a classifier's probabilities, the
  input ROC curves and AUC want;
* :func:`binary_report` -- AUC, then sensitivity, specificity, accuracy and the confusion
  matrix at a threshold (choose it on validation data with ``metrics.best_threshold``).

Why k folds instead of one test split: with 200 test images and 40 positives, one lucky
or unlucky split moves the AUC by a few hundredths. Every sample is tested exactly once
across the folds, and the spread of the ``k`` scores shows how much of a difference between
two models is noise. With fold scores :math:`s_1 \dots s_k`:

.. math::
    \bar s = \frac{1}{k}\sum_i s_i \qquad
    \mathrm{std} = \sqrt{\frac{1}{k-1}\sum_i (s_i - \bar s)^2}

(the sample standard deviation, ``ddof=1``: the folds are a sample of possible splits).

>>> import numpy as np
>>> positive_scores(np.array([[0.9, 0.1], [0.2, 0.8]])).tolist()
[0.1, 0.8]
"""
import numpy as np

from tinycnn.datasets.sampling import stratified_kfold, stratified_split
from tinycnn.metrics import confusion_matrix, roc_auc, sensitivity_specificity

__all__ = ["cross_validate", "CVResult", "positive_scores", "binary_report"]


def positive_scores(probs):
    """The positive-class score of each sample: column 1 of two-class probabilities
    ``(N, 2)``, the single column of a sigmoid output ``(N, 1)``, or a ``(N,)`` array as is.
    """
    p = np.asarray(probs)
    if p.ndim == 1:
        return p
    if p.ndim == 2 and p.shape[1] in (1, 2):
        return p[:, -1]
    raise ValueError(f"positive_scores: expected probabilities (N,), (N, 1) or (N, 2); got shape {p.shape}")


def binary_report(y_true, scores, threshold):
    """AUC (threshold-free) and the decision at ``threshold`` (positive when ``score >= t``).

    Returns a dict: ``auc``, ``threshold``, ``sensitivity``, ``specificity``, ``accuracy``
    and ``confusion`` (2×2, rows = truth, columns = decision).
    """
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    sens, spec = sensitivity_specificity(y_true, scores, threshold=threshold)
    y_pred = (scores >= threshold).astype(np.int64)
    return {"auc": roc_auc(y_true, scores), "threshold": float(threshold), "sensitivity": sens,
            "specificity": spec, "accuracy": float(np.mean(y_pred == y_true)),
            "confusion": confusion_matrix(y_true, y_pred, num_classes=2)}


class CVResult:
    """What :func:`cross_validate` returns: ``scores`` (k,), ``mean``, ``std`` (ddof=1),
    ``folds`` (the ``(train_idx, test_idx)`` pairs) and ``histories`` (one per fold).
    ``str(result)`` reads ``"0.975 ± 0.008 (5 folds)"``."""

    def __init__(self, scores, folds, histories):
        self.scores = np.asarray(scores, dtype=np.float64)
        self.mean = float(self.scores.mean())
        self.std = float(self.scores.std(ddof=1)) if len(self.scores) > 1 else 0.0
        self.folds, self.histories = folds, histories

    def __str__(self):
        return f"{self.mean:.3f} ± {self.std:.3f} ({len(self.scores)} folds)"

    def __repr__(self):
        scores = np.round(self.scores, 4).tolist()
        return f"CVResult(mean={self.mean:.4f}, std={self.std:.4f}, scores={scores})"


def cross_validate(build, x, y, k=5, *, metric=roc_auc, prepare=None, val_fraction=None,
                   seed=0, verbose=False, **fit_kwargs):
    """Stratified k-fold cross-validation of a training recipe.

    For fold ``i`` of ``stratified_kfold(y, k, seed)``: ``build(i)`` makes a *fresh*
    model; it is trained on the other ``k - 1`` folds and scored on fold ``i`` with
    ``metric(y_fold, positive_scores(model.predict(x_fold)))`` (for more than two classes
    the metric gets the full ``(N, K)`` probabilities).

    Parameters
    ----------
    build : callable ``fold -> model`` or ``fold -> (model, dict)``; the dict holds fit
        arguments tied to that model, e.g. ``{"optimizer": opt, "scheduler": sched}``.
    x, y : all the labelled data, ``(N, C, H, W)`` and ``(N,)`` int labels.
    k : number of folds (every class needs at least ``k`` samples).
    metric : ``metric(y_true, scores) -> float``; default ROC AUC (binary labels).
    prepare : optional ``x_train -> transform``, fitted on each fold's training part only
        and applied to all of that fold's data -- e.g. ``transforms.Normalize.fit``.
        Fitting it on all of ``x`` would leak the test fold's statistics.
    val_fraction : if given, a stratified share of each training part is held out as
        ``validation_data`` (for ``EarlyStopping``), so the test fold is never peeked at.
    seed : fixes the folds (and the inner validation splits).
    **fit_kwargs : passed to ``model.fit`` (``loss``, ``epochs``, ``callbacks``, ...).
        ``seed`` for ``fit`` defaults to ``seed + i``.

    Returns a :class:`CVResult`.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"cross_validate: x has {len(x)} samples but y has {len(y)}")
    if "validation_data" in fit_kwargs:
        raise ValueError("cross_validate: do not pass validation_data; use val_fraction=... "
                         "(each fold then holds out part of its own training data)")
    folds = list(stratified_kfold(y, k, seed=seed))
    scores, histories = [], []
    for i, (train_idx, test_idx) in enumerate(folds):
        built = build(i)
        model, extra = built if isinstance(built, tuple) else (built, {})
        kwargs = {"verbose": False, "seed": seed + i, **fit_kwargs, **extra}
        if "optimizer" not in kwargs:
            raise ValueError("cross_validate: no optimizer; return (model, {'optimizer': ...}) "
                             "from build, since each fold's optimizer must hold its own model's parameters")
        fit_idx = train_idx
        if val_fraction:
            inner_fit, inner_val = stratified_split(y[train_idx], val_fraction, seed=seed + i)
            fit_idx, val_idx = train_idx[inner_fit], train_idx[inner_val]
        transform = prepare(x[fit_idx]) if prepare is not None else (lambda a: a)
        if val_fraction:
            kwargs["validation_data"] = (transform(x[val_idx]), y[val_idx])
        history = model.fit(transform(x[fit_idx]), y[fit_idx], **kwargs)
        probs = model.predict(transform(x[test_idx]))
        s = positive_scores(probs) if probs.shape[1] <= 2 else probs
        scores.append(float(metric(y[test_idx], s)))
        histories.append(history)
        if verbose:
            print(f"fold {i + 1}/{k}: {len(fit_idx)} train, {len(test_idx)} test, "
                  f"{getattr(metric, '__name__', 'score')} = {scores[-1]:.4f}")
    return CVResult(scores, folds, histories)
