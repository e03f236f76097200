"""Reading a model file, trusting nothing: every check before any layer is built.

:func:`load` is what :func:`tinycnn.load_model` runs (``tinycnn/saving.py`` turns every
refusal into the one ``ValueError`` that names the path). The order of the checks:

1. :class:`~tinycnn.safe_npz.SafeNpz` opens the archive and reads every ``.npy`` header,
   bounding each array by the bytes the file really holds.
2. The ``architecture`` JSON: a readable ``format``, then the schema
   (:data:`~tinycnn.model_schema.SCHEMA`).
3. Each layer node, *planned* but not built: registered class, config keys against the
   constructor, array shapes from ``Layer.array_shapes(config)``.
4. The arrays' headers against those shapes and dtypes; nothing missing, nothing extra.
5. Only then is data read (CRC-checked) and are layers built, children first; the built
   layer must hold exactly the arrays and children the file gave it.

Layers are reached only through the ``Layer`` hooks and the registry: no layer type is
named here.
"""
import functools
import inspect
import json

import numpy as np

from tinycnn.layers.base import REGISTRY, Layer
from tinycnn.model_schema import check
from tinycnn.safe_npz import SafeNpz
from tinycnn.saving import ARRAY_DTYPES, FORMAT, MAX_DEPTH, READABLE_FORMATS, _few, _Invalid, \
    _own_arrays, _shapes_of, _short

__all__ = ["load"]


class _Plan:
    """A checked node: class, config, where it is, its arrays' shapes and its child plans."""

    def __init__(self, cls, config, label, prefix, shapes, children):
        self.cls, self.config, self.label, self.prefix = cls, config, label, prefix
        self.shapes, self.children = shapes, children

    def walk(self):
        """This plan and every plan below it."""
        yield self
        for items in self.children.values():
            for child in items:
                yield from child.walk()


def load(path):
    """Check ``path`` completely, then build its ``Sequential``; refusals are ``_Invalid``,
    ``NpzError`` or ``SchemaError`` (``load_model`` words them for the user)."""
    from tinycnn.model import Sequential
    with SafeNpz(path) as npz:
        spec = _read_architecture(npz)
        plans = [_plan(node, f"layer{k}", f"layers[{k}]", spec["format"], 0)
                 for k, node in enumerate(spec["layers"])]
        expected = {f"{p.prefix}.{name}": (shape, p.label)
                    for plan in plans for p in plan.walk() for name, shape in p.shapes.items()}
        _check_headers(npz.headers, expected)
        data = {key: npz.read(key) for key in expected}    # sizes are bounded by now
    built = [_build(plan, data) for plan in plans]
    try:                          # shape inference: a stored input shape must fit the layers
        model = Sequential(*built, input_shape=spec["meta"].get("input_shape"))
    except Exception as err:
        raise _Invalid(f"meta.input_shape {spec['meta']['input_shape']} does not fit its layers: {err}") from None
    dtypes = sorted({p.data.dtype.name for p in model.parameters()})
    if len(dtypes) > 1:
        raise _Invalid(f"its parameters mix dtypes {dtypes}; a model has one dtype")
    model.meta = spec["meta"]
    return model


def _read_architecture(npz):
    header = npz.headers.get("architecture")
    if header is None:
        raise _Invalid("it has no 'architecture' entry (it is an .npz archive, but not one written "
                       "by model.save)")
    if header.dtype.kind != "U" or header.shape != ():
        raise _Invalid(f"its 'architecture' entry is not a JSON text (dtype {header.dtype}, "
                       f"shape {header.shape})")
    try:
        spec = json.loads(str(npz.read("architecture")[()]), object_pairs_hook=_unique_keys)
    except RecursionError:
        raise _Invalid("its architecture JSON is nested too deeply") from None
    except ValueError as err:
        raise _Invalid(f"its architecture is not valid JSON ({err})") from None
    fmt = spec.get("format") if isinstance(spec, dict) else None
    if type(fmt) is int and fmt not in READABLE_FORMATS:
        from tinycnn import __version__
        newer = (f" (written by tinycnn {spec.get('tinycnn_version')!s:.20}); upgrade tinycnn to load it"
                 if fmt > FORMAT else "")
        raise _Invalid(f"it has model-file format {fmt}{newer}; tinycnn {__version__} reads formats "
                       f"{', '.join(map(str, READABLE_FORMATS))}")
    try:
        check(spec)
    except RecursionError:
        raise _Invalid("its layers are nested too deeply") from None
    return spec


def _unique_keys(pairs):
    """``json`` hook: an object as a dict, refusing a key that appears twice."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _Invalid(f"its architecture JSON repeats the key {key[:60]!r}")
        seen[key] = value
    return seen


def _plan(node, prefix, loc, fmt, depth):
    """Check one JSON node (and its children) without building anything."""
    cls = REGISTRY.get(node["class"])
    if cls is None:
        raise _Invalid(f"{loc} has unknown class {node['class'][:60]!r} (known layer classes: "
                       f"{', '.join(sorted(REGISTRY))}; a layer from another module must be "
                       "imported before loading)")
    label = f"{loc} ({node['class']})"
    if depth > MAX_DEPTH:
        raise _Invalid(f"its layers are nested deeper than {MAX_DEPTH} levels (at {label[:40]}...{label[-40:]})")
    if fmt < 2 and "children" in node:
        raise _Invalid(f"{label} has 'children', which format {fmt} files cannot have (format 2 can)")
    _check_config_keys(cls, node["config"], label)
    shapes = _shapes_of(cls, node["config"], label)
    children = {group: [_plan(child, f"{prefix}.{group}.{j}", f"{loc}.children.{group}[{j}]", fmt, depth + 1)
                        for j, child in enumerate(items)]
                for group, items in node.get("children", {}).items()}
    return _Plan(cls, node["config"], label, prefix, shapes, children)


@functools.lru_cache(maxsize=None)
def _constructor_params(cls):
    try:
        return inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return None


def _check_config_keys(cls, config, label):
    """Config keys must be constructor arguments; required ones must be there."""
    params = _constructor_params(cls)
    if params is None:
        return
    named = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(config) - set(named))
        if unknown:
            raise _Invalid(f"{label} has unknown config key(s) {_few(unknown)} ({cls.__name__} takes "
                           f"{', '.join(named) or 'no arguments'})")
    if getattr(cls.from_config, "__func__", None) is Layer.from_config.__func__:
        missing = [n for n in named if params[n].default is params[n].empty and n not in config]
        if missing:
            raise _Invalid(f"{label} config lacks {missing}")


def _check_headers(headers, expected):
    """Every expected array present, float32/float64, of the expected shape; nothing extra."""
    for key, (shape, label) in expected.items():
        header = headers.get(key)
        if header is None:
            raise _Invalid(f"{label} is missing weights {key!r} (shape {shape})")
        if header.dtype.name not in ARRAY_DTYPES:
            raise _Invalid(f"{label}: array {key!r} has dtype {header.dtype}; model arrays are "
                           f"{' or '.join(ARRAY_DTYPES)}")
        if header.shape != shape:
            raise _Invalid(f"{label}: array {key!r} has shape {header.shape}, expected {shape} "
                           "from the layer's config")
    extra = sorted(set(headers) - set(expected) - {"architecture"})
    if extra:
        raise _Invalid(f"it holds weights no layer uses: {_few(extra)}")


def _build(plan, data):
    """Construct the layer of a checked plan (children first) and put its arrays in."""
    children = {group: [_build(child, data) for child in items] for group, items in plan.children.items()}
    try:
        layer = plan.cls.from_config(dict(plan.config), children)
    except Exception as err:      # a constructor refusing a value from the file
        raise _Invalid(f"{plan.label}: config {_short(plan.config)} rejected: {err}") from None
    if not isinstance(layer, Layer):
        raise TypeError(f"{plan.cls.__name__}.from_config returned a {type(layer).__name__}, not a Layer")
    extra = sorted(set(plan.config) - set(layer.config()))
    if extra:
        raise _Invalid(f"{plan.label} has config key(s) {extra} that {plan.cls.__name__} does not save")
    held = {g: len(items) for g, items in layer.children().items() if items}
    given = {g: len(items) for g, items in plan.children.items() if items}
    if held != given:
        raise _Invalid(f"{plan.label} was given children {given} but holds {held} once built")
    params, state = _own_arrays(layer)
    actual = {name: p.shape for name, p in params.items()}
    actual.update({name: np.shape(a) for name, a in state.items()})
    if actual != plan.shapes:
        raise TypeError(f"{plan.cls.__name__}.array_shapes(config) gives {plan.shapes}, but the layer "
                        f"built from that config holds {actual}; fix {plan.cls.__name__}.array_shapes")
    for name, p in params.items():
        p.data = data[f"{plan.prefix}.{name}"]
        p.grad = np.zeros_like(p.data)
    if state:
        layer.load_state_arrays({name: data[f"{plan.prefix}.{name}"] for name in state})
    return layer
