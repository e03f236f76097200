"""Training loops: ``fit`` (minibatch gradient descent), ``evaluate``, ``predict``.

One training step on a minibatch ``(x_b, y_b)`` is the whole algorithm::

    y_hat = model.forward(x_b)          # forward pass, layers cache what backward needs
    L     = loss.forward(y_hat, y_b)    # a float: the mean loss over the batch
    optimizer.zero_grad()
    model.backward(loss.backward())     # chain rule: every p.grad = dL/dp
    optimizer.step()                    # p <- p - lr * (update rule)

Everything else here is bookkeeping: checks before training (:mod:`tinycnn.fit_checks`),
shuffling, validation, progress output, schedules, callbacks (:mod:`tinycnn.callbacks`)
and a guard against divergence. Randomness (shuffle, augmentation, dropout) comes from
``seed`` only. The arguments are documented on :meth:`tinycnn.Sequential.fit` and friends,
which call these functions.
"""
import numpy as np

from tinycnn.callbacks import Callback, EarlyStopping, History
from tinycnn.checks import as_bool, as_int
from tinycnn.fit_checks import (check_callable, check_callbacks, check_loss, check_optimizer,
                                check_pair, check_targets, check_x, check_y, probe)
from tinycnn.layers.activations import sigmoid
from tinycnn.layers.dropout import Dropout
from tinycnn.losses import BinaryCrossEntropyWithLogits, SoftmaxCrossEntropy, softmax
from tinycnn.progress import Progress

__all__ = ["History", "Callback", "EarlyStopping", "DivergenceError", "fit", "evaluate",
           "predict", "minibatches", "default_loss"]


class DivergenceError(FloatingPointError):
    """Training produced NaN or inf. ``epoch`` and ``batch`` say where (from 1), ``history``
    holds the epochs completed before; the model keeps its last finite weights."""

    def __init__(self, message, epoch, batch, history):
        super().__init__(message)
        self.epoch, self.batch, self.history = epoch, batch, history


def minibatches(n, batch_size, shuffle=True, rng=None):
    """Index arrays covering ``range(n)`` in batches of ``batch_size`` (the last may be smaller)."""
    batch_size = as_int(batch_size, "batch_size", "minibatches")
    order = np.random.default_rng(rng).permutation(n) if shuffle else np.arange(n)
    return [order[k:k + batch_size] for k in range(0, n, batch_size)]


def _correct(loss, out, y):
    """Number of correct predictions, or None when ``loss`` is not a classification loss."""
    if isinstance(loss, SoftmaxCrossEntropy):
        return int(np.sum(out.argmax(axis=1) == y.reshape(-1)))
    if isinstance(loss, BinaryCrossEntropyWithLogits):
        return int(np.sum((out.reshape(y.shape) > 0) == (y > 0.5)))
    return None


def _call(callbacks, hook, *args):
    for cb in callbacks:
        method = getattr(cb, hook, None)
        if callable(method):
            method(*args)


def _diverged(what, epoch, batch, steps, lr, x, history, restored):
    weights = ("the weights from before this batch's update were put back"
               if restored else "its weights are the last finite ones (this batch was not applied)")
    raise DivergenceError(
        f"fit: training diverged at epoch {epoch}, batch {batch} of {steps}: {what} became NaN or "
        f"inf, so training stopped and {weights}. Likely causes: a learning rate too high "
        f"(lr={lr:g}: try one 10x smaller), or bad data: inputs far from 0 (x spans "
        f"[{float(x.min()):.4g}, {float(x.max()):.4g}]; normalise it, e.g. transforms.Normalize) or "
        "targets the loss does not expect.", epoch, batch, history)


def _setup(model, x, y, loss, optimizer, epochs, batch_size, validation_data, shuffle, seed,
           scheduler, callbacks, augment, sampler):
    """Every check ``fit`` makes before it changes anything; returns the cleaned arguments."""
    epochs = as_int(epochs, "epochs", "fit")
    batch_size = as_int(batch_size, "batch_size", "fit")
    shuffle = as_bool(shuffle, "shuffle", "fit")
    if seed is not None:
        seed = as_int(seed, "seed", "fit", minimum=0)
    loss = check_loss(loss, "fit")
    optimizer = check_optimizer(optimizer, model, "fit")
    if scheduler is not None and getattr(scheduler, "optimizer", optimizer) is not optimizer:
        raise ValueError("fit: the scheduler adjusts a different optimizer than optimizer=; "
                         "build it from the same one, e.g. optim.StepLR(opt, step_size=...)")
    callbacks = check_callbacks(callbacks, "fit")
    check_callable(augment, "augment", "fit", "augment(x_batch, rng) -> x_batch")
    check_callable(sampler, "sampler", "fit", "sampler(y, batch_size, rng) -> index arrays")
    x = check_x(x, model, "fit")
    y = check_y(y, len(x), "fit")
    out_shape = probe(model, x, "fit")
    check_targets(loss, out_shape, y, "fit")
    val = None
    if validation_data is not None:
        x_val, y_val = check_pair(validation_data, "fit")
        x_val = check_x(x_val, model, "fit(validation_data)", "x_val")
        y_val = check_y(y_val, len(x_val), "fit(validation_data)", "y_val", "x_val")
        if x_val.shape[1:] != x.shape[1:]:
            raise ValueError(f"fit: validation samples have shape {x_val.shape[1:]} but training "
                             f"samples {x.shape[1:]}; prepare both the same way")
        check_targets(loss, out_shape, y_val, "fit(validation_data)", "y_val")
        val = (x_val, y_val)
    return x, y, loss, epochs, batch_size, shuffle, seed, val, callbacks


def fit(model, x, y, *, loss, optimizer, epochs=1, batch_size=32, validation_data=None,
        shuffle=True, seed=None, verbose=True, scheduler=None, callbacks=(), augment=None,
        sampler=None):
    """Train ``model`` on ``(x, y)``; returns a :class:`History`. See :meth:`Sequential.fit`."""
    previous_shape = model.meta.get("input_shape")
    try:
        x, y, loss, epochs, batch_size, shuffle, seed, val, callbacks = _setup(
            model, x, y, loss, optimizer, epochs, batch_size, validation_data, shuffle, seed,
            scheduler, callbacks, augment, sampler)
        progress = Progress(verbose, epochs)
    except BaseException:
        model.meta["input_shape"] = previous_shape   # a refused call leaves no trace
        raise
    shuffle_ss, augment_ss, dropout_ss = np.random.SeedSequence(seed).spawn(3)
    shuffle_rng, augment_rng = np.random.default_rng(shuffle_ss), np.random.default_rng(augment_ss)
    dropouts = [layer for layer in model.layers if isinstance(layer, Dropout)]
    for layer, ss in zip(dropouts, dropout_ss.spawn(len(dropouts))):
        layer.rng = np.random.default_rng(ss)

    history = History()
    model.history, model.stop_training = history, False
    params = model.parameters()
    before_step = [p.data.copy() for p in params]          # to undo a step that overflows
    steps = -(-len(x) // batch_size)
    for cb in [history] + callbacks:
        if hasattr(cb, "set_model"):
            cb.set_model(model)
        else:
            cb.model = model
        if hasattr(cb, "set_params"):
            cb.set_params({"epochs": epochs, "steps": steps, "verbose": progress.level})
    _call(callbacks, "on_train_begin", {})
    logs = {}
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            batches = list(sampler(y, batch_size, shuffle_rng) if sampler is not None
                           else minibatches(len(x), batch_size, shuffle, shuffle_rng))
            _call(callbacks, "on_epoch_begin", epoch, {})
            progress.start_epoch(epoch, len(batches))
            total_loss, total_correct, seen = 0.0, 0, 0
            for batch, idx in enumerate(batches, start=1):
                _call(callbacks, "on_train_batch_begin", batch, {})
                xb, yb = x[idx], y[idx]
                if augment is not None:
                    xb = augment(xb, augment_rng).astype(model.dtype, copy=False)
                where = (epoch, batch, len(batches), optimizer_lr(optimizer), x, history)
                # NaN/inf are checked explicitly below, with a better message than NumPy's warning
                with np.errstate(over="ignore", invalid="ignore"):
                    out = model.forward(xb)
                    if not np.all(np.isfinite(out)):
                        _diverged("the model's output", *where, restored=False)
                    batch_loss = loss.forward(out, yb)
                    if not np.all(np.isfinite(batch_loss)):
                        _diverged("the loss", *where, restored=False)
                    optimizer.zero_grad()
                    model.backward(loss.backward(), input_grad=False)   # dL/dx of the data: unused
                    if not all(np.all(np.isfinite(p.grad)) for p in params):
                        name = next(n for n, p in model.named_parameters() if not np.all(np.isfinite(p.grad)))
                        _diverged(f"the gradient of {name}", *where, restored=False)
                    for saved, p in zip(before_step, params):
                        np.copyto(saved, p.data)
                    optimizer.step()
                    if not all(np.all(np.isfinite(p.data)) for p in params):
                        for saved, p in zip(before_step, params):
                            np.copyto(p.data, saved)
                        _diverged("a weight after the update", *where, restored=True)
                total_loss += batch_loss * len(idx)
                seen += len(idx)
                correct = _correct(loss, out, yb)
                batch_logs = {"loss": total_loss / seen}
                if correct is not None:
                    total_correct += correct
                    batch_logs["accuracy"] = total_correct / seen
                progress.update(total_loss / seen)
                _call(callbacks, "on_train_batch_end", batch, batch_logs)
                if model.stop_training:
                    break
            logs = {"loss": total_loss / seen}
            if correct is not None:                  # _correct knows the classification losses
                logs["accuracy"] = total_correct / seen
            if val is not None:
                logs.update({f"val_{k}": v for k, v in _score(model, *val, loss, 256).items()})
            logs["lr"] = optimizer_lr(optimizer)
            progress.end_epoch(logs)
            history.on_epoch_end(epoch, logs)
            if scheduler is not None:
                scheduler.step()
            _call(callbacks, "on_epoch_end", epoch, logs)
            if model.stop_training:
                break
        _call(callbacks, "on_train_end", logs)
    finally:
        progress.close()
        model.train()
        model.clear_cache()
    return history


def optimizer_lr(optimizer):
    """The optimizer's current learning rate (``nan`` for one without an ``lr``)."""
    return float(getattr(optimizer, "lr", float("nan")))


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


def default_loss(out, y):
    """The loss that fits outputs ``out`` and targets ``y``, or a ValueError asking for ``loss=``.

    One output per sample and 0/1 targets: binary cross-entropy on the logit; several outputs
    and integer labels: softmax cross-entropy. Anything else (regression, one-hot targets)
    is ambiguous, so the caller must say.
    """
    y = np.asarray(y)
    single = out.ndim == 2 and out.shape[1] == 1
    integral = y.dtype.kind in "iub" or (y.dtype.kind == "f" and np.all(y == np.round(y)))
    if single and y.size == len(out) and np.all((y == 0) | (y == 1)):
        return BinaryCrossEntropyWithLogits()
    if out.ndim == 2 and out.shape[1] > 1 and y.ndim == 1 and integral:
        return SoftmaxCrossEntropy()
    raise ValueError(f"evaluate: cannot tell which loss fits outputs of shape {out.shape} and "
                     f"targets of shape {y.shape} (dtype {y.dtype}); pass loss=, e.g. "
                     "loss=losses.MSE() for regression")


def evaluate(model, x, y, *, loss=None, batch_size=256):
    """``{"loss": ..., "accuracy": ...}`` on ``(x, y)`` in eval mode. See :meth:`Sequential.evaluate`."""
    batch_size = as_int(batch_size, "batch_size", "evaluate")
    if loss is not None:
        loss = check_loss(loss, "evaluate")
    x = check_x(x, model, "evaluate")
    y = check_y(y, len(x), "evaluate")
    probe(model, x, "evaluate")
    return _score(model, x, y, loss, batch_size)


def _score(model, x, y, loss, batch_size):
    """evaluate's work on checked arguments (``fit`` calls it every epoch on validation data)."""
    out = _outputs(model, x, batch_size)
    loss = default_loss(out, y) if loss is None else loss
    result = {"loss": loss.forward(out, y)}
    correct = _correct(loss, out, y)
    if correct is not None:
        result["accuracy"] = correct / len(x)
    return result


def predict(model, x, *, batch_size=256, logits=False):
    """Class probabilities in eval mode, batched. See :meth:`Sequential.predict`."""
    batch_size = as_int(batch_size, "batch_size", "predict")
    logits = as_bool(logits, "logits", "predict")
    x = check_x(x, model, "predict")
    probe(model, x, "predict", single=True)
    out = _outputs(model, x, batch_size)
    if logits:
        return out
    if out.ndim == 2 and out.shape[1] == 1:
        return sigmoid(out)
    return softmax(out)
