r"""Image preprocessing and augmentation, in NumPy, on NCHW batches.

Every transform is a callable with one protocol::

    y = transform(x, rng=None)

``x`` is a batch ``(N, C, H, W)``, one image ``(C, H, W)`` or a plain ``(H, W)`` array;
``y`` has the same layout (a transform may change ``C``, ``H`` or ``W``). Floating input
keeps its dtype; integer input is converted to float32 (values are not rescaled). Inputs
are never modified in place. Deterministic transforms ignore ``rng``; random ones
(``RandomShift``, ``RandomFlip``, ``RandomRotation``) draw from the ``numpy.random.Generator``
passed at call time -- training calls ``augment(xb, rng)`` on each minibatch -- or, if
none is passed, from their own generator made from ``seed=``. Each sample of a batch gets
its own random draw.

>>> import numpy as np
>>> pipeline = Compose([Grayscale(), Resize(28), Normalize(0.1307, 0.3081)])
>>> pipeline(np.zeros((2, 3, 56, 56), dtype=np.float32)).shape
(2, 1, 28, 28)
>>> augment = Compose([RandomShift(2), RandomRotation(10)])
>>> augment(np.zeros((4, 1, 28, 28), np.float32), np.random.default_rng(0)).shape
(4, 1, 28, 28)

Geometry: pixel ``(i, j)`` is row ``i`` (down), column ``j`` (right); pixel centres sit at
integer coordinates. (One module rather than several small ones: a learner finds the
whole preprocessing pipeline in one place.)
"""
import inspect

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinycnn.init import as_generator

__all__ = [
    "Compose", "Grayscale", "Resize", "Translate", "Normalize", "Binarize", "SobelEdges",
    "RandomShift", "RandomFlip", "RandomRotation",
    "otsu_threshold", "resize", "shift", "rotate", "LUMA",
]

LUMA = (0.299, 0.587, 0.114)   # ITU-R BT.601: how bright R, G, B look to the eye


def _batch(x, where):
    """View ``x`` as an NCHW float batch; return it and a function restoring the layout."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if x.ndim == 4:
        return x, lambda y: y
    if x.ndim == 3:
        return x[None], lambda y: y[0]
    if x.ndim == 2:
        return x[None, None], lambda y: y[0, 0]
    raise ValueError(f"{where}: expected (N, C, H, W), (C, H, W) or (H, W); got shape {x.shape}")


class Compose:
    """Apply transforms in order: ``Compose([t1, t2])(x, rng) == t2(t1(x, rng), rng)``.

    A plain function ``f(x)`` (without an ``rng`` argument) may be listed too.
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        self._takes_rng = [_accepts_rng(t) for t in self.transforms]

    def __call__(self, x, rng=None):
        for t, takes_rng in zip(self.transforms, self._takes_rng):
            x = t(x, rng=rng) if takes_rng else t(x)
        return x

    def __repr__(self):
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


def _accepts_rng(f):
    try:
        params = inspect.signature(f).parameters
    except (TypeError, ValueError):
        return False
    return "rng" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


# ------------------------------------------------------------------- colour and values

class Grayscale:
    """RGB -> one luma channel ``0.299 R + 0.587 G + 0.114 B``; one channel passes through."""

    def __call__(self, x, rng=None):
        x, restore = _batch(x, "Grayscale")
        if x.shape[1] == 1:
            return restore(x.copy())
        if x.shape[1] != 3:
            raise ValueError(f"Grayscale: expected 1 or 3 channels (axis 1); got {x.shape[1]}")
        w = np.asarray(LUMA, dtype=x.dtype)
        return restore(np.einsum("c,nchw->nhw", w, x)[:, None])

    def __repr__(self):
        return "Grayscale()"


class Normalize:
    r"""Standardise: :math:`y = (x - \mu) / \sigma`, with one (mean, std) or one per channel.

    Fit them on the *training* set only (``Normalize.fit(x_train)``) and reuse the same
    numbers for validation, test and prediction -- store them with the model
    (``to_dict()`` gives plain floats/lists). ``inverse`` undoes it, e.g. for plotting.
    """

    def __init__(self, mean, std):
        self.mean, self.std = _plain(mean), _plain(std)
        if np.any(np.asarray(self.std) <= 0):
            raise ValueError(f"Normalize: std must be positive; got {self.std}")
        if np.ndim(self.mean) != np.ndim(self.std) or np.size(self.mean) != np.size(self.std):
            raise ValueError(f"Normalize: mean {self.mean} and std {self.std} differ in length")

    @classmethod
    def fit(cls, x, per_channel=False):
        """A ``Normalize`` with the mean and std of ``x`` (NCHW), over all pixels of all
        images, or per channel (axes N, H, W) with ``per_channel=True``. Computed in float64."""
        x, _ = _batch(x, "Normalize.fit")
        axes = (0, 2, 3) if per_channel else None
        x64 = x.astype(np.float64)
        return cls(x64.mean(axis=axes), x64.std(axis=axes))

    def _stats(self, x):
        mean, std = np.asarray(self.mean, x.dtype), np.asarray(self.std, x.dtype)
        if mean.ndim == 1:
            if len(mean) != x.shape[1]:
                raise ValueError(f"Normalize: {len(mean)} channel means for {x.shape[1]} channels")
            mean, std = mean.reshape(1, -1, 1, 1), std.reshape(1, -1, 1, 1)
        return mean, std

    def __call__(self, x, rng=None):
        x, restore = _batch(x, "Normalize")
        mean, std = self._stats(x)
        return restore((x - mean) / std)

    def inverse(self, y):
        """Undo the normalisation: ``x = y·std + mean``."""
        y, restore = _batch(y, "Normalize.inverse")
        mean, std = self._stats(y)
        return restore(y * std + mean)

    def to_dict(self):
        """``{"mean": ..., "std": ...}``, plain lists/floats (stored in a model's ``meta``)."""
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d):
        """The ``Normalize`` that :meth:`to_dict` described."""
        return cls(d["mean"], d["std"])

    def __repr__(self):
        return f"Normalize(mean={self.mean!r}, std={self.std!r})"


def _plain(v):
    """A Python float, or a list of floats for per-channel values (JSON-friendly)."""
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 0:
        return float(a)
    if a.ndim == 1:
        return [float(t) for t in a]
    raise ValueError(f"Normalize: mean/std must be a number or a per-channel list; got shape {a.shape}")


def otsu_threshold(image, bins=256):
    r"""Otsu's threshold: the cut that best separates the pixel histogram into two classes.

    For a cut after histogram bin ``k`` with class weights :math:`\omega_0, \omega_1` and
    class means :math:`\mu_0, \mu_1`, Otsu maximises the between-class variance
    :math:`\sigma_B^2 = \omega_0 \omega_1 (\mu_0 - \mu_1)^2` -- equivalently it minimises the
    spread inside each class. Foreground is ``image > t``. When several cuts tie (a clean
    two-level image), the middle of the tied range is returned.

    >>> round(otsu_threshold(np.array([[0.2, 0.2], [0.8, 0.8]])), 6)
    0.5
    """
    a = np.asarray(image, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError("otsu_threshold: empty image")
    lo, hi = a.min(), a.max()
    if lo == hi:
        return float(lo)
    counts, edges = np.histogram(a, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    p = counts / a.size
    w0 = np.cumsum(p)[:-1]                       # weight of class 0 = bins 0..k
    m0 = np.cumsum(p * centres)[:-1]             # w0 * mu0
    mt = m0[-1] + p[-1] * centres[-1]            # overall mean
    w1 = 1.0 - w0
    ok = (w0 > 0) & (w1 > 0)
    # sigma_B^2 = (mt w0 - w0 mu0)^2 / (w0 w1), written with m0 = w0 mu0
    var_b = np.where(ok, (mt * w0 - m0) ** 2 / np.where(ok, w0 * w1, 1.0), -1.0)
    best = np.flatnonzero(var_b >= var_b.max() * (1 - 1e-9))
    # the cut after bin k is anywhere in [edges[k+1], edges[k+2]); tied cuts: take the middle
    return float((edges[best[0] + 1] + edges[best[-1] + 1]) / 2)


class Binarize:
    """``y = 1.0 where x > threshold else 0.0``; ``threshold="otsu"`` finds one per image
    with :func:`otsu_threshold` (over all of that image's channels)."""

    def __init__(self, threshold=0.5):
        valid = threshold == "otsu" if isinstance(threshold, str) else np.isscalar(threshold)
        if not valid:
            raise ValueError(f"Binarize: threshold must be a number or 'otsu'; got {threshold!r}")
        self.threshold = threshold

    def __call__(self, x, rng=None):
        x, restore = _batch(x, "Binarize")
        if self.threshold == "otsu":
            t = np.array([otsu_threshold(img) for img in x]).reshape(-1, 1, 1, 1)
        else:
            t = self.threshold
        return restore((x > t).astype(x.dtype))

    def __repr__(self):
        return f"Binarize(threshold={self.threshold!r})"


class SobelEdges:
    r"""Edge strength :math:`\sqrt{G_x^2 + G_y^2}` per channel, computed with tinycnn's own
    convolution kernel (the one ``Conv2D`` calls), with the fixed Sobel filters

    .. math::
        G_x = \begin{bmatrix}-1&0&1\\-2&0&2\\-1&0&1\end{bmatrix} * x \qquad
        G_y = G_x^\top * x

    (``*`` is cross-correlation, as in every CNN layer). The border is padded by
    repeating edge pixels, so the frame of the image does not look like an edge. A unit
    step gives magnitude 4; a constant image gives 0.
    """
    GX = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)

    def __call__(self, x, rng=None):
        from tinycnn.backend import kernels          # layers' kernels, current backend
        x, restore = _batch(x, "SobelEdges")
        N, C, H, W = x.shape
        # every channel is a separate one-channel image; two filters (Gx, Gy) per image
        xc = np.pad(x.reshape(N * C, 1, H, W), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
        w = np.stack([self.GX, self.GX.T])[:, None].astype(x.dtype)     # (2, 1, 3, 3)
        g = kernels().conv2d_forward(np.ascontiguousarray(xc), w, np.zeros(2, x.dtype),
                                     stride=1, padding=0)
        magnitude = np.sqrt(g[:, 0] ** 2 + g[:, 1] ** 2)
        return restore(magnitude.reshape(N, C, H, W).astype(x.dtype))

    def __repr__(self):
        return "SobelEdges()"


# ------------------------------------------------------------------- geometry

def resize(x, size):
    """Bilinear resize of the last two axes to ``size`` (int or (height, width)).

    Output pixel ``i`` samples the input at ``(i + 0.5) * H / Ho - 0.5`` (pixel centres
    aligned, as in OpenCV/PIL), clamped to the image. Separable: one small interpolation
    matrix per axis, ``y = Ry @ x @ Rxᵀ``. No anti-aliasing: shrinking by more than 2x
    skips pixels.
    """
    x, restore = _batch(x, "resize")
    Ho, Wo = (size, size) if np.isscalar(size) else (int(size[0]), int(size[1]))
    if Ho < 1 or Wo < 1:
        raise ValueError(f"resize: size must be positive; got {size}")
    Ry, Rx = _interp_matrix(Ho, x.shape[2], x.dtype), _interp_matrix(Wo, x.shape[3], x.dtype)
    return restore(Ry @ x @ Rx.T)


def _interp_matrix(n_out, n_in, dtype):
    """(n_out, n_in) matrix whose row i linearly interpolates the input at source(i)."""
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    f = src - i0
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1 - f)
    np.add.at(m, (np.arange(n_out), i1), f)
    return m.astype(dtype)


class Resize:
    """Bilinear resize to ``size`` (int or (height, width)); see :func:`resize`."""

    def __init__(self, size):
        self.size = size

    def __call__(self, x, rng=None):
        return resize(x, self.size)

    def __repr__(self):
        return f"Resize({self.size!r})"


def shift(x, dy, dx, fill=0.0):
    """Move image content down by ``dy`` and right by ``dx`` whole pixels; uncovered pixels
    get ``fill``. ``dy``, ``dx``: ints, or int arrays ``(N,)`` for one shift per sample.

    Done as one gather: pad by the largest shift, view every window of the original size
    (``sliding_window_view``, no copy) and pick window ``(m - dy, m - dx)`` per sample.
    """
    x, restore = _batch(x, "shift")
    N, C, H, W = x.shape
    dy = np.broadcast_to(np.asarray(dy, dtype=np.int64), (N,))
    dx = np.broadcast_to(np.asarray(dx, dtype=np.int64), (N,))
    m = int(max(np.abs(dy).max(), np.abs(dx).max()))
    if m == 0:
        return restore(x.copy())
    if m >= max(H, W):
        return restore(np.full_like(x, fill))
    xp = np.pad(x, ((0, 0), (0, 0), (m, m), (m, m)), constant_values=fill)
    windows = sliding_window_view(xp, (H, W), axis=(2, 3))          # (N, C, 2m+1, 2m+1, H, W)
    return restore(windows[np.arange(N), :, m - dy, m - dx])


class Translate:
    """Shift every image down by ``dy`` and right by ``dx`` pixels (negative: up/left)."""

    def __init__(self, dy, dx, fill=0.0):
        self.dy, self.dx, self.fill = int(dy), int(dx), fill

    def __call__(self, x, rng=None):
        return shift(x, self.dy, self.dx, self.fill)

    def __repr__(self):
        return f"Translate(dy={self.dy}, dx={self.dx})"


def rotate(x, degrees, fill=0.0):
    r"""Rotate images counter-clockwise (as displayed) by ``degrees`` about their centre,
    with bilinear interpolation; pixels from outside the image get ``fill``.
    ``degrees``: a number, or an array ``(N,)`` with one angle per sample.

    Output pixel ``(i, j)``, at offset ``(u, v)`` from the centre ``((H-1)/2, (W-1)/2)``,
    reads the input at

    .. math::
        r = c_y + u\cos\theta + v\sin\theta, \qquad c = c_x - u\sin\theta + v\cos\theta

    so a square image rotated by 90 degrees equals ``np.rot90`` exactly.
    """
    x, restore = _batch(x, "rotate")
    N, C, H, W = x.shape
    theta = np.deg2rad(np.broadcast_to(np.asarray(degrees, dtype=np.float64), (N,)))
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u = (np.arange(H) - (H - 1) / 2)[None, :, None]
    v = (np.arange(W) - (W - 1) / 2)[None, None, :]
    r = (H - 1) / 2 + u * cos + v * sin                              # (N, H, W)
    c = (W - 1) / 2 - u * sin + v * cos
    # snap round-off (cos 90deg = 6e-17) so exact multiples of 90 copy pixels exactly
    r = np.where(np.abs(r - np.round(r)) < 1e-9, np.round(r), r)
    c = np.where(np.abs(c - np.round(c)) < 1e-9, np.round(c), c)
    return restore(_bilinear(x, r, c, fill))


def _bilinear(x, r, c, fill):
    """Sample x (N, C, H, W) at real coordinates r, c (N, Ho, Wo); outside -> fill.

    The image gets a one-pixel frame of ``fill`` and coordinates are clamped onto that
    frame, so a sample outside the image reads only fill -- no masks needed -- and the
    four neighbours of all pixels are fetched with one gather.
    """
    N, C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=fill)
    r = np.clip(r, -1, H) + 1                     # coordinates in the framed image
    c = np.clip(c, -1, W) + 1
    r0, c0 = np.floor(r).astype(np.intp), np.floor(c).astype(np.intp)
    fr, fc = (r - r0).astype(x.dtype), (c - c0).astype(x.dtype)
    r1, c1 = np.minimum(r0 + 1, H + 1), np.minimum(c0 + 1, W + 1)
    Wp = W + 2
    idx = np.stack([r0 * Wp + c0, r0 * Wp + c1, r1 * Wp + c0, r1 * Wp + c1], axis=1)
    vals = np.take_along_axis(xp.reshape(N, C, -1), idx.reshape(N, 1, -1), axis=2)
    v00, v01, v10, v11 = vals.reshape((N, C, 4) + r.shape[1:]).transpose(2, 0, 1, 3, 4)
    fr, fc = fr[:, None], fc[:, None]
    return (1 - fr) * ((1 - fc) * v00 + fc * v01) + fr * ((1 - fc) * v10 + fc * v11)


# ------------------------------------------------------------------- random augmentation

class _Random:
    """Base of the random transforms: where the generator comes from."""

    def __init__(self, seed=None):
        self.seed = seed
        self._rng = None

    def _gen(self, rng):
        if rng is not None:
            return as_generator(rng)
        if self._rng is None:
            self._rng = as_generator(self.seed)
        return self._rng


class RandomShift(_Random):
    """Shift each image by its own random whole-pixel ``(dy, dx)``, each uniform in
    ``[-max_shift, max_shift]``; uncovered pixels get ``fill``. For MNIST, ±2 px."""

    def __init__(self, max_shift=2, fill=0.0, seed=None):
        super().__init__(seed)
        if int(max_shift) < 0:
            raise ValueError(f"RandomShift: max_shift must be >= 0; got {max_shift}")
        self.max_shift, self.fill = int(max_shift), fill

    def __call__(self, x, rng=None):
        x, restore = _batch(x, "RandomShift")
        g = self._gen(rng)
        d = g.integers(-self.max_shift, self.max_shift + 1, size=(2, x.shape[0]))
        return restore(shift(x, d[0], d[1], self.fill))

    def __repr__(self):
        return f"RandomShift({self.max_shift})"


class RandomFlip(_Random):
    """Mirror each image left-right (``horizontal``) and/or upside-down (``vertical``),
    each with probability ``p``. Never for digits (a flipped 2 is not a 2); fine for
    fundus patches, cells and textures, which have no preferred orientation."""

    def __init__(self, horizontal=True, vertical=False, p=0.5, seed=None):
        super().__init__(seed)
        self.horizontal, self.vertical, self.p = horizontal, vertical, float(p)

    def __call__(self, x, rng=None):
        x, restore = _batch(x, "RandomFlip")
        g = self._gen(rng)
        y = x.copy()
        for on, axis in ((self.horizontal, 3), (self.vertical, 2)):
            if on:
                m = g.random(x.shape[0]) < self.p
                y[m] = np.flip(y[m], axis=axis)
        return restore(y)

    def __repr__(self):
        return f"RandomFlip(horizontal={self.horizontal}, vertical={self.vertical}, p={self.p})"


class RandomRotation(_Random):
    """Rotate each image by its own angle, uniform in ``[-max_degrees, max_degrees]``
    (bilinear; corners uncovered by the rotation get ``fill``). See :func:`rotate`."""

    def __init__(self, max_degrees=10.0, fill=0.0, seed=None):
        super().__init__(seed)
        self.max_degrees, self.fill = float(max_degrees), fill

    def __call__(self, x, rng=None):
        x, restore = _batch(x, "RandomRotation")
        g = self._gen(rng)
        angles = g.uniform(-self.max_degrees, self.max_degrees, size=x.shape[0])
        return restore(rotate(x, angles, self.fill))

    def __repr__(self):
        return f"RandomRotation({self.max_degrees})"
