"""Retinal fundus images shipped with tinycnn, and a synthetic lesion-detection task.

* :func:`load_retina` -- a real, normal fundus photograph (green channel, 512x512);
* :func:`load_microaneurysms` -- a real 102x102 crop showing true microaneurysms;
* :func:`retinal_lesions` -- patches cut from the real photograph, with simulated
  microaneurysms painted into the positives: a small, honest stand-in for a screening task.

Microaneurysms are the earliest visible sign of diabetic retinopathy: tiny (10-100 um)
bulges of capillary walls that show up in the green channel as small, round, dark dots.
The hard part for a detector is that blood vessels are dark too -- a rule like "the
patch contains a very dark pixel" fires on every vessel. Telling a *round* dot from a
*line* is a job for learned spatial filters, which is why this is a CNN task.

For learning only: the lesions are simulated, and nothing here is fit for clinical use.
Image credit: the ``retina`` and ``microaneurysms`` sample images of scikit-image
(public domain, CC0).
"""
import numpy as np

from tinycnn.datasets.mnist import DATA_DIR
from tinycnn.init import as_generator

__all__ = ["load_retina", "load_microaneurysms", "retinal_lesions", "fundus_mask"]

# How the simulation draws a sample (see retinal_lesions). Tuned so that the darkest-pixel
# baseline stays weak (AUC <= 0.85) while a small CNN can reach AUC >= 0.95.
SPOT_RADIUS = (1.0, 3.0)        # px, half width at half depth: sigma = radius / sqrt(2 ln 2)
SPOT_DEPTH = (0.30, 0.60)       # fraction of the local brightness a spot removes at its centre
GAIN = (0.75, 1.25)             # global brightness factor
CONTRAST = (0.7, 1.3)           # stretch around the patch mean
NOISE = (0.005, 0.02)           # std of additive Gaussian pixel noise (images in [0, 1])


def _load(name, raw):
    with np.load(DATA_DIR / name, allow_pickle=False) as f:
        image = f["image"]
    return image.copy() if raw else image.astype(np.float32) / np.float32(255.0)


def load_retina(raw=False):
    """The full fundus photograph, green channel: ``(512, 512)`` float32 in [0, 1]
    (uint8 if ``raw=True``). Outside the circular field of view the image is black."""
    return _load("retina_green_512.npz", raw)


def load_microaneurysms(raw=False):
    """A real ``(102, 102)`` fundus crop (float32 in [0, 1], uint8 if ``raw=True``) with
    two microaneurysms -- dark dots near (22, 16) and (71, 49) -- next to vessels. It
    shows what :func:`retinal_lesions` imitates."""
    return _load("microaneurysms_102.npz", raw)


def fundus_mask(image, threshold=0.06):
    """Boolean mask of the circular field of view, fitted as a disc.

    Pixels brighter than ``threshold`` mark the fundus; the disc has their centroid as
    centre and the radius of a circle of the same area. Returns ``(mask, (cy, cx), R)``.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.max() > 1.0:
        image = image / 255.0
    inside = image > threshold
    rows, cols = np.nonzero(inside)
    cy, cx = rows.mean(), cols.mean()
    R = np.sqrt(inside.sum() / np.pi)
    yy, xx = np.mgrid[:image.shape[0], :image.shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= R ** 2, (cy, cx), R


def _crop_corners(shape, size, centre, R, margin=4.0):
    """Top-left corners (r, c) of every size x size window lying inside the disc."""
    cy, cx = centre
    r = np.arange(shape[0] - size + 1)
    c = np.arange(shape[1] - size + 1)
    # farthest window pixel from the centre, per axis
    fy = np.maximum(np.abs(r - cy), np.abs(r + size - 1 - cy))
    fx = np.maximum(np.abs(c - cx), np.abs(c + size - 1 - cx))
    ok = fy[:, None] ** 2 + fx[None, :] ** 2 <= (R - margin) ** 2
    return np.argwhere(ok)


def _add_spot(patch, rng):
    """Darken ``patch`` in place with one Gaussian-profile round spot.

    patch *= 1 - depth * exp(-d^2 / (2 sigma^2)), d = distance to the spot centre, with
    sigma = radius / sqrt(2 ln 2), so the darkening has fallen to half its depth at ``radius``.
    Multiplicative, like absorption: the spot is as dark relative to its surroundings
    on a bright background as on a dim one.
    """
    size = patch.shape[0]
    radius = rng.uniform(*SPOT_RADIUS)
    sigma = radius / np.sqrt(2.0 * np.log(2.0))
    depth = rng.uniform(*SPOT_DEPTH)
    cy, cx = rng.uniform(3.0, size - 4.0, size=2)
    yy, xx = np.ogrid[:size, :size]
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    patch *= 1.0 - depth * np.exp(-d2 / (2.0 * sigma ** 2))
    return (cy, cx, radius)


def retinal_lesions(n, size=32, positive_fraction=0.2, seed=0, return_spots=False):
    """Synthetic lesion-detection data: ``n`` fundus patches, some with microaneurysms.

    Each sample is a ``size x size`` window cut at a random place inside the field of
    view of the real photograph (:func:`load_retina`), randomly rotated by a multiple of
    90 degrees and mirrored. Positives (exactly ``round(n * positive_fraction)`` of them,
    in random order) get 1-3 simulated microaneurysms: dark round spots with a Gaussian
    profile, radius 1-3 px, random depth. Then every patch gets a random brightness
    gain, a contrast stretch and Gaussian pixel noise, and is clipped to [0, 1].

    Returns ``(x, y)``: x ``(n, 1, size, size)`` float32 in [0, 1], y ``(n,)`` int64 (1 =
    lesion). With ``return_spots=True`` also a list, per sample, of ``(cy, cx, radius)``
    for each spot painted (empty for negatives) -- handy to check a saliency map.

    Deterministic: the same arguments give the same arrays.

    >>> x, y = retinal_lesions(100, seed=0)
    >>> x.shape, x.dtype, int(y.sum())
    ((100, 1, 32, 32), dtype('float32'), 20)
    """
    n, size = int(n), int(size)
    if n < 1:
        raise ValueError(f"retinal_lesions: n must be at least 1; got {n}")
    if not 8 <= size <= 256:
        raise ValueError(f"retinal_lesions: size must be in [8, 256]; got {size}")
    if not 0.0 <= positive_fraction <= 1.0:
        raise ValueError(f"retinal_lesions: positive_fraction must be in [0, 1]; got {positive_fraction}")
    rng = as_generator(seed)
    image = load_retina().astype(np.float64)
    _, centre, R = fundus_mask(image)
    corners = _crop_corners(image.shape, size, centre, R)

    y = np.zeros(n, dtype=np.int64)
    y[:int(round(n * positive_fraction))] = 1
    y = rng.permutation(y)
    x = np.empty((n, 1, size, size), dtype=np.float32)
    spots = []
    for i in range(n):
        r, c = corners[rng.integers(len(corners))]
        patch = np.rot90(image[r:r + size, c:c + size], k=rng.integers(4))
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        patch = patch.copy()
        painted = [_add_spot(patch, rng) for _ in range(rng.integers(1, 4))] if y[i] else []
        spots.append(painted)
        mean = patch.mean()
        patch = mean + (patch - mean) * rng.uniform(*CONTRAST)
        patch *= rng.uniform(*GAIN)
        patch += rng.normal(0.0, rng.uniform(*NOISE), size=patch.shape)
        x[i, 0] = np.clip(patch, 0.0, 1.0)
    return (x, y, spots) if return_spots else (x, y)
