"""The synthetic retinal-lesion task: real fundus background, simulated microaneurysms."""
import numpy as np
import pytest

from tinycnn.datasets import load_microaneurysms, load_retina, retinal_lesions
from tinycnn.datasets.retina import fundus_mask
from tinycnn.metrics import roc_auc


@pytest.fixture(scope="module")
def data():
    return retinal_lesions(1500, seed=11, return_spots=True)


def test_real_images_ship_with_the_package():
    retina = load_retina()
    assert retina.shape == (512, 512) and retina.dtype == np.float32 and retina.max() <= 1.0
    assert load_retina(raw=True).dtype == np.uint8
    crop = load_microaneurysms()
    assert crop.shape == (102, 102) and crop.dtype == np.float32
    # the two real microaneurysms are among the darkest spots of the crop
    assert crop[22, 16] < np.percentile(crop, 2) and crop[71, 49] < np.percentile(crop, 2)


def test_fundus_mask_is_the_bright_disc():
    retina = load_retina()
    mask, (cy, cx), R = fundus_mask(retina)
    assert 200 < R < 256 and abs(cy - 256) < 20 and abs(cx - 256) < 20
    assert retina[mask].mean() > 5 * retina[~mask].mean()
    assert not mask[0, 0] and mask[256, 256]


def test_shapes_labels_and_range(data):
    x, y, spots = data
    assert x.shape == (1500, 1, 32, 32) and x.dtype == np.float32
    assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1}
    assert y.sum() == 300                                  # exactly 20 %
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert all((len(s) == 0) == (label == 0) for s, label in zip(spots, y))
    assert all(1 <= len(s) <= 3 for s, label in zip(spots, y) if label)
    radii = [r for s in spots for (_, _, r) in s]
    assert 1.0 <= min(radii) and max(radii) <= 3.0
    centres = np.array([(cy, cx) for s in spots for (cy, cx, _) in s])
    assert centres.min() >= 3 and centres.max() <= 28


def test_patches_come_from_inside_the_fundus(data):
    x, _, _ = data
    # the black border outside the disc is ~0; a patch overlapping it would have a dark band
    assert np.percentile(x.reshape(len(x), -1).mean(axis=1), 1) > 0.1
    assert (x.reshape(len(x), -1) < 0.02).mean() < 1e-3


def test_deterministic_and_seed_dependent():
    a = retinal_lesions(50, size=24, positive_fraction=0.5, seed=3)
    b = retinal_lesions(50, size=24, positive_fraction=0.5, seed=3)
    c = retinal_lesions(50, size=24, positive_fraction=0.5, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (50, 1, 24, 24) and a[1].sum() == 25
    assert not np.array_equal(a[0], c[0])


def test_spots_darken_the_patch_where_painted(data):
    x, y, spots = data
    ratios = []
    for img, s in zip(x[:, 0], spots):
        for cy, cx, _ in s:
            r, c = int(round(cy)), int(round(cx))
            ring = np.r_[img[r - 3, c - 3:c + 4], img[r + 3, c - 3:c + 4], img[r - 2:r + 3, c - 3], img[r - 2:r + 3, c + 3]]
            ratios.append(img[r, c] / ring.mean())
    assert np.median(ratios) < 0.8                       # a spot is darker than its surroundings


def test_darkest_pixel_baseline_is_weak(data):
    """The task must not be trivial: thresholding each patch's darkest pixel (after patch
    or dataset normalisation) scores AUC <= 0.85 -- vessels are dark too."""
    x, y, _ = data
    v = x[:, 0].astype(np.float64)
    per_patch = (v - v.mean(axis=(1, 2), keepdims=True)) / v.std(axis=(1, 2), keepdims=True)
    per_dataset = (v - v.mean()) / v.std()
    auc_patch = roc_auc(y, -per_patch.min(axis=(1, 2)))
    auc_dataset = roc_auc(y, -per_dataset.min(axis=(1, 2)))
    assert 0.55 < auc_patch <= 0.85 and 0.55 < auc_dataset <= 0.85


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must be"):
        retinal_lesions(0)
    with pytest.raises(ValueError, match="size"):
        retinal_lesions(10, size=4)
    with pytest.raises(ValueError, match="positive_fraction"):
        retinal_lesions(10, positive_fraction=1.5)
