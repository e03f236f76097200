"""Loaders read real file formats (written here, small) and fail clearly on broken ones."""
import gzip
import struct

import numpy as np
import pytest

from tinycnn.datasets import (
    balanced_batches, load_image, load_medmnist, load_mnist5k, load_mnist_idx,
    stratified_kfold, stratified_split,
)


# ------------------------------------------------------------------ MNIST-5k (shipped)

def test_mnist5k_split_is_stratified_scaled_and_deterministic():
    (x, y), (xt, yt) = load_mnist5k(seed=0)
    assert x.shape == (4000, 1, 28, 28) and xt.shape == (1000, 1, 28, 28)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() == 1.0
    assert np.bincount(y).tolist() == [400] * 10
    assert np.bincount(yt).tolist() == [100] * 10
    assert not np.all(np.diff(y) >= 0), "training rows must not stay sorted by label"
    (x2, y2), _ = load_mnist5k(seed=0)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    (_, y3), _ = load_mnist5k(seed=1)
    assert not np.array_equal(y, y3)


def test_mnist5k_train_and_test_are_disjoint_and_raw_is_uint8():
    (x, _), (xt, _) = load_mnist5k(seed=3, raw=True)
    assert x.dtype == np.uint8 and x.max() == 255
    rows = {r.tobytes() for r in x.reshape(len(x), -1)}
    assert not any(r.tobytes() in rows for r in xt.reshape(len(xt), -1))


# ------------------------------------------------------------------ IDX files

def write_idx_images(path, images, magic=0x00000803, gz=False, extra=b""):
    n, r, c = images.shape
    data = struct.pack(">IIII", magic, n, r, c) + images.astype(np.uint8).tobytes() + extra
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_idx_labels(path, labels, magic=0x00000801, gz=False):
    data = struct.pack(">II", magic, len(labels)) + np.asarray(labels, np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def digits():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(7, 5, 4), dtype=np.uint8), rng.integers(0, 10, size=7)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, digits, gz):
    images, labels = digits
    ip = write_idx_images(tmp_path / "img", images, gz=gz)
    lp = write_idx_labels(tmp_path / "lab", labels, gz=gz)
    x, y = load_mnist_idx(ip, lp)
    assert x.shape == (7, 1, 5, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0] * 255, images, atol=1e-4)   # row-major, rows first
    np.testing.assert_array_equal(y, labels)
    assert y.dtype == np.int64
    xr, _ = load_mnist_idx(ip, lp, raw=True)
    np.testing.assert_array_equal(xr[:, 0], images)


def test_idx_wrong_magic_names_file_and_numbers(tmp_path, digits):
    images, labels = digits
    ip = write_idx_images(tmp_path / "img", images, magic=0x00000802)
    lp = write_idx_labels(tmp_path / "lab", labels)
    with pytest.raises(ValueError, match=r"img.*0x00000803.*0x00000802"):
        load_mnist_idx(ip, lp)


def test_idx_swapped_files_hint(tmp_path, digits):
    images, labels = digits
    ip = write_idx_images(tmp_path / "img", images)
    lp = write_idx_labels(tmp_path / "lab", labels)
    with pytest.raises(ValueError, match="swapped"):
        load_mnist_idx(lp, ip)


def test_idx_truncated_and_padded_payloads(tmp_path, digits):
    images, labels = digits
    lp = write_idx_labels(tmp_path / "lab", labels)
    full = write_idx_images(tmp_path / "img", images).read_bytes()
    (tmp_path / "short").write_bytes(full[:-3])
    with pytest.raises(ValueError, match=r"short.*\(7, 5, 4\).*140 bytes.*137"):
        load_mnist_idx(tmp_path / "short", lp)
    write_idx_images(tmp_path / "long", images, extra=b"\x00")
    with pytest.raises(ValueError, match="holds 141"):
        load_mnist_idx(tmp_path / "long", lp)
    (tmp_path / "tiny").write_bytes(full[:6])
    with pytest.raises(ValueError, match="too short"):
        load_mnist_idx(tmp_path / "tiny", lp)


def test_idx_count_mismatch_and_bad_gzip_and_missing(tmp_path, digits):
    images, labels = digits
    ip = write_idx_images(tmp_path / "img", images)
    lp = write_idx_labels(tmp_path / "lab", labels[:5])
    with pytest.raises(ValueError, match="7 images.*5 labels"):
        load_mnist_idx(ip, lp)
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"garbage" * 3)
    with pytest.raises(ValueError, match="gzip"):
        load_mnist_idx(tmp_path / "bad.gz", lp)
    with pytest.raises(FileNotFoundError, match="nope"):
        load_mnist_idx(tmp_path / "nope", lp)


# ------------------------------------------------------------------ MedMNIST files

def write_medmnist(path, shape=(6, 4, 4), n_label=1, rng=0, drop=()):
    rng = np.random.default_rng(rng)
    arrays = {}
    for split, n in (("train", 6), ("val", 3), ("test", 4)):
        arrays[f"{split}_images"] = rng.integers(0, 256, size=(n,) + shape[1:], dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, size=(n, n_label)).astype(np.uint8)
    for k in drop:
        del arrays[k]
    np.savez(path, **arrays)
    return arrays


def test_medmnist_grayscale(tmp_path):
    a = write_medmnist(tmp_path / "pneumonia.npz")
    d = load_medmnist(tmp_path / "pneumonia.npz")
    assert sorted(d) == ["test", "train", "val"]
    x, y = d["train"]
    assert x.shape == (6, 1, 4, 4) and x.dtype == np.float32 and y.shape == (6,)
    assert y.dtype == np.int64
    np.testing.assert_allclose(x[:, 0], a["train_images"] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(y, a["train_labels"][:, 0])
    assert load_medmnist(tmp_path / "pneumonia.npz", raw=True)["val"][0].dtype == np.uint8


def test_medmnist_rgb_kept_or_converted_to_luma(tmp_path):
    a = write_medmnist(tmp_path / "retina.npz", shape=(6, 4, 4, 3))
    x, _ = load_medmnist(tmp_path / "retina.npz")["test"]
    assert x.shape == (4, 3, 4, 4)
    np.testing.assert_allclose(x[:, 1], a["test_images"][..., 1] / 255.0, atol=1e-6)  # channel G
    g, _ = load_medmnist(tmp_path / "retina.npz", grayscale=True)["test"]
    luma = a["test_images"] @ np.array([0.299, 0.587, 0.114])
    assert g.shape == (4, 1, 4, 4)
    np.testing.assert_allclose(g[:, 0] * 255, np.rint(luma), atol=1e-3)


def test_medmnist_rejects_multilabel_and_broken_files(tmp_path):
    write_medmnist(tmp_path / "chest.npz", n_label=14)
    with pytest.raises(ValueError, match="multi-label.*ChestMNIST"):
        load_medmnist(tmp_path / "chest.npz")
    write_medmnist(tmp_path / "half.npz", drop=("val_labels",))
    with pytest.raises(ValueError, match="val_labels"):
        load_medmnist(tmp_path / "half.npz")
    np.savez(tmp_path / "other.npz", images=np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="none of the MedMNIST arrays"):
        load_medmnist(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a MedMNIST .npz archive") as err:
        load_medmnist(tmp_path / "junk.npz")
    assert "pickle" not in str(err.value)             # never suggest unpickling a data file
    np.savez(tmp_path / "bad.npz", train_images=np.zeros((2, 3, 3, 2), np.uint8),
             train_labels=np.zeros((2, 1), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, S, S\)"):
        load_medmnist(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        load_medmnist(tmp_path / "missing.npz")


def test_medmnist_only_some_splits(tmp_path):
    write_medmnist(tmp_path / "t.npz", drop=("val_images", "val_labels"))
    assert sorted(load_medmnist(tmp_path / "t.npz")) == ["test", "train"]


# ------------------------------------------------------------------ single images

def test_load_image_png_and_npy(tmp_path):
    import matplotlib.image
    img = np.zeros((6, 5, 3), np.uint8)
    img[..., 0] = 255                                   # pure red
    matplotlib.image.imsave(tmp_path / "red.png", img)
    x = load_image(tmp_path / "red.png")
    assert x.shape == (3, 6, 5) and x.dtype == np.float32    # alpha dropped
    np.testing.assert_allclose(x[0], 1.0)
    np.testing.assert_allclose(load_image(tmp_path / "red.png", grayscale=True), 0.299, atol=1e-6)
    np.save(tmp_path / "d.npy", np.full((28, 28), 255, np.uint8))
    assert load_image(tmp_path / "d.npy").shape == (1, 28, 28)
    np.save(tmp_path / "f.npy", np.full((28, 28), 3.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_image(tmp_path / "f.npy")
    (tmp_path / "x.jpg").write_bytes(b"")               # JPEG is read (Pillow); an empty file is not
    with pytest.raises(ValueError, match="empty"):
        load_image(tmp_path / "x.jpg")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="cannot read"):
        load_image(tmp_path / "broken.png")


# ------------------------------------------------------------------ splits and batches

Y = np.array([0] * 40 + [1] * 10 + [2] * 5)


def test_stratified_split_keeps_shares():
    a, b = stratified_split(Y, 0.2, seed=0)
    assert np.bincount(Y[b]).tolist() == [8, 2, 1]
    assert np.bincount(Y[a]).tolist() == [32, 8, 4]
    assert sorted(np.r_[a, b].tolist()) == list(range(len(Y)))
    a2, b2 = stratified_split(Y, 0.2, seed=0)
    np.testing.assert_array_equal(b, b2)
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(Y, 1.5)


def test_stratified_kfold_partitions_and_stratifies():
    folds = list(stratified_kfold(Y, k=5, seed=0))
    assert len(folds) == 5
    val = np.concatenate([v for _, v in folds])
    assert sorted(val.tolist()) == list(range(len(Y)))       # each sample validated once
    for tr, v in folds:
        assert np.intersect1d(tr, v).size == 0 and len(tr) + len(v) == len(Y)
        assert np.bincount(Y[v], minlength=3).tolist() == [8, 2, 1]
    with pytest.raises(ValueError, match="class 2 has only 5"):
        list(stratified_kfold(Y, k=6))
    with pytest.raises(ValueError, match="at least 2"):
        list(stratified_kfold(Y, k=1))


def test_balanced_batches_equal_classes_and_cover_minority():
    y = np.array([0] * 90 + [1] * 10)
    batches = list(balanced_batches(y, 20, np.random.default_rng(0)))
    assert len(batches) == 5
    for b in batches:
        assert len(b) == 20 and np.bincount(y[b]).tolist() == [10, 10]
    pos = np.concatenate(batches)[y[np.concatenate(batches)] == 1]
    assert set(pos.tolist()) == set(range(90, 100))          # every positive used, repeatedly
    odd = list(balanced_batches(Y, 7, 1, num_batches=3))
    for b in odd:
        assert len(b) == 7 and sorted(np.bincount(Y[b], minlength=3).tolist()) == [2, 2, 3]
    with pytest.raises(ValueError, match="smaller than the number of classes"):
        next(balanced_batches(Y, 2, 0))
    first = [b.tolist() for b in balanced_batches(y, 20, 5)]
    assert first == [b.tolist() for b in balanced_batches(y, 20, 5)]
