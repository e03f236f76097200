r"""Losses: ``forward(pred, target) -> float`` (mean over the batch), ``backward() -> dpred``.

SoftmaxCrossEntropy (logits z (N, K), integer targets t (N,), optional class weights a):

.. math::
    p_{n,k} = \frac{e^{z_{n,k} - m_n}}{\sum_j e^{z_{n,j} - m_n}},\ m_n = \max_j z_{n,j}
    \qquad
    L = \frac{\sum_n a_{t_n}\,(-\log p_{n,t_n})}{\sum_n a_{t_n}}
    \qquad
    \frac{\partial L}{\partial z_{n,k}} = \frac{a_{t_n}\,(p_{n,k} - [k = t_n])}{\sum_n a_{t_n}}

MSE: :math:`L = \frac{1}{M}\sum (y - t)^2`, :math:`\partial L/\partial y = 2(y - t)/M`
(M = number of elements).

BinaryCrossEntropyWithLogits (logits z, targets t in {0,1}, positive weight w):

.. math::
    \ell = -\left[w\,t \log\sigma(z) + (1-t)\log(1-\sigma(z))\right],\qquad
    \frac{\partial \ell}{\partial z} = w\,t\,(\sigma(z) - 1) + (1 - t)\,\sigma(z)

averaged over all elements; :math:`\log\sigma(z) = -\operatorname{softplus}(-z)` keeps it
finite for any logit.
"""
import numpy as np

from tinycnn.layers.activations import sigmoid

__all__ = ["Loss", "SoftmaxCrossEntropy", "MSE", "BinaryCrossEntropyWithLogits", "softmax"]


def softmax(z):
    """Row-wise softmax of logits (N, K), stable: subtract the row max before exp."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _softplus(z):
    """log(1 + e^z) without overflow."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


class Loss:
    """Base class: ``forward`` caches what ``backward`` needs."""

    def __init__(self):
        self._cache = None

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def forward(self, pred, target):
        """The mean loss over the batch, a float; caches what ``backward`` needs."""
        raise NotImplementedError

    def backward(self):
        """``dL/dpred`` for the last ``forward``, with the shape of ``pred``."""
        raise NotImplementedError

    def _cached(self):
        if self._cache is None:
            raise ValueError(f"{self!r}: backward() called before forward()")
        return self._cache

    def _check_pred(self, pred):
        if not isinstance(pred, np.ndarray) or pred.dtype.kind != "f":
            raise TypeError(f"{self!r}: expected predictions as a floating numpy array, "
                            f"got {type(pred).__name__} {getattr(pred, 'dtype', '')}")
        if pred.ndim == 0 or pred.shape[0] == 0:
            raise ValueError(f"{self!r}: expected a non-empty batch of predictions, got shape {pred.shape}")
        if not np.all(np.isfinite(pred)):
            raise ValueError(f"{self!r}: predictions contain NaN or inf (did training diverge? try a smaller lr)")

    def __repr__(self):
        return f"{type(self).__name__}()"


class SoftmaxCrossEntropy(Loss):
    """Softmax + cross-entropy on logits (N, K) and integer class labels (N,).

    ``class_weights`` (K,) up-weights rare classes; the mean is weighted (as in PyTorch).
    """

    def __init__(self, class_weights=None):
        super().__init__()
        if class_weights is not None:
            class_weights = np.asarray(class_weights, dtype=np.float64)
            if class_weights.ndim != 1 or np.any(class_weights < 0) or not np.any(class_weights > 0):
                raise ValueError("SoftmaxCrossEntropy: class_weights must be a 1-D array of "
                                 f"non-negative numbers, not all zero; got {class_weights}")
        self.class_weights = class_weights

    def forward(self, pred, target):
        self._check_pred(pred)
        if pred.ndim != 2:
            raise ValueError(f"{self!r}: expected logits of shape (N, classes), got {pred.shape}")
        N, K = pred.shape
        t = _check_labels(self, target, N, K)
        if self.class_weights is not None and self.class_weights.shape[0] != K:
            raise ValueError(f"{self!r}: class_weights has {self.class_weights.shape[0]} entries, "
                             f"but the logits have {K} classes")
        shifted = pred - pred.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # log-sum-exp
        a = np.ones(N) if self.class_weights is None else self.class_weights[t]
        loss = -(a * log_p[np.arange(N), t]).sum() / a.sum()
        self._cache = (np.exp(log_p), t, a)
        return float(loss)

    def backward(self):
        p, t, a = self._cached()
        dz = p.copy()
        dz[np.arange(len(t)), t] -= 1                      # p - onehot(t)
        dz *= (a / a.sum())[:, None].astype(p.dtype)
        return dz

    def __repr__(self):
        return "SoftmaxCrossEntropy()" if self.class_weights is None else \
            f"SoftmaxCrossEntropy(class_weights={self.class_weights.tolist()})"


class MSE(Loss):
    """Mean squared error over every element."""

    def forward(self, pred, target):
        self._check_pred(pred)
        t = _check_same_shape(self, pred, target)
        diff = pred - t
        self._cache = diff
        return float(np.mean(diff * diff))

    def backward(self):
        diff = self._cached()
        return (2 / diff.size) * diff


class BinaryCrossEntropyWithLogits(Loss):
    """Binary cross-entropy on raw logits; ``pos_weight`` > 1 up-weights the positives."""

    def __init__(self, pos_weight=None):
        super().__init__()
        if pos_weight is not None and not (np.isscalar(pos_weight) and pos_weight > 0):
            raise ValueError(f"BinaryCrossEntropyWithLogits: pos_weight must be a positive number, got {pos_weight!r}")
        self.pos_weight = None if pos_weight is None else float(pos_weight)

    def forward(self, pred, target):
        self._check_pred(pred)
        t = _check_same_shape(self, pred, target)
        if np.any((t < 0) | (t > 1)):
            raise ValueError(f"{self!r}: targets must lie in [0, 1], got values in [{t.min()}, {t.max()}]")
        w = 1.0 if self.pos_weight is None else self.pos_weight
        # -log σ(z) = softplus(-z),  -log(1 - σ(z)) = softplus(z)
        loss = w * t * _softplus(-pred) + (1 - t) * _softplus(pred)
        self._cache = (pred, t, w)
        return float(np.mean(loss))

    def backward(self):
        z, t, w = self._cached()
        s = sigmoid(z)                                      # σ(z), stable for any z
        return ((w * t * (s - 1) + (1 - t) * s) / z.size).astype(z.dtype)

    def __repr__(self):
        return "BinaryCrossEntropyWithLogits()" if self.pos_weight is None else \
            f"BinaryCrossEntropyWithLogits(pos_weight={self.pos_weight})"


def _check_labels(loss, target, N, K):
    t = np.asarray(target)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1 or t.shape[0] != N:
        raise ValueError(f"{loss!r}: expected {N} integer labels of shape ({N},) to match the "
                         f"batch of logits, got shape {t.shape}")
    if t.dtype.kind not in "iu":
        if t.dtype.kind == "f" and np.all(t == np.round(t)):
            t = t.astype(np.int64)
        else:
            raise TypeError(f"{loss!r}: labels must be integer class indices, got dtype {t.dtype}")
    if t.min() < 0 or t.max() >= K:
        raise ValueError(f"{loss!r}: labels must lie in [0, {K - 1}] for {K} classes, "
                         f"got values in [{t.min()}, {t.max()}]")
    return t.astype(np.int64)


def _check_same_shape(loss, pred, target):
    t = np.asarray(target)
    if t.shape != pred.shape:
        if t.size == pred.size and t.shape[:1] == pred.shape[:1]:
            t = t.reshape(pred.shape)  # e.g. labels (N,) for a single-logit output (N, 1)
        else:
            raise ValueError(f"{loss!r}: target shape {t.shape} does not match prediction shape {pred.shape}")
    return t.astype(pred.dtype)
