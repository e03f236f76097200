"""MedMNIST ``.npz`` files (PneumoniaMNIST, BreastMNIST, RetinaMNIST, ...) that you
downloaded yourself from https://medmnist.com (tinycnn never downloads anything).

A MedMNIST file holds six arrays::

    train_images (N, S, S) or (N, S, S, 3) uint8      train_labels (N, 1) uint8
    val_images   ...                                  val_labels   ...
    test_images  ...                                  test_labels  ...

:func:`load_medmnist` turns each split into NCHW float32 images in [0, 1] and ``(N,)``
int64 labels. Multi-label sets (ChestMNIST, labels ``(N, 14)``) are rejected: tinycnn's
losses expect one class per image.
"""
from pathlib import Path

import numpy as np

__all__ = ["load_medmnist", "SPLITS"]

SPLITS = ("train", "val", "test")
LUMA = np.array([0.299, 0.587, 0.114])


def _images(a, name, path, grayscale, raw):
    if a.ndim == 3:                              # (N, S, S) grayscale
        x = a[:, None, :, :]
    elif a.ndim == 4 and a.shape[-1] == 3:       # (N, S, S, 3) RGB, channels last
        x = np.moveaxis(a, -1, 1)
        if grayscale:
            # luma (ITU-R BT.601): how bright the pixel looks to a human eye
            x = np.tensordot(LUMA, x.astype(np.float64), axes=([0], [1]))[:, None]
            x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    else:
        raise ValueError(
            f"load_medmnist: {path}: {name} has shape {a.shape}; expected (N, S, S) grayscale "
            "or (N, S, S, 3) RGB"
        )
    if a.dtype != np.uint8:
        raise ValueError(f"load_medmnist: {path}: {name} has dtype {a.dtype}; expected uint8")
    x = np.ascontiguousarray(x)
    return x if raw else x.astype(np.float32) / np.float32(255.0)


def _labels(a, name, path, n):
    if a.ndim == 2 and a.shape[1] > 1:
        raise ValueError(
            f"load_medmnist: {path}: {name} has shape {a.shape}, i.e. {a.shape[1]} labels per "
            "image (multi-label, like ChestMNIST); tinycnn's classifiers need one class per "
            "image, expected (N, 1) or (N,)"
        )
    if a.ndim not in (1, 2):
        raise ValueError(f"load_medmnist: {path}: {name} has shape {a.shape}; expected (N, 1)")
    y = a.reshape(-1)
    if len(y) != n:
        raise ValueError(f"load_medmnist: {path}: {name} holds {len(y)} labels for {n} images")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ValueError(f"load_medmnist: {path}: {name} must hold non-negative integer classes")
    return y.astype(np.int64)


def load_medmnist(npz_path, grayscale=False, raw=False):
    """Load a MedMNIST ``.npz`` file into ``{"train": (x, y), "val": (x, y), "test": (x, y)}``.

    x is ``(N, C, S, S)`` float32 in [0, 1] (uint8 if ``raw=True``) with C = 1 for
    grayscale sets and C = 3 for RGB ones, unless ``grayscale=True`` converts RGB to luma
    ``0.299 R + 0.587 G + 0.114 B``. y is ``(N,)`` int64. Splits missing from the file are
    left out of the dict; a split with images but no labels (or the reverse) is an error.
    """
    path = Path(npz_path)
    if not path.is_file():
        raise FileNotFoundError(f"load_medmnist: no such file: {path}")
    try:
        f = np.load(path, allow_pickle=False)
    except (ValueError, OSError):
        # NumPy's own message would suggest allow_pickle=True: never do that with a data file
        raise ValueError(f"load_medmnist: {path} is not a MedMNIST .npz archive of plain arrays "
                         "(NumPy could not read it as one)") from None
    if not hasattr(f, "files"):
        raise ValueError(f"load_medmnist: {path} holds a single array, expected a MedMNIST .npz archive")
    with f:
        keys = set(f.files)
        out = {}
        for split in SPLITS:
            ki, kl = f"{split}_images", f"{split}_labels"
            if ki not in keys and kl not in keys:
                continue
            if ki not in keys or kl not in keys:
                missing = ki if ki not in keys else kl
                raise ValueError(f"load_medmnist: {path} has {split} data but no {missing!r} array")
            try:
                images, labels = f[ki], f[kl]
            except ValueError:            # e.g. an object array, which only pickle could read
                raise ValueError(f"load_medmnist: {path}: {ki!r} or {kl!r} is not a plain numeric "
                                 "array") from None
            x = _images(images, ki, path, grayscale, raw)
            out[split] = (x, _labels(labels, kl, path, len(x)))
    if not out:
        raise ValueError(
            f"load_medmnist: {path} holds none of the MedMNIST arrays "
            f"(train_images, train_labels, val_images, ...); found {sorted(keys)}"
        )
    return out
