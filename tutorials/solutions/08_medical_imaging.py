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
# # Solutions — Tutorial 08, Medical imaging
#
# Worked answers to the exercises of `tutorials/08_medical_imaging.py`, with the
# tutorial's data recipe (4,000 simulated 32×32 patches, 20 % with lesions, the same
# stratified splits) and its training function `train_detector` (Adam, class weights,
# flips, early stopping). Every variant changes one thing.
#
# Full mode trains eleven small detectors (about a minute of CPU time; 7 minutes of wall
# time on our 2-core machine while other jobs kept it busy, load 8–12).
# `TINYCNN_FAST=1` uses 600 patches and 3 epochs: the code runs, but the numbers are
# noise, so the claims are asserted in full mode only; the numbers quoted in the text are
# from a full run. Runs are deterministic for a given tinycnn version, but a change in
# how a kernel rounds (the order of a sum) changes the trained networks a little: after
# a rewrite of the convolution kernels most AUCs below moved by less than 0.005 (two
# of exercise 5's hard settings by 0.014 and 0.036), the 90 %-sensitivity threshold by
# 0.05 and exercise 4's weighted operating point at 0.5 a good deal; exercise 1's
# comparison with Youden's threshold turned around (see there).

# %%
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # small GEMMs: see tutorial 05

from contextlib import contextmanager

import numpy as np
import matplotlib.pyplot as plt

from tinycnn.tutorial_helpers import FAST, show
import tinycnn as tc
from tinycnn import layers, losses, metrics, optim, transforms
from tinycnn.datasets import retina as retina_module
from tinycnn.datasets import retinal_lesions, stratified_split
from tinycnn.lesions_job import class_weights, darkest_pixel_score, standardize_patches, train_detector
from tinycnn.models import lesion_cnn
from tinycnn.validation import binary_report, positive_scores

N = 600 if FAST else 4000
EPOCHS = 3 if FAST else 25
SEED = 0
tc.warmup(dtypes=("float32",))


def make_data(positive_fraction=0.2, per_patch=True, seed=SEED):
    """The tutorial's data: patches, splits (test 25 %, validation 20 % of the rest) and
    normalisation (per patch, then Normalize fitted on the training set)."""
    x_raw, y = retinal_lesions(N, size=32, positive_fraction=positive_fraction, seed=seed)
    rest, test_idx = stratified_split(y, 0.25, seed=seed)
    fit_part, val_part = stratified_split(y[rest], 0.2, seed=seed + 1)
    train_idx, val_idx = rest[fit_part], rest[val_part]
    x = standardize_patches(x_raw) if per_patch else x_raw
    x = transforms.Normalize.fit(x[train_idx])(x).astype(np.float32)
    return {"train": (x[train_idx], y[train_idx]), "val": (x[val_idx], y[val_idx]),
            "test": (x[test_idx], y[test_idx])}


def evaluate(model, data, threshold=0.5):
    """Test-set report at ``threshold`` plus the validation and test scores."""
    p_val = positive_scores(model.predict(data["val"][0]))
    p_test = positive_scores(model.predict(data["test"][0]))
    return binary_report(data["test"][1], p_test, threshold), p_val, p_test


data = make_data()
model, _ = train_detector(*data["train"], *data["val"], epochs=EPOCHS, seed=SEED)
report, p_val, p_test = evaluate(model, data)
print(f"the tutorial's detector: test AUC {report['auc']:.4f}")

# %% [markdown]
# ## Exercise 1 — a threshold for 90 % sensitivity
#
# `metrics.roc_curve(y_val, p_val)` lists, for every candidate threshold (decreasing), the
# validation TPR (sensitivity) and FPR reached by calling positive every score above it.
# The highest threshold whose validation sensitivity is at least 90 % is the one a
# screening programme would fix; we then read sensitivity and specificity on the test
# set. Measured (full mode): threshold 0.53 on validation; on the test set sensitivity
# 0.880 and specificity 0.941 (Youden's threshold, 0.35: 0.945 and 0.890). The test
# sensitivity is not exactly 90 %: the threshold was fixed on another, small sample
# (120 validation lesions, so one lesion is 0.8 %), and here it fell short by two
# points. Youden's $J$ happens to pick a *lower* threshold on this run — more sensitive
# than 90 %, at 5 points of specificity — so "90 % sensitivity" is not always the more
# sensitive choice: Youden's $J$ takes the point where the ROC curve's slope falls to 1,
# which may lie above or below 90 % sensitivity. (An earlier version of tinycnn's kernels, whose sums round differently,
# trained a slightly different network: there the 90 % rule picked the lower threshold
# and cost two points of specificity.)

# %%
fpr, tpr, thresholds = metrics.roc_curve(data["val"][1], p_val)
t90 = float(thresholds[np.flatnonzero(tpr >= 0.9)[0]])
r90 = binary_report(data["test"][1], p_test, t90)
val90 = binary_report(data["val"][1], p_val, t90)
t_youden = metrics.best_threshold(data["val"][1], p_val, criterion="youden")
r_youden = binary_report(data["test"][1], p_test, t_youden)
print(f"Exercise 1: threshold {t90:.3f}: validation sensitivity {val90['sensitivity']:.3f}; "
      f"test sensitivity {r90['sensitivity']:.3f}, specificity {r90['specificity']:.3f} "
      f"(Youden's threshold {t_youden:.3f}: {r_youden['sensitivity']:.3f} / {r_youden['specificity']:.3f})")
assert val90["sensitivity"] >= 0.9
# a higher threshold would drop below 90 % on validation
assert binary_report(data["val"][1], p_val, np.nextafter(t90, np.inf))["sensitivity"] < 0.9

# %% [markdown]
# ## Exercise 2 — without per-patch standardisation
#
# Each simulated patch gets a random brightness, contrast and noise level. Per-patch
# standardisation removes brightness and contrast exactly; without it, the network must
# learn to tell "dark spot in a bright patch" from "dark patch" by itself, from few
# examples. Measured (full mode): test AUC 0.976 with, 0.962 without.
#
# The darkest-pixel baseline (minus the darkest pixel of the normalised patch) is held
# back by something no normalisation fixes: vessels are as dark as lesions. Per-patch
# standardisation changes which patches look darkest — dark regions of the fundus stop
# standing out — but not that confusion. We measured 0.708 with and 0.731 without: about
# the same, slightly *better* without. The CNN, which has learned what a lesion looks
# like, loses more, because without standardisation it must also learn to see through
# each patch's random brightness and contrast, from 2,400 examples.

# %%
data_raw = make_data(per_patch=False)
model_raw, _ = train_detector(*data_raw["train"], *data_raw["val"], epochs=EPOCHS, seed=SEED)
report_raw, _, _ = evaluate(model_raw, data_raw)
dark = {name: metrics.roc_auc(d["test"][1], darkest_pixel_score(d["test"][0]))
        for name, d in (("per patch", data), ("dataset only", data_raw))}
print(f"Exercise 2: CNN test AUC {report['auc']:.4f} with per-patch standardisation, "
      f"{report_raw['auc']:.4f} without; darkest pixel {dark['per patch']:.3f} vs {dark['dataset only']:.3f}")
if not FAST:
    assert report_raw["auc"] < report["auc"]
    assert abs(dark["per patch"] - dark["dataset only"]) < 0.05

# %% [markdown]
# ## Exercise 3 — global average pooling instead of global max pooling
#
# The question is "is there a small lesion *anywhere*?". A lesion covers a few pixels of
# the 8×8 last feature map; the maximum reports the strongest detector response wherever
# it is, while the average dilutes one strong response with 63 quiet ones — and adds up
# the weak responses of vessels everywhere. Max pooling is the natural "anywhere"
# operator (it is a logical OR); averaging suits "how much of the image shows X". Measured
# (full mode): test AUC 0.976 with max, 0.962 with average pooling.

# %%
def fit_like_train_detector(model, d):
    """train_detector's recipe, for a model we built ourselves."""
    opt = optim.Adam(model.parameters(), lr=0.002)
    model.fit(*d["train"], loss=losses.SoftmaxCrossEntropy(class_weights=class_weights(d["train"][1])),
              optimizer=opt, epochs=EPOCHS, batch_size=64, validation_data=d["val"], seed=SEED,
              scheduler=optim.CosineLR(opt, T_max=EPOCHS), verbose=False,
              augment=transforms.RandomFlip(horizontal=True, vertical=True),
              callbacks=[tc.EarlyStopping(monitor="val_loss", patience=5, restore_best=True)])
    return model


avg_model = lesion_cnn(rng=SEED)
k = next(i for i, layer in enumerate(avg_model.layers) if isinstance(layer, layers.MaxPool2D)
         and layer.kernel_size == (8, 8))
avg_model.layers[k] = layers.AvgPool2D(8)                        # the copy: only that layer changes
fit_like_train_detector(avg_model, data)
report_avg, _, _ = evaluate(avg_model, data)
print(f"Exercise 3: test AUC with global max pooling {report['auc']:.4f}, with global average {report_avg['auc']:.4f}")
if not FAST:
    assert report_avg["auc"] < report["auc"]

# %% [markdown]
# ## Exercise 4 — a rarer disease: 5 % prevalence
#
# With 1 lesion patch in 20, the unweighted loss is dominated by healthy patches; the
# network's probabilities lean towards "healthy" and at threshold 0.5 many lesions are
# missed. Class weights (here 0.53 and 10) give both classes the same total weight and
# move the operating point back. The AUC — the ranking — changes much less: the fix is
# mostly about *where* to cut. Measured (full mode), at threshold 0.5: without weights
# sensitivity 0.70 and specificity 1.000 (no false alarm among 950 healthy test patches);
# with weights 0.80 and 0.944 — more lesions found, more false alarms (53 instead of 0).
# AUC 0.957 without and 0.947 with weights: the ranking is about as good (the weighted
# run even a little worse), so a threshold chosen on validation data would do most of
# what the weights do.

# %%
rare = make_data(positive_fraction=0.05)
results = {}
for imbalance in (None, "weights"):
    m, _ = train_detector(*rare["train"], *rare["val"], epochs=EPOCHS, imbalance=imbalance, seed=SEED)
    results[imbalance] = evaluate(m, rare)[0]
    print(f"Exercise 4: 5 % lesions, imbalance={imbalance!s:8s}: sensitivity at 0.5 "
          f"{results[imbalance]['sensitivity']:.2f}, specificity {results[imbalance]['specificity']:.3f}, "
          f"AUC {results[imbalance]['auc']:.4f}")
print("class weights:", class_weights(rare["train"][1]))
if not FAST:
    assert results["weights"]["sensitivity"] > results[None]["sensitivity"]
    assert abs(results["weights"]["auc"] - results[None]["auc"]) < 0.05

# %% [markdown]
# ## Exercise 5 — smaller, shallower spots
#
# Instead of copying `tinycnn/datasets/retina.py` we change its two module constants for
# the duration of a `with` block (`retinal_lesions` reads them at call time), then put them
# back. The spots get smaller (radius 1–2 px instead of 1–3) and shallower step by step.
# Measured (full mode), test AUC by depth range: 0.30–0.60 (the default depth): 0.972;
# 0.20–0.40: 0.886; 0.15–0.30: 0.759; 0.08–0.15: 0.552; 0.04–0.08: 0.566 (chance is 0.5;
# the last two differ by less than the test set's noise, about ±0.02).
# With 1–2 px spots the AUC falls below 0.9 at depths of 20–40 % of the local brightness;
# once a spot removes less than about a fifth of it, it is no darker than the vessels'
# texture and the patch's noise, and the detector is close to guessing.

# %%
@contextmanager
def spots(radius, depth):
    """Temporarily change the simulated lesions' size and depth."""
    saved = retina_module.SPOT_RADIUS, retina_module.SPOT_DEPTH
    retina_module.SPOT_RADIUS, retina_module.SPOT_DEPTH = radius, depth
    try:
        yield
    finally:
        retina_module.SPOT_RADIUS, retina_module.SPOT_DEPTH = saved


depths = ([(0.30, 0.60), (0.08, 0.15)] if FAST else
          [(0.30, 0.60), (0.20, 0.40), (0.15, 0.30), (0.08, 0.15), (0.04, 0.08)])
aucs = []
for depth in depths:
    with spots((1.0, 2.0), depth):
        d = make_data()
    m, _ = train_detector(*d["train"], *d["val"], epochs=EPOCHS, seed=SEED)
    aucs.append(evaluate(m, d)[0]["auc"])
    print(f"Exercise 5: radius 1–2 px, depth {depth[0]:.2f}–{depth[1]:.2f}: test AUC {aucs[-1]:.4f}")
assert retina_module.SPOT_DEPTH == (0.30, 0.60)             # the module is as before
if not FAST:
    assert aucs[0] > 0.9 > aucs[-1]

fig, ax = plt.subplots(figsize=(6.5, 4))
ax.plot([f"{a:.2f}–{b:.2f}" for a, b in depths], aucs, "o-")
ax.axhline(0.9, color="grey", ls=":", label="AUC 0.9")
ax.set_xlabel("spot depth (fraction of local brightness removed)")
ax.set_ylabel("test AUC")
ax.set_title("lesion_cnn on smaller (1–2 px), shallower spots")
ax.legend()
show(fig, "08_solution_depth")
