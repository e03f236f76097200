"""The training API as a Keras/PyTorch user expects it: Keras's callback protocol and
EarlyStopping semantics, ``history["loss"]``, real signatures in ``help()``, an ``evaluate``
that picks the loss, and progress output that suits where it goes."""
import inspect
import io
import pydoc
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import layers, losses, optim, train
from tinycnn.callbacks import Callback

RNG = np.random.default_rng(2)
X = RNG.normal(size=(24, 1, 4, 4)).astype(np.float32)
Y = (X[:, 0, 0, 0] > 0).astype(np.int64) + (X[:, 0, 1, 1] > 0)


def model_3(seed=0):
    return tc.Sequential(layers.Flatten(), layers.Dense(16, 8, rng=seed), layers.ReLU(),
                         layers.Dense(8, 3, rng=seed + 1))


def fit(model, **kwargs):
    kwargs.setdefault("loss", losses.SoftmaxCrossEntropy())
    kwargs.setdefault("optimizer", optim.SGD(model.parameters(), lr=0.1))
    kwargs.setdefault("verbose", False)
    return model.fit(X, Y, **kwargs)


# ------------------------------------------------------------------ the protocol
class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, sorted(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", sorted(logs)))


def test_hooks_are_called_in_keras_order_with_model_and_params():
    model, rec = model_3(), Recorder()
    fit(model, epochs=2, batch_size=10, callbacks=[rec], validation_data=(X[:6], Y[:6]))
    assert rec.model is model and rec.params == {"epochs": 2, "steps": 3, "verbose": 0}
    keys = ["accuracy", "loss", "lr", "val_accuracy", "val_loss"]
    epoch = [("batch_begin", 1), ("batch_end", 1, ["accuracy", "loss"]), ("batch_begin", 2),
             ("batch_end", 2, ["accuracy", "loss"]), ("batch_begin", 3), ("batch_end", 3, ["accuracy", "loss"])]
    assert rec.calls == ([("train_begin",), ("epoch_begin", 1)] + epoch + [("epoch_end", 1, keys),
                         ("epoch_begin", 2)] + epoch + [("epoch_end", 2, keys), ("train_end", keys)])


def test_a_keras_style_callback_works():
    """Written as for Keras: no tinycnn base class, on_epoch_end(epoch, logs), self.model."""
    class StopWhenLossBelow:
        def __init__(self, threshold):
            self.threshold, self.seen = threshold, []

        def set_model(self, model):
            self.model = model

        def on_epoch_end(self, epoch, logs=None):
            self.seen.append((epoch, logs["loss"]))
            if logs["loss"] < self.threshold:
                self.model.stop_training = True

    model, callback = model_3(), StopWhenLossBelow(0.5)
    history = fit(model, epochs=30, optimizer=optim.Adam(model.parameters(), lr=0.05),
                  callbacks=[callback])
    assert history["loss"][-1] < 0.5 and all(v >= 0.5 for v in history["loss"][:-1])
    assert len(history.epoch) < 30 and [e for e, _ in callback.seen] == history.epoch


def test_a_callback_with_only_an_attribute_model_and_one_hook():
    class Counter:
        epochs = 0

        def on_epoch_end(self, epoch, logs=None):
            Counter.epochs += 1
            assert self.model.layers               # fit sets .model even without set_model

    fit(model_3(), epochs=3, callbacks=[Counter()])
    assert Counter.epochs == 3


@pytest.mark.parametrize("where", ["on_train_batch_end", "on_epoch_end"])
def test_stop_training_stops_after_the_current_batch_or_epoch(where):
    class Stop(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if where == "on_train_batch_end" and batch == 2:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if where == "on_epoch_end" and epoch == 2:
                self.model.stop_training = True

    batches = []
    model = model_3()
    history = fit(model, epochs=5, batch_size=4, callbacks=[Stop()],
                  augment=lambda xb, rng: batches.append(len(xb)) or xb)
    if where == "on_train_batch_end":
        assert history.epoch == [1] and len(batches) == 2
    else:
        assert history.epoch == [1, 2] and len(batches) == 12
    fit(model, epochs=2)                            # the flag is reset by the next fit
    assert len(model.history.epoch) == 2


# ------------------------------------------------------------------ EarlyStopping, as in Keras
class FakeModel:
    """A model whose single weight is set to the epoch number, to see which epoch is restored."""

    def __init__(self):
        self.p = tc.Parameter(np.zeros(1))
        self.stop_training = False

    def parameters(self):
        return [self.p]


def keras_reference(values, patience, min_delta, mode):
    """Epoch (from 1) at which Keras's EarlyStopping stops, or None; and the best epoch."""
    best, best_epoch, wait = None, None, 0
    for epoch, v in enumerate(values, start=1):
        better = best is None or (v < best - min_delta if mode == "min" else v > best + min_delta)
        if better:
            best, best_epoch, wait = v, epoch, 0
            continue
        wait += 1
        if wait >= patience:
            return epoch, best_epoch
    return None, best_epoch


@given(values=st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=15),
       patience=st.integers(0, 4), min_delta=st.sampled_from([0.0, 0.5]), mode=st.sampled_from(["min", "max"]),
       restore=st.booleans())
def test_early_stopping_matches_keras_semantics(values, patience, min_delta, mode, restore):
    stop = tc.EarlyStopping(monitor="val_loss", patience=patience, min_delta=min_delta, mode=mode,
                            restore_best_weights=restore)
    model = FakeModel()
    stop.set_model(model)
    stop.on_train_begin()
    stopped = None
    for epoch, v in enumerate(values, start=1):
        model.p.data[...] = epoch
        stop.on_epoch_end(epoch, {"val_loss": v})
        if model.stop_training:
            stopped = epoch
            break
    stop.on_train_end()
    expected_stop, expected_best = keras_reference(values, patience, min_delta, mode)
    assert (stopped, stop.stopped_epoch, stop.best_epoch) == (expected_stop, expected_stop, expected_best)
    assert model.p.data[0] == (expected_best if restore else (stopped or len(values)))


def test_keras_documented_example_patience_3_runs_4_epochs():
    """Keras's docs: monitor='loss', patience=3, a loss that never improves -> 4 epochs run."""
    model = tc.Sequential(layers.Dense(20, 10, rng=0))
    model[0].weight.data[...] = 0
    model[0].bias.data[...] = 0
    history = model.fit(np.ones((5, 20), np.float32), np.zeros((5, 10), np.float32), loss=losses.MSE(),
                        optimizer=optim.SGD(model.parameters(), lr=1e-30), epochs=10, batch_size=1,
                        callbacks=[tc.EarlyStopping(monitor="loss", patience=3)], verbose=False)
    assert len(history.epoch) == 4


def test_early_stopping_in_fit_restores_the_best_epoch():
    model = model_3()
    stop = tc.EarlyStopping(monitor="val_loss", patience=2, min_delta=10.0)     # nothing beats epoch 1 by 10
    snapshots = []

    class Snap(Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append([p.data.copy() for p in self.model.parameters()])

    history = fit(model, epochs=8, validation_data=(X, Y), callbacks=[Snap(), stop])
    assert history.epoch == [1, 2, 3] and stop.stopped_epoch == 3 and stop.best_epoch == 1
    for p, w in zip(model.parameters(), snapshots[0]):
        np.testing.assert_array_equal(p.data, w)
    stop2 = tc.EarlyStopping(monitor="val_loss", patience=2, min_delta=10.0, restore_best=False)
    assert stop2.restore_best_weights is False and stop2.restore_best is False
    model = model_3()
    fit(model, epochs=8, validation_data=(X, Y), callbacks=[Snap(), stop2])
    for p, w in zip(model.parameters(), snapshots[-1]):
        np.testing.assert_array_equal(p.data, w)


def test_early_stopping_is_reset_when_reused_and_names_a_missing_metric():
    stop = tc.EarlyStopping(monitor="loss", patience=1, min_delta=10.0)
    model = model_3()
    assert fit(model, epochs=5, callbacks=[stop]).epoch == [1, 2]
    assert fit(model, epochs=5, callbacks=[stop]).epoch == [1, 2]
    with pytest.raises(ValueError, match=r"metric 'val_loss' is not logged.*need validation_data"):
        fit(model, epochs=2, callbacks=[tc.EarlyStopping()])


# ------------------------------------------------------------------ History, help(), evaluate
def test_history_is_subscriptable():
    history = fit(model_3(), epochs=2)
    assert history["loss"] == history.history["loss"] and len(history["loss"]) == 2
    assert "accuracy" in history and set(history.keys()) == {"loss", "accuracy", "lr"}
    with pytest.raises(KeyError, match="val_loss.*need validation_data"):
        history["val_loss"]


@pytest.mark.parametrize("name", ["fit", "evaluate", "predict"])
def test_help_shows_the_real_signature_and_docstring(name):
    method = getattr(tc.Sequential, name)
    params = inspect.signature(method).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in params.values())
    function = inspect.signature(getattr(train, name)).parameters
    assert [(p.name, p.kind, p.default) for p in list(params.values())[1:]] == \
        [(p.name, p.kind, p.default) for p in list(function.values())[1:]]
    text = pydoc.render_doc(getattr(model_3(), name), renderer=pydoc.plaintext)
    assert "**kwargs" not in text and "batch_size=" in text
    for word in {"fit": ["validation_data", "callbacks", "verbose", "seed", "DivergenceError"],
                 "evaluate": ["BinaryCrossEntropyWithLogits", "loss="], "predict": ["sigmoid", "logits"]}[name]:
        assert word in method.__doc__


def test_evaluate_picks_the_loss_that_fits_the_output():
    binary = tc.Sequential(layers.Flatten(), layers.Dense(16, 1, rng=0))
    y = (Y > 0).astype(np.int64)
    picked = binary.evaluate(X, y)
    assert picked == binary.evaluate(X, y, loss=losses.BinaryCrossEntropyWithLogits())
    multi = model_3()
    assert multi.evaluate(X, Y) == multi.evaluate(X, Y, loss=losses.SoftmaxCrossEntropy())
    with pytest.raises(ValueError, match=r"cannot tell which loss fits outputs of shape \(24, 1\).*pass loss="):
        binary.evaluate(X, Y * 2.5)
    with pytest.raises(ValueError, match="pass loss="):
        multi.evaluate(X, np.eye(3)[Y])


# ------------------------------------------------------------------ progress output
EPOCH_LINE = re.compile(r"^epoch (\d)/3 - 3 batches - [\d.]+s - loss [\d.]+ - accuracy [\d.]+ - lr 0\.1$")


def test_one_line_per_epoch_when_stderr_is_not_a_terminal(capsys):
    fit(model_3(), epochs=3, batch_size=10, verbose=True)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 3 and "\r" not in captured.err and captured.out == ""
    assert [int(EPOCH_LINE.match(line).group(1)) for line in lines] == [1, 2, 3]
    fit(model_3(), epochs=3, batch_size=10, verbose=False)
    assert capsys.readouterr().err == ""
    fit(model_3(), epochs=3, batch_size=10, verbose=2)
    assert len(capsys.readouterr().err.splitlines()) == 3


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_progress_bar_in_a_terminal(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    fit(model_3(), epochs=2, batch_size=10, verbose=True)
    text = terminal.getvalue()
    assert "\r" in text and "epoch 1/2" in text and "epoch 2/2" in text and "3/3" in text
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    fit(model_3(), epochs=2, batch_size=10, verbose=2)            # verbose=2: lines even here
    assert "\r" not in terminal.getvalue() and len(terminal.getvalue().splitlines()) == 2


def test_no_ipywidgets_warning_in_a_notebook():
    from tests.optional import require
    nbformat, nbclient = require("nbformat"), require("nbclient")
    require("ipykernel")
    code = ("import numpy as np, tinycnn as tc\nfrom tinycnn import layers, losses, optim\n"
            "x = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)\n"
            "m = tc.Sequential(layers.Dense(4, 2, rng=0))\n"
            "h = m.fit(x, np.arange(20) % 2, loss=losses.SoftmaxCrossEntropy(),\n"
            "          optimizer=optim.SGD(m.parameters(), lr=0.1), epochs=2, batch_size=8)\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert all(o.output_type == "stream" for o in outputs), outputs      # no widgets, no errors
    err = "".join(o.text for o in outputs if o.name == "stderr")
    assert "IProgress" not in err and "Warning" not in err
    assert [line.split(" - ")[0] for line in err.splitlines()] == ["epoch 1/2", "epoch 2/2"]
