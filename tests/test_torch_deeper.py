"""BatchNorm2D and a residual block against PyTorch, step for step (float64).

Skipped without torch, except in CI (CI=true), where the interop extra is installed.
"""
import numpy as np
import pytest
from optional import require

torch = require("torch")
nn = torch.nn

import tinycnn as tc  # noqa: E402
from tinycnn import layers, optim  # noqa: E402

BACKENDS = pytest.mark.parametrize("backend", ["reference", "numba"])


def _t(a):
    return torch.tensor(np.array(a))


@BACKENDS
def test_batchnorm2d_matches_torch_over_several_steps(backend):
    rng = np.random.default_rng(0)
    C = 3
    bn = layers.BatchNorm2D(C, eps=1e-5, momentum=0.1, dtype=np.float64)
    bn.weight.data = rng.standard_normal(C) + 1
    bn.bias.data = rng.standard_normal(C)
    ref = nn.BatchNorm2d(C, eps=1e-5, momentum=0.1).double()
    with torch.no_grad():
        ref.weight.copy_(_t(bn.weight.data)); ref.bias.copy_(_t(bn.bias.data))
    with tc.use_backend(backend):
        for step in range(4):                              # training mode, several batches
            x = rng.standard_normal((4, C, 5, 3)) * (step + 1) + step
            dy = rng.standard_normal(x.shape)
            xt = _t(x).requires_grad_(True)
            yt = ref(xt)
            (yt * _t(dy)).sum().backward()
            bn.zero_grad()
            y = bn.forward(x)
            dx = bn.backward(dy)
            np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
            np.testing.assert_allclose(bn.weight.grad, ref.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(bn.bias.grad, ref.bias.grad.numpy(), rtol=1e-10, atol=1e-12)
            ref.weight.grad = None; ref.bias.grad = None
            np.testing.assert_allclose(bn.running_mean, ref.running_mean.numpy(), rtol=1e-12)
            np.testing.assert_allclose(bn.running_var, ref.running_var.numpy(), rtol=1e-12)
        bn.eval(); ref.eval()                              # evaluation mode: running statistics
        x = rng.standard_normal((2, C, 5, 3))
        np.testing.assert_allclose(bn.forward(x), ref(_t(x)).detach().numpy(), rtol=1e-10, atol=1e-12)


class TorchBlock(nn.Module):
    """The same residual block written in PyTorch: relu(bn2(conv2(relu(bn1(conv1 x)))) + S x)."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                               nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.s = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        return self.f(x) + self.s(x)


@BACKENDS
def test_residual_block_matches_torch_step_for_step(backend):
    rng = np.random.default_rng(1)
    c_in, c_out = 2, 4
    block = layers.Residual(
        layers.Conv2D(c_in, c_out, 3, stride=2, padding=1, bias=False, rng=0, dtype=np.float64),
        layers.BatchNorm2D(c_out, dtype=np.float64), layers.ReLU(),
        layers.Conv2D(c_out, c_out, 3, padding=1, bias=False, rng=1, dtype=np.float64),
        layers.BatchNorm2D(c_out, dtype=np.float64),
        shortcut=[layers.Conv2D(c_in, c_out, 1, stride=2, bias=False, rng=2, dtype=np.float64),
                  layers.BatchNorm2D(c_out, dtype=np.float64)])
    ref = TorchBlock(c_in, c_out, 2).double()
    mine = [layer for group in block.children().values() for layer in group]
    theirs = list(ref.f) + list(ref.s)
    with torch.no_grad():
        for a, b in zip(mine, theirs):
            for p, q in zip(a.parameters(), b.parameters()):
                q.copy_(_t(p.data))
    opt = optim.SGD(block.parameters(), lr=0.1, momentum=0.9)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    with tc.use_backend(backend):
        for step in range(3):
            x = rng.standard_normal((3, c_in, 6, 6))
            dy = rng.standard_normal((3, c_out, 3, 3))
            xt = _t(x).requires_grad_(True)
            ref_opt.zero_grad()
            yt = ref(xt)
            (yt * _t(dy)).sum().backward()
            ref_opt.step()
            opt.zero_grad()
            y = block.forward(x)
            dx = block.backward(dy)
            opt.step()
            np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-9, atol=1e-11)
            np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
            for p, q in zip(block.parameters(), ref.parameters()):
                np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-9, atol=1e-11)
