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
# # Tutorial 01 — Convolution, by hand and with tinycnn
#
# A convolutional layer slides a small grid of weights (a *kernel* or *filter*) over an
# image and, at every position, takes a weighted sum of the pixels under it. That is the
# whole idea; everything else (stride, padding, channels, many filters) is bookkeeping
# around it. Written as a function, one output map is
#
# $$y = f(x, k, b, s, p) \qquad \text{(image } x\text{, kernel } k\text{, bias } b\text{,
#   stride } s\text{, zero padding } p\text{)}.$$
#
# **What you will learn**
#
# 1. the sliding weighted sum, computed with two `for` loops on a 5×5 image;
# 2. stride and zero padding, and the output-size formula
#    $H_{out} = \lfloor (H + 2p - K)/s \rfloor + 1$;
# 3. why deep-learning "convolution" is really cross-correlation (no kernel flip);
# 4. classic hand-designed filters — Sobel edge detectors, a Laplacian and a box blur — on
#    a real photograph of a retina;
# 5. many input channels and many filters, and the parameter count $(K_H K_W C + 1)F$;
# 6. that `tinycnn.layers.Conv2D` and the reference kernel
#    `tinycnn.kernels.reference.conv2d_forward` compute exactly what our loops compute.
#
# Run it as a script (`python tutorials/01_convolution.py`) or as a notebook (see
# `tutorials/README.md`). Figures are written to `tutorials/out/`.

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
# ## 1. The sliding weighted sum
#
# Take a single-channel image $x$ of size $H \times W$ and a kernel $k$ of size
# $K_H \times K_W$. With stride 1 and no padding, output pixel $(h, w)$ is the sum of the
# element-wise product of $k$ with the patch of $x$ whose top-left corner is $(h, w)$:
#
# $$y_{h,w} = b + \sum_{i=0}^{K_H-1} \sum_{j=0}^{K_W-1} k_{i,j}\; x_{h+i,\;w+j}.$$
#
# $b$ is a single number (the *bias*) added everywhere. The loop below is that sum, written
# as literally as possible. It already handles stride $s$ and padding $p$, which the next
# section explains: with them, the patch for output $(h, w)$ starts at $(hs, ws)$ of the
# zero-padded image $x^{pad}$:
#
# $$y_{h,w} = b + \sum_{i,j} k_{i,j}\; x^{pad}_{hs+i,\;ws+j}.$$

# %%
def conv2d_by_hand(x, k, b=0.0, stride=1, padding=0):
    """One channel, one filter: y[h, w] = b + sum_ij k[i, j] * x_pad[h*s + i, w*s + j]."""
    H, W = x.shape
    KH, KW = k.shape
    s, p = stride, padding
    x_pad = np.zeros((H + 2 * p, W + 2 * p), dtype=np.result_type(x, k))
    x_pad[p:p + H, p:p + W] = x
    H_out = (H + 2 * p - KH) // s + 1
    W_out = (W + 2 * p - KW) // s + 1
    y = np.zeros((H_out, W_out), dtype=x_pad.dtype)
    for h in range(H_out):
        for w in range(W_out):
            patch = x_pad[h * s:h * s + KH, w * s:w * s + KW]   # what the kernel "sees"
            y[h, w] = b + np.sum(patch * k)
    return y


# %% [markdown]
# A 5×5 image, dark on the left and bright on the right with a slanted boundary, and a 3×3
# kernel that responds to "brighter on the right than on the left" (a vertical-edge
# detector):

# %%
x = np.array([[0, 0, 1, 2, 2],
              [0, 0, 1, 2, 2],
              [0, 0, 0, 1, 2],
              [0, 0, 0, 1, 2],
              [0, 0, 0, 0, 1]], dtype=np.float64)
k = np.array([[-1, 0, 1],
              [-1, 0, 1],
              [-1, 0, 1]], dtype=np.float64)

y = conv2d_by_hand(x, k)
print("y = f(x, k, b=0, s=1, p=0), shape", y.shape)
print(y)

# %% [markdown]
# Check one entry with pencil and paper. $y_{0,0}$ uses the top-left 3×3 patch
# (rows 0–2, columns 0–2). The kernel subtracts column 0 and adds column 2:
#
# $$y_{0,0} = -(0 + 0 + 0) + (1 + 1 + 0) = 2.$$
#
# And $y_{1,2}$ uses rows 1–3, columns 2–4: $-(1 + 0 + 0) + (2 + 2 + 2) = 5$. The output
# is largest where the boundary passes through the middle of the patch.

# %%
assert y[0, 0] == -(x[0, 0] + x[1, 0] + x[2, 0]) + (x[0, 2] + x[1, 2] + x[2, 2]) == 2
assert y[1, 2] == -(1 + 0 + 0) + (2 + 2 + 2) == 5
# the same thing as one explicit element-wise product
assert y[1, 2] == np.sum(x[1:4, 2:5] * k)


# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
draw_grid(axes[0], x, "input x (5×5), patch for y[1, 2]", box=(1, 2, 3, 3))
draw_grid(axes[1], k, "kernel k (3×3)", cmap="coolwarm")
draw_grid(axes[2], y, "output y (3×3)", box=(1, 2, 1, 1), cmap="coolwarm")
fig.suptitle("y[1, 2] = sum(patch ⊙ k)")
show(fig, "01_sliding_window")

# %% [markdown]
# ## 2. Stride, padding and the output size
#
# *Stride* $s$ is how far the kernel jumps between positions: $s = 2$ skips every other
# position and roughly halves the output. *Padding* $p$ surrounds the image with $p$ rings
# of zeros before sliding, so the kernel can also be centred on border pixels.
#
# Counting positions along one axis: the padded image has $H + 2p$ pixels, the kernel
# covers $K$ of them, so its top edge can start at $0, s, 2s, \dots$ up to
# $H + 2p - K$. That is
#
# $$H_{out} = \left\lfloor \frac{H + 2p - K}{s} \right\rfloor + 1,$$
#
# and the same for the width. Two special cases are worth remembering:
#
# * "valid" convolution, $p = 0, s = 1$: $H_{out} = H - K + 1$ (the image shrinks);
# * "same" convolution, $p = (K - 1)/2$ for odd $K$, $s = 1$: $H_{out} = H$.
#
# When $(H + 2p - K)$ is not a multiple of $s$, the floor drops the last few rows: the
# kernel never reaches them.

# %%
def output_size(H, K, s, p):
    return (H + 2 * p - K) // s + 1


print(f"{'K':>2} {'s':>2} {'p':>2}  H_out (H=5)")
for K in (1, 3, 5):
    for s in (1, 2):
        for p in (0, 1, 2):
            if 5 + 2 * p < K:
                continue
            y_sp = conv2d_by_hand(x, np.ones((K, K)), stride=s, padding=p)
            assert y_sp.shape == (output_size(5, K, s, p),) * 2
            print(f"{K:>2} {s:>2} {p:>2}  {y_sp.shape[0]}")

# %% [markdown]
# Stride 2 with padding 1 on our 5×5 image gives $\lfloor (5 + 2 - 3)/2 \rfloor + 1 = 3$:
# the kernel is centred on pixels 0, 2 and 4 of each axis. The padded zeros take part in
# the sum like any other pixel:

# %%
y_s2p1 = conv2d_by_hand(x, k, stride=2, padding=1)
print(y_s2p1)
# y[0, 1] is centred on x[0, 2]: the kernel's top row lies on padding (zeros), so only
# rows 0 and 1 of the image count: -(x[0,1] + x[1,1]) + (x[0,3] + x[1,3])
assert y_s2p1[0, 1] == -(x[0, 1] + x[1, 1]) + (x[0, 3] + x[1, 3]) == 4

x_pad = np.pad(x, 1)
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
draw_grid(axes[0], x_pad, "padded input (p = 1), patch for y[0, 1]", box=(0, 2, 3, 3))
draw_grid(axes[1], y_s2p1, "output, s = 2, p = 1", box=(0, 1, 1, 1), cmap="coolwarm")
show(fig, "01_stride_padding")

# %% [markdown]
# ## 3. The same numbers from tinycnn
#
# `layers.Conv2D(in_channels, out_channels, kernel_size, stride, padding)` holds a weight
# of shape $(F, C, K_H, K_W)$ and a bias of shape $(F,)$, and works on batches in NCHW
# layout, $(N, C, H, W)$. With one image, one channel and one filter we can copy our kernel
# into it and compare. We use float64 here so the comparison can be exact up to rounding;
# training normally runs in float32.
#
# Underneath, the layer calls a *kernel function* (`conv2d_forward`); the readable NumPy
# version lives in `tinycnn/kernels/reference.py` and is the specification the fast Numba
# version is tested against. We check both.

# %%
for stride, padding in [(1, 0), (2, 1), (1, 2)]:
    conv = layers.Conv2D(1, 1, kernel_size=3, stride=stride, padding=padding, dtype=np.float64)
    conv.weight.data[...] = k[None, None]          # (F=1, C=1, 3, 3)
    conv.bias.data[...] = 0.5
    y_layer = conv.forward(x[None, None])          # (N=1, C=1, 5, 5) -> (1, 1, H_out, W_out)
    y_ref = reference.conv2d_forward(x[None, None], conv.weight.data, conv.bias.data, stride, padding)
    y_hand = conv2d_by_hand(x, k, b=0.5, stride=stride, padding=padding)
    np.testing.assert_allclose(y_layer[0, 0], y_hand, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y_ref[0, 0], y_hand, rtol=1e-12, atol=1e-12)
    print(f"stride={stride} padding={padding}: Conv2D, reference kernel and hand loop agree, "
          f"output {y_layer.shape}")

# %% [markdown]
# ### Convolution or cross-correlation?
#
# In signal processing, convolution *flips* the kernel: $(x * k)_{h,w} = \sum_{i,j}
# k_{i,j}\, x_{h-i,\,w-j}$. Deep-learning libraries (tinycnn, PyTorch, TensorFlow) skip the
# flip and compute the cross-correlation above. Because the kernel is *learned*, the
# difference does not matter — a network would simply learn the flipped kernel — but it
# matters when you copy a textbook filter: a true convolution with $k$ equals our operation
# with $k$ rotated by 180°.

# %%
def true_convolution(x, k):
    """Textbook 'valid' convolution: y[h, w] = sum_ij k[i, j] * x[h + KH-1 - i, w + KW-1 - j]."""
    KH, KW = k.shape
    H_out, W_out = x.shape[0] - KH + 1, x.shape[1] - KW + 1
    y = np.zeros((H_out, W_out))
    for h in range(H_out):
        for w in range(W_out):
            for i in range(KH):
                for j in range(KW):
                    y[h, w] += k[i, j] * x[h + KH - 1 - i, w + KW - 1 - j]
    return y


k_asym = np.array([[1.0, 2, 0], [0, -1, 0], [0, 0, 3]])
np.testing.assert_allclose(true_convolution(x, k_asym), conv2d_by_hand(x, k_asym[::-1, ::-1]))
print("true convolution with k == cross-correlation with k rotated by 180°")

# %% [markdown]
# ## 4. Classic filters on a real image
#
# Before CNNs, people designed kernels by hand. Three classics:
#
# * **Sobel** (horizontal gradient): $k_x = \begin{pmatrix}-1&0&1\\-2&0&2\\-1&0&1\end{pmatrix}$
#   — a difference "right minus left", smoothed over three rows. Its transpose $k_y$
#   measures "bottom minus top". The *edge strength* is $\sqrt{y_x^2 + y_y^2}$.
# * **Box blur**: $k = \frac{1}{K^2}\mathbf{1}_{K\times K}$, the local mean; it removes
#   detail finer than the box.
# * **Laplacian**: $\begin{pmatrix}0&1&0\\1&-4&1\\0&1&0\end{pmatrix}$, the sum of the
#   second derivatives; zero on flat *and* on linearly sloped regions, large on thin lines
#   and dots.
#
# The Sobel and Laplacian weights sum to zero, so a flat region gives exactly 0: these
# filters only respond to *change*. The box weights sum to 1, so a flat region is kept.
#
# Our image is the green channel of a retinal fundus photograph shipped with tinycnn
# (`tinycnn.datasets.load_retina()`). The green channel shows blood vessels with the best
# contrast; finding them is an edge- and line-detection problem.

# %%
from tinycnn.datasets import load_retina

retina = load_retina()                        # (512, 512) float32 in [0, 1]
image = retina[130:386, 40:296]               # 256×256 around the optic disc and vessels
if FAST:
    image = image[::2, ::2]                   # 128×128 keeps the test suite quick
image = np.ascontiguousarray(image)
print("image", image.shape, image.dtype, f"range [{image.min():.2f}, {image.max():.2f}]")

sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)
sobel_y = sobel_x.T.copy()
laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float32)
box = np.full((3, 3), 1 / 9, dtype=np.float32)
filters = {"Sobel x": sobel_x, "Sobel y": sobel_y, "box blur 3×3": box, "Laplacian": laplacian}

# %% [markdown]
# One `Conv2D` layer with four filters computes all four *feature maps* in one call: the
# weight tensor is the four kernels stacked along the first axis, $(F, C, K_H, K_W) =
# (4, 1, 3, 3)$. Padding 1 keeps the output the size of the input ("same").

# %%
bank = layers.Conv2D(1, len(filters), kernel_size=3, padding=1)     # float32, like training
bank.weight.data[...] = np.stack(list(filters.values()))[:, None]   # (4, 1, 3, 3)
bank.bias.data[...] = 0
maps = bank.forward(image[None, None])[0]                            # (4, H, W)
print("feature maps", maps.shape)

# the layer agrees with the hand loop, filter by filter (float32: compare with a tolerance)
for f, (name, kern) in enumerate(filters.items()):
    # the pure-Python loop is slow, so check a 40×40 corner; its last row and column see a
    # padding zero where the full image has a pixel, so compare the first 39
    by_hand = conv2d_by_hand(image[:40, :40], kern, padding=1)
    np.testing.assert_allclose(maps[f, :39, :39], by_hand[:39, :39], rtol=1e-5, atol=1e-6)
print("Conv2D feature maps == hand loop")

edges = np.sqrt(maps[0] ** 2 + maps[1] ** 2)

# zero-sum filters ignore brightness: on a constant image their output is exactly 0
flat = np.full((1, 1, 16, 16), 0.7, dtype=np.float32)
flat_maps = layers.Conv2D(1, 4, 3)  # no padding: every window lies inside the flat patch
flat_maps.weight.data[...] = bank.weight.data
flat_out = flat_maps.forward(flat)[0]
np.testing.assert_allclose(flat_out[[0, 1, 3]], 0, atol=1e-6)   # Sobel x, Sobel y, Laplacian
np.testing.assert_allclose(flat_out[2], 0.7, rtol=1e-6)          # the box blur keeps the mean

# %%
big_box = np.full((9, 9), 1 / 81, dtype=np.float32)
blur_layer = layers.Conv2D(1, 1, kernel_size=9, padding=4)
blur_layer.weight.data[...] = big_box
blur_layer.bias.data[...] = 0
blurred = blur_layer.forward(image[None, None])[0, 0]

fig, axes = plt.subplots(2, 3, figsize=(12, 8.4))
panels = [(image, "input (green channel)", "gray"),
          (maps[0], "Sobel x: vertical edges", "coolwarm"),
          (maps[1], "Sobel y: horizontal edges", "coolwarm"),
          (edges, "edge strength √(x² + y²)", "magma"),
          (blurred, "box blur 9×9", "gray"),
          (maps[3], "Laplacian: lines and dots", "coolwarm")]
for ax, (a, title, cmap) in zip(axes.flat, panels):
    if cmap == "coolwarm":  # symmetric colour scale so that 0 is white
        lim = np.percentile(np.abs(a), 99)
        ax.imshow(a, cmap=cmap, vmin=-lim, vmax=lim)
    else:
        ax.imshow(a, cmap=cmap)
    ax.set_title(title)
    ax.axis("off")
show(fig, "01_classic_filters")

# %% [markdown]
# Look at the Sobel x panel: a dark vessel running top to bottom gives a blue line on its
# left edge (bright → dark) and a red line on its right edge (dark → bright). The
# Laplacian lights up the thin vessels themselves.
#
# You may have read that a CNN's first layer *learns* edge detectors by itself. Large
# networks trained long on millions of natural photographs do show such filters, but do
# not expect it from a small network: we trained a small CNN (eight 3×3 first-layer
# filters) on 4,000 of tutorial 05's digits for 12 epochs, three seeds, and measured each
# filter's best cosine similarity with eight Sobel-like edge templates. The mean was
# 0.28–0.53 after training and 0.40–0.51 at the random start — no move towards edges
# (`tutorials/solutions/01_convolution.py` repeats the measurement). Hand-designed
# filters are a way to understand what one filter computes, not a picture of what
# training finds; tutorial 05 shows LeNet's trained filters as they are.
#
# Notice the frame around every map: padding adds *zeros*, so to the filters the image
# seems to drop to black at its border, which reads as a strong edge. Padding is a
# convenience, not information; a network learns to discount the outermost pixels.
#
# Blurring removes fine detail: the local variation of the blurred image is much smaller.

# %%
def mean_abs_gradient(a):
    return np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean()


print(f"mean |neighbour difference|: image {mean_abs_gradient(image):.4f}, "
      f"9×9 blur {mean_abs_gradient(blurred):.4f}")
assert mean_abs_gradient(blurred) < 0.5 * mean_abs_gradient(image)

# %% [markdown]
# ## 5. Many channels in, many filters out
#
# A colour image has $C = 3$ channels, and the input of a deeper layer has as many channels
# as the previous layer had filters. A filter then has one $K_H \times K_W$ slice *per
# input channel*; it convolves each channel with its slice and adds the results into a
# single map. With $F$ filters and a batch of $N$ images:
#
# $$y_{n,f,h,w} = b_f + \sum_{c=0}^{C-1} \sum_{i,j} w_{f,c,i,j}\; x^{pad}_{n,c,\;hs+i,\;ws+j}$$
#
# Shapes: $x: (N, C, H, W)$, $w: (F, C, K_H, K_W)$, $b: (F,)$, $y: (N, F, H_{out}, W_{out})$.
# The layer has $(K_H K_W C + 1)\,F$ parameters: each filter has $K_H K_W C$ weights and
# one bias. Note the count does not depend on the image size — that is weight sharing.
#
# By hand, the multi-channel case is just the single-channel loop inside two more loops:

# %%
def conv2d_multi_by_hand(x, w, b, stride=1, padding=0):
    """x (N, C, H, W), w (F, C, KH, KW), b (F,) -> y (N, F, H_out, W_out)."""
    N, C = x.shape[:2]
    F = w.shape[0]
    out = []
    for n in range(N):
        maps_n = []
        for f in range(F):
            # one filter = one single-channel convolution per input channel, summed
            y_nf = sum(conv2d_by_hand(x[n, c], w[f, c], stride=stride, padding=padding)
                       for c in range(C))
            maps_n.append(y_nf + b[f])
        out.append(maps_n)
    return np.array(out)


rng = np.random.default_rng(0)
N, C, F, H, W, K = 2, 3, 4, 7, 6, 3
x_multi = rng.standard_normal((N, C, H, W))
conv = layers.Conv2D(C, F, kernel_size=K, stride=2, padding=1, rng=0, dtype=np.float64)
conv.bias.data[...] = rng.standard_normal(F)

y_layer = conv.forward(x_multi)
y_hand = conv2d_multi_by_hand(x_multi, conv.weight.data, conv.bias.data, stride=2, padding=1)
y_ref = reference.conv2d_forward(x_multi, conv.weight.data, conv.bias.data, 2, 1)
print("x", x_multi.shape, "-> y", y_layer.shape,
      "| H_out =", output_size(H, K, 2, 1), "W_out =", output_size(W, K, 2, 1))
np.testing.assert_allclose(y_layer, y_hand, rtol=1e-10, atol=1e-12)
np.testing.assert_allclose(y_ref, y_hand, rtol=1e-10, atol=1e-12)
assert y_layer.shape == (N, F, output_size(H, K, 2, 1), output_size(W, K, 2, 1))

n_params = sum(p.size for p in conv.parameters())
assert n_params == (K * K * C + 1) * F
print(f"parameters: ({K}·{K}·{C} + 1)·{F} = {n_params}; layer formula: {conv.param_formula()}")

# %% [markdown]
# The first layer of LeNet-5 (tutorial 05) is `Conv2D(1, 6, kernel_size=5, padding=2)`:
# six 5×5 filters over a grey image, $(5\cdot5\cdot1 + 1)\cdot 6 = 156$ parameters, and a
# 28×28 digit stays 28×28 because $p = (5-1)/2$ is "same" padding.

# %%
lenet_c1 = layers.Conv2D(1, 6, kernel_size=5, padding=2, rng=0)
assert sum(p.size for p in lenet_c1.parameters()) == 156
assert lenet_c1.output_shape((1, 28, 28)) == (6, 28, 28)
print(tc.Sequential(lenet_c1).summary(input_shape=(1, 28, 28)))

# %% [markdown]
# ## Summary
#
# * A convolution output pixel is a weighted sum of a patch: $y_{h,w} = b +
#   \sum_{i,j} k_{i,j} x^{pad}_{hs+i, ws+j}$ — the same weights at every position.
# * $H_{out} = \lfloor (H + 2p - K)/s \rfloor + 1$; $p = (K-1)/2$, $s = 1$ keeps the size.
# * With channels, each filter sums over all input channels; a layer has
#   $(K_H K_W C + 1)F$ parameters whatever the image size.
# * `layers.Conv2D` and `kernels.reference.conv2d_forward` match the hand loops exactly.
#
# ## Exercises
#
# 1. Write the $1\times1$ convolution $y_{n,f,h,w} = b_f + \sum_c w_{f,c} x_{n,c,h,w}$ as a
#    matrix product with `np.einsum`, and check it against `Conv2D(C, F, kernel_size=1)`.
# 2. What are $H_{out}$ and $W_{out}$ for a 32×20 input, $K = 5$, $s = 3$, $p = 1$? Predict
#    with the formula, then check with `conv2d_by_hand` and with `Conv2D.output_shape`.
# 3. Build a 5×5 Gaussian blur kernel (weights $\propto e^{-(i^2+j^2)/2\sigma^2}$, summing
#    to 1) and compare it with the 5×5 box blur on the retina. Which one leaves fewer
#    "blocky" artefacts, and why?
# 4. Two 3×3 convolutions in a row (no non-linearity between them) equal one 5×5
#    convolution. Find the 5×5 kernel for Sobel x followed by the 3×3 box blur and verify
#    it numerically (hint: the combined kernel is the *true* convolution of the two).
# 5. Apply `Conv2D(1, 1, kernel_size=3, stride=2)` with the box kernel to the retina
#    repeatedly. How many times can you apply it before the image is smaller than 3×3?
#    Compare with what the formula predicts.
