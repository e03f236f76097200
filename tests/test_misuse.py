"""API misuse at fit/evaluate/predict and the optimizers: an error that names the mistake,
raised before anything changes, and NumPy scalars accepted wherever a number is expected."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinycnn as tc
from tinycnn import layers, losses, optim
from tinycnn.train import minibatches

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 1, 6, 6)).astype(np.float32)
Y = np.arange(12) % 3
INT_TYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOAT_TYPES = [np.float16, np.float32, np.float64]


def conv_model(dropout=False):
    extra = [layers.Dropout(0.5, rng=0)] if dropout else []
    return tc.Sequential(layers.Conv2D(1, 2, 3, rng=0), layers.ReLU(), *extra, layers.Flatten(),
                         layers.Dense(2 * 4 * 4, 3, rng=1))


def fit(model, x=X, y=Y, **kwargs):
    kwargs.setdefault("loss", losses.SoftmaxCrossEntropy())
    kwargs.setdefault("optimizer", optim.SGD(model.parameters(), lr=0.1))
    kwargs.setdefault("verbose", False)
    return model.fit(x, y, **kwargs)


def state(model):
    """Everything a call could change: weights, the recorded input shape, mode, dropout rngs."""
    rngs = [layer.rng.bit_generator.state for layer in model.layers if hasattr(layer, "rng")]
    return ([p.data.copy() for p in model.parameters()], dict(model.meta), model.training, rngs)


def assert_same_state(a, b):
    for w_a, w_b in zip(a[0], b[0]):
        np.testing.assert_array_equal(w_a, w_b)
    assert a[1:] == b[1:]


# ------------------------------------------------------------------ the data
@pytest.mark.parametrize("call", ["fit", "evaluate"])
def test_missing_y_is_named(call):
    model = conv_model()
    with pytest.raises(ValueError, match=rf"{call}: y is missing \(None\)"):
        fit(model, y=None) if call == "fit" else model.evaluate(X, None)


@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_empty_dataset_is_named(call):
    model = conv_model()
    with pytest.raises(ValueError, match=rf"{call}: x is empty \(shape \(0, 1, 6, 6\), 0 samples\)"):
        {"fit": lambda: fit(model, x=X[:0], y=Y[:0]), "evaluate": lambda: model.evaluate(X[:0], Y[:0]),
         "predict": lambda: model.predict(X[:0])}[call]()


def test_empty_validation_set_is_named():
    with pytest.raises(ValueError, match=r"fit\(validation_data\): x_val is empty"):
        fit(conv_model(), validation_data=(X[:0], Y[:0]))


@given(n=st.integers(1, 5), h=st.integers(3, 8))
@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_images_without_channel_axis_get_a_channel_hint(call, n, h):
    model = tc.Sequential(layers.Conv2D(1, 2, 3, rng=0), layers.ReLU(), layers.Flatten(),
                          layers.Dense(2 * (h - 2) ** 2, 3, rng=1))
    x = np.ones((n, h, h), np.float32)
    y = np.arange(n) % 3
    with pytest.raises(ValueError, match=r"no channel axis: add it with x\[:, None\]") as err:
        {"fit": lambda: fit(model, x, y), "evaluate": lambda: model.evaluate(x, y),
         "predict": lambda: model.predict(x)}[call]()
    assert "batch axis, x[None]" not in str(err.value)     # the wrong hint is not offered
    assert model.meta["input_shape"] is None


def test_channels_last_and_flat_inputs_get_their_hints():
    with pytest.raises(ValueError, match=r"channels-last.*x\.transpose\(0, 3, 1, 2\)"):
        fit(conv_model(), x=X.transpose(0, 2, 3, 1).copy())
    dense = tc.Sequential(layers.Dense(36, 3, rng=0))
    with pytest.raises(ValueError, match=r"x\.reshape\(len\(x\), -1\)"):
        fit(dense, x=X)


def test_one_image_without_batch_axis_in_predict():
    with pytest.raises(ValueError, match=r"x\[None\]"):
        conv_model().predict(X[0])


def test_inputs_and_targets_passed_as_one_tuple():
    with pytest.raises(TypeError, match=r"x is a pair of arrays; pass inputs and targets as two"):
        conv_model().evaluate((X, Y), None)


def test_non_numeric_labels_get_a_hint():
    with pytest.raises(TypeError, match=r"y must hold numbers.*np\.unique\(y, return_inverse=True\)"):
        fit(conv_model(), y=np.array(["cat", "dog", "eel"] * 4))


@pytest.mark.parametrize("bad, exc", [
    (X, TypeError), ((X,), ValueError), ((X, Y, Y), ValueError), ({"x": X, "y": Y}, TypeError),
    ("val", TypeError)])
def test_validation_data_must_be_a_pair(bad, exc):
    model = conv_model()
    before = state(model)
    with pytest.raises(exc, match=r"fit: validation_data must be a pair \(x_val, y_val\), got"):
        fit(model, validation_data=bad)
    assert_same_state(before, state(model))


def test_labels_out_of_range_are_refused_before_training():
    model = conv_model()
    before = state(model)
    with pytest.raises(ValueError, match=r"fit: y does not fit the model's output \(N, 3\).*\[0, 2\]"):
        fit(model, y=Y + 1)
    assert_same_state(before, state(model))
    with pytest.raises(ValueError, match=r"fit\(validation_data\): y_val does not fit"):
        fit(model, validation_data=(X, Y + 5))
    assert_same_state(before, state(model))


def test_one_output_with_softmax_loss_suggests_binary_loss():
    model = tc.Sequential(layers.Flatten(), layers.Dense(36, 1, rng=0))
    with pytest.raises(ValueError, match="BinaryCrossEntropyWithLogits"):
        fit(model, y=Y % 2)


# ------------------------------------------------------------------ loss, optimizer, callbacks
@pytest.mark.parametrize("cls", [losses.SoftmaxCrossEntropy, losses.MSE, losses.BinaryCrossEntropyWithLogits])
def test_loss_class_instead_of_instance(cls):
    model = conv_model()
    with pytest.raises(TypeError, match=rf"loss is the class {cls.__name__}.*loss=losses\.{cls.__name__}\(\)"):
        fit(model, loss=cls)
    with pytest.raises(TypeError, match=rf"evaluate: loss is the class {cls.__name__}"):
        model.evaluate(X, Y, loss=cls)


@pytest.mark.parametrize("bad", ["cross_entropy", 3, None])
def test_loss_that_is_no_loss(bad):
    with pytest.raises((TypeError, ValueError), match=r"fit: (loss must be a loss object|no loss given)"):
        fit(conv_model(), loss=bad)


@pytest.mark.parametrize("make", [optim.SGD, optim.Adam])
def test_optimizer_given_a_model_or_layer(make):
    model = conv_model()
    with pytest.raises(TypeError, match=rf"{make.__name__}: got a Sequential \(a model or layer\).*model\.parameters\(\)"):
        make(model, lr=0.1)
    with pytest.raises(TypeError, match=rf"{make.__name__}: got a Dense"):
        make(model[-1], lr=0.1)
    with pytest.raises(TypeError, match=r"item 1 of params is a str, not a tc.Parameter"):
        make([model.parameters()[0], "w"], lr=0.1)
    with pytest.raises(TypeError, match="got a single Parameter"):
        make(model.parameters()[0], lr=0.1)
    with pytest.raises(ValueError, match="appears more than once"):
        make(model.parameters() * 2, lr=0.1)


def test_optimizer_class_instead_of_instance():
    with pytest.raises(TypeError, match=r"optimizer is the class SGD.*optim\.SGD\(model\.parameters\(\), lr=\.\.\.\)"):
        fit(conv_model(), optimizer=optim.SGD)


@pytest.mark.parametrize("foreign", ["all", "some"])
def test_optimizer_of_another_model_is_refused_and_nothing_trains(foreign):
    model, other = conv_model(), conv_model()
    params = other.parameters() if foreign == "all" else model.parameters()[:2] + other.parameters()[2:]
    before = state(model)
    message = "none of the optimizer's 4 parameters belong to this model" if foreign == "all" else \
        "2 of the optimizer's 4 parameters belong to no layer of this model"
    with pytest.raises(ValueError, match=message):
        fit(model, optimizer=optim.SGD(params, lr=0.1), epochs=3)
    assert_same_state(before, state(model))


def test_a_partial_optimizer_of_this_model_is_fine():
    model = conv_model()
    fit(model, optimizer=optim.SGD(model.parameters()[2:], lr=0.1))


def test_scheduler_of_another_optimizer():
    model = conv_model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="scheduler adjusts a different optimizer"):
        fit(model, optimizer=opt, scheduler=optim.StepLR(optim.SGD(model.parameters(), lr=0.1), 1))


def test_callbacks_must_be_a_list_of_objects():
    with pytest.raises(TypeError, match=r"callbacks must be a list, e\.g\. callbacks=\[EarlyStopping\(\)\]"):
        fit(conv_model(), callbacks=tc.EarlyStopping(monitor="loss"))
    with pytest.raises(TypeError, match=r"callbacks\[0\] is the class EarlyStopping"):
        fit(conv_model(), callbacks=[tc.EarlyStopping])
    with pytest.raises(TypeError, match=r"callbacks\[0\].*has no on_epoch_end"):
        fit(conv_model(), callbacks=[print])


def test_augment_and_sampler_must_be_functions():
    with pytest.raises(TypeError, match=r"augment must be a function augment\(x_batch, rng\)"):
        fit(conv_model(), augment="flip")


# ------------------------------------------------------------------ batch_size and numbers
@given(bad=st.one_of(st.integers(-5, 0), st.sampled_from([0.5, 2.0, "8", None, True])))
def test_bad_batch_size_everywhere(bad):
    model = conv_model()
    exc = ValueError if isinstance(bad, int) and not isinstance(bad, bool) else TypeError
    for call, run in [("fit", lambda: fit(model, batch_size=bad)),
                      ("evaluate", lambda: model.evaluate(X, Y, batch_size=bad)),
                      ("predict", lambda: model.predict(X, batch_size=bad)),
                      ("predict", lambda: model.predict_classes(X, batch_size=bad)),
                      ("minibatches", lambda: minibatches(10, bad))]:
        with pytest.raises(exc, match=rf"{call}: batch_size must be an int >= 1"):
            run()


@pytest.mark.parametrize("name, value", [("epochs", 0), ("epochs", 2.0), ("epochs", True),
                                         ("seed", -1), ("seed", 1.5), ("shuffle", "yes"), ("verbose", 3)])
def test_bad_fit_numbers(name, value):
    model = conv_model()
    before = state(model)
    with pytest.raises((ValueError, TypeError), match=rf"fit: {name} must be"):
        fit(model, **{name: value})
    assert_same_state(before, state(model))


@given(int_type=st.sampled_from(INT_TYPES), float_type=st.sampled_from(FLOAT_TYPES),
       epochs=st.integers(1, 2), batch_size=st.integers(1, 12))
def test_numpy_scalars_are_numbers_in_fit(int_type, float_type, epochs, batch_size):
    runs = []
    for cast_int, cast_float in [(int, float), (int_type, float_type)]:
        model = conv_model(dropout=True)
        opt = optim.SGD(model.parameters(), lr=cast_float(0.5), momentum=cast_float(0.5),
                        weight_decay=cast_float(0.25))
        h = fit(model, optimizer=opt, epochs=cast_int(epochs), batch_size=cast_int(batch_size),
                seed=cast_int(3), scheduler=optim.StepLR(opt, step_size=cast_int(1), gamma=cast_float(0.5)),
                callbacks=[tc.EarlyStopping(monitor="loss", patience=cast_int(2), min_delta=cast_float(0))])
        runs.append((h.history["loss"], [p.data.copy() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


@given(float_type=st.sampled_from(FLOAT_TYPES), int_type=st.sampled_from(INT_TYPES))
def test_numpy_scalars_are_numbers_everywhere_else(float_type, int_type):
    params = conv_model().parameters()
    adam = optim.Adam(params, lr=float_type(0.25), betas=(float_type(0.5), float_type(0.75)),
                      eps=float_type(0.5), weight_decay=float_type(0.5))
    assert adam.lr == 0.25 and adam.betas == (0.5, 0.75) and type(adam.lr) is float
    assert optim.SGD(params, lr=int_type(1)).lr == 1.0
    assert optim.CosineLR(adam, T_max=int_type(4), eta_min=float_type(0)).T_max == 4
    assert layers.LeakyReLU(float_type(0.25)).alpha == 0.25
    assert layers.Dropout(float_type(0.25)).p == 0.25
    stop = tc.EarlyStopping(patience=int_type(2), min_delta=float_type(0.5))
    assert stop.patience == 2 and stop.min_delta == 0.5
    model = conv_model()
    np.testing.assert_array_equal(model.predict(X, batch_size=int_type(5)), model.predict(X, batch_size=5))
    assert model.evaluate(X, Y, batch_size=int_type(5)) == model.evaluate(X, Y)


@pytest.mark.parametrize("make, message", [
    (lambda ps: optim.SGD(ps, lr=np.float32("nan")), "lr must be a number in"),
    (lambda ps: optim.SGD(ps, lr="0.1"), "lr must be a number in"),
    (lambda ps: optim.SGD(ps, lr=True), "lr must be a number in"),
    (lambda ps: optim.Adam(ps, betas=0.9), r"betas must be a pair"),
    (lambda ps: optim.StepLR(optim.SGD(ps, lr=0.1), step_size=1.5), "step_size must be an int"),
])
def test_optimizer_refuses_what_is_not_a_number(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make(conv_model().parameters())


# ------------------------------------------------------------------ a refused call changes nothing
MISUSES = {
    "no channel axis": dict(x=X[:, 0]),
    "labels out of range": dict(y=Y + 7),
    "y of another length": dict(y=Y[:5]),
    "validation not a pair": dict(validation_data=X),
    "loss class": dict(loss=losses.MSE),
    "batch_size 0": dict(batch_size=0),
    "NaN input": dict(x=np.where(X > 2, np.nan, X)),
}


@pytest.mark.parametrize("case", sorted(MISUSES))
def test_a_refused_fit_leaves_the_model_as_it_was(case):
    model = conv_model(dropout=True)
    before = state(model)
    with pytest.raises((ValueError, TypeError)):
        fit(model, epochs=2, **MISUSES[case])
    assert_same_state(before, state(model))
    assert model.meta["input_shape"] is None
    fit(model, epochs=1)                        # and the model still trains afterwards
    assert model.meta["input_shape"] == [1, 6, 6]


def test_a_failed_forward_records_no_input_shape():
    model = conv_model()
    with pytest.raises(ValueError):
        model.forward(np.ones((2, 3, 6, 6), np.float32))
    assert model.meta["input_shape"] is None
    model.forward(X)
    assert model.meta["input_shape"] == [1, 6, 6]
