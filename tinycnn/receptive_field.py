r"""Receptive fields: which input pixels can change one unit of a layer.

Walk the layers from the input. Along each spatial axis, after layer :math:`\ell` the
units form a grid described by three numbers:

* the **size** :math:`r_\ell` -- how many input pixels one unit sees;
* the **jump** :math:`j_\ell` -- how far apart (in input pixels) the fields of two
  neighbouring units start (the product of all strides so far);
* the **start** :math:`a_\ell` -- the input coordinate where unit 0's field begins
  (negative when padding reaches past the image border).

Unit :math:`h` of layer :math:`\ell` then sees input rows
:math:`a_\ell + h\,j_\ell,\ \dots,\ a_\ell + h\,j_\ell + r_\ell - 1`. The input itself has
:math:`r_0 = 1, j_0 = 1, a_0 = 0`. A layer with kernel :math:`k`, stride :math:`s`, padding
:math:`p` and dilation :math:`d` (its taps :math:`d` apart, so it spans
:math:`k_{eff} = d(k - 1) + 1` of its input units) gives

.. math::
    r_\ell = r_{\ell-1} + (k_{eff} - 1)\, j_{\ell-1}, \qquad
    j_\ell = j_{\ell-1}\, s, \qquad
    a_\ell = a_{\ell-1} - p\, j_{\ell-1}.

Each extra tap adds one *input-unit* step :math:`j_{\ell-1}` to the field: that is why
strides and pooling early make later kernels see much more. A layer says what its window
is through ``Layer.receptive_window(input_shape)`` -- ``((k, s, p), (k, s, p))`` per axis, or
``None`` when every output may mix its whole input (Dense, Flatten); nothing here looks at
layer types. After a ``None`` the grid is gone and the reported field is the union of all
units' fields.

The field is an upper bound on what *can* matter: a max-pool passes the gradient to one
winner, a ReLU blocks it where it is off, so one unit's gradient with respect to the input
(:func:`input_gradient`) is usually non-zero on a subset of its field only.

>>> import tinycnn as tc
>>> from tinycnn import layers
>>> m = tc.Sequential(layers.Conv2D(1, 1, kernel_size=3, rng=0), layers.MaxPool2D(2),
...                   layers.Conv2D(1, 1, kernel_size=3, rng=0))
>>> rf = tc.receptive_field(m, (1, 16, 16))
>>> [(row.size, row.jump, row.start) for row in rf]
[((3, 3), (1, 1), (0, 0)), ((4, 4), (2, 2), (0, 0)), ((8, 8), (2, 2), (0, 0))]
"""
from dataclasses import dataclass

import numpy as np

__all__ = ["receptive_field", "ReceptiveField", "FieldRow", "input_gradient"]


@dataclass(frozen=True)
class FieldRow:
    """Receptive field of the units after one layer; pairs are (rows, columns).

    ``jump`` is None once the pixel grid has ended (after Flatten/Dense): then ``size`` and
    ``start`` describe the union of the fields of all units.
    """
    index: int
    layer: str
    output_shape: tuple
    size: tuple
    jump: tuple
    start: tuple

    @property
    def grid(self):
        """True while the units still form a pixel grid."""
        return self.jump is not None

    def as_dict(self):
        """Plain, JSON-friendly dict of this row."""
        return {"index": self.index, "layer": self.layer, "output_shape": list(self.output_shape),
                "size": list(self.size), "jump": None if self.jump is None else list(self.jump),
                "start": list(self.start)}


def _window(layer, input_shape):
    """The layer's per-axis ``(k, s, p, d)`` windows, or None; validated."""
    window = layer.receptive_window(tuple(input_shape))
    if window is None:
        return None
    try:
        axes = [tuple(int(v) for v in axis) for axis in window]
    except TypeError:
        axes = []
    if len(axes) != 2 or any(len(a) not in (3, 4) for a in axes):
        raise ValueError(f"receptive_field: {layer!r}.receptive_window() must return None or two "
                         f"(kernel, stride, padding[, dilation]) tuples, got {window!r}")
    axes = [a + (1,) if len(a) == 3 else a for a in axes]
    for k, s, p, d in axes:
        if k < 1 or s < 1 or p < 0 or d < 1:
            raise ValueError(f"receptive_field: {layer!r}.receptive_window() gave kernel {k}, stride "
                             f"{s}, padding {p}, dilation {d}; expected kernel, stride, dilation >= 1 "
                             "and padding >= 0")
    return axes


class ReceptiveField:
    """The result of :func:`receptive_field`: one :class:`FieldRow` per layer.

    ``rf[k]`` is the row after layer ``k`` (``rf[-1]``: the model's output); ``str(rf)`` is a
    table; ``rf.to_list()`` gives plain dicts; ``rf.box(k, (h, w))`` the input rows and
    columns one unit sees, clipped to the image.
    """

    def __init__(self, input_shape, rows):
        self.input_shape = tuple(input_shape)
        self.rows = list(rows)

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, k):
        return self.rows[k]

    def to_list(self):
        """Every row as a plain dict (for JSON or a DataFrame)."""
        return [row.as_dict() for row in self.rows]

    def box(self, k, unit=(0, 0)):
        """``((row_start, row_stop), (col_start, col_stop))``, stop exclusive: the input pixels
        that unit ``(h, w)`` after layer ``k`` sees, clipped to the image (slice-ready)."""
        row = self.rows[k]
        jump = row.jump or (0, 0)
        out = []
        for axis in range(2):
            lo = row.start[axis] + unit[axis] * jump[axis]
            hi = lo + row.size[axis]
            out.append((max(lo, 0), min(hi, self.input_shape[1 + axis])))
        return tuple(out)

    def __str__(self):
        pair = lambda v: "—" if v is None else (f"{v[0]}" if v[0] == v[1] else f"{v[0]}×{v[1]}")  # noqa: E731
        H, W = self.input_shape[1:]
        table = [("#", "Layer", "Output shape", "Field", "Jump", "Start", "Note"),
                 ("", "input", "(" + ", ".join(map(str, self.input_shape)) + ")", "1", "1", "0", "")]
        for row in self.rows:
            note = ""
            if not row.grid:
                whole = self.box(row.index) == ((0, H), (0, W))
                note = "no grid: union of all fields" + (" = whole input" if whole else "")
            elif row.size[0] >= H and row.size[1] >= W:
                note = f"≥ the {H}×{W} input"
            size = f"{row.size[0]}×{row.size[1]}"
            table.append((str(row.index), row.layer, "(" + ", ".join(map(str, row.output_shape)) + ")",
                          size, pair(row.jump), pair(row.start), note))
        widths = [max(len(r[i]) for r in table) for i in range(7)]
        fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
        line = "-" * (sum(widths) + 12)
        return "\n".join([fmt(table[0]), line] + [fmt(r) for r in table[1:]] + [line])

    def __repr__(self):
        last = self.rows[-1] if self.rows else None
        size = "—" if last is None else f"{last.size[0]}×{last.size[1]}"
        return f"ReceptiveField(input_shape={self.input_shape}, layers={len(self.rows)}, final field {size})"


def receptive_field(model, input_shape=None):
    """Receptive field size, jump and start after every layer of ``model`` (see module docs).

    ``model`` is a ``Sequential`` (or a list of layers); ``input_shape`` is one sample's
    ``(C, H, W)`` (default: ``model.meta["input_shape"]``). Returns a
    :class:`ReceptiveField`. Raises ValueError if a layer's window disagrees with the output
    size it reports (a custom layer that changes the grid must override
    ``Layer.receptive_window``).
    """
    layers = list(getattr(model, "layers", model))
    if input_shape is None:
        input_shape = (getattr(model, "meta", None) or {}).get("input_shape")
    if input_shape is None or len(tuple(input_shape)) != 3:
        raise ValueError(f"receptive_field: input_shape must be one sample's (C, H, W), got {input_shape!r}"
                         + ("; hint: pass input_shape=(1, 28, 28)" if input_shape is None else ""))
    input_shape = tuple(int(v) for v in input_shape)
    shape = input_shape
    n, r, j, a = list(input_shape[1:]), [1, 1], [1, 1], [0, 0]
    grid = True
    rows = []
    for index, layer in enumerate(layers):
        out_shape = tuple(layer.output_shape(shape))
        window = _window(layer, shape) if grid else None
        if grid and window is None:                   # the grid ends: union of every unit's field
            r = [r[ax] + (n[ax] - 1) * j[ax] for ax in range(2)]
            grid = False
        elif grid:
            for ax, (k, s, p, d) in enumerate(window):
                k_eff = d * (k - 1) + 1
                r[ax], a[ax], j[ax] = r[ax] + (k_eff - 1) * j[ax], a[ax] - p * j[ax], j[ax] * s
                n[ax] = (n[ax] + 2 * p - k_eff) // s + 1
            if len(out_shape) != 3 or list(out_shape[1:]) != n:
                raise ValueError(
                    f"receptive_field: layer {index} {layer!r} maps {shape} to {out_shape}, but its "
                    f"receptive_window() {window!r} gives a {n[0]}×{n[1]} grid; a layer that changes "
                    "the grid must override Layer.receptive_window (None if it mixes everything)")
        rows.append(FieldRow(index, repr(layer), out_shape, tuple(r), tuple(j) if grid else None, tuple(a)))
        shape = out_shape
    return ReceptiveField(input_shape, rows)


def input_gradient(model, x, layer=-1, unit=None):
    """``∂ y[unit] / ∂ x`` for one sample ``x`` ``(C, H, W)``: the empirical counterpart of
    the receptive field, measured with the model's own backward passes.

    ``y`` is the output of layer ``layer`` (an index into ``model.layers``); ``unit`` indexes
    one sample's output, e.g. ``(channel, h, w)`` or ``(feature,)``; default: channel 0 at the
    centre of the grid. Dropout is off (eval mode) while measuring; modes and every
    parameter's ``.grad`` are restored afterwards. Returns an array shaped like ``x``.
    """
    layers = list(getattr(model, "layers", model))
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"input_gradient: expected one sample (C, H, W), got shape {x.shape}")
    chosen = layers[:len(layers) + layer + 1 if layer < 0 else layer + 1]
    if not chosen:
        raise ValueError(f"input_gradient: layer {layer} is not in a model of {len(layers)} layers")
    modes = [lyr.training for lyr in chosen]
    grads = [p.grad.copy() for lyr in chosen for p in lyr.parameters()]
    try:
        y = x[None]
        for lyr in chosen:
            lyr.eval()
            y = lyr.forward(y)
        if unit is None:
            unit = (0,) + tuple(s // 2 for s in y.shape[2:]) if y.ndim == 4 else (0,)
        dy = np.zeros_like(y)
        dy[(0,) + tuple(unit)] = 1
        for lyr in reversed(chosen):
            dy = lyr.backward(dy)
    finally:
        for lyr, mode in zip(chosen, modes):
            lyr.train(mode)
            lyr.clear_cache()
        for p, g in zip((p for lyr in chosen for p in lyr.parameters()), grads):
            p.grad[...] = g
    return dy[0]
