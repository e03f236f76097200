"""Model files: one ``.npz`` of plain arrays plus JSON text -- data, never code.

Layout of the archive:

* ``architecture`` -- JSON: ``{"format": 1, "tinycnn_version": ..., "layers": [{"class":
  "Conv2D", "config": {...}}, ...], "meta": {...}}``. ``meta`` carries the preprocessing
  (input shape, normalisation mean/std, class names).
* ``layer{k}.weight``, ``layer{k}.bias`` -- the parameters of layer ``k``.

It is read with ``allow_pickle=False``, so opening a model file can never run code, and
written to a temporary file that is renamed into place, so a crash mid-save never leaves a
half-written file where a good one was.
"""
import json
import os
import tempfile

import numpy as np

__all__ = ["save_model", "load_model", "FORMAT"]

FORMAT = 1


def save_model(model, path):
    """Write ``model`` (a ``Sequential``) to ``path`` atomically; returns the path."""
    from tinycnn import __version__
    from tinycnn.layers import REGISTRY

    path = os.fspath(path)
    layers = []
    arrays = {}
    for k, layer in enumerate(model.layers):
        name = type(layer).__name__
        if REGISTRY.get(name) is not type(layer):
            raise TypeError(f"save: layer {k} ({layer!r}) is not a built-in tinycnn layer; "
                            "only layers in tinycnn.layers can be saved")
        layers.append({"class": name, "config": layer.config()})
        for p in layer.parameters():
            arrays[f"layer{k}.{p.name}"] = p.data
    spec = {"format": FORMAT, "tinycnn_version": __version__, "layers": layers, "meta": model.meta}
    arrays["architecture"] = np.array(json.dumps(spec))
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tinycnn-", suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_model(path):
    """Rebuild a ``Sequential`` saved by :func:`save_model` (or ``model.save``)."""
    from tinycnn.layers import REGISTRY
    from tinycnn.model import Sequential

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no such file: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"load_model: {path} is not a tinycnn model file ({err})") from None
    with archive:
        if not hasattr(archive, "files") or "architecture" not in archive.files:
            raise ValueError(f"load_model: {path} is not a tinycnn model file (no 'architecture' entry)")
        try:
            spec = json.loads(str(archive["architecture"]))
        except ValueError as err:   # pickled objects (refused by allow_pickle=False) or bad JSON
            raise ValueError(f"load_model: {path} is not a tinycnn model file ({err})") from None
        if spec.get("format") != FORMAT:
            raise ValueError(f"load_model: {path} has model-file format {spec.get('format')!r}, "
                             f"this tinycnn reads format {FORMAT} (saved by tinycnn "
                             f"{spec.get('tinycnn_version', '?')})")
        weights = {name: archive[name] for name in archive.files if name != "architecture"}

    layers = []
    expected = set()
    for k, entry in enumerate(spec["layers"]):
        cls = REGISTRY.get(entry["class"])
        if cls is None:
            raise ValueError(f"load_model: layer {k} has unknown class {entry['class']!r}; "
                             f"known layers: {sorted(REGISTRY)}")
        layer = cls(**entry["config"])
        for p in layer.parameters():
            key = f"layer{k}.{p.name}"
            expected.add(key)
            if key not in weights:
                raise ValueError(f"load_model: {path} is missing weights {key!r} for {layer!r}")
            if weights[key].shape != p.shape:
                raise ValueError(f"load_model: {key} of {layer!r} has shape {weights[key].shape}, "
                                 f"expected {p.shape}")
            p.data = weights[key].copy()
            p.grad = np.zeros_like(p.data)
        layers.append(layer)
    extra = sorted(set(weights) - expected)
    if extra:
        raise ValueError(f"load_model: {path} holds weights no layer uses: {extra}")
    model = Sequential(*layers)
    model.meta = dict(spec.get("meta") or {})
    return model
