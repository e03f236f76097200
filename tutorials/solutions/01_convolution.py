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
# # Solutions — Tutorial 01, Convolution
#
# Worked answers to the exercises at the end of `tutorials/01_convolution.py`. Every claim
# is checked by an `assert` on a number computed here; run it as a script
# (`python tutorials/solutions/01_convolution.py`) or as a notebook. `TINYCNN_FAST=1`
# shrinks the image and the training at the end.

# %%
import numpy as np
import matplotlib.pyplot as plt

from tinycnn.tutorial_helpers import FAST, show
from tinycnn import Sequential, layers, losses, optim
from tinycnn.datasets import load_mnist5k, load_retina

np.set_printoptions(precision=3, suppress=True, linewidth=100)


def conv2d_by_hand(x, k, b=0.0, stride=1, padding=0):
    """The tutorial's loop: y[h, w] = b + sum_ij k[i, j] * x_pad[h*s + i, w*s + j]."""
    H, W = x.shape
    KH, KW = k.shape
    s, p = stride, padding
    x_pad = np.pad(x.astype(np.result_type(x, k)), p)
    H_out, W_out = (H + 2 * p - KH) // s + 1, (W + 2 * p - KW) // s + 1
    y = np.zeros((H_out, W_out), dtype=x_pad.dtype)
    for h in range(H_out):
        for w in range(W_out):
            y[h, w] = b + np.sum(x_pad[h * s:h * s + KH, w * s:w * s + KW] * k)
    return y


def conv_layer(kernel, stride=1, padding=0, dtype=np.float32):
    """A one-filter Conv2D holding ``kernel`` (KH, KW) and a zero bias."""
    conv = layers.Conv2D(1, 1, kernel_size=kernel.shape, stride=stride, padding=padding, dtype=dtype)
    conv.weight.data[...] = kernel
    conv.bias.data[...] = 0
    return conv


retina = load_retina()[130:386, 40:296]            # the tutorial's 256×256 crop
if FAST:
    retina = retina[::2, ::2]
retina = np.ascontiguousarray(retina)

# %% [markdown]
# ## Exercise 1 — the 1×1 convolution is a matrix product
#
# With $K = 1$ the patch is a single pixel, so $y_{n,f,h,w} = b_f + \sum_c w_{f,c}\,
# x_{n,c,h,w}$: at every pixel, the vector of $C$ channel values is multiplied by the
# $F \times C$ matrix $w_{:,:,0,0}$. In `einsum` notation that is `"fc,nchw->nfhw"`.

# %%
rng = np.random.default_rng(0)
N, C, F, H, W = 2, 5, 3, 4, 6
x = rng.standard_normal((N, C, H, W))
conv1x1 = layers.Conv2D(C, F, kernel_size=1, rng=0, dtype=np.float64)
conv1x1.bias.data[...] = rng.standard_normal(F)
w = conv1x1.weight.data[:, :, 0, 0]                # (F, C)
y_einsum = np.einsum("fc,nchw->nfhw", w, x) + conv1x1.bias.data[None, :, None, None]
np.testing.assert_allclose(conv1x1.forward(x), y_einsum, rtol=1e-12, atol=1e-12)
# the same as one ordinary matrix product over all N·H·W pixels
pixels = x.transpose(0, 2, 3, 1).reshape(-1, C)    # (N·H·W, C)
y_matmul = (pixels @ w.T + conv1x1.bias.data).reshape(N, H, W, F).transpose(0, 3, 1, 2)
np.testing.assert_allclose(y_matmul, y_einsum, rtol=1e-12, atol=1e-12)
print("Exercise 1: Conv2D(C, F, kernel_size=1) == einsum('fc,nchw->nfhw') == a Dense layer per pixel")

# %% [markdown]
# ## Exercise 2 — output size of a 32×20 input, $K = 5$, $s = 3$, $p = 1$
#
# $H_{out} = \lfloor (32 + 2 - 5)/3 \rfloor + 1 = \lfloor 29/3 \rfloor + 1 = 10$ and
# $W_{out} = \lfloor (20 + 2 - 5)/3 \rfloor + 1 = \lfloor 17/3 \rfloor + 1 = 6$. In both
# directions the last $29 - 27 = 2$ (resp. $17 - 15 = 2$) padded rows/columns are never
# reached by the kernel.

# %%
H_out, W_out = (32 + 2 * 1 - 5) // 3 + 1, (20 + 2 * 1 - 5) // 3 + 1
assert (H_out, W_out) == (10, 6)
y = conv2d_by_hand(rng.standard_normal((32, 20)), np.ones((5, 5)), stride=3, padding=1)
assert y.shape == (10, 6)
assert layers.Conv2D(1, 1, kernel_size=5, stride=3, padding=1).output_shape((1, 32, 20)) == (1, 10, 6)
print(f"Exercise 2: formula, hand loop and Conv2D.output_shape all give {H_out}×{W_out}")

# %% [markdown]
# ## Exercise 3 — Gaussian blur vs box blur
#
# Both kernels average a neighbourhood, but the box gives every pixel of a 5×5 square the
# same weight and nothing outside it: its response to a pattern of frequency $u$
# (cycles per pixel, along one axis) is $\frac{\sin 5\pi u}{5 \sin \pi u}$, which dips
# *below zero* between $u = 0.2$ and $0.4$. Fine stripes of those frequencies come out
# weakened but with their contrast *inverted*, and a single bright dot becomes a flat
# square: that is the "blocky" look. The Gaussian's weights fall off smoothly, and its
# response stays positive and falls monotonically (for a Gaussian curve, the frequency
# response is again a Gaussian), so nothing flips and a dot becomes a round blob.

# %%
i = np.arange(-2, 3)
sigma = 1.0
gauss = np.exp(-(i[:, None] ** 2 + i[None, :] ** 2) / (2 * sigma ** 2))
gauss /= gauss.sum()
box5 = np.full((5, 5), 1 / 25)
assert np.isclose(gauss.sum(), 1) and np.isclose(box5.sum(), 1)

# frequency response along one axis (both kernels are separable): the DFT of one row profile
u = np.linspace(0, 0.5, 101)
def response(profile):
    return np.real(np.exp(-2j * np.pi * u[:, None] * np.arange(-2, 3)[None, :]) @ profile)
r_box, r_gauss = response(box5.sum(axis=0)), response(gauss.sum(axis=0))
print(f"Exercise 3: smallest response, box {r_box.min():.3f} (negative: inverted stripes), "
      f"Gaussian {r_gauss.min():.3f}")
assert r_box.min() < -0.2 and r_gauss.min() > 0 and np.all(np.diff(r_gauss) <= 1e-12)

# on the retina: blur, then measure what is left of stripes at u = 1/3 (period 3 px)
blur_box = conv_layer(box5.astype(np.float32), padding=2).forward(retina[None, None])[0, 0]
blur_gauss = conv_layer(gauss.astype(np.float32), padding=2).forward(retina[None, None])[0, 0]
dot = np.zeros((11, 11), np.float32)
dot[5, 5] = 1
dot_box = conv2d_by_hand(dot, box5, padding=2)
dot_gauss = conv2d_by_hand(dot, gauss, padding=2)
stripes = np.tile(np.cos(2 * np.pi * np.arange(30) / 3), (30, 1)).astype(np.float32)
s_box = conv2d_by_hand(stripes, box5)[5, 5:8]
s_gauss = conv2d_by_hand(stripes, gauss)[5, 5:8]
print("stripes of period 3 px, input  :", stripes[5, 7:10])
print("   after box blur (inverted)   :", s_box)
print("   after Gaussian (same sign)  :", s_gauss)
assert np.all(np.sign(s_box) == -np.sign(stripes[5, 7:10]))
assert np.all(np.sign(s_gauss) == np.sign(stripes[5, 7:10]))

fig, axes = plt.subplots(1, 5, figsize=(16, 3.6))
for ax, (a, title) in zip(axes, [(retina, "input"), (blur_box, "5×5 box blur"),
                                 (blur_gauss, f"5×5 Gaussian, σ = {sigma:g}")]):
    ax.imshow(a, cmap="gray")
    ax.set_title(title)
    ax.axis("off")
axes[3].imshow(np.hstack([dot_box, dot_gauss]), cmap="magma")
axes[3].set_title("one bright dot: box | Gaussian")
axes[3].axis("off")
axes[4].plot(u, r_box, label="box")
axes[4].plot(u, r_gauss, label="Gaussian")
axes[4].axhline(0, color="k", lw=0.5)
axes[4].set_xlabel("frequency u (cycles per pixel)")
axes[4].set_ylabel("gain")
axes[4].set_title("frequency response")
axes[4].legend()
show(fig, "01_solution_blur")

# %% [markdown]
# ## Exercise 4 — two 3×3 convolutions are one 5×5 convolution
#
# Write our operation (cross-correlation) as $y_1[h] = \sum_i a_i\, x[h + i]$, then
# $y_2[h] = \sum_j b_j\, y_1[h + j] = \sum_{i,j} a_i b_j\, x[h + i + j]$. Collecting terms with
# $i + j = m$ gives one kernel $c_m = \sum_{i + j = m} a_i b_j$ — the *full true
# convolution* of $a$ and $b$ (no flip needed), of size $3 + 3 - 1 = 5$ in each direction.

# %%
def full_convolution(a, b):
    """c[m, n] = sum over i + k = m, j + l = n of a[i, j] * b[k, l]; shape (A+B-1, A+B-1)."""
    c = np.zeros((a.shape[0] + b.shape[0] - 1, a.shape[1] + b.shape[1] - 1))
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            c[i:i + b.shape[0], j:j + b.shape[1]] += a[i, j] * b
    return c


sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
box3 = np.full((3, 3), 1 / 9)
combined = full_convolution(sobel_x, box3)
print("Exercise 4: Sobel x then 3×3 box == one 5×5 kernel (×9):")
print(combined * 9)
img = retina.astype(np.float64)[None, None]
two_steps = conv_layer(box3, dtype=np.float64).forward(conv_layer(sobel_x, dtype=np.float64).forward(img))
one_step = conv_layer(combined, dtype=np.float64).forward(img)
np.testing.assert_allclose(one_step, two_steps, rtol=1e-10, atol=1e-12)
assert np.isclose(combined.sum(), 0)          # still zero-sum: still an edge detector
print("verified on the retina: max difference", np.abs(one_step - two_steps).max())

# %% [markdown]
# ## Exercise 5 — shrinking the retina with a stride-2 box
#
# Each application maps $H \to \lfloor (H - 3)/2 \rfloor + 1$. Starting from 256:
# 256 → 127 → 63 → 31 → 15 → 7 → 3 → 1, so 7 applications (the 7th turns the last 3×3
# into 1×1, after which no 3×3 window fits). In fast mode the crop is 128×128:
# 128 → 63 → 31 → 15 → 7 → 3 → 1, 6 applications.

# %%
def predicted_sizes(H, K=3, s=2):
    sizes = [H]
    while sizes[-1] >= K:
        sizes.append((sizes[-1] - K) // s + 1)
    return sizes


shrink = conv_layer(np.full((3, 3), 1 / 9, np.float32), stride=2)
a, measured = retina[None, None], [retina.shape[0]]
while a.shape[-1] >= 3:
    a = shrink.forward(a)
    measured.append(a.shape[-1])
print(f"Exercise 5: sizes {measured}: {len(measured) - 1} applications "
      f"(formula: {predicted_sizes(retina.shape[0])})")
assert measured == predicted_sizes(retina.shape[0])
assert len(measured) - 1 == (6 if FAST else 7)

# %% [markdown]
# ## Going further — do trained first-layer filters look like edge detectors?
#
# The measurement quoted in the tutorial. A small CNN (eight 3×3 filters, ReLU, pool, a
# second conv, pool, a dense layer) is trained on MNIST digits. For each first-layer
# filter we take its best absolute cosine similarity with eight edge templates (Sobel x,
# Sobel y and two diagonal Sobels, each with both signs). A random 9-number filter scores
# about 0.4–0.5 already; an edge detector would score near 1.
#
# Full mode: 4,000 digits, 12 epochs, seeds 0–2 (about 15 s). We measured a mean of
# 0.28–0.53 after training against 0.40–0.51 at initialisation: no move towards edges.
# Fast mode trains one seed briefly, so only the code path is exercised.

# %%
def edge_templates():
    s = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
    d = np.array([[0, 1, 2], [-1, 0, 1], [-2, -1, 0]], float)
    bank = [sign * k for k in (s, s.T, d, d[::-1]) for sign in (1, -1)]
    return np.array([k.ravel() / np.linalg.norm(k) for k in bank])


def edge_likeness(weight):
    """Per filter, the best cosine similarity with an edge template (1 = exactly an edge)."""
    w = weight[:, 0].reshape(len(weight), -1)
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    return (w @ edge_templates().T).max(axis=1)


(x_train, y_train), _ = load_mnist5k(seed=0)
n_digits, epochs, seeds = (1000, 1, [0]) if FAST else (4000, 12, [0, 1, 2])
xd = x_train[:n_digits]
xd = (xd - xd.mean()) / xd.std()
for seed in seeds:
    net_layers = [layers.Conv2D(1, 8, kernel_size=3, padding=1, rng=seed), layers.ReLU(), layers.MaxPool2D(2),
                  layers.Conv2D(8, 16, kernel_size=3, padding=1, rng=seed + 10), layers.ReLU(),
                  layers.MaxPool2D(2), layers.Flatten(), layers.Dense(16 * 7 * 7, 10, rng=seed + 20)]
    net = Sequential(*net_layers)
    before = edge_likeness(net.layers[0].weight.data.copy())
    history = net.fit(xd, y_train[:n_digits], loss=losses.SoftmaxCrossEntropy(),
                      optimizer=optim.SGD(net.parameters(), lr=0.05, momentum=0.9),
                      epochs=epochs, batch_size=32, seed=seed, verbose=False)
    after = edge_likeness(net.layers[0].weight.data)
    print(f"seed {seed}: final loss {history.history['loss'][-1]:.3f}; mean edge likeness "
          f"{before.mean():.2f} at init -> {after.mean():.2f} trained; per filter {after}")
    assert history.history["loss"][-1] < history.history["loss"][0] or epochs == 1
