"""Datasets that work offline: real images shipped with tinycnn, readers for files you
downloaded yourself, a synthetic lesion task, and index helpers for splits and batches.

=========================  ==================================================
``load_mnist5k``           5,000 real MNIST digits, 4,000 / 1,000 split
``load_mnist_idx``         MNIST / Fashion-MNIST IDX files (plain or .gz)
``load_medmnist``          MedMNIST ``.npz`` files (PneumoniaMNIST, ...)
``load_image``             one PNG/JPEG/... or ``.npy`` image as CHW floats
``load_retina``            a real fundus photograph (green channel)
``load_microaneurysms``    a real fundus crop with microaneurysms
``retinal_lesions``        synthetic microaneurysm-detection patches
``stratified_split``       two-way split keeping class shares
``stratified_kfold``       k-fold cross-validation indices, stratified
``balanced_batches``       minibatches with every class equally represented
=========================  ==================================================
"""
from tinycnn.datasets.images import load_image
from tinycnn.datasets.medmnist import load_medmnist
from tinycnn.datasets.mnist import load_mnist5k, load_mnist_idx
from tinycnn.datasets.retina import load_microaneurysms, load_retina, retinal_lesions
from tinycnn.datasets.sampling import balanced_batches, stratified_kfold, stratified_split

__all__ = [
    "load_mnist5k", "load_mnist_idx", "load_medmnist", "load_image",
    "load_retina", "load_microaneurysms", "retinal_lesions",
    "stratified_split", "stratified_kfold", "balanced_batches",
]
