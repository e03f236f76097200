"""NaN and inf: refused up front with counts and places; divergence stops training with the
last finite weights and a useful message; the sigmoid never overflows."""
import contextlib
import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import layers, losses, optim
from tinycnn.layers.activations import sigmoid
from tinycnn.layers.base import Layer
from tinycnn.parameter import Parameter
from tinycnn.train import DivergenceError

RNG = np.random.default_rng(1)
X = RNG.normal(size=(12, 1, 4, 4)).astype(np.float32)
Y = np.arange(12) % 3


def model_3():
    return tc.Sequential(layers.Flatten(), layers.Dense(16, 8, rng=0), layers.ReLU(), layers.Dense(8, 3, rng=1))


def fit(model, x=X, y=Y, **kwargs):
    kwargs.setdefault("loss", losses.SoftmaxCrossEntropy())
    kwargs.setdefault("optimizer", optim.SGD(model.parameters(), lr=0.1))
    kwargs.setdefault("verbose", False)
    return model.fit(x, y, **kwargs)


def weights(model):
    return [p.data.copy() for p in model.parameters()]


def all_finite(model):
    return all(np.all(np.isfinite(p.data)) for p in model.parameters())


@contextlib.contextmanager
def no_runtime_warnings():
    """Turn every RuntimeWarning (overflow, invalid value) into a test failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


# ------------------------------------------------------------------ inputs, checked once up front
@given(data=st.data())
def test_non_finite_inputs_are_counted_and_located(data):
    flat = data.draw(st.lists(st.integers(0, X.size - 1), min_size=1, max_size=10, unique=True))
    values = data.draw(st.lists(st.sampled_from([np.nan, np.inf, -np.inf]), min_size=len(flat), max_size=len(flat)))
    x = X.copy()
    x.reshape(-1)[flat] = values
    n_nan = sum(np.isnan(v) for v in values)
    samples = sorted({i // 16 for i in flat})
    first = np.unravel_index(min(flat), X.shape)
    model = model_3()
    before = weights(model)
    with pytest.raises(ValueError) as err:
        fit(model, x=x)
    text = str(err.value)
    assert text.startswith(f"fit: x contains NaN or inf values ({len(flat)} of {X.size}): "
                           f"{n_nan} NaN and {len(flat) - n_nan} inf in {len(samples)} sample(s)")
    assert f"first at x[{', '.join(str(int(i)) for i in first)}]" in text
    assert str(samples[0]) in text.split("sample(s) [")[1]
    for a, b in zip(before, weights(model)):
        np.testing.assert_array_equal(a, b)
    assert model.meta["input_shape"] is None


def test_non_finite_targets_validation_data_and_predict_inputs():
    binary = tc.Sequential(layers.Flatten(), layers.Dense(16, 1, rng=0))
    y = (Y % 2).astype(np.float32)
    y[4] = np.nan
    with pytest.raises(ValueError, match=r"fit: y contains NaN or inf values \(1 of 12\): 1 NaN and 0 inf .* first at y\[4\]"):
        fit(binary, y=y, loss=losses.BinaryCrossEntropyWithLogits())
    x_val = X.copy()
    x_val[3, 0, 1, 2] = np.inf
    with pytest.raises(ValueError, match=r"fit\(validation_data\): x_val contains NaN or inf values \(1 of 192\).*x_val\[3, 0, 1, 2\]"):
        fit(model_3(), validation_data=(x_val, Y))
    for call in ("predict", "evaluate"):
        with pytest.raises(ValueError, match=rf"{call}: x contains NaN or inf values"):
            getattr(model_3(), call)(x_val, *([Y] if call == "evaluate" else []))


def test_float64_values_beyond_float32_are_reported_as_such():
    x = X.astype(np.float64)
    x[0, 0, 0, 0] = 1e300
    with pytest.raises(ValueError, match="became inf"):
        fit(model_3(), x=x)


# ------------------------------------------------------------------ divergence
def test_divergence_in_the_output_stops_with_finite_weights_and_says_where():
    model = model_3()
    model[1].weight.data[...] = 3e37          # 16 inputs >= 1: sums pass float32's 3.4e38
    before = weights(model)
    with no_runtime_warnings(), pytest.raises(DivergenceError) as err:
        fit(model, x=np.abs(X) + 1, epochs=3, batch_size=4)
    text = str(err.value)
    assert "fit: training diverged at epoch 1, batch 1 of 3: the model's output became NaN or inf" in text
    assert "x spans [1.0" in text and "learning rate too high (lr=0.1" in text and "bad data" in text and "normalise" in text
    assert (err.value.epoch, err.value.batch) == (1, 1) and err.value.history.epoch == []
    assert isinstance(err.value, FloatingPointError)
    for a, b in zip(before, weights(model)):
        np.testing.assert_array_equal(a, b)
    assert model.training and all(layer._cache is None for layer in model.layers)


def test_divergence_in_the_loss():
    model = tc.Sequential(layers.Flatten(), layers.Dense(16, 2, rng=0))
    model[1].weight.data[...] = 1e19          # outputs ~1e20 are finite; their squares are not
    with no_runtime_warnings(), pytest.raises(DivergenceError, match=r"epoch 1, batch 1 of 1: the loss became"):
        fit(model, y=np.zeros((12, 2), np.float32), loss=losses.MSE(), batch_size=12)
    assert all_finite(model)


def _poisoned_layer(after):
    """A scale layer whose gradient becomes inf on backward number ``after``."""
    class Poison(Layer):
        def __init__(self):
            super().__init__()
            self.weight, self.calls = Parameter(np.ones(1, np.float32), name="weight"), 0

        def forward(self, x):
            self._cache = x
            return x * self.weight.data

        def backward(self, dy):
            self.calls += 1
            self.weight.grad += np.inf if self.calls == after else np.sum(dy * self._cache)
            return dy * self.weight.data
    return Poison()


def test_divergence_in_a_gradient_names_the_parameter_and_keeps_the_weights():
    model = tc.Sequential(layers.Flatten(), _poisoned_layer(after=5), layers.Dense(16, 3, rng=0))
    with pytest.raises(DivergenceError) as err:
        fit(model, epochs=3, batch_size=4)          # 3 batches per epoch: backward 5 is epoch 2, batch 2
    assert "epoch 2, batch 2 of 3: the gradient of 1.Poison().weight became NaN or inf" in str(err.value)
    assert "this batch was not applied" in str(err.value)
    assert err.value.history.epoch == [1] and all_finite(model)


def test_a_step_that_overflows_the_weights_is_undone():
    model = model_3()
    before = weights(model)
    with no_runtime_warnings(), pytest.raises(DivergenceError, match="a weight after the update became NaN or inf") as err:
        fit(model, x=X * 1000, optimizer=optim.SGD(model.parameters(), lr=3e38), batch_size=12)
    assert "were put back" in str(err.value) and "lr=3e+38" in str(err.value)
    for a, b in zip(before, weights(model)):
        np.testing.assert_array_equal(a, b)


@given(log_lr=st.floats(0, 38), seed=st.integers(0, 3), opt=st.sampled_from(["sgd", "adam"]))
def test_any_learning_rate_leaves_finite_weights(log_lr, seed, opt):
    model = model_3()
    make = optim.SGD if opt == "sgd" else optim.Adam
    optimizer = make(model.parameters(), lr=10.0 ** log_lr)
    with no_runtime_warnings():
        try:
            history = fit(model, x=X * 10, optimizer=optimizer, epochs=3, batch_size=4, seed=seed)
            assert len(history.epoch) == 3
        except DivergenceError as err:
            assert 1 <= err.epoch <= 3
            assert len(err.history.epoch) == err.epoch - 1
            assert f"epoch {err.epoch}, batch {err.batch} of 3" in str(err)
    assert all_finite(model)


# ------------------------------------------------------------------ a sigmoid that never overflows
def reference_sigmoid(x):
    x = np.asarray(x, np.float64)
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-np.clip(x, -700, 700)))


finite = dict(allow_nan=False, allow_infinity=False)


@given(values=st.lists(st.floats(-3e38, 3e38, **finite), min_size=1, max_size=20),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_sigmoid_function_and_layer_never_warn(values, dtype):
    x = np.array(values, dtype)[None, :]
    with no_runtime_warnings():
        y = sigmoid(x)
        layer = layers.Sigmoid()
        y_layer = layer.forward(x)
        dx = layer.backward(np.ones_like(x))
    assert y.dtype == dtype and np.all((y >= 0) & (y <= 1))
    np.testing.assert_allclose(y, reference_sigmoid(x), rtol=1e-6, atol=1e-30)
    np.testing.assert_array_equal(y, y_layer)
    assert np.all(np.isfinite(dx))


@given(z=st.lists(st.floats(-1e4, 1e4, **finite), min_size=2, max_size=12), data=st.data())
def test_binary_cross_entropy_at_large_logits_is_finite_and_exact(z, data):
    z = np.array(z, np.float64)[:, None]
    t = np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=len(z), max_size=len(z))))[:, None]
    loss = losses.BinaryCrossEntropyWithLogits(pos_weight=2.0)
    with no_runtime_warnings():
        value = loss.forward(z, t)
        grad = loss.backward()
    expected = np.mean(2.0 * t * np.logaddexp(0, -z) + (1 - t) * np.logaddexp(0, z))
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    s = reference_sigmoid(z)
    np.testing.assert_allclose(grad, (2.0 * t * (s - 1) + (1 - t) * s) / z.size, rtol=1e-9, atol=1e-300)


def test_predict_of_a_one_output_model_at_large_logits():
    model = tc.Sequential(layers.Flatten(), layers.Dense(16, 1, rng=0))
    model[1].weight.data[...] = 0
    model[1].bias.data[...] = [-1e4]
    with no_runtime_warnings():
        p_low = model.predict(X)
        model[1].bias.data[...] = [1e4]
        p_high = model.predict(X)
    assert p_low.shape == (12, 1) and np.all(p_low == 0) and np.all(p_high == 1)
