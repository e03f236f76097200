"""Freezing: frozen parameters get no update from any optimizer, gradients still flow through."""
import numpy as np
import pytest

import tinycnn as tc
from tinycnn import layers, losses, optim


def data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0, :4].mean(axis=(1, 2)) > x[:, 0, 4:].mean(axis=(1, 2))).astype(np.int64)
    return x, y


def cnn(seed=0):
    rng = np.random.default_rng(seed)
    return tc.Sequential(layers.Conv2D(1, 4, kernel_size=3, padding="same", rng=rng), layers.ReLU(),
                         layers.MaxPool2D(2), layers.Flatten(), layers.Dense(64, 16, rng=rng), layers.Tanh(),
                         layers.Dense(16, 2, rng=rng))


def test_parameters_are_trainable_until_frozen():
    model = cnn()
    assert all(p.trainable for p in model.parameters())
    assert model[0].freeze() is model[0]
    assert [p.trainable for p in model.parameters()] == [False, False, True, True, True, True]
    assert "frozen" in repr(model[0].weight)
    model[0].unfreeze()
    assert all(p.trainable for p in model.parameters())
    assert model.freeze() is model and not any(p.trainable for p in model.parameters())
    model.unfreeze()
    assert all(p.trainable for p in model.parameters())


OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.05),
    "sgd-momentum-decay": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "adam-decay": lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-2),
}


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_frozen_weights_are_bit_identical_after_fit(make_optimizer):
    model = cnn()
    model[4].freeze()                                    # the middle Dense
    before = [p.data.copy() for p in model.parameters()]
    model.fit(*data(), loss=losses.SoftmaxCrossEntropy(), optimizer=make_optimizer(model.parameters()),
              epochs=2, batch_size=16, seed=0, verbose=False)
    after = [p.data for p in model.parameters()]
    frozen = [p.trainable is False for p in model.parameters()]
    assert frozen == [False, False, True, True, False, False]
    for b, a, is_frozen in zip(before, after, frozen):
        if is_frozen:
            np.testing.assert_array_equal(a, b)          # bit for bit
        else:
            assert not np.array_equal(a, b)              # the layers before and after it learn


def test_gradients_flow_through_a_frozen_layer():
    x, y = data(8)
    loss = losses.SoftmaxCrossEntropy()
    grads = {}
    for frozen in (False, True):
        model = cnn()
        if frozen:
            model[4].freeze()
            model[6].freeze()
        loss.forward(model.forward(x), y)
        model.zero_grad()
        dx = model.backward(loss.backward())
        grads[frozen] = [p.grad.copy() for p in model.parameters()] + [dx]
    # freezing changes what the optimizer does, not what backward computes
    for g_free, g_frozen in zip(grads[False], grads[True]):
        np.testing.assert_array_equal(g_frozen, g_free)
    assert np.abs(grads[True][0]).sum() > 0              # the first conv receives gradient


def test_a_frozen_model_still_passes_gradcheck():
    model = cnn().freeze()
    x, y = data(2)
    report = tc.gradcheck(model, x, y, loss=losses.SoftmaxCrossEntropy())
    assert report.passed and len(report.entries) == 1 + len(model.parameters())


def test_summary_counts_trainable_and_frozen():
    model = cnn()
    model[0].freeze()
    text = model.summary(input_shape=(1, 8, 8))
    conv_count = 4 * 9 + 4
    total = conv_count + (64 + 1) * 16 + (16 + 1) * 2
    assert text.total == total and text.frozen == conv_count and text.trainable == total - conv_count
    assert text.strip().endswith(f"Total parameters: {total:,} (trainable: {total - conv_count:,}, "
                                 f"frozen: {conv_count})")
    assert f"{conv_count} frozen" in text.splitlines()[2]


def test_loaded_models_are_trainable(tmp_path):
    model = cnn().freeze()
    model.save(tmp_path / "m.npz")
    assert all(p.trainable for p in tc.load_model(tmp_path / "m.npz").parameters())
