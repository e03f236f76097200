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
# # Tutorial 02 — Pooling: forward, and where the gradient goes
#
# A pooling layer summarises each small window of a feature map by one number: its
# maximum, or its average. It has no weights. Written as a function,
#
# $$y = g(x;\, K, s) \qquad \text{(feature map } x\text{, window } K \times K\text{, stride } s\text{)}.$$
#
# Pooling shrinks the maps (less computation in later layers), lets each later neuron see
# a larger part of the image, and makes the output a little less sensitive to small
# shifts. Its backward pass is the interesting part: it is a *router* that decides which
# input positions receive the gradient — and so which positions of the layer below can
# pass gradient on to that layer's weights.
#
# **Notation.** One symbol per quantity throughout: the window is $K \times K$ (square, as
# in every network of these tutorials; the layers also accept a `(KH, KW)` tuple), the
# stride is $s$, the input is $H \times W$ and the output $H_{out} \times W_{out}$. Output
# positions are $(h, q)$ — $q$ rather than $w$, which in tinycnn always means a weight —
# and input positions $(a, b)$.
#
# **What you will learn**
#
# 1. max and average pooling as two loops, and the output size
#    $H_{out} = \lfloor (H - K)/s \rfloor + 1$ (stride $s = K$ by default);
# 2. the backward pass derived from the forward: max pooling sends each gradient to the
#    window's argmax, average pooling spreads it evenly;
# 3. ties: which pixel wins when two are equal;
# 4. overlapping windows ($s < K$), where one pixel belongs to several windows and its
#    gradients **add up**;
# 5. what pooling does to a real digit, and how much it tolerates a one-pixel shift;
# 6. that `layers.MaxPool2D` / `layers.AvgPool2D` and the reference kernels match our loops.

# %%
import numpy as np
import matplotlib.pyplot as plt

from tinycnn.tutorial_helpers import FAST, draw_grid, show
import tinycnn as tc
from tinycnn import layers
from tinycnn.kernels import reference

np.set_printoptions(precision=3, suppress=True, linewidth=100)
print("tinycnn", tc.__version__, "| backend:", tc.get_backend(), "| fast mode:", FAST)

# %% [markdown]
# ## 1. Forward: the maximum or the mean of each window
#
# For a window of $K \times K$ pixels moved with stride $s$ (no padding):
#
# $$y^{max}_{h,q} = \max_{0 \le i < K,\; 0 \le j < K} x_{hs+i,\;qs+j}
# \qquad
# y^{avg}_{h,q} = \frac{1}{K^2} \sum_{i,j} x_{hs+i,\;qs+j}$$
#
# The output size follows from counting window positions, exactly as for convolution with
# $p = 0$: $H_{out} = \lfloor (H - K)/s \rfloor + 1$. With the usual $K = s = 2$ the
# windows tile the map without overlap and halve each side.
#
# The max-pool loop also records *where* each maximum came from; the backward pass will
# need it.

# %%
def maxpool_by_hand(x, K, s=None):
    """x (H, W) -> y (H_out, W_out) and argmax (H_out, W_out, 2): the (row, col) of each max."""
    s = K if s is None else s
    H_out, W_out = (x.shape[0] - K) // s + 1, (x.shape[1] - K) // s + 1
    y = np.zeros((H_out, W_out), dtype=x.dtype)
    argmax = np.zeros((H_out, W_out, 2), dtype=int)
    for h in range(H_out):
        for q in range(W_out):
            window = x[h * s:h * s + K, q * s:q * s + K]
            i, j = np.unravel_index(np.argmax(window), window.shape)  # first max, row by row
            y[h, q] = window[i, j]
            argmax[h, q] = (h * s + i, q * s + j)
    return y, argmax


def avgpool_by_hand(x, K, s=None):
    s = K if s is None else s
    H_out, W_out = (x.shape[0] - K) // s + 1, (x.shape[1] - K) // s + 1
    y = np.zeros((H_out, W_out), dtype=x.dtype)
    for h in range(H_out):
        for q in range(W_out):
            y[h, q] = x[h * s:h * s + K, q * s:q * s + K].mean()
    return y


x = np.array([[1, 3, 2, 0],
              [4, 2, 1, 1],
              [0, 1, 5, 6],
              [2, 2, 7, 3]], dtype=np.float64)

y_max, argmax = maxpool_by_hand(x, 2)
y_avg = avgpool_by_hand(x, 2)
print("max pool:\n", y_max, "\naverage pool:\n", y_avg)
assert np.array_equal(y_max, [[4, 2], [2, 7]])
assert np.array_equal(y_avg, [[10 / 4, 4 / 4], [5 / 4, 21 / 4]])

# %% [markdown]
# The tinycnn layers take a batch in NCHW layout, so we add two axes. Both also match the
# reference kernels in `tinycnn/kernels/reference.py`, which is what the layers call on the
# `"reference"` backend:

# %%
max_layer, avg_layer = layers.MaxPool2D(2), layers.AvgPool2D(2)
np.testing.assert_array_equal(max_layer.forward(x[None, None])[0, 0], y_max)
np.testing.assert_allclose(avg_layer.forward(x[None, None])[0, 0], y_avg, rtol=1e-15)
np.testing.assert_array_equal(reference.maxpool2d_forward(x[None, None], 2)[0, 0], y_max)
np.testing.assert_allclose(reference.avgpool2d_forward(x[None, None], 2)[0, 0], y_avg, rtol=1e-15)
assert max_layer.parameters() == [] and avg_layer.parameters() == []
print("MaxPool2D / AvgPool2D agree with the hand loops; pooling has no parameters")

# %% [markdown]
# ## 2. Backward: deriving where the gradient goes
#
# Backpropagation hands a layer $dy = \partial L / \partial y$ (one number per output)
# and asks for $dx = \partial L / \partial x$. By the chain rule, every output that
# depends on $x_{a,b}$ contributes:
#
# $$\frac{\partial L}{\partial x_{a,b}} = \sum_{h,q} \frac{\partial L}{\partial y_{h,q}}
# \,\frac{\partial y_{h,q}}{\partial x_{a,b}}.$$
#
# **Average.** $y_{h,q}$ is $\frac{1}{K^2}$ times the sum of its window, so
# $\partial y_{h,q}/\partial x_{a,b} = \frac{1}{K^2}$ if $(a,b)$ is in the window and
# 0 otherwise. Each $dy_{h,q}$ is **spread evenly** over its window:
#
# $$dx_{hs+i,\;qs+j} \mathrel{+}= \frac{dy_{h,q}}{K^2}.$$
#
# **Max.** Near a given input, $y_{h,q} = x_{a^*,b^*}$ where $(a^*,b^*)$ is the window's
# argmax: nudging the winner by $\varepsilon$ moves $y$ by $\varepsilon$, nudging any other
# pixel (a little) changes nothing. So $\partial y_{h,q}/\partial x_{a,b} = 1$ for the
# winner and 0 for the rest — each $dy_{h,q}$ is **routed to the argmax**:
#
# $$dx_{a^*,\,b^*} \mathrel{+}= dy_{h,q}.$$
#
# The `+=` is not decoration: it is the sum over $(h, q)$ in the chain rule, and it
# matters as soon as windows overlap (section 4).

# %%
def maxpool_backward_by_hand(dy, x_shape, argmax):
    dx = np.zeros(x_shape)
    for h in range(dy.shape[0]):
        for q in range(dy.shape[1]):
            a, b = argmax[h, q]
            dx[a, b] += dy[h, q]          # everything goes to the winner
    return dx


def avgpool_backward_by_hand(dy, x_shape, K, s=None):
    s = K if s is None else s
    dx = np.zeros(x_shape)
    for h in range(dy.shape[0]):
        for q in range(dy.shape[1]):
            dx[h * s:h * s + K, q * s:q * s + K] += dy[h, q] / (K * K)   # an equal share each
    return dx


# distinct values make it easy to see which dy ended up where
dy = np.array([[10.0, 20.0], [30.0, 40.0]])
dx_max = maxpool_backward_by_hand(dy, x.shape, argmax)
dx_avg = avgpool_backward_by_hand(dy, x.shape, 2)
print("dx (max):\n", dx_max, "\ndx (avg):\n", dx_avg)

# %% [markdown]
# Now the same with the layers: `forward` caches its input, `backward(dy)` returns $dx$.

# %%
max_layer.forward(x[None, None])
avg_layer.forward(x[None, None])
np.testing.assert_array_equal(max_layer.backward(dy[None, None])[0, 0], dx_max)
np.testing.assert_allclose(avg_layer.backward(dy[None, None])[0, 0], dx_avg, rtol=1e-15)
np.testing.assert_array_equal(reference.maxpool2d_backward(dy[None, None], x[None, None], 2)[0, 0], dx_max)

# what the routing means, in numbers:
assert np.count_nonzero(dx_max) == dy.size           # exactly one receiver per window
assert dx_max[1, 0] == 10 and dx_max[3, 2] == 40      # the argmaxes 4 and 7 got dy
assert np.all(dx_avg[:2, :2] == 10 / 4)               # the whole first window got 10/4 each
assert dx_max.sum() == dx_avg.sum() == dy.sum()       # no gradient is lost or created
print("layer backward == hand backward; total gradient is conserved:", dy.sum())

# %%
fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
draw_grid(axes[0], x, "input x (window 1 outlined)", box=(0, 0, 2, 2))
draw_grid(axes[1], dy, "dy = dL/dy (2×2)", cmap="Blues")
draw_grid(axes[2], dx_max, "dx, max pool: to the argmax", cmap="Blues")
draw_grid(axes[3], dx_avg, "dx, average pool: spread evenly", cmap="Blues")
show(fig, "02_backward_routing")

# %% [markdown]
# A consequence worth remembering: in a max-pool layer, **three quarters of the inputs get
# zero gradient** in every step (with $K = s = 2$). Pixels and activations have no
# parameters, so what does that mean for learning? The pooled map was computed by the layer
# below — say a convolution with weights $w$ — and that layer's weight gradient is a sum
# over *all* its output positions, $dw_{f,c,i,j} = \sum_{n,a,b} da_{n,f,a,b}\,
# x^{pad}_{n,c,a+i,b+j}$ (tutorial 01), where $da = dL/da$ is what the pool sends back. Every
# weight of that convolution still receives a gradient, but only the positions that won
# their window contribute to it; the other three quarters add zero. Average pooling lets
# every position contribute, each with a quarter of the weight. Measured on a
# `Conv2D → MaxPool2D` pair, by rebuilding $dw$ from the winning positions alone:

# %%
rng = np.random.default_rng(0)
conv_below = layers.Conv2D(1, 4, kernel_size=3, padding=1, rng=0, dtype=np.float64)
x_in = rng.standard_normal((2, 1, 8, 8))                # continuous values: no ties
for pool in (layers.MaxPool2D(2), layers.AvgPool2D(2)):
    a_map = conv_below.forward(x_in)                    # the conv's output, (2, 4, 8, 8)
    y_pool = pool.forward(a_map)
    da = pool.backward(rng.standard_normal(y_pool.shape))   # dL/da, what reaches the conv
    conv_below.zero_grad()
    conv_below.backward(da)
    contributing = da != 0
    print(f"{type(pool).__name__}: {contributing.mean():.0%} of the conv's output positions pass "
          f"gradient to its weights; weights with a non-zero gradient: "
          f"{np.count_nonzero(conv_below.weight.grad)} of {conv_below.weight.data.size}")
    if isinstance(pool, layers.MaxPool2D):
        assert contributing.mean() == 0.25
        xp = np.pad(x_in, ((0, 0), (0, 0), (1, 1), (1, 1)))
        dw_winners = np.zeros_like(conv_below.weight.data)
        for n, f, a, b in zip(*np.nonzero(contributing)):     # winning positions only
            dw_winners[f] += da[n, f, a, b] * xp[n, :, a:a + 3, b:b + 3]
        np.testing.assert_allclose(conv_below.weight.grad, dw_winners, rtol=1e-12, atol=1e-12)
        print("  dw rebuilt from the winning positions alone equals the conv's dw")
    else:
        assert contributing.mean() == 1.0
    assert np.count_nonzero(conv_below.weight.grad) == conv_below.weight.data.size

# %% [markdown]
# ## 3. Ties
#
# If two pixels of a window are equal and maximal, the max is not differentiable there:
# moving either one up changes $y$, moving either one down does not. Any split of $dy$
# between them is a valid *subgradient*. tinycnn (like PyTorch) gives all of it to the
# **first** maximum in row-major order — the top-left-most one.

# %%
x_tie = np.array([[5.0, 5.0], [1.0, 5.0]])[None, None]
max_layer.forward(x_tie)
dx_tie = max_layer.backward(np.array([[[[1.0]]]]))[0, 0]
print("window\n", x_tie[0, 0], "\ndx\n", dx_tie)
assert np.array_equal(dx_tie, [[1, 0], [0, 0]])

# %% [markdown]
# Ties are common after a ReLU (many exact zeros) and in images with flat regions. They
# also fool gradient checkers: a finite difference that nudges the second "5" up *does*
# change the output, yet its analytic gradient is 0. Tutorial 04 shows how to avoid that.
#
# ## 4. Overlapping windows: gradients add up
#
# With a stride smaller than the window ($s < K$), neighbouring windows share pixels.
# AlexNet used $K = 3, s = 2$. A shared pixel appears in several terms of the chain-rule
# sum, so its gradient is the **sum** of what each window sends it.
#
# On a 5×5 map with $K = 3, s = 2$ there are $\lfloor (5-3)/2 \rfloor + 1 = 2$ windows
# per axis, starting at rows/columns 0 and 2. The centre pixel $(2, 2)$ lies in all four.
# If it is the largest value, it wins all four windows:

# %%
x_ov = np.array([[1, 0, 2, 0, 1],
                 [0, 3, 1, 2, 0],
                 [2, 1, 9, 1, 2],
                 [0, 2, 1, 3, 0],
                 [1, 0, 2, 0, 1]], dtype=np.float64)
K, s = 3, 2
y_ov, argmax_ov = maxpool_by_hand(x_ov, K, s)
dy_ov = np.array([[1.0, 2.0], [3.0, 4.0]])
dx_ov_max = maxpool_backward_by_hand(dy_ov, x_ov.shape, argmax_ov)
dx_ov_avg = avgpool_backward_by_hand(dy_ov, x_ov.shape, K, s)
print("y:\n", y_ov, "\ndx (max):\n", dx_ov_max, "\ndx (avg) × 9:\n", dx_ov_avg * 9)

assert np.array_equal(y_ov, [[9, 9], [9, 9]])
assert dx_ov_max[2, 2] == dy_ov.sum() == 10        # four windows, four contributions, summed
assert dx_ov_avg[2, 2] == dy_ov.sum() / 9          # the centre gets a share from every window
assert dx_ov_avg[0, 2] == (1 + 2) / 9              # top-middle: in the two top windows

# the layers: a stride different from the kernel size is a constructor argument
ov_max, ov_avg = layers.MaxPool2D(K, stride=s), layers.AvgPool2D(K, stride=s)
np.testing.assert_array_equal(ov_max.forward(x_ov[None, None])[0, 0], y_ov)
np.testing.assert_array_equal(ov_max.backward(dy_ov[None, None])[0, 0], dx_ov_max)
ov_avg.forward(x_ov[None, None])
np.testing.assert_allclose(ov_avg.backward(dy_ov[None, None])[0, 0], dx_ov_avg, rtol=1e-14)
print("overlapping MaxPool2D(3, stride=2) / AvgPool2D(3, stride=2) agree with the hand loops")

# %% [markdown]
# A quick way to *see* the overlap: give every window a gradient of 1 and look at how much
# average pooling sends back. Each pixel gets $\frac{1}{9}\times$(number of windows that
# contain it). Here with a 9×9 map: the edges where windows meet get twice as much, the
# crossings four times.

# %%
cover_layer = layers.AvgPool2D(3, stride=2)
ones = np.ones((1, 1, 9, 9))
out = cover_layer.forward(ones)
coverage = cover_layer.backward(np.ones_like(out))[0, 0] * 9   # windows per pixel
assert coverage.max() == 4 and coverage.min() == 1

fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
draw_grid(axes[0], x_ov, "x, windows K=3, s=2 (one outlined)", box=(0, 2, 3, 3))
draw_grid(axes[1], dx_ov_max, "dx (max): centre wins 4 windows", cmap="Blues")
draw_grid(axes[2], coverage, "windows covering each pixel (9×9)", cmap="Blues")
show(fig, "02_overlap")

# %% [markdown]
# ## 5. Pooling a real digit
#
# Now a 28×28 handwritten digit from the 5,000 MNIST images shipped with tinycnn. Two
# rounds of 2×2 pooling take it to 14×14 and then 7×7. Max pooling keeps strokes at full
# brightness (one bright pixel is enough to keep a window bright). Average pooling
# **blurs** them: it does not thin a stroke — for an image with no negative pixels, a
# window's average is non-zero exactly when its maximum is, so both poolings mark the same
# set of output pixels as "ink" — but each of those pixels gets the mean of stroke and
# background, so the stroke comes out fainter and its edges soft. We measure both
# statements on the digits below.

# %%
from tinycnn.datasets import load_mnist5k

(x_train, y_train), _ = load_mnist5k(seed=0)
digits = x_train[:200 if FAST else 2000]               # (N, 1, 28, 28), float32 in [0, 1]
digit = digits[:1]

pool_max, pool_avg = layers.MaxPool2D(2), layers.AvgPool2D(2)
m14 = pool_max.forward(digit)
m7 = pool_max.forward(m14)
a14 = pool_avg.forward(digit)
a7 = pool_avg.forward(a14)
assert m14.shape == (1, 1, 14, 14) and m7.shape == (1, 1, 7, 7)

fig, axes = plt.subplots(1, 5, figsize=(15, 3.4))
for ax, (img, title) in zip(axes, [(digit, "input 28×28"), (m14, "max 14×14"), (m7, "max 7×7"),
                                   (a14, "average 14×14"), (a7, "average 7×7")]):
    ax.imshow(img[0, 0], cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
fig.suptitle(f"a handwritten {y_train[0]}")
show(fig, "02_pooling_a_digit")

# the same statements, measured on all the digits: same ink pixels, fainter ink
m_maps, a_maps = [digits], [digits]
for _ in range(2):
    m_maps.append(pool_max.forward(m_maps[-1]))
    a_maps.append(pool_avg.forward(a_maps[-1]))
for m, av in zip(m_maps[1:], a_maps[1:]):
    assert np.array_equal(m > 0, av > 0)                # same support: nothing is thinned away
    print(f"{m.shape[-1]}×{m.shape[-1]}: ink pixels (> 0) max {np.mean(m > 0):.1%}, average "
          f"{np.mean(av > 0):.1%} of the map; mean value of an ink pixel: max {m[m > 0].mean():.2f}, "
          f"average {av[av > 0].mean():.2f}")
    assert av[av > 0].mean() < m[m > 0].mean()

# %% [markdown]
# ### A little tolerance to shifts
#
# Shift every digit one pixel to the right. Pixel by pixel, the image changes a lot (thin
# strokes move off their old pixels). After a 2×2 pool, a stroke pixel that moves within
# its window leaves the pooled output unchanged, so the change is smaller (not zero: the
# other half of the moves cross a window border). We measure the relative change
# $\lVert g(x) - g(\text{shift}(x)) \rVert / \lVert g(x) \rVert$ averaged over many
# digits.

# %%
def relative_change(a, b):
    return float(np.mean(np.linalg.norm((a - b).reshape(len(a), -1), axis=1)
                         / np.linalg.norm(a.reshape(len(a), -1), axis=1)))


shifted = np.roll(digits, 1, axis=3)                   # MNIST borders are empty: roll == shift
raw = relative_change(digits, shifted)
after_max = relative_change(pool_max.forward(digits), pool_max.forward(shifted))
after_avg = relative_change(pool_avg.forward(digits), pool_avg.forward(shifted))
print(f"relative change from a 1-pixel shift: raw {raw:.2f}, after 2×2 max pool {after_max:.2f}, "
      f"after 2×2 average pool {after_avg:.2f}  ({len(digits)} digits)")
assert after_max < raw and after_avg < raw

# %% [markdown]
# The invariance is partial (only shifts that stay inside a window are absorbed), but it
# compounds over several conv + pool stages, which is one reason LeNet-style networks
# recognise a digit wherever it sits.
#
# ## Summary
#
# | | forward | backward |
# |---|---|---|
# | max | $y_{h,q} = \max_{i,j} x_{hs+i,\, qs+j}$ | $dx_{a^*,b^*} \mathrel{+}= dy_{h,q}$ (argmax only; first on ties) |
# | average | $y_{h,q} = \frac{1}{K^2}\sum_{i,j} x_{hs+i,\, qs+j}$ | $dx_{hs+i,\,qs+j} \mathrel{+}= dy_{h,q} / K^2$ |
#
# Output size $H_{out} = \lfloor (H - K)/s \rfloor + 1$; no parameters; with $s < K$ the
# windows overlap and the `+=` adds up the gradients of every window a pixel belongs to.
#
# ## Exercises
#
# 1. *Global average pooling* averages a whole $H \times W$ map into one number per channel.
#    Express it as `AvgPool2D(kernel_size=(H, W))`, check its output shape, and write its
#    backward in one line of NumPy.
# 2. For a 7×7 map and `MaxPool2D(2)`, which rows and columns never reach the output? What
#    gradient do those pixels receive? Verify with `backward`.
# 3. Replace "first maximum wins" by "split $dy$ equally between tied maxima". Is the sum of
#    `dx` still equal to the sum of `dy`? Which choice would a finite-difference check agree
#    with, and when?
# 4. Max pooling after ReLU vs ReLU after max pooling: show with random inputs that the
#    outputs are identical (both are monotone). Which order is cheaper?
# 5. Repeat the shift experiment with a 2-pixel shift and with `MaxPool2D(3, stride=2)`.
#    How does overlap change the tolerance to shifts?
