"""What the explainer page needs to know about each built-in layer, in one table.

For every layer class: the ``kind`` the page's JavaScript recomputes (``conv``, ``maxpool``,
``avgpool``, ``act``, ``identity``, ``flatten``, ``dense``), the hyper-parameters it needs,
the equation in plain text (the same as the layer's entry in ``docs/math_to_code.md``) and
the ``file::function`` that computes it in tinycnn. A layer missing here is refused by name.
"""
from tinycnn import layers

__all__ = ["describe", "SUPPORTED"]

_CONV_EQ = "y[f,h,w] = b[f] + Σ_c Σ_i Σ_j w[f,c,i,j] · xpad[c, h·s_h + i, w·s_w + j]"


def _conv(layer):
    return {"kind": "conv", "kernel": list(layer.kernel_size), "stride": list(layer.stride),
            "padding": list(layer.padding), "equation": _CONV_EQ,
            "code": "tinycnn/kernels/reference.py::conv2d_forward"}


def _pool(kind, equation, code):
    def info(layer):
        return {"kind": kind, "kernel": list(layer.kernel_size), "stride": list(layer.stride),
                "equation": equation, "code": code}
    return info


def _act(fn, equation, **extra):
    def info(layer):
        return {"kind": "act", "fn": fn, "equation": equation,
                "code": "tinycnn/layers/activations.py::" + type(layer).__name__ + "._f",
                **{k: getattr(layer, v) for k, v in extra.items()}}
    return info


_TABLE = {
    layers.Conv2D: _conv,
    layers.MaxPool2D: _pool("maxpool", "y[c,h,w] = max over the K_H×K_W window at (h·s_h, w·s_w) of x[c]",
                            "tinycnn/kernels/reference.py::maxpool2d_forward"),
    layers.AvgPool2D: _pool("avgpool", "y[c,h,w] = (1 / K_H·K_W) · Σ over the window at (h·s_h, w·s_w) of x[c]",
                            "tinycnn/kernels/reference.py::avgpool2d_forward"),
    layers.ReLU: _act("relu", "y = max(0, x)"),
    layers.LeakyReLU: _act("leaky_relu", "y = x if x > 0 else α·x", alpha="alpha"),
    layers.Sigmoid: _act("sigmoid", "y = 1 / (1 + e^(−x))"),
    layers.Tanh: _act("tanh", "y = tanh(x)"),
    layers.Dropout: lambda layer: {"kind": "identity", "p": layer.p,
                                   "equation": "eval mode: y = x (training: y = x · mask / (1 − p))",
                                   "code": "tinycnn/layers/dropout.py::Dropout.forward"},
    layers.Flatten: lambda layer: {"kind": "flatten",
                                   "equation": "y[c·H·W + h·W + w] = x[c, h, w]",
                                   "code": "tinycnn/layers/dense.py::Flatten.forward"},
    layers.Dense: lambda layer: {"kind": "dense", "equation": "y[o] = b[o] + Σ_i W[o,i] · x[i]",
                                 "code": "tinycnn/kernels/reference.py::dense_forward"},
    layers.GlobalAvgPool2D: lambda layer: {"kind": "gap", "equation": "y[c] = (1 / H·W) · Σ_h Σ_w x[c,h,w]",
                                           "code": "tinycnn/layers/pooling.py::GlobalAvgPool2D.forward"},
    layers.BatchNorm2D: lambda layer: _batchnorm(layer),
    layers.BatchNorm1D: lambda layer: _batchnorm(layer),
    layers.Residual: lambda layer: {
        "kind": "residual", "equation": "y = F(x) + S(x)  (S = identity when there is no shortcut)",
        "code": "tinycnn/layers/residual.py::Residual.forward",
        "branch": [repr(child) for child in layer.layers],
        "shortcut": [repr(child) for child in layer.shortcut]},
}


def _batchnorm(layer):
    return {"kind": "batchnorm", "eps": layer.eps,
            "equation": "eval mode: y[c,…] = γ[c] · (x[c,…] − running_mean[c]) / √(running_var[c] + ε) + β[c]",
            "code": "tinycnn/kernels/batchnorm.py::batchnorm_forward"}

SUPPORTED = tuple(cls.__name__ for cls in _TABLE)


def describe(k, layer):
    """The page's description of ``layer`` (the ``k``-th of its model)."""
    info = _TABLE.get(type(layer))
    if info is None:
        raise TypeError(f"explain: layer {k} ({layer!r}) is not supported by the explainer page; "
                        f"supported layers: {', '.join(SUPPORTED)}")
    return info(layer)
