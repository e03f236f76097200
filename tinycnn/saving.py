"""Model files: one ``.npz`` of plain arrays plus a JSON architecture -- data, never code.

``docs/model_file_format.md`` is the full description; in short, the archive holds

* ``architecture`` -- a JSON text: ``{"format": 2, "tinycnn_version": "0.1.0", "layers":
  [node, ...], "meta": {...}}`` with ``node = {"class": "Conv2D", "config": {...}}`` and,
  for a layer that holds layers, ``"children": {"layers": [node, ...], "shortcut": [...]}``.
  ``meta`` carries the preprocessing (input shape, normalisation mean/std, class names).
* one array per parameter or state array, named ``<node path>.<array name>``: layer ``k``
  of the model is ``layer{k}``, child ``j`` of group ``g`` of node ``P`` is ``P.g.j``
  (``layer0.weight``, ``layer3.shortcut.0.running_mean``).

**Loading** trusts nothing: :class:`~tinycnn.safe_npz.SafeNpz` reads every ``.npy`` header
and bounds each array by the bytes the file really holds; the JSON is checked against
:data:`~tinycnn.model_schema.SCHEMA`; every layer's config against its constructor and its
array shapes (``Layer.array_shapes(config)``) against those headers -- all before any layer
is built or any weight is read. Whatever is wrong, the error is one ``ValueError``:
``"<path> is not a valid tinycnn model file: <what is wrong>"``. Pickle is never enabled.

**Saving** writes a temporary file in the target folder and renames it into place
(``os.replace``), so a crash never leaves half a file where a good one was; the file gets
the permissions any new file of the user gets (or keeps those of the file it replaces).

Layers are reached only through the ``Layer`` hooks (``config``, ``array_shapes``,
``parameters``, ``state_arrays``, ``load_state_arrays``, ``children``, ``from_config``) and
the class registry, so a new layer type needs no edit here.
"""
import inspect
import json
import os
import re
import stat
import tempfile

import numpy as np

from tinycnn.layers.base import REGISTRY, Layer
from tinycnn.model_schema import IDENTIFIER, SchemaError, check, to_json
from tinycnn.safe_npz import NpzError, SafeNpz

__all__ = ["save_model", "load_model", "FORMAT", "READABLE_FORMATS", "ARRAY_DTYPES"]

FORMAT = 2                    # written by save_model; bump it by the rule in the docs
READABLE_FORMATS = (1, 2)     # 1: flat list of layers, parameters only (tinycnn <= 0.1.0)
ARRAY_DTYPES = ("float32", "float64")
MAX_DEPTH = 32                # layers inside layers inside ...


class _Invalid(Exception):
    """Why a file is refused; :func:`load_model` turns it into the one ValueError."""


# ============================================================== saving

def save_model(model, path):
    """Write ``model`` (a ``Sequential``) to ``path`` atomically; returns the path.

    ``model.meta`` may hold NumPy scalars and arrays (stored as JSON numbers and lists);
    anything JSON cannot hold raises ``TypeError`` naming the key.
    """
    from tinycnn import __version__
    path = os.fspath(path)
    arrays = {}
    layers = [_node(layer, f"layer{k}", f"layers[{k}]", arrays, 0) for k, layer in enumerate(model.layers)]
    meta = to_json(model.meta if model.meta is not None else {}, "meta")
    spec = {"format": FORMAT, "tinycnn_version": __version__, "layers": layers, "meta": meta}
    try:
        check(spec)                       # never write a file that load_model would refuse
    except SchemaError as err:
        raise ValueError(f"save: {err} (load_model would refuse such a file)") from None
    arrays["architecture"] = np.array(json.dumps(spec))
    _write_atomically(path, arrays)
    return path


def _node(layer, prefix, loc, arrays, depth):
    """The JSON node of ``layer``; its arrays go into ``arrays`` under ``prefix.<name>``."""
    if not isinstance(layer, Layer):
        raise TypeError(f"save: {loc} is a {type(layer).__name__}, not a tinycnn Layer")
    cls, label = type(layer), f"{loc} ({layer!r})"
    if depth > MAX_DEPTH:
        raise ValueError(f"save: {label} is nested deeper than {MAX_DEPTH} levels")
    if REGISTRY.get(cls.__name__) is not cls:
        raise TypeError(f"save: {label} is a {cls.__module__}.{cls.__qualname__}, which is not a "
                        f"registered tinycnn layer, so load_model could not rebuild it; {_why_unregistered(cls)}")
    config = to_json(layer.config(), f"{loc} config")
    node = {"class": cls.__name__, "config": config}
    groups = layer.children()
    if groups:
        node["children"] = {}
        for group, items in groups.items():
            if not (isinstance(group, str) and re.search(IDENTIFIER, group)):
                raise TypeError(f"save: {label}.children() group name {group!r} is not an identifier")
            node["children"][group] = [
                _node(child, f"{prefix}.{group}.{j}", f"{loc}.children.{group}[{j}]", arrays, depth + 1)
                for j, child in enumerate(items)]
    params, state = _own_arrays(layer)
    held = {name: p.data for name, p in params.items()}
    held.update({name: np.asarray(a) for name, a in state.items()})
    for name, a in held.items():
        if not re.search(IDENTIFIER, name):
            raise TypeError(f"save: {label} has an array named {name!r}; names must be identifiers")
        if a.dtype.name not in ARRAY_DTYPES:
            raise TypeError(f"save: {label} array {name!r} has dtype {a.dtype}; model files hold "
                            f"{' or '.join(ARRAY_DTYPES)} (hint: model.to(np.float32))")
        arrays[f"{prefix}.{name}"] = a
    try:
        declared = _shapes_of(cls, config, label)
    except _Invalid as err:
        raise TypeError(f"save: {err}") from None
    actual = {name: tuple(a.shape) for name, a in held.items()}
    if declared != actual:
        raise TypeError(f"save: {cls.__name__}.array_shapes(config) gives {declared}, but {label} holds "
                        f"{actual}; a layer with arrays must override Layer.array_shapes (see "
                        "tinycnn.layers.base) so that files can be checked before they are loaded")
    return node


def _why_unregistered(cls):
    if "<locals>" in cls.__qualname__:
        return "define the class at module level (classes made inside functions are not registered)"
    if cls.__name__.startswith("_"):
        return "give it a public name (names starting with '_' are not registered)"
    other = REGISTRY.get(cls.__name__)
    return (f"the name {cls.__name__!r} already belongs to {other.__module__}.{other.__qualname__}; "
            "rename the class")


def _own_arrays(layer):
    """``({name: Parameter}, {name: array})`` held by ``layer`` itself, not by its children."""
    inner = {id(p) for items in layer.children().values() for child in items for p in child.parameters()}
    params = {}
    for p in layer.parameters():
        if id(p) in inner:
            continue
        if p.name in params:
            raise TypeError(f"{layer!r} has two parameters named {p.name!r}; names must be unique")
        params[p.name] = p
    state = dict(layer.state_arrays())
    if set(params) & set(state):
        raise TypeError(f"{layer!r}: {sorted(set(params) & set(state))} is both a parameter and a state array")
    return params, state


def _shapes_of(cls, config, label):
    """``cls.array_shapes(config)`` as ``{name: tuple of ints}``; a bad config is ``_Invalid``."""
    try:
        shapes = cls.array_shapes(config)
    except Exception as err:     # the config came from a file: any failure means a bad config
        raise _Invalid(f"{label}: bad config {_short(config)}: {err}") from None
    if not isinstance(shapes, dict) or not all(
            isinstance(s, (tuple, list)) and all(isinstance(n, int) and n >= 0 for n in s)
            for s in shapes.values()):         # e.g. a negative size taken from the config
        raise _Invalid(f"{label}: bad config {_short(config)}: it gives array shapes {_short(shapes)}")
    return {name: tuple(s) for name, s in shapes.items()}


def _write_atomically(path, arrays):
    """``np.savez`` into a temp file next to ``path``, fsync, chmod, then ``os.replace``."""
    mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.isfile(path) else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=".tinycnn-", suffix=".npz.tmp",
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)      # mkstemp makes 0600; a model file is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _umask():
    """The process umask (read from /proc on Linux; elsewhere set and restored at once)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ============================================================== loading

def load_model(path):
    """Rebuild a ``Sequential`` saved by :func:`save_model` (or ``model.save``).

    Raises ``FileNotFoundError`` if there is no such file and one ``ValueError``,
    ``"<path> is not a valid tinycnn model file: <reason>"``, for anything else that is not
    a sound model file (see ``docs/model_file_format.md`` for every check).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no such file: {path}")
    try:
        return _load(path)
    except (_Invalid, NpzError, SchemaError) as err:
        raise ValueError(f"{path} is not a valid tinycnn model file: {err}") from None


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


def _load(path):
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
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _Invalid(f"its architecture JSON repeats the key {next(k for k in keys if keys.count(k) > 1)!r}")
    return dict(pairs)


def _plan(node, prefix, loc, fmt, depth):
    """Check one JSON node (and its children) without building anything."""
    cls = REGISTRY.get(node["class"])
    if cls is None:
        raise _Invalid(f"{loc} has unknown class {node['class'][:60]!r} (known layer classes: "
                       f"{', '.join(sorted(REGISTRY))}; a layer from another module must be "
                       "imported before loading)")
    label = f"{loc} ({node['class']})"
    if depth > MAX_DEPTH:
        raise _Invalid(f"{label} is nested deeper than {MAX_DEPTH} levels")
    if fmt < 2 and "children" in node:
        raise _Invalid(f"{label} has 'children', which format {fmt} files cannot have (format 2 can)")
    _check_config_keys(cls, node["config"], label)
    shapes = _shapes_of(cls, node["config"], label)
    children = {group: [_plan(child, f"{prefix}.{group}.{j}", f"{loc}.children.{group}[{j}]", fmt, depth + 1)
                        for j, child in enumerate(items)]
                for group, items in node.get("children", {}).items()}
    return _Plan(cls, node["config"], label, prefix, shapes, children)


def _check_config_keys(cls, config, label):
    """Config keys must be constructor arguments; required ones must be there."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
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


def _few(names, limit=8):
    """``['a', 'b', ...]``: at most ``limit`` names, each cut to 60 characters."""
    shown = [name[:60] for name in names[:limit]]
    return f"{shown}{' and more' if len(names) > limit else ''}"


def _short(value, limit=120):
    text = json.dumps(value, default=repr)
    return text if len(text) <= limit else text[:limit] + "..."
