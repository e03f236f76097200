"""MNIST digits: the 5,000-image subset shipped with tinycnn, and full IDX files.

Images come back NCHW ``(N, 1, 28, 28)`` float32 scaled to [0, 1] (0 = background,
1 = ink) and labels ``(N,)`` int64, unless ``raw=True`` asks for the stored uint8 pixels.

The IDX format (LeCun's original MNIST files, also used by Fashion-MNIST) is a tiny
big-endian header followed by raw uint8 pixels::

    images: magic 0x00000803 | N | rows | cols  (4 x uint32)  then N*rows*cols bytes
    labels: magic 0x00000801 | N                (2 x uint32)  then N bytes

The third magic byte (0x08) says "unsigned byte" and the fourth the number of dimensions.
"""
import gzip
from pathlib import Path

import numpy as np

from tinycnn.datasets.sampling import stratified_split

__all__ = ["load_mnist5k", "load_mnist_idx", "DATA_DIR"]

DATA_DIR = Path(__file__).parent / "data"

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801


def _scale(images, raw):
    """uint8 (N, H, W) -> NCHW; float32 in [0, 1] unless ``raw``."""
    x = images[:, None, :, :]
    if raw:
        return np.ascontiguousarray(x)
    return x.astype(np.float32) / np.float32(255.0)


def load_mnist5k(seed=0, raw=False):
    """The 5,000 real MNIST digits shipped with tinycnn, split 4,000 train / 1,000 test.

    The file's rows are sorted by label, so they are shuffled with ``seed`` and split
    stratified: each digit has exactly 400 training and 100 test images.

    Returns ``(x_train, y_train), (x_test, y_test)``: x ``(N, 1, 28, 28)`` float32 in
    [0, 1] (uint8 0..255 if ``raw=True``), y ``(N,)`` int64.

    >>> (x_train, y_train), (x_test, y_test) = load_mnist5k(seed=0)
    >>> x_train.shape, x_test.shape, x_train.dtype, y_train.dtype
    ((4000, 1, 28, 28), (1000, 1, 28, 28), dtype('float32'), dtype('int64'))
    >>> np.bincount(y_test).tolist() == [100] * 10
    True
    """
    with np.load(DATA_DIR / "mnist_5k.npz", allow_pickle=False) as f:
        images, labels = f["images"], f["labels"].astype(np.int64)
    train_idx, test_idx = stratified_split(labels, 0.2, seed=seed)
    x = _scale(images, raw)
    return (x[train_idx], labels[train_idx]), (x[test_idx], labels[test_idx])


def _read_bytes(path):
    """File content, gunzipped if it is gzip (detected by its magic bytes, not its name)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_mnist_idx: no such file: {path}")
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise ValueError(f"load_mnist_idx: {path} looks gzipped but cannot be decompressed ({e})") from e
    return data


def _read_idx(path, magic, ndim):
    """Parse one IDX file: check magic and sizes, return (dims, uint8 payload)."""
    data = _read_bytes(path)
    header = 4 * (1 + ndim)
    kind = "images" if ndim == 3 else "labels"
    if len(data) < header:
        raise ValueError(
            f"load_mnist_idx: {path} is too short for an IDX {kind} header: expected at least "
            f"{header} bytes, got {len(data)}"
        )
    got = int.from_bytes(data[:4], "big")
    if got != magic:
        hint = ""
        if got in (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC):
            hint = " (images and labels files swapped?)"
        raise ValueError(
            f"load_mnist_idx: {path} is not an IDX {kind} file: expected magic number "
            f"0x{magic:08X}, got 0x{got:08X}{hint}"
        )
    dims = [int.from_bytes(data[4 * (i + 1):4 * (i + 2)], "big") for i in range(ndim)]
    if ndim == 3 and (dims[1] == 0 or dims[2] == 0):
        raise ValueError(f"load_mnist_idx: {path} declares images of size {dims[1]}x{dims[2]}")
    expected = int(np.prod(dims))
    payload = len(data) - header
    if payload != expected:
        raise ValueError(
            f"load_mnist_idx: {path} header declares dims {tuple(dims)}, i.e. {expected} bytes of "
            f"pixels/labels, but the file holds {payload} (truncated or corrupt?)"
        )
    return dims, np.frombuffer(data, dtype=np.uint8, offset=header)


def load_mnist_idx(images_path, labels_path, raw=False):
    """Read an MNIST-style pair of IDX files (plain or ``.gz``), e.g. the full MNIST or
    Fashion-MNIST you downloaded yourself (``train-images-idx3-ubyte.gz`` and
    ``train-labels-idx1-ubyte.gz``).

    Returns ``(x, y)``: x ``(N, 1, rows, cols)`` float32 in [0, 1] (uint8 if ``raw=True``),
    y ``(N,)`` int64. Raises ``ValueError`` naming the file on a wrong magic number, a
    size that does not match the header, or image and label counts that differ.
    """
    (n, rows, cols), pixels = _read_idx(images_path, IDX_IMAGES_MAGIC, 3)
    (n_labels,), labels = _read_idx(labels_path, IDX_LABELS_MAGIC, 1)
    if n != n_labels:
        raise ValueError(
            f"load_mnist_idx: {images_path} holds {n} images but {labels_path} holds "
            f"{n_labels} labels; expected the same number"
        )
    images = pixels.reshape(n, rows, cols)
    return _scale(images, raw), labels.astype(np.int64)
