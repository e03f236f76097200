"""Callbacks: code that ``fit`` calls at fixed points of training (Keras's protocol).

``fit`` gives every callback the model (``callback.set_model(model)``, then
``callback.model``) and the run's settings (``callback.params``: ``epochs``, ``steps``,
``verbose``), and then calls, when present::

    on_train_begin(logs)
        on_epoch_begin(epoch, logs)
            on_train_batch_begin(batch, logs)   # logs: {} before the step
            on_train_batch_end(batch, logs)     # logs: running "loss" (and "accuracy")
        on_epoch_end(epoch, logs)               # logs: "loss", "accuracy", "val_*", "lr"
    on_train_end(logs)

To stop training, a callback sets ``self.model.stop_training = True``; ``fit`` finishes the
batch (or epoch) it is in and stops. Every hook is optional, so any object with an
``on_epoch_end(self, epoch, logs=None)`` method is a callback; a subclass of
:class:`Callback` inherits no-op hooks. One difference from Keras, on purpose: ``epoch`` and
``batch`` count from 1, as the progress line prints them and ``History.epoch`` lists them.
"""
import numpy as np

from tinycnn.checks import as_bool, as_float, as_int

__all__ = ["Callback", "History", "EarlyStopping"]


class Callback:
    """Base class with empty hooks; override the ones you need (see the module docstring).

    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         print(f"epoch {epoch}: loss {logs['loss']:.3f}")
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        """Called by ``fit`` before training: the model being trained becomes ``self.model``."""
        self.model = model

    def set_params(self, params):
        """Called by ``fit`` before training with ``{"epochs", "steps", "verbose"}``."""
        self.params = dict(params)

    def on_train_begin(self, logs=None):
        """Called once before the first epoch."""

    def on_train_end(self, logs=None):
        """Called once after the last epoch (also after an early stop); logs of the last epoch."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of epoch ``epoch`` (counted from 1)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called after epoch ``epoch`` with its metrics: ``loss``, ``accuracy``, ``val_*``, ``lr``."""

    def on_train_batch_begin(self, batch, logs=None):
        """Called before the update on batch ``batch`` (counted from 1 in each epoch)."""

    def on_train_batch_end(self, batch, logs=None):
        """Called after the update on batch ``batch``; logs hold the epoch's running means."""


class History(Callback):
    """Per-epoch metrics: ``history["loss"]`` (same as ``history.history["loss"]``),
    ``history["val_accuracy"]``, ... and the epoch numbers in ``history.epoch``."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        """Record one epoch's ``logs``."""
        self.append(epoch, logs or {})

    def append(self, epoch, logs):
        """Add epoch number ``epoch`` and its metrics ``logs`` (a dict of floats)."""
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        if key not in self.history:
            raise KeyError(f"History has no {key!r}; logged: {sorted(self.history)}"
                           + (" (val_* metrics need validation_data)" if key.startswith("val_") else ""))
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def keys(self):
        """The logged metric names, as ``dict.keys()``."""
        return self.history.keys()

    def to_dict(self):
        """``{"epoch": [...], "loss": [...], ...}``: plain lists, ready for ``json.dump``."""
        return {"epoch": list(self.epoch), **{k: list(v) for k, v in self.history.items()}}

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs in a row.

    An epoch *improves* when its value beats the best so far by more than ``min_delta``
    (lower is better in mode ``"min"``, higher in ``"max"``; ``"auto"`` picks ``"max"`` for
    accuracy/AUC and ``"min"`` otherwise). After each epoch that does not improve, ``wait``
    grows by one; when ``wait`` reaches ``patience`` the callback sets
    ``model.stop_training = True`` (so ``patience=0`` stops at the first epoch that does not
    improve, as in Keras).

    ``restore_best_weights=True`` puts back the weights of the best epoch when training ends
    (stopped early or not), so you keep the model that did best on validation data, not the
    last, overfit one. ``restore_best`` is the older name of the same switch. Unlike Keras
    (whose default is ``False``) it is on by default here. ``verbose=1`` prints when it stops
    and restores.

    After training: ``best`` (value), ``best_epoch``, ``stopped_epoch`` (``None`` if it
    never stopped training) and ``wait``.
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="auto",
                 restore_best_weights=True, verbose=0, *, restore_best=None):
        super().__init__()
        if not isinstance(monitor, str):
            raise TypeError(f"EarlyStopping: monitor must be a metric name such as 'val_loss', got {monitor!r}")
        self.patience = as_int(patience, "patience", "EarlyStopping", minimum=0)
        self.min_delta = abs(as_float(min_delta, "min_delta", "EarlyStopping"))
        if mode == "auto":
            mode = "max" if "acc" in monitor or "auc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.monitor, self.mode = monitor, mode
        restore = restore_best_weights if restore_best is None else restore_best
        self.restore_best_weights = as_bool(restore, "restore_best_weights", "EarlyStopping")
        self.verbose = as_int(verbose, "verbose", "EarlyStopping", minimum=0)
        self._reset()

    @property
    def restore_best(self):
        """Older name of :attr:`restore_best_weights`."""
        return self.restore_best_weights

    def _reset(self):
        self.best, self.best_epoch, self.wait = None, None, 0
        self.best_weights, self.stopped_epoch = None, None

    def on_train_begin(self, logs=None):
        """Forget any previous run: a reused callback starts afresh."""
        self._reset()

    def _improves(self, value):
        if self.best is None:
            return True
        return value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        """Compare ``logs[monitor]`` with the best so far; ask to stop when ``wait`` reaches ``patience``."""
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping: metric {self.monitor!r} is not logged; available: "
                             f"{sorted(logs)} (val_* metrics need validation_data)")
        value = float(logs[self.monitor])
        if self._improves(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = [p.data.copy() for p in self.model.parameters()]
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                print(f"EarlyStopping: no improvement of {self.monitor} for {self.wait} epoch(s); "
                      f"stopping after epoch {epoch}")

    def on_train_end(self, logs=None):
        """With ``restore_best_weights``, copy the best epoch's weights back into the model."""
        if self.restore_best_weights and self.best_weights is not None:
            for p, w in zip(self.model.parameters(), self.best_weights):
                np.copyto(p.data, w)
            if self.verbose:
                print(f"EarlyStopping: restored the weights of epoch {self.best_epoch} "
                      f"({self.monitor} = {self.best:.4f})")
