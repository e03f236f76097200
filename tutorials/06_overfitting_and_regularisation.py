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
# # Tutorial 06 — Overfitting and regularisation
#
# LeNet-5 has 61,706 parameters. Give it only 500 training digits and it can simply
# memorise them: the training accuracy reaches 100 % while the accuracy on digits it has
# not seen stalls far below. That difference is the **generalisation gap**, and the
# techniques that shrink it are called **regularisation**. Each one is a guess about what
# a good solution looks like; whether the guess helps on *your* data is something you
# measure, not assume.
#
# **What you will learn**
#
# 1. to see overfitting: training and validation curves that part ways;
# 2. **weight decay** — the L2 penalty $\tfrac{\lambda}{2}\lVert\theta\rVert^2$ and why in SGD it
#    shrinks every weight by a factor $(1 - \eta\lambda)$ per step;
# 3. **dropout** — inverted dropout, its mask, and what changes between `train()` and
#    `eval()`;
# 4. **data augmentation** — random ±2 pixel shifts as "free" extra training data;
# 5. **early stopping** — `tc.EarlyStopping(patience, restore_best=True)`;
# 6. a measured comparison (a table of training and validation accuracy per setting), and
#    how much of a difference is noise.

# %%
import os

# one BLAS thread: faster for LeNet's small matrix products on a shared 2-core machine
# (see tutorial 07); must be set before NumPy is imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import textwrap
import time

import numpy as np
import matplotlib.pyplot as plt

from tinycnn.tutorial_helpers import FAST, show
import tinycnn as tc
from tinycnn import layers, losses, metrics, optim, transforms, viz
from tinycnn.datasets import load_mnist5k, stratified_split

np.set_printoptions(precision=4, suppress=True, linewidth=100)
print("tinycnn", tc.__version__, "| backend:", tc.get_backend(), "| fast mode:", FAST)

# %% [markdown]
# ## 1. A small training set
#
# From the 4,000 training digits of MNIST-5k we take a stratified subset of **500** (50
# per digit) to train on, and **1,000** others to validate on. The 1,000 test digits stay
# untouched until one final check at the end. The normalisation statistics come from the
# 500 training digits only.

# %%
N_TRAIN, N_VAL, EPOCHS = (200, 300, 5) if FAST else (500, 1000, 40)
SEED = 0

(x_pool, y_pool), (x_test, y_test) = load_mnist5k(seed=SEED)
rest, small = stratified_split(y_pool, N_TRAIN / len(y_pool), seed=SEED)
_, val = stratified_split(y_pool[rest], N_VAL / len(rest), seed=SEED + 1)
val = rest[val]
assert not set(small) & set(val)                       # disjoint: no digit in both
norm = transforms.Normalize.fit(x_pool[small])
x_train, y_train = norm(x_pool[small]), y_pool[small]
x_val, y_val = norm(x_pool[val]), y_pool[val]
x_test_n = norm(x_test)
print(f"train {x_train.shape[0]} digits ({np.bincount(y_train).min()}-{np.bincount(y_train).max()} per class), "
      f"validation {x_val.shape[0]}, test {x_test.shape[0]}")

# %% [markdown]
# Every experiment below trains the same LeNet-5 (same initial weights, seed 0) with the
# recipe of tutorial 05 — SGD, lr 0.02, momentum 0.9, cosine schedule, batch 32 — for
# 40 epochs, and changes one thing at a time. `run` trains and then measures accuracy and
# loss on the training set and on the validation set, both in evaluation mode (no
# dropout, no augmentation), so that the two numbers are comparable.

# %%
def lenet(dropout=0.0, seed=SEED):
    """LeNet-5 as in tutorial 05; with dropout > 0, a Dropout after each hidden dense layer."""
    rng = np.random.default_rng(seed)

    def drop():       # a new layer each time: a layer caches its own forward pass
        return [layers.Dropout(dropout)] if dropout else []

    return tc.Sequential(
        layers.Conv2D(1, 6, kernel_size=5, padding=2, rng=rng), layers.ReLU(), layers.MaxPool2D(2),
        layers.Conv2D(6, 16, kernel_size=5, rng=rng), layers.ReLU(), layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(400, 120, rng=rng), layers.ReLU(), *drop(),
        layers.Dense(120, 84, rng=rng), layers.ReLU(), *drop(),
        layers.Dense(84, 10, init="xavier", rng=rng),
    )


results = {}


def run(name, weight_decay=0.0, dropout=0.0, augment=False, early_stopping=False):
    model = lenet(dropout)
    opt = optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=weight_decay)
    callbacks = [tc.EarlyStopping(monitor="val_loss", patience=5, restore_best=True)] if early_stopping else []
    started = time.perf_counter()
    history = model.fit(x_train, y_train, loss=losses.SoftmaxCrossEntropy(), optimizer=opt,
                        epochs=EPOCHS, batch_size=32, validation_data=(x_val, y_val), seed=SEED,
                        scheduler=optim.CosineLR(opt, T_max=EPOCHS), callbacks=callbacks,
                        augment=transforms.RandomShift(2) if augment else None, verbose=False)
    train, val = model.evaluate(x_train, y_train), model.evaluate(x_val, y_val)
    results[name] = dict(model=model, history=history, callbacks=callbacks,
                         train_acc=train["accuracy"], val_acc=val["accuracy"],
                         train_loss=train["loss"], val_loss=val["loss"],
                         epochs=len(history.epoch), seconds=time.perf_counter() - started,
                         weight_norm=float(np.sqrt(sum(np.sum(p.data.astype(np.float64) ** 2)
                                                       for p in model.parameters()))))
    r = results[name]
    print(f"{name:28s} train acc {r['train_acc']:.3f}  val acc {r['val_acc']:.3f}  "
          f"gap {r['train_acc'] - r['val_acc']:+.3f}  val loss {r['val_loss']:.3f}  "
          f"({r['epochs']} epochs, {r['seconds']:.1f} s)")
    return r


tc.warmup()

# %% [markdown]
# ## 2. The baseline overfits
#
# No regularisation at all:

# %%
base = run("baseline")
show(viz.plot_history(base["history"]), "06_baseline_curves")
h = base["history"].history
best_epoch = int(np.argmin(h["val_loss"])) + 1
print(f"validation loss is lowest after epoch {best_epoch} ({min(h['val_loss']):.3f}), "
      f"{h['val_loss'][-1]:.3f} at the end; training loss at the end {h['loss'][-1]:.5f}")
if not FAST:
    assert base["train_acc"] == 1.0 and base["train_acc"] - base["val_acc"] > 0.04
    assert h["val_loss"][-1] > min(h["val_loss"])        # validation loss went back up

# %% [markdown]
# The training loss goes to (almost) zero: every one of the 500 digits is classified
# correctly and with near certainty. The validation loss falls for a dozen epochs, then
# creeps back *up* while the validation accuracy stalls: the network keeps making its
# training answers more confident, including for the quirks of individual training
# digits that do not carry over to new ones. That is overfitting.
#
# ## 3. Weight decay
#
# Weight decay adds a penalty on the size of the weights to the loss,
#
# $$L_\lambda(\theta) = L(\theta) + \frac{\lambda}{2}\lVert\theta\rVert^2
# \qquad\Rightarrow\qquad \nabla L_\lambda = \nabla L + \lambda\theta ,$$
#
# which is why `optim.SGD(weight_decay=λ)` simply adds $\lambda\theta$ to each gradient.
# Without momentum, one step is $\theta \leftarrow (1 - \eta\lambda)\,\theta - \eta\nabla L$:
# every weight *decays* towards zero by a constant factor unless the data keeps pushing
# it back. Among all weight settings that fit the training data, the penalty prefers
# small ones, which give smoother functions of the input. Let us check the decay with a
# zero data gradient:

# %%
p = tc.Parameter(np.array([2.0, -4.0]))
opt = optim.SGD([p], lr=0.1, weight_decay=0.05)
for _ in range(10):
    p.grad[...] = 0.0                                  # no data gradient at all
    opt.step()
np.testing.assert_allclose(p.data, np.array([2.0, -4.0]) * (1 - 0.1 * 0.05) ** 10)
print(f"10 steps with a zero gradient: weights × {(1 - 0.1 * 0.05) ** 10:.4f}")

wd = run("weight decay 5e-3", weight_decay=5e-3)
print(f"size of all weights ‖θ‖: baseline {base['weight_norm']:.1f}, weight decay {wd['weight_norm']:.1f}")
if not FAST:
    assert wd["weight_norm"] < 0.8 * base["weight_norm"]
    assert wd["val_loss"] < base["val_loss"]

# %% [markdown]
# The weights end up markedly smaller and the validation *loss* is lower: the network is
# less over-confident on digits it gets wrong. The validation *accuracy* barely moves —
# a typical result for weight decay on its own.
#
# ## 4. Dropout
#
# During training, dropout sets each activation to zero with probability $p$ and scales
# the survivors by $1/(1-p)$:
#
# $$y = x \odot m / (1-p),\quad m_k \sim \text{Bernoulli}(1-p), \qquad
#   \frac{\partial L}{\partial x} = \frac{\partial L}{\partial y} \odot m/(1-p).$$
#
# The scaling ("inverted" dropout) keeps the expected activation unchanged,
# $\mathbb E[y] = x$, so at test time (`model.eval()`) the layer does nothing at all. A unit
# cannot rely on any particular other unit being present, which discourages
# co-adapted, memorising features; it is like training an ensemble of thinned networks
# that share weights.

# %%
drop = layers.Dropout(0.25, rng=0)
x_ones = np.ones((1000, 100), dtype=np.float32)
y_drop = drop.forward(x_ones)
dx = drop.backward(np.ones_like(y_drop))
kept = y_drop != 0
print(f"kept {kept.mean():.3f} of the units (expected 0.75), survivors scaled to {y_drop[kept][0]:.4f}, "
      f"mean {y_drop.mean():.4f} (expected 1)")
assert abs(kept.mean() - 0.75) < 0.01 and abs(y_drop.mean() - 1) < 0.02
np.testing.assert_array_equal(dx, y_drop)              # backward applies the same mask and scale
drop.eval()
np.testing.assert_array_equal(drop.forward(x_ones), x_ones)   # evaluation mode: identity
print("in eval() mode Dropout is the identity")

# %% [markdown]
# `fit` puts the model in training mode (dropout active) and `evaluate` / `predict` in
# evaluation mode; the masks are drawn from `fit(seed=...)`, so runs are reproducible.
# We add dropout after each of the two hidden dense layers, at two rates:

# %%
d25 = run("dropout 0.25", dropout=0.25)
d50 = run("dropout 0.5", dropout=0.5)

# %% [markdown]
# ## 5. Data augmentation
#
# The best regulariser is more data. We cannot collect more digits, but we know
# transformations that do not change a digit's class: a shift by a pixel or two, a small
# rotation. `transforms.RandomShift(2)` moves each training image by its own random
# $(\Delta y, \Delta x) \in \{-2,\dots,2\}^2$, freshly drawn every time the image appears
# in a batch, so the network never sees exactly the same 500 images twice. (A horizontal
# flip would be wrong here: a mirrored 2 is not a 2.)

# %%
shifter = transforms.RandomShift(2)
rng = np.random.default_rng(0)
eight = np.repeat(x_pool[small][:1], 8, axis=0)        # one digit, eight times
shifted = shifter(eight, rng)
assert shifted.shape == eight.shape
assert all(np.allclose(np.sort(s.ravel())[-20:], np.sort(eight[0].ravel())[-20:]) for s in shifted)
show(viz.plot_images(shifted, labels=[f"copy {k}" for k in range(8)], ncols=8), "06_shifted")

aug = run("shift augmentation", augment=True)

# %% [markdown]
# (The assertion checks that a ±2 px shift keeps the brightest pixels of the digit: the
# digit moves, it is not cut, because MNIST digits have a blank frame of 4 pixels.)
#
# ## 6. Early stopping
#
# If the validation loss starts rising, why keep training? `tc.EarlyStopping` watches a
# logged metric after every epoch and stops once it has not improved for `patience`
# epochs in a row. With `restore_best=True` it also puts back the weights of the best
# epoch, so the model you keep is the one that did best on validation data, not the
# last one. It is a callback: `fit(callbacks=[...])`.

# %%
early = run("early stopping (patience 5)", early_stopping=True)
stopper = early["callbacks"][0]
hv = early["history"].history["val_loss"]
print(f"best val_loss {stopper.best:.4f} at epoch {stopper.best_epoch}; "
      f"stopped at epoch {stopper.stopped_epoch} of {EPOCHS}")
assert stopper.best == min(hv) and stopper.best_epoch == int(np.argmin(hv)) + 1
# the weights we kept are those of the best epoch, not of the last one
np.testing.assert_allclose(early["val_loss"], stopper.best, rtol=1e-6)
if not FAST:
    assert stopper.stopped_epoch is not None and early["epochs"] < EPOCHS

fig, ax = plt.subplots(figsize=(6.5, 3.5))
ax.plot(base["history"].epoch, base["history"].history["val_loss"], "o-", ms=3, label="baseline: validation loss")
ax.plot(early["history"].epoch, hv, "s-", ms=3, label="with early stopping")
ax.axvline(stopper.best_epoch, color="k", ls=":", label=f"best epoch ({stopper.best_epoch}), weights restored")
ax.set_xlabel("epoch")
ax.set_ylabel("validation loss")
ax.legend()
show(fig, "06_early_stopping")

# %% [markdown]
# ## 7. Combinations, and the scoreboard
#
# Regularisers can be combined. Two more runs: weight decay with augmentation, and all
# four together.

# %%
run("weight decay + shift", weight_decay=5e-3, augment=True)
run("all four (wd, dropout 0.25, shift, early stop)", weight_decay=5e-3, dropout=0.25,
    augment=True, early_stopping=True)

print(f"\n{'setting':48s} {'epochs':>6s} {'train acc':>9s} {'val acc':>8s} {'gap':>7s} {'val loss':>8s}")
for name, r in results.items():
    print(f"{name:48s} {r['epochs']:6d} {r['train_acc']:9.3f} {r['val_acc']:8.3f} "
          f"{r['train_acc'] - r['val_acc']:+7.3f} {r['val_loss']:8.3f}")

assert len(results) == 8
assert all(0 <= r["train_acc"] <= 1 and 0 <= r["val_acc"] <= 1 for r in results.values())

names = list(results)
fig, ax = plt.subplots(figsize=(10, 4))
pos = np.arange(len(names))
ax.bar(pos - 0.2, [results[k]["train_acc"] for k in names], 0.4, label="training accuracy")
ax.bar(pos + 0.2, [results[k]["val_acc"] for k in names], 0.4, label="validation accuracy")
ax.set_xticks(pos, [textwrap.fill(k, 16) for k in names], fontsize=7)
ax.set_ylim(0.7 if not FAST else 0, 1.005)
ax.set_ylabel("accuracy")
ax.set_title(f"LeNet-5 on {N_TRAIN} digits: what each regulariser does")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2)
show(fig, "06_scoreboard")

# %% [markdown]
# ### How big must a difference be to count?
#
# The validation set has $n = 1{,}000$ digits. An accuracy $a$ measured on it is a
# binomial proportion with standard error $\sqrt{a(1-a)/n}$ — about 0.8 percentage points
# at 93 %. Two runs with different random seeds also land differently. So differences of
# a point or less in the table are noise; only larger ones deserve a conclusion.

# %%
a = base["val_acc"]
se = np.sqrt(a * (1 - a) / N_VAL)
print(f"standard error of the baseline's validation accuracy: ±{se:.3f}")
if not FAST:
    # what this table showed when the tutorial was written (500 digits, 40 epochs)
    assert aug["val_acc"] > base["val_acc"] + se          # augmentation: a real gain
    assert aug["train_acc"] - aug["val_acc"] < base["train_acc"] - base["val_acc"]
    assert early["epochs"] < 0.75 * EPOCHS                # early stopping: same result, less time
    assert d50["val_acc"] < base["val_acc"]               # heavy dropout hurt this small net

# %% [markdown]
# What the measurements said when this tutorial was written (full mode; your numbers may
# differ slightly):
#
# * **Baseline:** 100 % training accuracy, about 93 % validation accuracy: a gap of 7
#   points, and a validation loss that rises after epoch ~14.
# * **Weight decay** ($\lambda = 5\times10^{-3}$): much smaller weights and a clearly lower
#   validation loss (better-calibrated confidence); the accuracy is unchanged.
# * **Dropout:** at $p = 0.25$ no measurable effect; at $p = 0.5$ clearly *worse* — the
#   84- and 120-unit layers of LeNet-5 are small already, and 40 epochs on 500 digits
#   are not enough to train through that much noise. Dropout shines in wide layers.
# * **Shift augmentation:** the only single change that moved validation accuracy beyond
#   the noise (about +2 points), and it shrank the gap.
# * **Early stopping:** the same accuracy as the baseline in about half the epochs; with
#   `restore_best=True` the kept weights are those with the lowest validation loss.
# * **Combinations:** weight decay + shift and all four together gave the lowest
#   validation losses (0.23 and 0.21 against 0.37); all four had the smallest gap, and it
#   was the run chosen below (test accuracy 94.0 %).
#
# The lesson is not "use regulariser X", it is: **a regulariser is a hypothesis about your
# data — measure it, on validation data, with an idea of the noise.**
#
# ## 8. One look at the test set
#
# We chose a setting by looking at validation data, so the validation accuracy of the
# winner is slightly optimistic (we picked the luckiest). The test set, untouched until
# now, gives the honest number. We evaluate it once, for the run with the lowest
# validation loss:

# %%
chosen = min(results, key=lambda k: results[k]["val_loss"])
test_acc = metrics.accuracy(y_test, results[chosen]["model"].predict_classes(x_test_n))
print(f"chosen by validation loss: {chosen!r}: validation accuracy {results[chosen]['val_acc']:.3f}, "
      f"test accuracy {test_acc:.3f}")
assert test_acc > (0.2 if FAST else 0.9)

# %% [markdown]
# ## Summary
#
# * Overfitting = training accuracy far above validation accuracy, validation loss rising
#   while training loss falls. Small data and many parameters make it likely.
# * Weight decay adds $\lambda\theta$ to the gradient and shrinks weights by
#   $(1-\eta\lambda)$ per plain SGD step; it mostly tempers over-confidence.
# * Inverted dropout scales survivors by $1/(1-p)$ in training and does nothing in `eval()`.
# * Augmentation creates plausible new training images; for digits, shifts are safe and
#   flips are not.
# * Early stopping with `restore_best=True` keeps the best-on-validation weights and saves
#   time.
# * Judge differences against the noise: $\pm\sqrt{a(1-a)/n}$ for an accuracy on $n$ samples.
#
# ## Exercises
#
# 1. Repeat the baseline and the shift-augmentation runs with three different seeds
#    (`lenet(seed=...)` and `fit(seed=...)`). How large is the seed-to-seed spread
#    compared with the standard error above?
# 2. Add `transforms.RandomRotation(10)` to the augmentation with
#    `transforms.Compose([...])`. Does it help on top of the shifts?
# 3. Train the baseline on 250, 500, 1,000 and 2,000 digits and plot the gap against
#    the training-set size. What does that suggest about the value of more data?
# 4. Put a `Dropout(0.25)` after the *second pooling layer* instead of after the dense
#    layers. Better or worse?
# 5. Early stopping monitors `val_loss` here. Try `monitor="val_accuracy"`. Why does it
#    tend to stop at a different epoch?
