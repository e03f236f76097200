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
# # Tutorial 08 — Medical imaging: a case study (coming soon)
#
# **This tutorial is a placeholder.** Its own issue will fill it with a complete case
# study; until then it runs, shows the real images the case study starts from, and lists
# what it will cover.
#
# **What it will cover**
#
# 1. The task: finding *microaneurysms* — the earliest visible sign of diabetic
#    retinopathy — in retinal fundus photographs. They are tiny, round, dark dots; blood
#    vessels are dark too, which is what makes the task hard for simple rules.
# 2. The data: patches from a real fundus photograph shipped with tinycnn, with simulated
#    lesions (`tinycnn.datasets.retinal_lesions`), and how to plug in real MedMNIST files
#    (`tinycnn.datasets.load_medmnist`).
# 3. Baselines first: the darkest-pixel rule and a hand-made blob detector, and why a small
#    CNN should beat them.
# 4. Class imbalance (lesions are rare): class weights, balanced minibatches, and which
#    metrics to trust — sensitivity, specificity, ROC AUC, not accuracy.
# 5. Honest evaluation: stratified splits, cross-validation, and what the model looks at.
#
# *For learning only: the lesions are simulated, and nothing here is fit for clinical use.*

# %%
import matplotlib.pyplot as plt

from _common import show
from tinycnn.datasets import load_microaneurysms, load_retina

retina = load_retina()                 # (512, 512) green channel, float32 in [0, 1]
crop = load_microaneurysms()           # (102, 102) real crop with two microaneurysms
assert retina.shape == (512, 512) and crop.shape == (102, 102)

fig, axes = plt.subplots(1, 2, figsize=(10, 5))
axes[0].imshow(retina, cmap="gray")
axes[0].set_title("fundus photograph (green channel)")
axes[1].imshow(crop, cmap="gray")
axes[1].set_title("real microaneurysms: small dark dots")
for ax in axes:
    ax.axis("off")
show(fig, "08_preview")

print("Tutorial 08 is a placeholder: the medical-imaging case study is coming. "
      "See tutorials/README.md for the list of tutorials.")
