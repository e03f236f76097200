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
# # Tutorial 10 — Moving on: the same network in PyTorch, and out to ONNX
#
# tinycnn spells everything out so you can see it; PyTorch hides the same steps behind
# automatic differentiation so you can scale them. Once you know one, the other is a
# dictionary away. This lesson writes LeNet-5 both ways, moves the weights across, checks
# the numbers agree, and shows what PyTorch's `autograd` does in place of the `backward`
# methods you have been reading. Then it exports the model to ONNX, the format deployment
# runtimes read, and points to where a grown-up project goes next: many processes, GPUs.
#
# **What you will learn**
#
# 1. every tinycnn name and its PyTorch name, side by side;
# 2. `tinycnn.interop.to_torch` / `from_torch`: weights copied, no transposes, outputs equal;
# 3. what autograd records during the forward pass, compared with one layer's explicit
#    `backward`, number for number;
# 4. training a few steps in PyTorch and bringing the model home;
# 5. `export_onnx`: a graph any ONNX runtime runs, checked against `model.predict`;
# 6. where to go next: `tutorials/train_ddp.py` (DistributedDataParallel on 2 processes),
#    GPUs.
#
# Needs the interop extra: `pip install -e ".[interop]"` (PyTorch, onnx, onnxruntime).

# %%
import numpy as np
import matplotlib.pyplot as plt

from tinycnn.tutorial_helpers import FAST, OUT, show
import tinycnn as tc
from tinycnn import layers, losses, optim
from tinycnn.datasets import load_mnist5k
from tinycnn.interop import export_onnx, from_torch, to_torch, torch_code

import torch
from torch import nn

np.set_printoptions(precision=5, suppress=True, linewidth=100)
print("tinycnn", tc.__version__, "| torch", torch.__version__, "| fast mode:", FAST)

# %% [markdown]
# ## 1. One network, two spellings
#
# | tinycnn | PyTorch | note |
# |---|---|---|
# | `tc.Sequential(...)` | `nn.Sequential(...)` | layers applied in order |
# | `layers.Conv2D(C, F, kernel_size, stride, padding)` | `nn.Conv2d(C, F, kernel_size, stride, padding)` | weight `(F, C, KH, KW)` in both |
# | `layers.MaxPool2D(k)` / `AvgPool2D(k)` | `nn.MaxPool2d(k)` / `nn.AvgPool2d(k)` | stride defaults to `k` in both |
# | `layers.Flatten()` | `nn.Flatten()` | `(N, C, H, W) → (N, C·H·W)` |
# | `layers.Dense(in, out)` | `nn.Linear(in, out)` | weight `(out, in)`: `y = x Wᵀ + b` |
# | `layers.ReLU()`, `LeakyReLU(α)`, `Sigmoid()`, `Tanh()` | `nn.ReLU()`, `nn.LeakyReLU(α)`, `nn.Sigmoid()`, `nn.Tanh()` | |
# | `layers.Dropout(p)` | `nn.Dropout(p)` | off in `eval()` mode in both |
# | `losses.SoftmaxCrossEntropy()` | `nn.CrossEntropyLoss()` | both take logits and class indices |
# | `losses.BCEWithLogits()` | `nn.BCEWithLogitsLoss()` | one logit per sample |
# | `optim.SGD(params, lr, momentum)` / `optim.Adam(...)` | `torch.optim.SGD(...)` / `torch.optim.Adam(...)` | the same update rules |
# | `model.backward(loss_fn.backward())` | `loss.backward()` | autograd replaces the explicit chain |
# | `p.grad`, `opt.zero_grad()`, `opt.step()` | `p.grad`, `opt.zero_grad()`, `opt.step()` | the same |
# | `model.fit(x, y, ...)` | a `for` loop over a `DataLoader` you write | |
# | `model.predict(x)` | `with torch.no_grad(): model(x).softmax(1)` | |
# | `model.save("m.npz")` | `torch.save(model.state_dict(), "m.pt")` | |
#
# Here is LeNet-5 written both ways:

# %%
lenet_tc = tc.Sequential(
    layers.Conv2D(1, 6, kernel_size=5, padding=2, rng=0), layers.ReLU(), layers.MaxPool2D(2),
    layers.Conv2D(6, 16, kernel_size=5, rng=1), layers.ReLU(), layers.MaxPool2D(2),
    layers.Flatten(),
    layers.Dense(16 * 5 * 5, 120, rng=2), layers.ReLU(),
    layers.Dense(120, 84, rng=3), layers.ReLU(),
    layers.Dense(84, 10, rng=4),
    input_shape=(1, 28, 28),
)
lenet_torch = nn.Sequential(
    nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
    nn.Linear(120, 84), nn.ReLU(),
    nn.Linear(84, 10),
)
count_tc = sum(p.size for p in lenet_tc.parameters())
count_torch = sum(p.numel() for p in lenet_torch.parameters())
print(f"parameters: tinycnn {count_tc:,}, PyTorch {count_torch:,}")
assert count_tc == count_torch == 61_706

# %% [markdown]
# The two start from different random weights. `to_torch` builds the PyTorch module *and*
# copies tinycnn's arrays into it — one table lookup per layer (the table is printed at the
# top of `tinycnn/interop/torch_bridge.py`), no transposes, because tinycnn stores every
# array in PyTorch's layout. `torch_code` prints the code of the module it builds:

# %%
print(torch_code(lenet_tc))
copied = to_torch(lenet_tc)

(x_train, y_train), (x_test, y_test) = load_mnist5k(seed=0)
x = x_test[:8]
y_tc = lenet_tc.forward(x)
with torch.no_grad():
    y_torch = copied(torch.from_numpy(x)).numpy()
diff = np.abs(y_tc - y_torch).max()
print(f"largest |tinycnn − PyTorch| over 8×10 logits: {diff:.2e} (float32; the logits are ~{np.abs(y_tc).max():.1f})")
assert diff < 1e-4

# %% [markdown]
# The difference is not zero because the two frameworks add the 150 (or 25) products of a
# convolution in different orders, and float32 addition is not associative: each order
# rounds differently, in the last of float32's ~7 significant digits. In float64 (~16
# digits) the gap shrinks accordingly — compare the two printed numbers:

# %%
lenet64 = to_torch(lenet_tc.to(np.float64))
with torch.no_grad():
    diff64 = np.abs(lenet_tc.forward(x.astype(np.float64)) - lenet64(torch.from_numpy(x.astype(np.float64))).numpy()).max()
print(f"float64: largest difference {diff64:.2e}")
assert diff64 < 1e-12
lenet_tc.to(np.float32)

# %% [markdown]
# ## 2. What autograd does instead of `backward`
#
# In tinycnn every layer caches its input in `forward` and its `backward(dy)` applies the
# chain rule written in its docstring — for a convolution,
# $\partial L/\partial w_{f,c,i,j} = \sum_{n,h,w} dy_{n,f,h,w}\, x^{pad}_{n,c,\,h s+i,\,w s+j}$.
# PyTorch's tensors that `requires_grad` record, at forward time, *which operation made
# them* (`grad_fn`); `backward()` walks that record in reverse and calls each operation's
# built-in derivative — the same formulas, written once inside PyTorch instead of once
# per layer in your code. Compare one convolution both ways:

# %%
rng = np.random.default_rng(0)
conv = layers.Conv2D(3, 4, kernel_size=3, stride=2, padding=1, rng=5, dtype=np.float64)
xc = rng.standard_normal((2, 3, 9, 9))
dy = rng.standard_normal((2, 4, 5, 5))            # some upstream gradient dL/dy

yc = conv.forward(xc)
dx = conv.backward(dy)                            # explicit: the layer's own chain rule

w_t = torch.tensor(conv.weight.data, requires_grad=True)
b_t = torch.tensor(conv.bias.data, requires_grad=True)
x_t = torch.tensor(xc, requires_grad=True)
y_t = torch.nn.functional.conv2d(x_t, w_t, b_t, stride=2, padding=1)
print("PyTorch recorded:", y_t.grad_fn)
y_t.backward(torch.from_numpy(dy))                # autograd: replay the record in reverse

for name, mine, theirs in [("dL/dx", dx, x_t.grad), ("dL/dw", conv.weight.grad, w_t.grad),
                           ("dL/db", conv.bias.grad, b_t.grad)]:
    err = np.abs(mine - theirs.numpy()).max()
    print(f"{name}: largest difference {err:.1e}")
    assert err < 1e-12

# %% [markdown]
# Passing `dy` to `y_t.backward(...)` is exactly tinycnn's `conv.backward(dy)`: "here is
# how the loss changes with my output; give me how it changes with my inputs and weights".
# For a scalar loss, `loss.backward()` starts the same walk with `dy = 1`.
#
# ## 3. Train in PyTorch, bring the model home
#
# A few steps of PyTorch's usual loop on the copied LeNet, then `from_torch` builds a tinycnn
# model from the trained module, and tinycnn's `evaluate` agrees with PyTorch's accuracy.

# %%
n_train, steps_per_epoch = (512, 8) if FAST else (4000, 63)
opt = torch.optim.SGD(copied.parameters(), lr=0.02, momentum=0.9)
gen = torch.Generator().manual_seed(0)
xt_all, yt_all = torch.from_numpy(x_train[:n_train]), torch.from_numpy(y_train[:n_train].astype(np.int64))
for epoch in range(1 if FAST else 3):
    copied.train()
    for idx in torch.randperm(n_train, generator=gen).split(64):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(copied(xt_all[idx]), yt_all[idx])
        loss.backward()
        opt.step()
    print(f"epoch {epoch + 1}: last minibatch loss {loss.item():.3f}")
copied.eval()
with torch.no_grad():
    torch_acc = (copied(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()

home = from_torch(copied, input_shape=(1, 28, 28))
tc_acc = home.evaluate(x_test, y_test, loss=losses.SoftmaxCrossEntropy())["accuracy"]
print(f"test accuracy: PyTorch {torch_acc:.4f}, tinycnn after from_torch {tc_acc:.4f}")
assert abs(torch_acc - tc_acc) <= 1 / len(y_test)
same = all(np.array_equal(p.data, q.detach().numpy()) for p, q in zip(home.parameters(), copied.parameters()))
print("weights bit-identical after the trip home:", same)
assert same

# %% [markdown]
# ## 4. Out to ONNX
#
# ONNX is a file format for inference graphs: operators (`Conv`, `MaxPool`, `Gemm`, ...)
# with their attributes and weights. `export_onnx` writes one with the `onnx` package's own
# helpers — no PyTorch involved — with a dynamic batch axis and two outputs, `logits` and
# `probabilities`. onnxruntime (and runtimes on phones, browsers and servers) runs it:

# %%
import onnxruntime

OUT.mkdir(parents=True, exist_ok=True)
path = export_onnx(home, OUT / "lenet.onnx")
session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
print("inputs:", [(i.name, i.shape) for i in session.get_inputs()])
print("outputs:", [(o.name, o.shape) for o in session.get_outputs()])
logits, probs = session.run(None, {"input": x_test[:100]})
gap = np.abs(probs - home.predict(x_test[:100])).max()
print(f"largest |onnxruntime − model.predict| over 100 digits: {gap:.1e}")
assert gap < 1e-5

fig, ax = plt.subplots(figsize=(7, 2.6))
ax.bar(np.arange(10) - 0.2, home.predict(x_test[:1])[0], width=0.4, label="tinycnn predict")
ax.bar(np.arange(10) + 0.2, probs[0], width=0.4, label="onnxruntime")
ax.set(title=f"One test digit (label {y_test[0]}): the same probabilities in both runtimes",
       xlabel="class", ylabel="probability", xticks=range(10), ylim=(0, 1))
ax.legend()
show(fig, "10_onnx_vs_tinycnn")

# %% [markdown]
# The command line does the same for a trained run folder:
#
# ```bash
# python -m tinycnn export runs/<run>/model.npz --to onnx      # writes runs/<run>/model.onnx
# python -m tinycnn export runs/<run>/model.npz --to torch     # model.pt + the nn.Sequential code
# ```
#
# ## 5. Where to go next
#
# * **Many processes.** `tutorials/train_ddp.py` exports a tinycnn LeNet to PyTorch and
#   continues training it with `DistributedDataParallel` on 2 processes:
#   `torchrun --standalone --nproc_per_node=2 tutorials/train_ddp.py`. Each process trains on
#   its own shard of every epoch and the gradients are averaged after each backward pass,
#   so every copy of the model stays identical.
# * **GPUs.** The same script picks the `nccl` backend and one GPU per process when CUDA is
#   present; in your own code, `model.to("cuda")` and `x.to("cuda")` are the whole change.
# * **Bigger models.** `torchvision.models` holds ResNets and friends; everything you built
#   here — convolution, pooling, the chain rule, gradient checks — is what they are made of.
#
# ## Exercises
#
# 1. Build a tinycnn model with `LeakyReLU(0.2)`, `AvgPool2D` and `Dropout(0.5)`, convert it
#    with `to_torch`, and show its outputs agree in `eval()` mode. Why do they *not* agree
#    in training mode, even with the same weights?
# 2. Compute the gradient of the cross-entropy loss with respect to the *input image* of the
#    copied LeNet in PyTorch (`x.requires_grad_(True)`) and compare it with
#    `model.backward(loss_fn.backward())` in tinycnn.
