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

    Besides the text it carries ``rows`` (one tuple of cells per layer, header first; the
    inner layers of a container follow its row, their names indented two spaces per
    level), ``total``, ``trainable`` and ``frozen`` parameter counts.
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
        cell = lambda tag, c: f"<{tag} style='text-align:left'>{_indent_html(c)}</{tag}>"  # noqa: E731
        trs = ["<tr>" + "".join(cell("th", c) for c in head) + "</tr>"]
        trs += ["<tr>" + "".join(cell("td", c) for c in row) + "</tr>" for row in body]
        foot = html.escape(str(self).splitlines()[-1])
        return f"<table>{''.join(trs)}</table><p>{foot}</p>"


def _indent_html(c):
    """Escape a cell; keep an inner layer's leading indentation visible (HTML collapses spaces)."""
    stripped = c.lstrip(" ")
    return "&nbsp;" * (len(c) - len(stripped)) + html.escape(stripped)


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


def _shape_cell(shape):
    return "?" if shape is None else "(N, " + ", ".join(str(s) for s in shape) + ")"


def _count_cell(params):
    """``(count, trainable, "count[ frozen]")`` for a list of Parameters."""
    count = sum(p.size for p in params)
    n_trainable = sum(p.size for p in params if p.trainable)
    state = "" if n_trainable == count else " frozen" if n_trainable == 0 else \
        f" ({count - n_trainable:,} frozen)"
    return count, n_trainable, f"{count:,}{state}"


def _group_shapes(group, input_shape):
    """``(input_shape, output_shape)`` of each layer of a container's group, walked from the
    container's input (``None`` once the shape is unknown or a layer cannot say)."""
    pairs, shape = [], input_shape
    for layer in group:
        out = None
        if shape is not None:
            try:
                out = tuple(int(s) for s in layer.output_shape(shape))
            except (ValueError, TypeError, IndexError):
                out = None
        pairs.append((shape, out))
        shape = out
    return pairs


def _layer_rows(layer, input_shape, output_shape, depth, prefix=""):
    """The row of ``layer`` and, for a container, the rows of its inner layers, each
    indented two spaces per level; a group other than ``layers`` (e.g. a Residual's
    ``shortcut``) names itself on each of its rows."""
    count, _, cell = _count_cell(layer.parameters())
    groups = {name: list(group) for name, group in layer.children().items()}
    if groups:      # a container: its count is the sum of its groups', shown group by group
        parts = [f"{name} {sum(p.size for inner in group for p in inner.parameters()):,}"
                 for name, group in groups.items()]
        formula = " + ".join(parts) + f" = {count:,}"
    else:
        formula = layer.param_formula()
        formula = f"{formula} = {count:,}" if formula else ""
    rows = [("  " * depth + prefix + repr(layer), _shape_cell(output_shape), cell, formula)]
    for name, group in groups.items():
        label = "" if name == "layers" else f"{name}: "
        for inner, (shape_in, shape_out) in zip(group, _group_shapes(group, input_shape)):
            rows += _layer_rows(inner, shape_in, shape_out, depth + 1, label)
    return rows


def summarize(model, input_shape=None):
    """The :class:`ModelSummary` of a model with ``.layers``: layer, output shape, parameter
    count with its formula, and trainable/frozen totals.

    A container layer (one with :meth:`~tinycnn.layers.Layer.children`, e.g. ``Residual``)
    gets one row with its block's parameter count, split by group (``layers 4,608 +
    shortcut 576 = 5,184``), followed by its inner layers indented under it, each with its
    own output shape and count; the totals count every parameter once.
    """
    layers = model.layers
    shapes = [(None, None)] * len(layers) if input_shape is None else \
        infer_shapes(layers, input_shape, type(model).__name__)
    rows = [("Layer", "Output shape", "Params", "Formula")]
    total = trainable = 0
    for layer, (shape_in, shape_out) in zip(layers, shapes):
        count, n_trainable, _ = _count_cell(layer.parameters())
        total, trainable = total + count, trainable + n_trainable
        rows += _layer_rows(layer, shape_in, shape_out, depth=0)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    line = "-" * (sum(widths) + 6)
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    text = [fmt(rows[0]), line] + [fmt(r) for r in rows[1:]] + [line]
    text.append(f"Total parameters: {total:,} (trainable: {trainable:,}, frozen: {total - trainable:,})")
    return ModelSummary("\n".join(text), rows, total, trainable)
