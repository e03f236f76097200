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
# # Solutions — Tutorial 02, Pooling
#
# Worked answers to the exercises of `tutorials/02_pooling.py`, each checked by an
# `assert` on numbers computed here. `TINYCNN_FAST=1` uses fewer digits in exercise 5.

# %%
import numpy as np
import matplotlib.pyplot as plt

from tinycnn.tutorial_helpers import FAST, show
from tinycnn import layers
from tinycnn.datasets import load_mnist5k

rng = np.random.default_rng(0)

# %% [markdown]
# ## Exercise 1 — global average pooling
#
# One window covering the whole map: `AvgPool2D(kernel_size=(H, W))` gives
# $(N, C, 1, 1)$. Every pixel is in that one window with weight $\frac{1}{HW}$, so the
# backward spreads each $dy_{n,c}$ evenly: `dx = np.broadcast_to(dy / (H * W), x.shape)`.

# %%
N, C, H, W = 2, 3, 5, 7
x = rng.standard_normal((N, C, H, W))
gap = layers.AvgPool2D(kernel_size=(H, W))
y = gap.forward(x)
assert y.shape == (N, C, 1, 1)
np.testing.assert_allclose(y[:, :, 0, 0], x.mean(axis=(2, 3)), rtol=1e-12)
dy = rng.standard_normal(y.shape)
dx_one_line = np.broadcast_to(dy / (H * W), x.shape)
np.testing.assert_allclose(gap.backward(dy), dx_one_line, rtol=1e-12)
print(f"Exercise 1: AvgPool2D(kernel_size=({H}, {W})) -> {y.shape}; backward == dy / (H·W) broadcast")

# %% [markdown]
# ## Exercise 2 — the pixels a 7×7 map loses to `MaxPool2D(2)`
#
# $H_{out} = \lfloor (7 - 2)/2 \rfloor + 1 = 3$: the windows start at 0, 2, 4 and cover
# rows (and columns) 0–5. Row 6 and column 6 never reach the output, so their gradient is
# exactly zero whatever $dy$ is — even where they hold the largest values of the map.

# %%
x7 = rng.standard_normal((1, 1, 7, 7))
x7[0, 0, 6, :] += 100                      # make the lost row the brightest: still ignored
pool = layers.MaxPool2D(2)
y7 = pool.forward(x7)
dx7 = pool.backward(rng.standard_normal(y7.shape))[0, 0]
assert y7.shape == (1, 1, 3, 3)
assert np.all(dx7[6, :] == 0) and np.all(dx7[:, 6] == 0)
assert np.count_nonzero(dx7[:6, :6]) == 9             # one winner per window in the rest
assert y7.max() < 50                                   # the +100 row never made it out
print("Exercise 2: row 6 and column 6 of a 7×7 map get zero gradient (output 3×3)")

# %% [markdown]
# ## Exercise 3 — splitting $dy$ between tied maxima
#
# Splitting $dy$ into $k$ equal shares among $k$ tied maxima still sends exactly $dy$ out
# of each window, so $\sum dx = \sum dy$ as before. A central difference at a $k$-way tie
# sees: nudging one tied pixel *up* by $\varepsilon$ raises the max by $\varepsilon$;
# nudging it *down* leaves the max unchanged (another tied pixel still holds it). So the
# numeric derivative is $\frac{\varepsilon - 0}{2\varepsilon} = \frac12$ for *each* tied
# pixel, whatever $k$ is. It agrees with the equal split only for a two-way tie
# ($\frac12 = \frac1k$ when $k = 2$), and with "first maximum wins" never (that gives 1
# and 0). Away from ties all three agree. Note also that the numeric gradients over a
# $k$-way tie sum to $k/2$: finite differences are not a gradient at a kink.

# %%
def maxpool_backward_split(dy, x, K):
    """Max-pool backward that splits dy equally between tied maxima (one channel)."""
    dx = np.zeros_like(x)
    for h in range(dy.shape[0]):
        for q in range(dy.shape[1]):
            window = x[h * K:(h + 1) * K, q * K:(q + 1) * K]
            ties = window == window.max()
            dx[h * K:(h + 1) * K, q * K:(q + 1) * K] += dy[h, q] * ties / ties.sum()
    return dx


def numeric_grad(x, K, eps=1e-6):
    """Central differences of sum(maxpool(x)) (i.e. dy = 1 everywhere)."""
    g = np.zeros_like(x)
    f = lambda a: layers.MaxPool2D(K).forward(a[None, None]).sum()
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (f(xp) - f(xm)) / (2 * eps)
    return g


two_way = np.array([[5.0, 5.0], [1.0, 2.0]])
three_way = np.array([[5.0, 5.0], [5.0, 2.0]])
one = np.ones((1, 1))
for window, k in ((two_way, 2), (three_way, 3)):
    split = maxpool_backward_split(one, window, 2)
    first = layers.MaxPool2D(2)
    first.forward(window[None, None])
    first_wins = first.backward(one[None, None])[0, 0]
    numeric = numeric_grad(window, 2)
    print(f"{k}-way tie: split {split[window == 5]}, first wins {first_wins[window == 5]}, "
          f"numeric {np.round(numeric[window == 5], 6)}")
    assert np.isclose(split.sum(), 1) and np.isclose(first_wins.sum(), 1)   # dy is conserved
    np.testing.assert_allclose(numeric[window == 5], 0.5, rtol=1e-6)       # 1/2 each, any k
    assert np.allclose(split, numeric, atol=1e-6) == (k == 2)
    assert not np.allclose(first_wins, numeric, atol=1e-6)
print("Exercise 3: the equal split conserves dy and matches finite differences only for 2-way ties")

# %% [markdown]
# ## Exercise 4 — ReLU and max pooling commute
#
# ReLU is monotone non-decreasing, and for such a function $\max_i g(x_i) = g(\max_i x_i)$:
# the largest input stays the largest output. So `MaxPool2D(ReLU(x)) == ReLU(MaxPool2D(x))`
# exactly. Pooling first is cheaper: with $K = s = 2$ the ReLU then touches a quarter of
# the elements (the pooling itself costs the same either way). The gradients agree too:
# both send $dy$ to the window's argmax if the maximum is positive, and nowhere otherwise.

# %%
x4 = rng.standard_normal((4, 3, 12, 12))
dy4 = rng.standard_normal((4, 3, 6, 6))
relu_a, pool_a = layers.ReLU(), layers.MaxPool2D(2)
relu_b, pool_b = layers.ReLU(), layers.MaxPool2D(2)
y_relu_first = pool_a.forward(relu_a.forward(x4))
y_pool_first = relu_b.forward(pool_b.forward(x4))
np.testing.assert_array_equal(y_relu_first, y_pool_first)
dx_relu_first = relu_a.backward(pool_a.backward(dy4))
dx_pool_first = pool_b.backward(relu_b.backward(dy4))
np.testing.assert_array_equal(dx_relu_first, dx_pool_first)
print(f"Exercise 4: identical outputs and gradients; ReLU applied to {x4.size} elements "
      f"(ReLU first) vs {y_pool_first.size} (pool first)")

# %% [markdown]
# ## Exercise 5 — larger shifts, overlapping windows
#
# We repeat the tutorial's measurement (the mean relative change of the pooled maps) for
# shifts of 1 and 2 pixels, with 2×2/stride-2 windows and with overlapping 3×3/stride-2
# windows. On 2,000 digits we measured (raw image / max 2×2 / max 3×3 s2 / avg 2×2 /
# avg 3×3 s2): 1 pixel: 0.59 / 0.46 / 0.39 / 0.47 / 0.39; 2 pixels: 0.93 / 0.75 / 0.63 /
# 0.83 / 0.71.
#
# * A 2-pixel shift with stride-2 windows moves every window's content to the *next*
#   window: nothing is absorbed any more, the pooled map is simply shifted by one of its
#   own pixels (the change 0.75 is what a 1-pixel shift does to a 14×14 map).
# * Overlapping windows change less for both shifts: each pixel belongs to up to four
#   windows, so a stroke that leaves one window is often still inside a neighbouring
#   window that also reports it. Overlap buys some extra tolerance (at the price of more
#   work and a less sparse backward) — one reason AlexNet used 3×3/stride-2 pooling.

# %%
(x_train, _), _ = load_mnist5k(seed=0)
digits = x_train[:300 if FAST else 2000]


def relative_change(a, b):
    return float(np.mean(np.linalg.norm((a - b).reshape(len(a), -1), axis=1)
                         / np.linalg.norm(a.reshape(len(a), -1), axis=1)))


pools = {"max 2×2": layers.MaxPool2D(2), "max 3×3 s2": layers.MaxPool2D(3, stride=2),
         "avg 2×2": layers.AvgPool2D(2), "avg 3×3 s2": layers.AvgPool2D(3, stride=2)}
table = {}
for shift in (1, 2):
    shifted = np.roll(digits, shift, axis=3)           # MNIST borders are empty: roll == shift
    table[shift] = {"raw": relative_change(digits, shifted)}
    for name, p in pools.items():
        table[shift][name] = relative_change(p.forward(digits), p.forward(shifted))
    print(f"shift {shift} px: " + ", ".join(f"{k} {v:.2f}" for k, v in table[shift].items()))
for shift in (1, 2):
    assert table[shift]["max 3×3 s2"] < table[shift]["max 2×2"] < table[shift]["raw"]
    assert table[shift]["avg 3×3 s2"] < table[shift]["avg 2×2"]
# a 2-pixel shift of the image is a 1-pixel shift of the 2×2-pooled map
p2 = pools["max 2×2"]
np.testing.assert_array_equal(p2.forward(np.roll(digits, 2, axis=3)), np.roll(p2.forward(digits), 1, axis=3))

fig, ax = plt.subplots(figsize=(7, 4))
names = list(table[1])
for k, shift in enumerate((1, 2)):
    ax.bar(np.arange(len(names)) + 0.4 * k, [table[shift][n] for n in names], width=0.4,
           label=f"{shift}-pixel shift")
ax.set_xticks(np.arange(len(names)) + 0.2, names)
ax.set_ylabel("mean relative change of the map")
ax.set_title(f"how much a shift changes the pooled digit ({len(digits)} digits)")
ax.legend()
show(fig, "02_solution_shifts")
