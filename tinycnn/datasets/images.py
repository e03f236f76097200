"""Read one image file (PNG or ``.npy``) into a CHW float32 array in [0, 1].

PNG decoding borrows matplotlib's reader (imported only when a PNG is read), so tinycnn
needs no imaging library. JPEG would need Pillow; convert to PNG first.
"""
from pathlib import Path

import numpy as np

__all__ = ["load_image"]

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _to_chw(a, path):
    """(H, W), (H, W, 3|4) or (C, H, W) with C in {1, 3} -> (C, H, W)."""
    if a.ndim == 2:
        return a[None]
    if a.ndim == 3 and a.shape[-1] in (3, 4) and a.shape[0] not in (1, 3):
        return np.moveaxis(a[..., :3], -1, 0)        # drop alpha; channels first
    if a.ndim == 3 and a.shape[0] in (1, 3):
        return a
    raise ValueError(
        f"load_image: {path} holds an array of shape {a.shape}; expected (H, W), (H, W, 3), "
        "(H, W, 4) or (C, H, W) with C = 1 or 3"
    )


def load_image(path, grayscale=False):
    """Load ``path`` (``.png`` or ``.npy``) as ``(C, H, W)`` float32 in [0, 1].

    uint8 data is divided by 255; float data must already lie in [0, 1]. An alpha channel
    is dropped. ``grayscale=True`` turns RGB into one luma channel
    ``0.299 R + 0.587 G + 0.114 B``. Add the batch axis yourself: ``x[None]``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_image: no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        a = np.load(path, allow_pickle=False)
    elif suffix == ".png":
        import matplotlib.image          # lazy: importing tinycnn must not import matplotlib
        try:
            a = matplotlib.image.imread(path)
        except Exception as e:           # matplotlib raises several types on bad files
            raise ValueError(f"load_image: cannot read {path} as PNG ({e})") from e
    else:
        raise ValueError(f"load_image: {path}: unsupported file type {suffix!r}; expected .png or .npy")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / np.float32(255.0)
    elif np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
        if a.size and (a.min() < 0.0 or a.max() > 1.0):
            raise ValueError(
                f"load_image: {path} holds floats in [{a.min():g}, {a.max():g}]; expected [0, 1] "
                "(or uint8 0..255)"
            )
    else:
        raise ValueError(f"load_image: {path} has dtype {a.dtype}; expected uint8 or float")
    x = _to_chw(a, path)
    if grayscale and x.shape[0] == 3:
        x = np.tensordot(LUMA, x, axes=([0], [0]))[None]
    return np.ascontiguousarray(x, dtype=np.float32)
