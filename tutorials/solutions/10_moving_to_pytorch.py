# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Solutions — Tutorial 10, Moving on to PyTorch
#
# Worked answers to the exercises of `tutorials/10_moving_to_pytorch.py`, each checked by an
# `assert` on numbers computed here. Needs the interop extra (`pip install -e ".[interop]"`).

# %%
import numpy as np
import torch

from tinycnn.tutorial_helpers import FAST
import tinycnn as tc
from tinycnn import layers, losses
from tinycnn.datasets import load_mnist5k
from tinycnn.interop import to_torch

rng = np.random.default_rng(0)

# %% [markdown]
# ## Exercise 1 — LeakyReLU, AvgPool2D and Dropout across the bridge
#
# In `eval()` mode dropout is the identity on both sides, so the two frameworks compute the
# same function. In training mode each draws its own random mask — tinycnn from its NumPy
# `Generator`, PyTorch from its own generator — so the same weights give different outputs:
# the *distribution* of masks is the same (each unit kept with probability 1 − p and scaled
# by 1/(1 − p)), the draws are not.

# %%
model = tc.Sequential(
    layers.Conv2D(1, 4, kernel_size=3, padding=1, rng=0), layers.LeakyReLU(0.2), layers.AvgPool2D(2),
    layers.Flatten(), layers.Dropout(0.5, rng=0), layers.Dense(4 * 14 * 14, 10, rng=1),
    input_shape=(1, 28, 28),
)
x = rng.random((5, 1, 28, 28)).astype(np.float32)
module = to_torch(model.eval())
with torch.no_grad():
    gap_eval = np.abs(module(torch.from_numpy(x)).numpy() - model.forward(x)).max()
print(f"eval mode: largest difference {gap_eval:.1e}")
assert gap_eval < 1e-5

model.train(); module.train()
with torch.no_grad():
    gap_train = np.abs(module(torch.from_numpy(x)).numpy() - model.forward(x)).max()
print(f"training mode: largest difference {gap_train:.2f} (different dropout masks)")
assert gap_train > 1e-3

# The same mask statistics: the fraction of features each side keeps is close to 1 − p.
features = np.ones((2000, 4 * 14 * 14), np.float32)
kept_tc = (layers.Dropout(0.5, rng=1).forward(features) > 0).mean()
kept_torch = (torch.nn.Dropout(0.5).train()(torch.from_numpy(features)) > 0).float().mean().item()
print(f"fraction kept: tinycnn {kept_tc:.3f}, PyTorch {kept_torch:.3f}")
assert abs(kept_tc - 0.5) < 0.01 and abs(kept_torch - 0.5) < 0.01

# %% [markdown]
# ## Exercise 2 — the gradient with respect to the input image
#
# In PyTorch: mark the input `requires_grad_(True)`, compute the loss, call
# `loss.backward()`, read `x.grad`. In tinycnn: `model.backward(loss_fn.backward())` returns
# exactly that array, `dL/dx` — it is what every layer's backward passes down to the layer
# before it, and the first layer passes it out.

# %%
(_, _), (x_test, y_test) = load_mnist5k(seed=0)
n = 4 if FAST else 32
x, t = x_test[:n].astype(np.float64), y_test[:n]
lenet = tc.models.lenet5(rng=0, dtype=np.float64)
loss_fn = losses.SoftmaxCrossEntropy()
loss_fn.forward(lenet.forward(x), t)
dx_tc = lenet.backward(loss_fn.backward())

xt = torch.from_numpy(x.copy()).requires_grad_(True)
loss = torch.nn.functional.cross_entropy(to_torch(lenet)(xt), torch.from_numpy(t.astype(np.int64)))
loss.backward()
gap = np.abs(xt.grad.numpy() - dx_tc).max()
print(f"dL/dx for {n} digits: largest difference {gap:.1e} (float64; largest |dL/dx| {np.abs(dx_tc).max():.1e})")
assert gap < 1e-12
