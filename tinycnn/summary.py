"""``model.summary()``: the table of layers, output shapes and parameter counts, and the
shape inference behind it.

Shape inference walks the layers with per-sample shapes (no batch axis), calling each
layer's ``output_shape``; a layer that cannot take the shape it is given raises
``ValueError``, and :func:`infer_shapes` adds where that shape came from, so a
Flatten/Dense mismatch is reported when the model is built, with both numbers::

    Sequential(input_shape=(1, 28, 28)): layer 7, Dense(400→120) expects 400 input
    features, got 256; its input is the output of layer 6, Flatten(): 16·4·4 = 256
"""
import html

__all__ = ["ModelSummary", "infer_shapes", "summarize"]


class ModelSummary(str):
    """The summary table: a ``str`` that a REPL or a notebook displays as the table itself.

    Besides the text it carries ``rows`` (one tuple of cells per layer, header first),
    ``total``, ``trainable`` and ``frozen`` parameter counts.
    """

    def __new__(cls, text, rows=(), total=0, trainable=0):
        obj = super().__new__(cls, text)
        obj.rows, obj.total, obj.trainable = list(rows), total, trainable
        obj.frozen = total - trainable
        return obj

    def __repr__(self):
        return str(self)

    def _repr_pretty_(self, printer, cycle):
        """IPython's plain-text display: the table, not a quoted string."""
        printer.text(str(self))

    def _repr_html_(self):
        """Jupyter's rich display: an HTML table."""
        head, *body = self.rows
        cell = lambda tag, c: f"<{tag} style='text-align:left'>{html.escape(c)}</{tag}>"  # noqa: E731
        trs = ["<tr>" + "".join(cell("th", c) for c in head) + "</tr>"]
        trs += ["<tr>" + "".join(cell("td", c) for c in row) + "</tr>" for row in body]
        foot = html.escape(str(self).splitlines()[-1])
        return f"<table>{''.join(trs)}</table><p>{foot}</p>"


def _describe(shape, came_from):
    """``16·4·4 = 256`` when a flat shape came from a multi-axis one, else the tuple."""
    if len(shape) == 1 and came_from is not None and len(came_from) > 1:
        return "·".join(str(s) for s in came_from) + f" = {shape[0]}"
    return str(tuple(shape))


def infer_shapes(layers, input_shape, owner="Sequential"):
    """Per-sample ``(input_shape, output_shape)`` of every layer, for an ``input_shape``
    without the batch axis, e.g. ``(1, 28, 28)``.

    Raises ``ValueError`` naming the layer that cannot take its input, what it expected,
    what it got, and which layer produced it.
    """
    shape = tuple(int(s) for s in input_shape)
    where = f"{owner}(input_shape={shape})"
    shapes = []
    for k, layer in enumerate(layers):
        if k == 0:
            source = f"; the model's input shape is {shape}"
        else:
            source = (f"; its input is the output of layer {k - 1}, {layers[k - 1]!r}: "
                      f"{_describe(shape, shapes[-1][0])}")
        try:
            out = tuple(int(s) for s in layer.output_shape(shape))
        except ValueError as err:
            raise ValueError(f"{where}: layer {k}, {err}{source}") from None
        if any(s < 1 for s in out):
            raise ValueError(f"{where}: layer {k}, {layer!r} would output the empty shape {out} "
                             f"from {shape}; its window is larger than its input{source}")
        shapes.append((shape, out))
        shape = out
    return shapes


def summarize(model, input_shape=None):
    """The :class:`ModelSummary` of a model with ``.layers``: layer, output shape, parameter
    count with its formula, and trainable/frozen totals."""
    layers = model.layers
    shapes = [None] * len(layers) if input_shape is None else \
        [out for _, out in infer_shapes(layers, input_shape, type(model).__name__)]
    rows = [("Layer", "Output shape", "Params", "Formula")]
    total = trainable = 0
    for layer, shape in zip(layers, shapes):
        params = layer.parameters()
        count = sum(p.size for p in params)
        n_trainable = sum(p.size for p in params if p.trainable)
        total, trainable = total + count, trainable + n_trainable
        out = "?" if shape is None else "(N, " + ", ".join(str(s) for s in shape) + ")"
        state = "" if n_trainable == count else " frozen" if n_trainable == 0 else \
            f" ({count - n_trainable:,} frozen)"
        formula = layer.param_formula()
        rows.append((repr(layer), out, f"{count:,}{state}", f"{formula} = {count:,}" if formula else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    line = "-" * (sum(widths) + 6)
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    text = [fmt(rows[0]), line] + [fmt(r) for r in rows[1:]] + [line]
    text.append(f"Total parameters: {total:,} (trainable: {trainable:,}, frozen: {total - trainable:,})")
    return ModelSummary("\n".join(text), rows, total, trainable)
