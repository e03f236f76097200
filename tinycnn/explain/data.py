"""Everything the explainer page shows, computed by tinycnn and packed as JSON.

Arrays travel as ``{"shape": [...], "b64": "<base64 of little-endian float32>"}``: exact
(float32 is what the model computes in) and about 4/3 the size of the raw bytes.
"""
import base64

import numpy as np

from tinycnn.explain.layer_info import SUPPORTED, describe

__all__ = ["explain_data", "encode", "decode", "SUPPORTED"]


def encode(a):
    """``{"shape", "b64"}`` for an array, as little-endian float32."""
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def decode(entry):
    """The array back from :func:`encode`'s dictionary (what the page's JavaScript does)."""
    raw = base64.b64decode(entry["b64"])
    return np.frombuffer(raw, dtype="<f4").reshape(entry["shape"])


def explain_data(model, x, raw=None, class_names=None, title=None):
    """The page's data: inputs, every layer's output and parameters, prediction, maps.

    ``x`` is one model-ready image ``(C, H, W)`` (already normalised as the model expects);
    ``raw`` is the same image before normalisation, for display (default ``x``).
    """
    from tinycnn import __version__, viz

    x = viz.as_one_image(model, x, "explain", check_shape=True)
    infos = [describe(k, layer) for k, layer in enumerate(model.layers)]
    was_training = model.training
    model.eval()
    try:
        outputs, branches, a = [], {}, x
        for k, layer in enumerate(model.layers):
            groups = layer.children()
            if groups:                          # a container: also keep each branch's result
                branches[k] = {}
                for group, children in groups.items():
                    b = a
                    for child in children:
                        b = child.forward(b)
                    branches[k][group] = b[0]
            a = layer.forward(a)
            outputs.append(a[0])
        model.clear_cache()
        if outputs[-1].ndim != 1:
            raise ValueError(f"explain: the model must end in a vector of class scores, got shape {outputs[-1].shape}")
        probs = model.predict(x)[0].astype(np.float64)       # softmax, or sigmoid for one output
        kind = "sigmoid" if probs.size == 1 else "softmax"
        saliency = viz.saliency_map(model, x)
        try:
            cam = viz.grad_cam(model, x)
        except ValueError:                      # no conv layer to explain
            cam = None
    finally:
        model.train(was_training)
    rows = []
    for k, (layer, info, out) in enumerate(zip(model.layers, infos, outputs)):
        own = [] if layer.children() else layer.parameters()     # a container's are its children's
        params = {p.name: encode(p.data) for p in own}
        params.update({name: encode(value) for name, value in layer.state_arrays().items()})
        count = sum(p.size for p in layer.parameters())
        formula = layer.param_formula()
        if k in branches:
            info = {**info, "branches": {g: encode(v) for g, v in branches[k].items()}}
        rows.append({"index": k, "name": type(layer).__name__, "repr": repr(layer), **info,
                     "output": encode(out), "params": params, "param_count": int(count),
                     "formula": f"{formula} = {count:,}" if formula else ""})
    n = len(probs)
    names = list(class_names or model.meta.get("class_names") or
                 ([str(k) for k in range(n)] if n > 1 else ["positive"]))
    return {
        "title": title or "tinycnn model explainer",
        "tinycnn_version": __version__,
        "class_names": [str(s) for s in names],
        "input": {"model": encode(x[0]), "raw": encode(x[0] if raw is None else np.asarray(raw).reshape(x.shape[1:]))},
        "probabilities": [float(p) for p in probs], "output_kind": kind,
        "predicted": int(np.argmax(probs)) if n > 1 else int(probs[0] >= model.meta.get("threshold", 0.5)),
        "threshold": model.meta.get("threshold", 0.5),
        "saliency": encode(saliency), "cam": None if cam is None else encode(cam),
        "summary": str(model.summary(input_shape=x.shape[1:])),
        "layers": rows,
    }
