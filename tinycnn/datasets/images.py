"""Read one image file (PNG, JPEG, ... or ``.npy``) into a CHW float32 array in [0, 1], and
fit a photo or drawing to what a trained model expects.

Decoding and resizing use Pillow (installed with matplotlib, imported only when an image is
read or resized): file formats are plumbing, not the lesson. The hand-written transforms a
learner studies -- bilinear ``resize``, ``Grayscale``, ``Normalize`` -- stay in
:mod:`tinycnn.transforms`.

>>> x = np.zeros((1, 4, 4), np.float32); x[0, 1:3, 1:3] = 1.0   # light ink, dark background
>>> border_level(x), border_level(1 - x)
(0.0, 1.0)
"""
from pathlib import Path

import numpy as np

from tinycnn.transforms import Grayscale

__all__ = ["load_image", "border_level", "frame_digit", "fit_to_input"]

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _to_chw(a, path):
    """(H, W), (H, W, 3) or (C, H, W) with C in {1, 3} -> (C, H, W)."""
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


def _read_npy(path):
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:          # object arrays are refused: never unpickle a user's file
        raise ValueError(f"load_image: {path} is not a plain numeric .npy array ({e.__class__.__name__}); "
                         "save images with np.save(path, uint8_or_float_array)") from None


def _read_with_pillow(path):
    """Decode with Pillow -> uint8 (H, W) or (H, W, 3), or float (H, W) for 16-bit/float files."""
    from PIL import Image, ImageOps, UnidentifiedImageError   # lazy: keep `import tinycnn` light
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)    # phone photos: honour the stored rotation
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                return np.asarray(im, dtype=np.float64) / 65535.0
            if im.mode == "F":
                return np.asarray(im, dtype=np.float32)
            if "A" in im.getbands() or im.mode == "P" and "transparency" in im.info:
                # transparent pixels become white paper: a drawing exported from a canvas
                # is usually dark ink on a transparent background
                rgba = im.convert("RGBA")
                paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im = Image.alpha_composite(paper, rgba)
            im = im.convert("L" if im.mode in ("1", "L", "LA", "I;16") else "RGB")
            return np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:   # Pillow's ways to say "bad file"
        raise ValueError(f"load_image: cannot read {path} as an image ({e})") from None


def load_image(path, grayscale=False):
    """Load ``path`` as ``(C, H, W)`` float32 in [0, 1]: PNG, JPEG, BMP, GIF, TIFF, WebP
    (anything Pillow reads) or a ``.npy`` array.

    uint8 data is divided by 255 (16-bit images by 65535); float data must already lie in
    [0, 1]. Transparent pixels are laid on white paper, then the alpha channel is dropped.
    ``grayscale=True`` turns RGB into one luma channel ``0.299 R + 0.587 G + 0.114 B``.
    Add the batch axis yourself: ``x[None]``.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"load_image: {path} is a directory, not an image file")
    if not path.is_file():
        raise FileNotFoundError(f"load_image: no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        raise ValueError(f"load_image: {path} is a .npz archive (a model or a dataset?), not an image; "
                         "expected a PNG, JPEG or .npy file")
    if path.stat().st_size == 0:
        raise ValueError(f"load_image: {path} is empty (0 bytes)")
    a = _read_npy(path) if suffix == ".npy" else _read_with_pillow(path)
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


def border_level(image):
    """Median brightness of the one-pixel frame of a ``(C, H, W)`` image, channels averaged.

    The frame is almost always background: near 0 for MNIST-style light ink on black,
    near 1 for dark ink on white paper, whatever the strokes in the middle do.
    """
    g = np.asarray(image, dtype=np.float64).mean(axis=0)
    frame = np.concatenate([g[0], g[-1], g[1:-1, 0], g[1:-1, -1]])
    return float(np.median(frame))


def _resize_antialiased(plane, H, W):
    """One (h, w) float plane to (H, W) with Pillow.

    Shrinking uses the box filter: each output pixel is the mean of the input pixels it
    covers (anti-aliasing), so a thin stroke is averaged in instead of skipped and the total
    ink -- the mean brightness -- is kept. Enlarging interpolates bilinearly.
    """
    from PIL import Image
    h, w = plane.shape
    im = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))   # float32 -> mode "F"
    filters = getattr(Image, "Resampling", Image)        # Pillow < 9.1 keeps them on Image
    f = filters.BOX if H <= h and W <= w else filters.BILINEAR
    return np.clip(np.asarray(im.resize((W, H), resample=f), dtype=np.float32), 0.0, 1.0)


def frame_digit(image, size, fill=20 / 28):
    """Frame a light-on-dark drawing the way MNIST's digits were framed (LeCun et al.):
    ``(C, h, w)`` -> ``(C, H, W)`` with ``size=(H, W)``.

    1. levels: the background (:func:`border_level`) becomes 0 and the strongest ink 1, so
       a photo's gray paper does not look like faint ink everywhere;
    2. crop to the ink's bounding box (pixels above 0.25 after step 1);
    3. shrink (area average) or enlarge it, keeping its aspect ratio, until its longer
       side is ``fill`` of the frame (20 of 28 px for MNIST);
    4. place it so its centre of mass sits at the centre of the frame.

    Returns ``(x, note)``, or ``(None, note)`` when the image holds no ink to frame.
    """
    x = np.asarray(image, dtype=np.float32)
    H, W = (int(v) for v in size)
    bg, top = border_level(x), float(x.mean(axis=0).max())
    if top - bg < 0.1:
        return None, "found no ink to frame (the image is almost flat)"
    x = np.clip((x - bg) / (top - bg), 0.0, 1.0)
    g = x.mean(axis=0)
    rows, cols = np.flatnonzero((g > 0.25).any(axis=1)), np.flatnonzero((g > 0.25).any(axis=0))
    crop = x[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape[1:]
    scale = fill * min(H, W) / max(h, w)
    nh, nw = max(1, min(H, round(h * scale))), max(1, min(W, round(w * scale)))
    small = np.stack([_resize_antialiased(p, nh, nw) for p in crop])
    m = small.mean(axis=0) + 1e-12
    cy = (m.sum(axis=1) @ np.arange(nh)) / m.sum()       # centre of mass, row
    cx = (m.sum(axis=0) @ np.arange(nw)) / m.sum()       # centre of mass, column
    r0 = min(max(int(round((H - 1) / 2 - cy)), 0), H - nh)
    c0 = min(max(int(round((W - 1) / 2 - cx)), 0), W - nw)
    out = np.zeros((x.shape[0], H, W), np.float32)
    out[:, r0:r0 + nh, c0:c0 + nw] = small
    note = (f"framed the drawing like MNIST: background {bg:.2f} -> 0, ink {top:.2f} -> 1; its "
            f"{h}×{w} px ink box scaled to {nh}×{nw} and centred by its centre of mass in {H}×{W}")
    return out, note


def fit_to_input(image, input_shape, background=None, invert="auto", frame=False):
    """Make a ``(C, H, W)`` image in [0, 1] fit a model's ``input_shape`` ``(C', H', W')``.

    1. channels: RGB -> luma for a one-channel model; gray repeated for a three-channel one;
    2. background: if the model was trained on ``background="dark"`` (or ``"bright"``)
       images and this image's :func:`border_level` says the opposite, ``invert="auto"``
       turns it into ``1 - x`` (``"yes"`` always inverts, ``"no"`` never);
    3. size: with ``frame=True`` (for models of MNIST digits) and a size that differs,
       :func:`frame_digit`; otherwise an anti-aliased resize of the whole image to ``(H', W')``.

    Returns ``(x, notes)``: the fitted float32 image and a list of sentences saying what
    was changed (print them: a silent inversion would be a surprise).
    """
    if invert not in ("auto", "yes", "no"):
        raise ValueError(f"fit_to_input: invert must be 'auto', 'yes' or 'no'; got {invert!r}")
    x = np.asarray(image, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"fit_to_input: expected one image (C, H, W); got shape {x.shape}")
    C, H, W = (int(v) for v in input_shape)
    notes = []
    if x.shape[0] != C:
        if C == 1:
            x = Grayscale()(x) if x.shape[0] == 3 else x[:1]
            notes.append("converted colour to gray (luma) for a one-channel model")
        else:
            x = np.repeat(x[:1], C, axis=0)
            notes.append(f"repeated the gray channel {C} times for a {C}-channel model")
    level = border_level(x)
    bright = level > 0.5
    flip = invert == "yes" or (invert == "auto" and background in ("dark", "bright")
                               and bright != (background == "bright"))
    if flip:
        x = 1.0 - x
        why = (f"the image has a {'bright' if bright else 'dark'} background (border level "
               f"{level:.2f}) and the model was trained on {background} backgrounds"
               if invert == "auto" else "as asked (invert='yes')")
        notes.append(f"inverted the image (1 - x): {why}")
    if frame and x.shape[1:] != (H, W):
        framed, note = frame_digit(x, (H, W))
        notes.append(note)
        if framed is not None:
            return framed, notes
    if x.shape[1:] != (H, W):
        how = "area average, anti-aliased" if H <= x.shape[1] and W <= x.shape[2] else "bilinear"
        notes.append(f"resized {x.shape[1]}×{x.shape[2]} -> {H}×{W} ({how})")
        x = np.stack([_resize_antialiased(p, H, W) for p in x])
    return np.ascontiguousarray(x, dtype=np.float32), notes
