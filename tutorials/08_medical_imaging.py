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
# # Tutorial 08 — Medical imaging: finding microaneurysms in retinal photographs
#
# > **For learning only.** The lesions here are simulated and the models are tiny. Nothing
# > in this tutorial is a medical device or fit for clinical use; real screening systems
# > need large, representative, expert-labelled data, external validation and regulatory
# > approval.
#
# Diabetic retinopathy is a leading cause of blindness, and its earliest visible sign is the
# **microaneurysm**: a tiny bulge in a capillary wall that shows up in the green channel of a
# fundus photograph as a small, round, dark dot. Screening programmes photograph millions of
# eyes a year, and CNNs now help grade them. This tutorial walks the whole workflow on a
# small, honest stand-in for that task:
#
# 1. **load** patches of a real fundus photograph with simulated microaneurysms, and look
#    at real ones;
# 2. **preprocess**: grayscale, scaling, translation, normalisation;
# 3. **baselines first**: why accuracy misleads at 20 % prevalence, and why "the patch has
#    a very dark pixel" is not enough;
# 4. **build** a small CNN (5,954 parameters) and **train** it with class weights (or a
#    balanced sampler) and early stopping;
# 5. **evaluate**: ROC curve and AUC, a threshold chosen on *validation* data, the
#    confusion matrix, sensitivity and specificity, and 5-fold cross-validation;
# 6. **explain**: saliency maps and Grad-CAM, checked against where the lesions really are,
#    and a sanity check on a real crop with real microaneurysms;
# 7. the same pipeline on a real dataset you download yourself (PneumoniaMNIST).
#
# Full mode trains on 4,000 patches (about a minute of CPU time on a 2-core machine, half
# of it the cross-validation; four minutes of wall time while other jobs kept the machine
# busy); `TINYCNN_FAST=1` shrinks everything to a few seconds for the test suite.
# The same recipe runs from the command line: `python -m tinycnn train --dataset lesions`.

# %%
import os

# the matrices here are small; OpenBLAS threads would mostly wait for each other (see 07)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time
from pathlib import Path

import numpy as np
import matplotlib.pyplot as plt

from tinycnn.tutorial_helpers import FAST, show
import tinycnn as tc
from tinycnn import losses, metrics, optim, transforms, viz
from tinycnn.datasets import (balanced_batches, load_medmnist, load_microaneurysms, load_retina,
                              retinal_lesions, stratified_split)
from tinycnn.lesions_job import (class_weights, darkest_pixel_score, standardize_patches,
                                 train_detector)
from tinycnn.models import lesion_cnn
from tinycnn.validation import binary_report, cross_validate, positive_scores

np.set_printoptions(precision=4, suppress=True, linewidth=100)
print("tinycnn", tc.__version__, "| backend:", tc.get_backend(), "| fast mode:", FAST)
T_START = time.perf_counter()

# %% [markdown]
# ## 1. The data
#
# ### Real microaneurysms
#
# tinycnn ships a real fundus photograph (green channel, 512×512, scikit-image's public
# domain sample) and a real 102×102 crop with two microaneurysms next to vessels. Look at
# the crop first: the lesions are a few pixels across and not much darker than the vessels.

# %%
retina = load_retina()                 # (512, 512) float32 in [0, 1]
crop = load_microaneurysms()           # (102, 102) real crop, lesions near (22, 16) and (71, 49)
REAL_MA = [(22, 16), (71, 49)]
assert retina.shape == (512, 512) and crop.shape == (102, 102)

fig, axes = plt.subplots(1, 2, figsize=(10, 5))
axes[0].imshow(retina, cmap="gray")
axes[0].set_title("fundus photograph (green channel)")
axes[1].imshow(crop, cmap="gray")
for r, c in REAL_MA:
    axes[1].add_patch(plt.Circle((c, r), 6, fill=False, color="lime", lw=1.5))
axes[1].set_title("real microaneurysms (circled)")
for ax in axes:
    ax.axis("off")
show(fig, "08_real_images")

# %% [markdown]
# ### A simulated screening set
#
# `retinal_lesions(n)` cuts `n` random 32×32 windows out of the real photograph (rotated
# and mirrored at random), paints 1–3 dark round spots with a Gaussian profile
# (radius 1–3 px, random depth) into 20 % of them, then changes each patch's brightness,
# contrast and noise. `return_spots=True` also gives where each spot was painted — ground
# truth we will use to check what the network looks at.
#
# We split **once, stratified**, into test (25 %), validation (20 % of the rest) and
# training sets. The test set is touched only at the end.

# %%
N = 600 if FAST else 4000
SEED = 0
x_raw, y, spots = retinal_lesions(N, size=32, positive_fraction=0.2, seed=SEED, return_spots=True)
rest, test_idx = stratified_split(y, 0.25, seed=SEED)
fit_part, val_part = stratified_split(y[rest], 0.2, seed=SEED + 1)
train_idx, val_idx = rest[fit_part], rest[val_part]
for name, idx in (("train", train_idx), ("validation", val_idx), ("test", test_idx)):
    print(f"{name:>10}: {len(idx):5d} patches, {y[idx].mean():.1%} with lesions")
assert abs(y.mean() - 0.2) < 1e-9 and all(abs(y[i].mean() - 0.2) < 0.01 for i in (train_idx, val_idx, test_idx))
assert len(np.intersect1d(train_idx, test_idx)) == len(np.intersect1d(val_idx, test_idx)) == 0

show_idx = np.r_[np.flatnonzero(y == 1)[:8], np.flatnonzero(y == 0)[:8]]
fig = viz.plot_images(x_raw[show_idx], labels=["lesion" if y[i] else "healthy" for i in show_idx],
                      max_images=16, ncols=8)
for ax, i in zip(fig.axes, show_idx):
    for cy, cx, rad in spots[i]:
        ax.add_patch(plt.Circle((cx, cy), rad + 2, fill=False, color="lime", lw=1))
show(fig, "08_patches")

# %% [markdown]
# ## 2. Preprocessing
#
# **Grayscale.** Colour fundus photographs are RGB; lesions and vessels have the most
# contrast in the green channel, which is why `load_retina` keeps only green. For RGB data
# (e.g. RetinaMNIST) `transforms.Grayscale()` computes luma $0.299R + 0.587G + 0.114B$;
# a one-channel image passes through unchanged.

# %%
rgb = np.random.default_rng(0).uniform(size=(2, 3, 32, 32)).astype(np.float32)
np.testing.assert_allclose(transforms.Grayscale()(rgb)[:, 0],
                           0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2], rtol=1e-6)
np.testing.assert_array_equal(transforms.Grayscale()(x_raw[:2]), x_raw[:2])

# %% [markdown]
# **Scaling.** Two kinds: intensities (8-bit pixels 0–255 become floats in $[0, 1]$) and
# size (`transforms.Resize`, bilinear — e.g. MedMNIST's 28×28 images to the 32×32 our
# network expects, section 7).

# %%
np.testing.assert_allclose(load_retina(raw=True) / 255.0, retina, atol=1e-6)
print("resized patch:", transforms.Resize(48)(x_raw[:1]).shape)

# %% [markdown]
# **Translation.** A lesion can be anywhere in the patch, and moving it does not change the
# diagnosis. `transforms.Translate(dy, dx)` shifts an image (it is also the building block
# of the `RandomShift` augmentation). Our network will end in a *global* max-pool, which
# makes it nearly blind to where in the patch the lesion is; we check that after training.

# %%
first_pos = int(np.flatnonzero(y == 1)[0])
moved = transforms.Translate(3, -2)(x_raw[first_pos])
np.testing.assert_array_equal(moved[0, 3:, :-2], x_raw[first_pos, 0, :-3, 2:])

# %% [markdown]
# **Normalisation**, in two steps:
#
# 1. *per patch*: $\tilde x = (x - \mu_n)/\sigma_n$ with each patch's own mean and standard
#    deviation. Photographs differ in exposure and contrast; a lesion is darker than *its*
#    surroundings, not darker than a fixed grey level. This removes the random gain and
#    contrast of each patch exactly (an affine change of a patch does not change $\tilde x$);
# 2. *per dataset*: `Normalize.fit` on the **training set only**, reused for validation,
#    test and new images — statistics of the test set must not leak into training.

# %%
x_std = standardize_patches(x_raw)
np.testing.assert_allclose(standardize_patches(1.3 * x_raw[:5] + 0.1), x_std[:5], atol=1e-4)
norm = transforms.Normalize.fit(x_std[train_idx])
x = norm(x_std).astype(np.float32)
x_train, y_train = x[train_idx], y[train_idx]
x_val, y_val = x[val_idx], y[val_idx]
x_test, y_test = x[test_idx], y[test_idx]
print(f"after normalisation: train mean {x_train.mean():+.4f}, std {x_train.std():.4f}")
assert abs(x_train.mean()) < 1e-3 and abs(x_train.std() - 1) < 1e-3

# %% [markdown]
# ## 3. Baselines first
#
# ### Accuracy misleads
#
# Only 20 % of the patches have lesions. A "model" that always answers *healthy* is right
# 80 % of the time — and finds no lesion at all. Sensitivity (the share of sick patients
# found) and specificity (the share of healthy ones cleared) tell the truth; so does the
# ROC AUC, which is 0.5 for any constant score.

# %%
always_healthy = np.zeros_like(y_test)
acc = metrics.accuracy(y_test, always_healthy)
sens, spec = metrics.sensitivity_specificity(y_test, always_healthy)
auc_const = metrics.roc_auc(y_test, np.zeros(len(y_test)))
print(f"always 'healthy': accuracy {acc:.1%}, sensitivity {sens:.0%}, specificity {spec:.0%}, AUC {auc_const}")
assert abs(acc - 0.8) < 0.01 and sens == 0.0 and spec == 1.0 and auc_const == 0.5

# %% [markdown]
# ### AUC, by hand
#
# The AUC is the probability that a random positive scores higher than a random negative
# (ties count ½) — the Mann–Whitney statistic. We will rank patches by a score, so check
# `metrics.roc_auc` against that definition, counting all positive–negative pairs.
#
# ### The darkest-pixel rule
#
# "A microaneurysm is a dark dot" suggests a rule: score each (normalised) patch by its
# darkest pixel. It does better than chance — and much worse than we need, because vessels
# are dark too.

# %%
def auc_by_pairs(labels, scores):
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


dark_test = darkest_pixel_score(x_test)
auc_dark = metrics.roc_auc(y_test, dark_test)
assert np.isclose(auc_dark, auc_by_pairs(y_test, dark_test))
print(f"darkest-pixel baseline: test AUC {auc_dark:.3f}")
assert 0.55 < auc_dark <= 0.85

# %% [markdown]
# ## 4. A small CNN, trained for a rare class
#
# `lesion_cnn()` is three 3×3 conv + ReLU blocks (8, 16, 32 filters) with two 2×2 max-pools,
# a **global max-pool** over the last 8×8 map and one dense layer to two classes. Each
# output of the last conv sees an 18×18 window — wider than any lesion here, so a unit can
# see a whole dot and its surroundings (tutorial 11 measures how small a window would still
# do) — and the global max asks "did the detector fire *anywhere*?".

# %%
model = lesion_cnn(rng=SEED)
print(model.summary())
assert sum(p.size for p in model.parameters()) == 5954

# %% [markdown]
# ### Handling the imbalance
#
# With 4 healthy patches for each lesion, a network minimises the plain cross-entropy
# fastest by leaning towards "healthy". Two standard fixes:
#
# * **class weights** in the loss: $L = \sum_n a_{t_n}(-\log p_{n,t_n}) / \sum_n a_{t_n}$ with
#   $a_k = N/(K\,n_k)$ — here 0.625 for healthy and 2.5 for lesion, so both classes carry
#   the same total weight;
# * a **balanced sampler**: minibatches drawn half from each class
#   (`datasets.balanced_batches`, passed to `fit(sampler=...)`), the rare class repeated.

# %%
w = class_weights(y_train)
print("class weights:", w)
assert np.isclose(w[0] * (y_train == 0).sum(), w[1] * (y_train == 1).sum())
batch = next(iter(balanced_batches(y_train, 64, rng=0)))
print("a balanced batch of 64 holds", np.bincount(y_train[batch]).tolist(), "healthy/lesion patches")
assert np.bincount(y_train[batch]).tolist() == [32, 32]

# %% [markdown]
# ### Training with early stopping
#
# `train_detector` (in `tinycnn/lesions_job.py`, a page of code worth reading) trains
# `lesion_cnn` with Adam (lr 0.002, cosine-annealed), class-weighted cross-entropy, random
# flips (a fundus patch has no up or left) and `EarlyStopping(patience=5,
# restore_best=True)` on the validation loss: training stops when the validation loss has
# not improved for 5 epochs, and the weights of the best epoch are put back.

# %%
EPOCHS = 3 if FAST else 25
tc.warmup()
t0 = time.perf_counter()
model, history = train_detector(x_train, y_train, x_val, y_val, epochs=EPOCHS, imbalance="weights",
                                seed=SEED)
train_seconds = time.perf_counter() - t0
h = history.history
best = int(np.argmin(h["val_loss"])) + 1
print(f"trained {len(history.epoch)} epochs in {train_seconds:.1f} s; best validation loss "
      f"{min(h['val_loss']):.4f} at epoch {best}")
assert h["loss"][-1] < h["loss"][0]
show(viz.plot_history(history), "08_history")

# %% [markdown]
# ## 5. Evaluation
#
# ### Threshold on validation data, metrics on test data
#
# The network outputs $P(\text{lesion})$; a decision needs a threshold. Choosing it on the
# test set would flatter the result, so choose it on the **validation** set — here by
# Youden's $J$ = sensitivity + specificity − 1, the ROC point farthest above the
# diagonal — then report the test set at that threshold. (A screening programme would
# rather fix the sensitivity it needs, say 90 %, and read off the threshold.)

# %%
p_val = positive_scores(model.predict(x_val))
p_test = positive_scores(model.predict(x_test))
threshold = metrics.best_threshold(y_val, p_val, criterion="youden")
report = binary_report(y_test, p_test, threshold)
print(f"test AUC {report['auc']:.4f} (darkest pixel: {auc_dark:.4f})")
print(f"threshold {threshold:.3f} (chosen on validation): sensitivity {report['sensitivity']:.3f}, "
      f"specificity {report['specificity']:.3f}, accuracy {report['accuracy']:.3f}")
print(report["confusion"])
assert np.isclose(report["auc"], auc_by_pairs(y_test, p_test))
assert report["auc"] > (0.6 if FAST else auc_dark + 0.1)
if not FAST:
    assert report["auc"] >= 0.95, report["auc"]

fpr, tpr, _ = metrics.roc_curve(y_test, p_test)
fig = viz.plot_roc(fpr, tpr, auc=report["auc"], label="lesion_cnn",
                   point=(1 - report["specificity"], report["sensitivity"]), threshold=threshold)
fpr_d, tpr_d, _ = metrics.roc_curve(y_test, dark_test)
fig.axes[0].plot(fpr_d, tpr_d, "--", label=f"darkest pixel (AUC = {auc_dark:.3f})")
fig.axes[0].legend(loc="lower right", fontsize=8)
show(fig, "08_roc")
show(viz.plot_confusion_matrix(report["confusion"], class_names=["healthy", "lesion"]), "08_confusion")

# %% [markdown]
# ### What the imbalance handling changes
#
# Train the same network without any imbalance handling and with the balanced sampler.
# Compare them at the default threshold 0.5 and by AUC: the fixes mostly move the
# *operating point* (more lesions found at 0.5, at the price of more false alarms); the
# ranking quality (AUC) changes much less. Choosing the threshold on validation data
# makes up for much of the difference — which is why you should always do it.

# %%
for imbalance in (None, "sampler"):
    m, _ = train_detector(x_train, y_train, x_val, y_val, epochs=EPOCHS, imbalance=imbalance, seed=SEED)
    p = positive_scores(m.predict(x_test))
    r05 = binary_report(y_test, p, 0.5)
    r_val = binary_report(y_test, p, metrics.best_threshold(y_val, positive_scores(m.predict(x_val))))
    print(f"{str(imbalance):>8}: AUC {r05['auc']:.4f} | at 0.5: sensitivity {r05['sensitivity']:.3f}, "
          f"specificity {r05['specificity']:.3f} | at the validation threshold: "
          f"sensitivity {r_val['sensitivity']:.3f}, specificity {r_val['specificity']:.3f}")
r05 = binary_report(y_test, p_test, 0.5)
print(f"{'weights':>8}: AUC {r05['auc']:.4f} | at 0.5: sensitivity {r05['sensitivity']:.3f}, "
      f"specificity {r05['specificity']:.3f}")

# %% [markdown]
# ### 5-fold cross-validation
#
# One test set of 1,000 patches holds 200 lesions; another random split would give a
# somewhat different AUC. Cross-validation measures that spread. We run it on the
# development data (training + validation, never the test set): `cross_validate` deals
# the patches into 5 stratified folds, trains a fresh model on 4 folds — fitting the
# dataset normalisation on those only (`prepare=`) and holding out 20 % of them for early
# stopping (`val_fraction=`) — and scores the fifth. The result is mean ± standard
# deviation over the folds.

# %%
dev_idx = np.sort(np.r_[train_idx, val_idx])
x_dev, y_dev = x_std[dev_idx], y[dev_idx]          # standardised per patch, not yet normalised


def build(fold):
    m = lesion_cnn(rng=fold)
    opt = optim.Adam(m.parameters(), lr=2e-3)
    return m, {"optimizer": opt, "scheduler": optim.CosineLR(opt, T_max=EPOCHS)}


t0 = time.perf_counter()
cv = cross_validate(build, x_dev, y_dev, k=5, prepare=transforms.Normalize.fit, val_fraction=0.2,
                    seed=SEED, verbose=True, loss=losses.SoftmaxCrossEntropy(class_weights=w),
                    epochs=EPOCHS, batch_size=64, augment=transforms.RandomFlip(True, True),
                    callbacks=[tc.EarlyStopping(patience=5)])
cv_seconds = time.perf_counter() - t0
print(f"5-fold CV AUC: {cv} in {cv_seconds:.0f} s; fold scores {np.round(cv.scores, 4).tolist()}")
assert len(cv.scores) == 5 and np.isclose(cv.mean, np.mean(cv.scores))
assert np.isclose(cv.std, np.std(cv.scores, ddof=1))
for _, fold_test in cv.folds:                      # every fold keeps the 20 % prevalence
    assert abs(y_dev[fold_test].mean() - 0.2) < 0.02
if not FAST:
    assert cv.mean - 2 * cv.std > 0.9

# %% [markdown]
# ## 6. What does the network look at?
#
# An AUC says *how well*, not *why*. A network can score well for the wrong reason (in
# real studies: rulers in skin photos, hospital tags on X-rays). Two ways to ask it,
# both using tinycnn's own backward pass:
#
# * **saliency** $S_{h,w} = |\partial s/\partial x_{h,w}|$, with $s$ the lesion logit:
#   which pixels would change the score most;
# * **Grad-CAM** on the last conv block: feature maps $A_f$ weighted by their average
#   gradient $\alpha_f$, $\mathrm{ReLU}(\sum_f \alpha_f A_f)$, upsampled from 8×8 to 32×32.
#
# Here we know where the lesions are, so we can *check* the explanations: how often does a
# map's brightest pixel fall within 4 px of a painted spot, compared with a random pixel?

# %%
def near_spot(i, radius=4.0):
    yy, xx = np.mgrid[:32, :32]
    return np.any([np.hypot(yy - cy, xx - cx) <= radius for cy, cx, _ in spots[i]], axis=0)


pos_test = test_idx[y[test_idx] == 1]
n_check = min(len(pos_test), 40 if FAST else 200)
hits = {"saliency": [], "Grad-CAM": []}
chance = []
for i in pos_test[:n_check]:
    xi = x[i]
    maps = {"saliency": viz.saliency_map(model, xi, target_class=1),
            "Grad-CAM": viz.grad_cam(model, xi, target_class=1)}
    near = near_spot(i)
    for name, heat in maps.items():
        assert heat.shape == (32, 32) and heat.min() >= 0
        hits[name].append(near[np.unravel_index(np.argmax(heat), heat.shape)])
    chance.append(near.mean())
rates = {name: float(np.mean(v)) for name, v in hits.items()}
print(f"peak within 4 px of a lesion, over {n_check} test lesions: "
      + ", ".join(f"{k} {v:.0%}" for k, v in rates.items()) + f"; a random pixel: {np.mean(chance):.0%}")
if not FAST:
    assert rates["saliency"] > 4 * np.mean(chance)

for k, i in enumerate(pos_test[:3]):
    marks = [(cy, cx, rad) for cy, cx, rad in spots[i]]
    show(viz.plot_saliency(x_raw[i], viz.saliency_map(model, x[i], target_class=1),
                           title="saliency", marks=marks), f"08_saliency_{k}")
    show(viz.plot_saliency(x_raw[i], viz.grad_cam(model, x[i], target_class=1),
                           title="Grad-CAM", marks=marks), f"08_gradcam_{k}")

# %% [markdown]
# Saliency points at the lesions. Grad-CAM, on this network, does not: its peak lands near
# a lesion about as often as a random pixel would. Its last conv
# map is 8×8 (each cell covers 4×4 pixels), and the global max-pool sends the gradient
# to a single cell per channel, so averaging it into one weight $\alpha_f$ per channel
# throws away *where* the channel fired for the lesion: the map shows everywhere a useful
# channel is active, lesion or vessel. A variant that keeps the position — weight each
# activation by its own positive gradient, $\sum_f \mathrm{ReLU}(\partial s/\partial A_f)\odot A_f$
# (LayerCAM, Jiang et al. 2021) — can be written with the same forward and backward passes
# on the 16×16 output of the second conv block:

# %%
def layer_cam(model, xi, layer_index=4, target_class=1):
    model.eval()
    a = xi[None]
    for k, layer in enumerate(model.layers):
        a = layer.forward(a)
        if k == layer_index:
            A = a                                  # (1, F, h, w) activation we explain
    dy = np.zeros_like(a)
    dy[0, target_class] = 1.0                      # d score / d outputs
    for layer in reversed(model.layers[layer_index + 1:]):
        dy = layer.backward(dy)                    # now d score / d A
    model.clear_cache()
    model.zero_grad()
    model.train()
    cam = (np.maximum(dy[0], 0) * A[0]).sum(axis=0)
    cam = transforms.resize(cam.astype(np.float64), (32, 32))
    return cam / cam.max() if cam.max() > 0 else cam


hits_lc = []
for i in pos_test[:n_check]:
    heat = layer_cam(model, x[i])
    hits_lc.append(near_spot(i)[np.unravel_index(np.argmax(heat), heat.shape)])
rates["LayerCAM"] = float(np.mean(hits_lc))
print(f"LayerCAM on layer 4 (16×16): peak within 4 px of a lesion for {rates['LayerCAM']:.0%}")
show(viz.plot_saliency(x_raw[pos_test[0]], layer_cam(model, x[pos_test[0]]), title="LayerCAM",
                       marks=spots[pos_test[0]]), "08_layercam_0")

# %% [markdown]
# ### Translation, checked
#
# Shift test patches by a few pixels (only those whose spots stay well inside): the
# predicted probabilities barely move, as the global max-pool promised.

# %%
inside = [i for i in pos_test if all(6 <= cy <= 25 and 6 <= cx <= 25 for cy, cx, _ in spots[i])][:50]
shifted = transforms.Translate(3, -3, fill=0.0)(x[inside])    # 0 = the mean after normalisation
p_orig = positive_scores(model.predict(x[inside]))
p_shift = positive_scores(model.predict(shifted))
print(f"shift by (3, -3): mean |change in P(lesion)| = {np.abs(p_shift - p_orig).mean():.3f} "
      f"over {len(inside)} lesion patches")
if not FAST:
    assert np.abs(p_shift - p_orig).mean() < 0.1

# %% [markdown]
# ### A sanity check on real microaneurysms
#
# The network never saw a real lesion. Slide it over the real 102×102 crop: every 32×32
# window (step 2 px) is preprocessed exactly like the training patches and scored; each
# pixel's heat is the mean score of the windows covering it. If the simulation imitates
# the real thing, windows containing the two real microaneurysms should score high.
# Expect false alarms too: on real images vessels crossings and pigment also make dark,
# roundish spots.

# %%
STEP = 2
windows = np.lib.stride_tricks.sliding_window_view(crop, (32, 32))[::STEP, ::STEP]
R, C = windows.shape[:2]
p_win = positive_scores(model.predict(
    norm(standardize_patches(windows.reshape(-1, 1, 32, 32))).astype(np.float32))).reshape(R, C)
heat, count = np.zeros(crop.shape), np.zeros(crop.shape)
for a in range(R):
    for b in range(C):
        heat[a * STEP:a * STEP + 32, b * STEP:b * STEP + 32] += p_win[a, b]
        count[a * STEP:a * STEP + 32, b * STEP:b * STEP + 32] += 1
heat /= count
for r, c in REAL_MA:
    covers = np.array([[a * STEP + 3 <= r < a * STEP + 29 and b * STEP + 3 <= c < b * STEP + 29
                        for b in range(C)] for a in range(R)])
    print(f"real microaneurysm at ({r}, {c}): windows containing it score {p_win[covers].mean():.3f} "
          f"on average, the other windows {p_win[~covers].mean():.3f}; its pixel's heat is above "
          f"{(heat < heat[r, c]).mean():.0%} of the crop")
    if not FAST:
        assert p_win[covers].mean() > p_win[~covers].mean()
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
axes[0].imshow(crop, cmap="gray")
axes[1].imshow(crop, cmap="gray")
im = axes[1].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
for ax in axes:
    for r, c in REAL_MA:
        ax.add_patch(plt.Circle((c, r), 6, fill=False, color="lime", lw=1.5))
    ax.axis("off")
axes[0].set_title("real crop, microaneurysms circled")
axes[1].set_title("sliding detector: mean P(lesion)")
fig.colorbar(im, ax=axes[1], shrink=0.8)
show(fig, "08_real_crop_heat")

# %% [markdown]
# ## 7. The same pipeline on real data: PneumoniaMNIST
#
# [MedMNIST](https://medmnist.com) packages real medical images as small `.npz` files.
# Download `pneumoniamnist.npz` (chest X-rays, 28×28, label 1 = pneumonia, about 74 % of
# the training images — here the *healthy* class is the rare one) and put it next to this
# script, or point `TINYCNN_MEDMNIST` at it (BreastMNIST and RetinaMNIST files work too;
# RGB sets are converted to grayscale). tinycnn never downloads anything itself. This cell
# runs only when the file exists; from the command line the same data trains LeNet-5 with
# `python -m tinycnn train --dataset medmnist --data pneumoniamnist.npz`.

# %%
MEDMNIST = Path(os.environ.get("TINYCNN_MEDMNIST", "pneumoniamnist.npz"))
if MEDMNIST.is_file():
    splits = load_medmnist(MEDMNIST, grayscale=True)          # NCHW float32 in [0, 1]

    def prep(xs):                                             # scale to 32×32, standardise
        return standardize_patches(transforms.Resize(32)(xs)).astype(np.float32)

    (mx_tr, my_tr), (mx_va, my_va), (mx_te, my_te) = (splits[s] for s in ("train", "val", "test"))
    if len(np.unique(my_tr)) != 2:
        print(f"{MEDMNIST.name} has {len(np.unique(my_tr))} classes; this cell handles binary sets "
              "(PneumoniaMNIST, BreastMNIST) only")
    else:
        mnorm = transforms.Normalize.fit(prep(mx_tr))
        mx_tr, mx_va, mx_te = (mnorm(prep(a)).astype(np.float32) for a in (mx_tr, mx_va, mx_te))
        med_model, _ = train_detector(mx_tr, my_tr, mx_va, my_va, epochs=3 if FAST else 15, seed=SEED)
        t = metrics.best_threshold(my_va, positive_scores(med_model.predict(mx_va)))
        med = binary_report(my_te, positive_scores(med_model.predict(mx_te)), t)
        print(f"{MEDMNIST.name}: test AUC {med['auc']:.3f}, sensitivity {med['sensitivity']:.3f}, "
              f"specificity {med['specificity']:.3f} at the validation threshold {t:.3f}")
        assert 0.5 < med["auc"] <= 1.0
else:
    print(f"({MEDMNIST} not found: skipping the MedMNIST section)")

# %% [markdown]
# ## Summary
#
# * Look at the data and at real examples of what you want to find; split once,
#   stratified, and keep the test set for the end.
# * Preprocess with training-set statistics only; standardising each patch removes
#   exposure and contrast differences.
# * With 20 % prevalence, "always healthy" is 80 % accurate and useless: report
#   sensitivity, specificity and AUC, and beat a simple baseline (the darkest pixel).
# * Class weights or a balanced sampler keep the rare class from being ignored; early
#   stopping keeps the best validation epoch; choose the threshold on validation data.
# * Cross-validation turns one number into mean ± std.
# * Check explanations against ground truth: here saliency finds the lesions, Grad-CAM
#   (8×8 map, global max-pooling) does not, and LayerCAM on a finer map does.
# * A model trained on simulated lesions can still be fooled by real images; this is a
#   learning exercise, **not** a clinical tool.
#
# ## Exercises
#
# 1. Choose the threshold for 90 % sensitivity on the validation set instead of Youden's
#    J (hint: `metrics.roc_curve` returns the thresholds). What specificity do you get on
#    the test set?
# 2. Remove the per-patch standardisation (use only `Normalize.fit`). How much does the
#    test AUC drop? Why does the darkest-pixel baseline barely change?
# 3. Replace the global `MaxPool2D(8)` by `AvgPool2D(8)` in a copy of `lesion_cnn`. Which
#    pooling suits "is there a small lesion anywhere?", and why?
# 4. Train with `positive_fraction=0.05` (a rarer disease). What happens to the
#    sensitivity at threshold 0.5 with and without class weights? And to the AUC?
# 5. Make the task harder: generate data with smaller, shallower spots (edit
#    `SPOT_DEPTH` in a copy of `tinycnn/datasets/retina.py`) and find where the CNN's AUC
#    falls below 0.9.

# %%
print(f"tutorial 08 finished in {time.perf_counter() - T_START:.0f} s "
      f"(test AUC {report['auc']:.4f}, darkest pixel {auc_dark:.4f}, CV {cv})")
