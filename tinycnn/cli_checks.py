"""Checks the command line runs *before* any slow work, so a mistake costs a second, not a
training run: is the output folder writable, is there enough data for a validation split,
does the model's input fit the data, is this file really a model (or an image)?

Each failed check raises :class:`UsageError` with one sentence that names what was given
and what was expected; :func:`tinycnn.cli.main` prints it as one line and exits with 2.
"""
import tempfile
from pathlib import Path

import numpy as np

from tinycnn.datasets.sampling import split_size
from tinycnn.safe_npz import NPZ, file_kind

__all__ = ["UsageError", "check_writable", "check_split_sizes", "check_input_shape",
           "check_model_path", "check_image_path", "decide", "shape_text"]

USAGE_PREDICT = "usage: tinycnn predict MODEL IMAGE"


class UsageError(Exception):
    """A user mistake: reported as one line, exit code 2."""


def shape_text(shape):
    """``(1, 28, 28)`` -> ``"1×28×28"``."""
    return "×".join(str(int(s)) for s in shape)


def check_writable(out):
    """``--out`` must be a folder we can create files in (or create); probe it now."""
    path = Path(out).absolute()
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"--out {out}: {probe} is a file, not a folder; choose another --out")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise UsageError(f"--out {out} is not writable ({e.strerror} in {probe}); "
                         "choose another --out") from None


def _second_counts(counts, fraction):
    """Per class, how many samples ``stratified_split(y, fraction)`` puts in its second part."""
    return np.array([split_size(n, fraction) for n in counts])


def check_split_sizes(y, limit, val_split, num_classes):
    """Would ``--limit`` then ``--val-split`` leave every class at least one training and one
    validation image? Same rounding as :func:`~tinycnn.datasets.stratified_split`."""
    counts = np.bincount(np.asarray(y), minlength=num_classes)

    def kept(lim):
        if not lim or lim >= len(y):
            return counts
        return counts - _second_counts(counts, 1 - lim / len(y))

    def fine(lim):
        k = kept(lim)
        v = _second_counts(k, val_split)
        return bool(np.all(v >= 1) and np.all(k - v >= 1))

    if fine(limit):
        return
    k = kept(limit)
    c = int(np.argmin(k))
    if not limit or limit >= len(y):
        raise UsageError(f"class {c} has only {k[c]} training images: too few to hold out a "
                         f"validation split with --val-split {val_split}")
    need = next((n for n in range(limit + 1, len(y) + 1) if fine(n)), None)
    advice = f"use --limit {need} or more" if need else "use more data"
    raise UsageError(f"--limit {limit} is too small to make a validation split: it keeps "
                     f"{k[c]} images of class {c}, and --val-split {val_split} needs at least "
                     f"one of each class on both sides; {advice}")


def check_input_shape(model, x, what):
    """The model's stored ``input_shape`` must equal the data's ``(C, H, W)``."""
    expected = model.meta.get("input_shape")
    got = tuple(np.shape(x)[1:])
    if expected and tuple(expected) != got:
        raise UsageError(f"the model expects images of {shape_text(expected)} (C×H×W) but "
                         f"{what} holds images of {shape_text(got)}")


def check_model_path(path, image=None):
    """MODEL must be an existing ``.npz`` archive; if it is an image and IMAGE is an
    archive, the two arguments were swapped -- say so."""
    p = Path(path)
    if p.is_dir():
        inside = p / "model.npz"
        hint = f"; pass the model file inside it: {inside}" if inside.is_file() else ""
        raise UsageError(f"MODEL {path} is a directory, not a model file{hint}")
    if not p.is_file():
        raise UsageError(f"no such model file: {path}")
    kind = file_kind(p)
    if kind == NPZ:
        return
    what = f"it is {kind or 'not a .npz archive'}"
    if image is not None and Path(image).is_file() and file_kind(image) == NPZ:
        raise UsageError(f"{path} is not a tinycnn model file ({what}) but {image} looks like "
                         f"one: the arguments look swapped ({USAGE_PREDICT})")
    raise UsageError(f"{path} is not a tinycnn model file ({what}); a model file is the "
                     "model.npz that `tinycnn train` or model.save() writes")


def check_image_path(path, usage=USAGE_PREDICT):
    """IMAGE must be an existing file, not a folder."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"IMAGE {path} is a directory, not an image file ({usage})")
    if not p.is_file():
        raise UsageError(f"no such image file: {path}")
    if file_kind(p) == NPZ:
        raise UsageError(f"IMAGE {path} is a .npz archive (a model or a dataset?), not an image; "
                         f"expected a PNG, JPEG or .npy file ({usage})")


def decide(model, probs):
    """Class indices from probabilities ``(N, K)``, by the same rule in evaluate and predict.

    A binary model with a stored ``meta["threshold"]`` (chosen on validation data when it
    was trained) calls class 1 when its positive score ``>= threshold``; a single sigmoid
    output uses 0.5; otherwise the most probable class wins. Returns ``(classes, threshold)``
    with ``threshold=None`` for argmax.
    """
    probs = np.asarray(probs)
    if probs.shape[1] == 1 or (probs.shape[1] == 2 and "threshold" in model.meta):
        t = float(model.meta.get("threshold", 0.5))
        return (probs[:, -1] >= t).astype(np.int64), t
    return probs.argmax(axis=1).astype(np.int64), None

