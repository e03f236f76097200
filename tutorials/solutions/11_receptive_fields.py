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
# # Solutions — Tutorial 11, Receptive fields
#
# Worked answers to the exercises of `tutorials/11_receptive_fields.py`, each checked by an
# `assert` on numbers computed here. `TINYCNN_FAST=1` uses fewer random inputs in exercise 3.

# %%
import numpy as np
import matplotlib.pyplot as plt

from tinycnn.tutorial_helpers import FAST, show
import tinycnn as tc
from tinycnn import layers
from tinycnn.models import lesion_cnn
from tinycnn.receptive_field import input_gradient


def positive_weights(model, seed=0):
    """Weights in [0.1, 1], biases 0 (as in the tutorial): no ReLU off, no cancellation."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data[...] = rng.uniform(0.1, 1.0, p.shape) if p.data.ndim > 1 else 0.0
    return model


# %% [markdown]
# ## Exercise 1 — VGG's first three blocks
#
# Each block: conv 3×3 (pad 1), conv 3×3 (pad 1), pool 2×2. With
# $r \mathrel{+}= (k-1)\,j$ and $j \mathrel{*}= s$:
#
# | layer | $r$ | $j$ |
# |---|---|---|
# | conv, conv, pool | 3, 5, 6 | 1, 1, 2 |
# | conv, conv, pool | 10, 14, 16 | 2, 2, 4 |
# | conv, conv, pool | 24, 32, 36 | 4, 4, 8 |
#
# (The real VGG-16 has three convs in its third block: 24, 32, 40, then the pool 44.)
# The geometry does not depend on the channel counts, so one channel per layer is enough
# to ask `tc.receptive_field`.

# %%
vgg = []
for _ in range(3):
    vgg += [layers.Conv2D(1, 1, 3, padding=1), layers.ReLU(),
            layers.Conv2D(1, 1, 3, padding=1), layers.ReLU(), layers.MaxPool2D(2)]
rf = tc.receptive_field(vgg, (1, 224, 224))
convs_and_pools = [row for row, layer in zip(rf, vgg) if not isinstance(layer, layers.ReLU)]
sizes = [row.size[0] for row in convs_and_pools]
jumps = [row.jump[0] for row in convs_and_pools]
print("sizes:", sizes, "jumps:", jumps)
assert sizes == [3, 5, 6, 10, 14, 16, 24, 32, 36]
assert jumps == [1, 1, 2, 2, 2, 4, 4, 4, 8]

# %% [markdown]
# Two stacked 3×3 convs see 5×5, like one 5×5 conv. With $C$ channels in and out, two
# 3×3 layers have $2 \cdot 9 C^2 = 18 C^2$ weights, one 5×5 layer $25 C^2$: 28 % fewer,
# and one more ReLU in between (a more non-linear function of the same 5×5 window).

# %%
C = 64
two_3x3 = sum(p.size for layer in (layers.Conv2D(C, C, 3), layers.Conv2D(C, C, 3)) for p in [layer.weight])
one_5x5 = layers.Conv2D(C, C, 5).weight.size
print(f"C = {C}: two 3×3 convs {two_3x3:,} weights, one 5×5 conv {one_5x5:,} "
      f"({1 - two_3x3 / one_5x5:.0%} fewer)")
assert two_3x3 == 18 * C * C and one_5x5 == 25 * C * C

# %% [markdown]
# ## Exercise 2 — a field with holes
#
# A 1×1 conv with stride 2 keeps every other pixel; a 2×2 conv on top reads two
# neighbours of *that* grid, which are pixels 0 and 2 of the input. The recurrence gives a
# field of $1 + (2 - 1)\cdot 2 = 3$ — a bounding box whose middle row and column are never
# read.

# %%
holes = tc.Sequential(layers.Conv2D(1, 1, 1, stride=2, dtype=np.float64),
                      layers.Conv2D(1, 1, 2, dtype=np.float64))
positive_weights(holes)
rf_holes = tc.receptive_field(holes, (1, 9, 9))
x = np.random.default_rng(0).uniform(0.5, 1.5, (1, 9, 9))
seen = input_gradient(holes, x, unit=(0, 1, 1))[0] != 0
(r0, r1), (c0, c1) = rf_holes.box(-1, (1, 1))
print(f"field {rf_holes[-1].size}, box rows {r0}..{r1 - 1}, columns {c0}..{c1 - 1}")
print(seen.astype(int)[r0:r1, c0:c1])
assert rf_holes[-1].size == (3, 3) and (r0, c0) == (2, 2)
np.testing.assert_array_equal(seen[r0:r1, c0:c1], [[1, 0, 1], [0, 0, 0], [1, 0, 1]])
assert seen.sum() == 4

fig, ax = plt.subplots(figsize=(3.5, 3.5))
ax.imshow(seen, cmap="Blues", vmin=0, vmax=1.3)
ax.add_patch(plt.Rectangle((c0 - 0.5, r0 - 0.5), 3, 3, fill=False, ec="tab:red", lw=2))
ax.set_title("1×1 stride-2 conv, then 2×2 conv:\n4 pixels read in a 3×3 field")
ax.set_xticks([])
ax.set_yticks([])
show(fig, "11_solution_holes")

# %% [markdown]
# ## Exercise 3 — max-pooling and the gradient's reach
#
# With max pools the backward pass sends each window's gradient to its winner only, so one
# input reaches a fraction of the field; different inputs have different winners, so the
# union over many inputs grows towards the whole field — and never leaves it.

# %%
model = positive_weights(lesion_cnn(rng=0).to(np.float64), seed=1)
rf_les = tc.receptive_field(model)
(r0, r1), (c0, c1) = rf_les.box(6, (4, 4))
box = np.zeros((32, 32), bool)
box[r0:r1, c0:c1] = True
n_inputs = 10 if FAST else 50
xs = np.random.default_rng(2).uniform(0.5, 1.5, (n_inputs, 1, 32, 32))
supports = [input_gradient(model, xi, layer=6, unit=(0, 4, 4))[0] != 0 for xi in xs]
single = np.mean([s.sum() / box.sum() for s in supports])
union = np.any(supports, axis=0)
print(f"one input: the gradient reaches {single:.0%} of the 18×18 field on average; "
      f"the union over {n_inputs} inputs: {union.sum() / box.sum():.0%}")
assert all(not (s & ~box).any() for s in supports)
assert single < 1.0 and union.sum() > max(s.sum() for s in supports)
