"""Training loops: ``fit`` (minibatch gradient descent), ``evaluate``, ``predict``.

One training step on a minibatch ``(x_b, y_b)`` is the whole algorithm::

    y_hat = model.forward(x_b)          # forward pass, layers cache what backward needs
    L     = loss.forward(y_hat, y_b)    # a float: the mean loss over the batch
    optimizer.zero_grad()
    model.backward(loss.backward())     # chain rule: every p.grad = dL/dp
    optimizer.step()                    # p <- p - lr * (update rule)

Everything else here is bookkeeping: shuffling, validation, progress bars, schedules and
callbacks. Randomness (shuffle, augmentation, dropout) comes from ``seed`` only.
"""
import numpy as np

from tinycnn.layers.dropout import Dropout
from tinycnn.losses import BinaryCrossEntropyWithLogits, SoftmaxCrossEntropy, softmax

__all__ = ["History", "Callback", "EarlyStopping", "fit", "evaluate", "predict", "minibatches"]


class History:
    """Per-epoch metrics: ``history.history["loss"]``, ``["val_accuracy"]``, ... and ``.epoch``."""

    def __init__(self):
        self.history = {}
        self.epoch = []

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def to_dict(self):
        return {"epoch": list(self.epoch), **{k: list(v) for k, v in self.history.items()}}

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


class Callback:
    """Hooks into ``fit``. ``on_epoch_end`` returns True to stop training."""

    def on_train_begin(self, model):
        pass

    def on_epoch_end(self, model, epoch, logs):
        return False

    def on_train_end(self, model):
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    With ``restore_best=True`` the weights of the best epoch are put back at the end, so the
    model you get is the one that did best on validation data, not the last (overfit) one.
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto", restore_best=True):
        if not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor or "auc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.monitor, self.patience, self.min_delta, self.mode = monitor, patience, float(min_delta), mode
        self.restore_best = restore_best

    def on_train_begin(self, model):
        self.best, self.best_epoch, self.wait, self.best_weights = None, None, 0, None
        self.stopped_epoch = None

    def on_epoch_end(self, model, epoch, logs):
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping: metric {self.monitor!r} is not logged; available: "
                             f"{sorted(logs)} (val_* metrics need validation_data)")
        value = logs[self.monitor]
        sign = 1 if self.mode == "min" else -1
        if self.best is None or sign * (self.best - value) > self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_weights = [p.data.copy() for p in model.parameters()]
            return False
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, model):
        if self.restore_best and self.best_weights is not None:
            for p, w in zip(model.parameters(), self.best_weights):
                p.data[...] = w


def minibatches(n, batch_size, shuffle=True, rng=None):
    """Index arrays covering ``range(n)`` in batches (the last one may be smaller)."""
    order = rng.permutation(n) if shuffle else np.arange(n)
    return [order[k:k + batch_size] for k in range(0, n, batch_size)]


def _check_data(x, y, model, where):
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "fiu":
        raise TypeError(f"{where}: expected x as a numeric numpy array, got {type(x).__name__}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{where}: expected x with a batch axis, (N, C, H, W) or (N, features), got shape {x.shape}")
    x = x.astype(model.dtype, copy=False)   # the model-level API casts for the user
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{where}: x contains NaN or inf values ({int(np.sum(~np.isfinite(x)))} of {x.size})")
    if y is not None:
        y = np.asarray(y)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"{where}: x has {x.shape[0]} samples but y has {y.shape[0]}; they must match")
    return x, y


def _check_positive(name, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"fit: {name} must be an int >= 1, got {value!r}")


def _correct(loss, out, y):
    """Number of correct predictions, or None when ``loss`` is not a classification loss."""
    if isinstance(loss, SoftmaxCrossEntropy):
        return int(np.sum(out.argmax(axis=1) == y.reshape(-1)))
    if isinstance(loss, BinaryCrossEntropyWithLogits):
        return int(np.sum((out.reshape(y.shape) > 0) == (y > 0.5)))
    return None


def fit(model, x, y, *, loss, optimizer, epochs=1, batch_size=32, validation_data=None,
        shuffle=True, seed=None, verbose=True, scheduler=None, callbacks=(), augment=None,
        sampler=None):
    """Train ``model`` on ``(x, y)`` with minibatch gradient descent; returns a ``History``.

    ``scheduler``: an ``optim.StepLR``/``CosineLR``, stepped after each epoch.
    ``callbacks``: e.g. ``[EarlyStopping(patience=3)]``.
    ``augment(x_batch, rng) -> x_batch``: applied to each training batch (e.g. a transform).
    ``sampler(y, batch_size, rng) -> iterable of index arrays``: replaces plain shuffling
    (e.g. ``datasets.balanced_batches``). ``seed`` fixes shuffling, augmentation and dropout.
    """
    from tqdm.auto import tqdm

    x, y = _check_data(x, y, model, "fit")
    _check_positive("epochs", epochs)
    _check_positive("batch_size", batch_size)
    if validation_data is not None:
        x_val, y_val = _check_data(*validation_data, model, "fit(validation_data)")
    shuffle_ss, augment_ss, dropout_ss = np.random.SeedSequence(seed).spawn(3)
    shuffle_rng, augment_rng = np.random.default_rng(shuffle_ss), np.random.default_rng(augment_ss)
    dropouts = [layer for layer in model.layers if isinstance(layer, Dropout)]
    for layer, ss in zip(dropouts, dropout_ss.spawn(len(dropouts))):
        layer.rng = np.random.default_rng(ss)

    history = History()
    for cb in callbacks:
        cb.on_train_begin(model)
    for epoch in range(1, epochs + 1):
        model.train()
        batches = (sampler(y, batch_size, shuffle_rng) if sampler is not None
                   else minibatches(len(x), batch_size, shuffle, shuffle_rng))
        batches = list(batches)
        total_loss, total_correct, seen = 0.0, 0, 0
        bar = tqdm(total=len(batches), desc=f"epoch {epoch}/{epochs}", disable=not verbose,
                   leave=True, unit="batch")
        for idx in batches:
            xb, yb = x[idx], y[idx]
            if augment is not None:
                xb = augment(xb, augment_rng).astype(model.dtype, copy=False)
            out = model.forward(xb)
            batch_loss = loss.forward(out, yb)
            optimizer.zero_grad()
            model.backward(loss.backward())
            optimizer.step()
            total_loss += batch_loss * len(idx)
            seen += len(idx)
            correct = _correct(loss, out, yb)
            if correct is not None:
                total_correct += correct
            bar.update(1)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", refresh=False)
        logs = {"loss": total_loss / seen}
        if isinstance(loss, (SoftmaxCrossEntropy, BinaryCrossEntropyWithLogits)):
            logs["accuracy"] = total_correct / seen
        if validation_data is not None:
            val = evaluate(model, x_val, y_val, loss=loss)
            logs.update({f"val_{k}": v for k, v in val.items()})
        logs["lr"] = optimizer.lr
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
        bar.close()
        history.append(epoch, logs)
        if scheduler is not None:
            scheduler.step()
        if any([cb.on_epoch_end(model, epoch, logs) for cb in callbacks]):
            break
    for cb in callbacks:
        cb.on_train_end(model)
    model.train()
    model.clear_cache()
    return history


def _outputs(model, x, batch_size):
    """Raw model outputs in eval mode, batch by batch; the model's mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        out = np.concatenate([model.forward(x[k:k + batch_size]) for k in range(0, len(x), batch_size)])
    finally:
        model.clear_cache()
        model.train(was_training)
    return out


def evaluate(model, x, y, *, loss=None, batch_size=256):
    """``{"loss": ..., "accuracy": ...}`` on ``(x, y)`` (eval mode; accuracy for classification)."""
    x, y = _check_data(x, y, model, "evaluate")
    loss = SoftmaxCrossEntropy() if loss is None else loss
    out = _outputs(model, x, batch_size)
    result = {"loss": loss.forward(out, y)}
    correct = _correct(loss, out, y)
    if correct is not None:
        result["accuracy"] = correct / len(x)
    return result


def predict(model, x, *, batch_size=256, logits=False):
    """Class probabilities (softmax, or sigmoid for a single output) in eval mode.

    ``logits=True`` returns the raw outputs instead. No layer keeps a cache afterwards.
    """
    x, _ = _check_data(x, None, model, "predict")
    out = _outputs(model, x, batch_size)
    if logits:
        return out
    if out.ndim == 2 and out.shape[1] == 1:
        return 1 / (1 + np.exp(-out))
    return softmax(out)
