"""Optional: every layer, loss and optimizer against PyTorch in float64 (skipped without torch,
except in CI, where the interop extra is installed and a missing torch fails)."""
import numpy as np
import pytest
from optional import require

torch = require("torch")
F = torch.nn.functional

import tinycnn as tc  # noqa: E402
from tinycnn import Parameter, layers, losses, optim  # noqa: E402

rng = np.random.default_rng(0)


def torch_grads(fn, *arrays):
    """Run ``fn`` on float64 tensors, back-propagate a fixed random projection, return (y, grads)."""
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*ts)
    r = torch.tensor(np.random.default_rng(1).standard_normal(tuple(y.shape)))
    (y * r).sum().backward()
    return y.detach().numpy(), [t.grad.numpy() for t in ts], r.numpy()


@pytest.mark.parametrize("backend", ["reference", "numba"])
@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), ((1, 2), (2, 0)), (3, 1)])
def test_conv2d(backend, stride, padding):
    x = rng.standard_normal((2, 3, 9, 8))
    conv = layers.Conv2D(3, 4, kernel_size=(3, 2), stride=stride, padding=padding, rng=0, dtype=np.float64)
    conv.bias.data = rng.standard_normal(4)
    y_t, (dx_t, dw_t, db_t), r = torch_grads(
        lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding), x, conv.weight.data, conv.bias.data)
    with tc.use_backend(backend):
        np.testing.assert_allclose(conv.forward(x), y_t, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(conv.backward(r), dx_t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.weight.grad, dw_t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.bias.grad, db_t, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["reference", "numba"])
@pytest.mark.parametrize("Pool, torch_pool", [(layers.MaxPool2D, F.max_pool2d), (layers.AvgPool2D, F.avg_pool2d)])
@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 1), ((2, 3), (1, 2))])
def test_pooling(backend, Pool, torch_pool, kernel, stride):
    x = rng.standard_normal((2, 3, 7, 8))
    y_t, (dx_t,), r = torch_grads(lambda x: torch_pool(x, kernel, stride), x)
    pool = Pool(kernel, stride=stride)
    with tc.use_backend(backend):
        np.testing.assert_allclose(pool.forward(x), y_t, rtol=1e-12)
        np.testing.assert_allclose(pool.backward(r), dx_t, rtol=1e-12, atol=1e-14)


def test_dense():
    x = rng.standard_normal((5, 7))
    dense = layers.Dense(7, 3, rng=0, dtype=np.float64)
    dense.bias.data = rng.standard_normal(3)
    y_t, (dx_t, dw_t, db_t), r = torch_grads(F.linear, x, dense.weight.data, dense.bias.data)
    np.testing.assert_allclose(dense.forward(x), y_t, rtol=1e-12)
    np.testing.assert_allclose(dense.backward(r), dx_t, rtol=1e-12)
    np.testing.assert_allclose(dense.weight.grad, dw_t, rtol=1e-12)
    np.testing.assert_allclose(dense.bias.grad, db_t, rtol=1e-12)


@pytest.mark.parametrize("layer, fn", [
    (layers.ReLU(), F.relu), (layers.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)),
    (layers.Sigmoid(), torch.sigmoid), (layers.Tanh(), torch.tanh),
])
def test_activations(layer, fn):
    x = rng.standard_normal((4, 6)) * 3
    y_t, (dx_t,), r = torch_grads(fn, x)
    np.testing.assert_allclose(layer.forward(x), y_t, rtol=1e-12)
    np.testing.assert_allclose(layer.backward(r), dx_t, rtol=1e-12, atol=1e-15)


def _loss_pair(loss, torch_loss, z, t):
    zt = torch.tensor(z, requires_grad=True)
    expected = torch_loss(zt)
    expected.backward()
    assert loss.forward(z, t) == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(loss.backward(), zt.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_losses():
    z = rng.standard_normal((6, 4)) * 2
    t = rng.integers(0, 4, 6)
    w = np.array([0.5, 2.0, 1.0, 3.0])
    _loss_pair(losses.SoftmaxCrossEntropy(), lambda zt: F.cross_entropy(zt, torch.tensor(t)), z, t)
    _loss_pair(losses.SoftmaxCrossEntropy(class_weights=w),
               lambda zt: F.cross_entropy(zt, torch.tensor(t), weight=torch.tensor(w)), z, t)
    target = rng.standard_normal((6, 4))
    _loss_pair(losses.MSE(), lambda zt: F.mse_loss(zt, torch.tensor(target)), z, target)
    z1, t1 = rng.standard_normal((8, 1)) * 5, rng.integers(0, 2, (8, 1)).astype(np.float64)
    _loss_pair(losses.BinaryCrossEntropyWithLogits(pos_weight=3.0),
               lambda zt: F.binary_cross_entropy_with_logits(zt, torch.tensor(t1), pos_weight=torch.tensor(3.0)),
               z1, t1)


@pytest.mark.parametrize("make, make_torch", [
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
     lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01)),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.8, nesterov=True),
     lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.8, nesterov=True)),
    (lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
     lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
])
def test_optimizers_match_torch_step_for_step(make, make_torch):
    start = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(5)]
    p = Parameter(start.copy())
    pt = torch.tensor(start.copy(), requires_grad=True)
    ours, theirs = make([p]), make_torch([pt])
    for g in grads:
        ours.zero_grad()
        p.grad += g
        ours.step()
        pt.grad = torch.tensor(g)
        theirs.step()
        np.testing.assert_allclose(p.data, pt.detach().numpy(), rtol=1e-12, atol=1e-14)
