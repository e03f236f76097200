"""Model files: one ``.npz`` of plain arrays plus a JSON architecture -- data, never code.

``docs/model_file_format.md`` is the full description; in short, the archive holds

* ``architecture`` -- a JSON text: ``{"format": 2, "tinycnn_version": "0.1.0", "layers":
  [node, ...], "meta": {...}}`` with ``node = {"class": "Conv2D", "config": {...}}`` and,
  for a layer that holds layers, ``"children": {"layers": [node, ...], "shortcut": [...]}``.
  ``meta`` carries the preprocessing (input shape, normalisation mean/std, class names).
* one array per parameter or state array, named ``<node path>.<array name>``: layer ``k``
  of the model is ``layer{k}``, child ``j`` of group ``g`` of node ``P`` is ``P.g.j``
  (``layer0.weight``, ``layer3.shortcut.0.running_mean``).

**Loading** trusts nothing (the checks live in ``tinycnn/loading.py``):
:class:`~tinycnn.safe_npz.SafeNpz` reads every ``.npy`` header and bounds each array by the
bytes the file really holds; the JSON is checked against
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
import json
import os
import re
import stat
import tempfile

import numpy as np

from tinycnn.layers.base import REGISTRY, Layer
from tinycnn.model_schema import IDENTIFIER, SchemaError, check, to_json
from tinycnn.safe_npz import NpzError

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
            isinstance(s, (tuple, list)) and all(
                isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in s)
            for s in shapes.values()):         # e.g. a negative size taken from the config
        raise _Invalid(f"{label}: bad config {_short(config)}: it gives array shapes {_short(shapes, default=str)}")
    return {name: tuple(int(n) for n in s) for name, s in shapes.items()}


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


# ============================================================== loading (checks in loading.py)

def load_model(path):
    """Rebuild a ``Sequential`` saved by :func:`save_model` (or ``model.save``).

    Raises ``FileNotFoundError`` if there is no such file and one ``ValueError``,
    ``"<path> is not a valid tinycnn model file: <reason>"``, for anything else that is not
    a sound model file (see ``docs/model_file_format.md`` for every check).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no such file: {path}")
    from tinycnn.loading import load
    try:
        return load(path)
    except (_Invalid, NpzError, SchemaError) as err:
        raise ValueError(f"{path} is not a valid tinycnn model file: {err}") from None


def _few(names, limit=8):
    """``['a', 'b', ...]``: at most ``limit`` names, each cut to 60 characters."""
    shown = [name[:60] for name in names[:limit]]
    return f"{shown}{' and more' if len(names) > limit else ''}"


def _short(value, limit=120, default=repr):
    """``value`` as JSON text, cut to ``limit`` characters (configs from files can be huge)."""
    text = json.dumps(value, default=default)
    return text if len(text) <= limit else text[:limit] + "..."
