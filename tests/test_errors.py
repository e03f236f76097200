"""Bad input gets a clear error naming the layer, what was expected and what arrived."""
from contextlib import contextmanager

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import layers, losses, optim

X = np.zeros((2, 1, 8, 8), np.float32)


@contextmanager
def raises(exc, *fragments):
    """pytest.raises that also checks every fragment appears in the message."""
    with pytest.raises(exc) as info:
        yield info
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"


def test_wrong_rank():
    with raises(ValueError, "Conv2D(1→6, k=5)", "expected a 4-D input (N, C, H, W)", "(1, 8, 8)", "x[None]"):
        layers.Conv2D(1, 6, 5).forward(np.zeros((1, 8, 8), np.float32))
    with raises(ValueError, "Dense(64→10)", "expected a 2-D input", "Flatten()"):
        layers.Dense(64, 10).forward(X)


def test_wrong_channel_count():
    with raises(ValueError, "Conv2D(3→6, k=5)", "expected 3 input channel(s)", "got 1"):
        layers.Conv2D(3, 6, 5).forward(X)
    with raises(ValueError, "Dense(10→2)", "expected 10 input features", "got 64"):
        layers.Dense(10, 2).forward(np.zeros((2, 64), np.float32))


def test_kernel_larger_than_padded_input():
    with raises(ValueError, "Conv2D(1→2, k=11, p=1)", "kernel 11×11 is larger than the padded input 10×10"):
        layers.Conv2D(1, 2, 11, padding=1).forward(X)
    with raises(ValueError, "MaxPool2D(9)", "larger than the input's 8×8"):
        layers.MaxPool2D(9).forward(X)


@pytest.mark.parametrize("make, exc, fragment", [
    (lambda: layers.Conv2D(1, 2, 0), ValueError, "kernel_size must be >= 1, got 0"),
    (lambda: layers.Conv2D(1, 2, 3, stride=0), ValueError, "stride must be >= 1, got 0"),
    (lambda: layers.Conv2D(1, 2, 3, stride=(1, -2)), ValueError, "stride must be >= 1"),
    (lambda: layers.Conv2D(1, 2, 3, padding=-1), ValueError, "padding must be >= 0"),
    (lambda: layers.Conv2D(1, 2, 2.5), TypeError, "kernel_size must be an int or a pair of ints"),
    (lambda: layers.Conv2D(0, 2, 3), ValueError, "in_channels must be >= 1"),
    (lambda: layers.MaxPool2D(0), ValueError, "kernel_size must be >= 1"),
    (lambda: layers.AvgPool2D(2, stride=0), ValueError, "stride must be >= 1"),
    (lambda: layers.Dense(0, 3), ValueError, "in_features must be >= 1"),
    (lambda: layers.Dropout(1.0), ValueError, "p must be a probability in [0, 1)"),
    (lambda: layers.LeakyReLU(-1), ValueError, "alpha must be a number in [0, 1)"),
    (lambda: optim.SGD(layers.Dense(2, 2).parameters(), lr=0), ValueError, "SGD: lr must be a number"),
])
def test_bad_hyper_parameters(make, exc, fragment):
    with raises(exc, fragment):
        make()


def test_labels_out_of_range_and_wrong_type():
    loss = losses.SoftmaxCrossEntropy()
    with raises(ValueError, "labels must lie in [0, 2] for 3 classes", "[0, 3]"):
        loss.forward(np.zeros((2, 3)), np.array([0, 3]))
    with raises(ValueError, "labels must lie in [0, 2]", "[-1, 1]"):
        loss.forward(np.zeros((2, 3)), np.array([-1, 1]))
    with raises(TypeError, "labels must be integer class indices"):
        loss.forward(np.zeros((2, 3)), np.array([0.5, 1]))


def test_mismatched_batch_sizes():
    with raises(ValueError, "expected 2 integer labels", "got shape (3,)"):
        losses.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array([0, 1, 2]))
    with raises(ValueError, "target shape (3, 1) does not match prediction shape (2, 1)"):
        losses.MSE().forward(np.zeros((2, 1)), np.zeros((3, 1)))
    model = tc.Sequential(layers.Flatten(), layers.Dense(64, 2))
    with raises(ValueError, "x has 2 samples but y has 3"):
        model.fit(X, np.array([0, 1, 1]), loss=losses.SoftmaxCrossEntropy(),
                  optimizer=optim.SGD(model.parameters(), lr=0.1), verbose=False)


def test_backward_before_forward():
    with raises(ValueError, "Conv2D(1→2, k=3)", "backward() called before forward()"):
        layers.Conv2D(1, 2, 3).backward(np.zeros((2, 2, 6, 6), np.float32))
    with raises(ValueError, "backward() called before forward()"):
        losses.SoftmaxCrossEntropy().backward()


def test_backward_with_wrong_dy_shape():
    conv = layers.Conv2D(1, 2, 3)
    conv.forward(X)
    with raises(ValueError, "backward expected dy of shape (2, 2, 6, 6)", "got (2, 2, 8, 8)"):
        conv.backward(np.zeros((2, 2, 8, 8), np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_fit_input(bad):
    x = X.copy()
    x[1, 0, 3, 3] = bad
    model = tc.Sequential(layers.Flatten(), layers.Dense(64, 2))
    with raises(ValueError, "fit: x contains NaN or inf values (1 of 128)"):
        model.fit(x, np.array([0, 1]), loss=losses.SoftmaxCrossEntropy(),
                  optimizer=optim.SGD(model.parameters(), lr=0.1), verbose=False)


def test_non_float_and_non_array_input():
    with raises(TypeError, "expected a floating-point input, got dtype int64", "astype(np.float32)"):
        layers.ReLU().forward(np.zeros((2, 3), np.int64))
    with raises(TypeError, "expected a numpy.ndarray input, got list"):
        layers.Dense(3, 2).forward([[1.0, 2.0, 3.0]])


def test_fit_bad_epochs_and_batch_size():
    model = tc.Sequential(layers.Flatten(), layers.Dense(64, 2))
    for kwargs, fragment in [({"epochs": 0}, "epochs must be an int >= 1"),
                             ({"batch_size": -4}, "batch_size must be an int >= 1")]:
        with raises(ValueError, fragment):
            model.fit(X, np.array([0, 1]), loss=losses.SoftmaxCrossEntropy(),
                      optimizer=optim.SGD(model.parameters(), lr=0.1), verbose=False, **kwargs)


def test_unknown_backend():
    with raises(ValueError, "unknown backend 'cuda'"):
        tc.set_backend("cuda")
