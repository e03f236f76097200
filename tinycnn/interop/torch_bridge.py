"""tinycnn ⇄ PyTorch, one layer at a time.

==================  ==============================  ======================================
tinycnn             PyTorch                         what is copied
==================  ==============================  ======================================
Conv2D              nn.Conv2d                       weight (F, C, KH, KW), bias (F,) if any
MaxPool2D           nn.MaxPool2d                    kernel size, stride
AvgPool2D           nn.AvgPool2d                    kernel size, stride
GlobalAvgPool2D     GlobalAvgPool2d (below)         --
Dense               nn.Linear                       weight (out, in), bias (out,)
Flatten             nn.Flatten                      --
ReLU / LeakyReLU    nn.ReLU / nn.LeakyReLU          negative slope α
Sigmoid / Tanh      nn.Sigmoid / nn.Tanh            --
Dropout             nn.Dropout                      p
BatchNorm2D / 1D    nn.BatchNorm2d / nn.BatchNorm1d  γ, β, running mean and variance
Residual            Residual (below)                both branches, recursively
==================  ==============================  ======================================

The arrays need no transpose: tinycnn stores them in PyTorch's layouts. ``GlobalAvgPool2d``
and ``Residual`` are three-line modules in :mod:`tinycnn.interop.torch_modules` (``torch.nn``
has no single module for either); :func:`torch_code` prints them along with the model. A
layer with no row here is refused with a ``TypeError`` that lists the rows.
"""
import numpy as np

from tinycnn import layers
from tinycnn.interop.extras import require
from tinycnn.model import Sequential

__all__ = ["to_torch", "from_torch", "torch_code", "SUPPORTED"]

SUPPORTED = ("Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Dense", "Flatten", "ReLU",
             "LeakyReLU", "Sigmoid", "Tanh", "Dropout", "BatchNorm2D", "BatchNorm1D", "Residual")


def _array(t):
    return t.detach().cpu().numpy().copy()


def _bias_of(layer):
    bias = getattr(layer, "bias", None)
    return None if bias is None else bias.data


# ------------------------------------------------------------------ tinycnn -> PyTorch
# Each entry maps a layer to (module name, positional args, keyword args): enough to build
# the module *and* to print the line of code that builds it. Names without "nn." are the
# modules of tinycnn.interop.torch_modules.
def _conv_spec(layer):
    kwargs = {"kernel_size": tuple(layer.kernel_size), "stride": tuple(layer.stride),
              "padding": tuple(layer.padding)}
    if _bias_of(layer) is None:
        kwargs["bias"] = False
    return "nn.Conv2d", (layer.in_channels, layer.out_channels), kwargs


def _pool_spec(name):
    def spec(layer):
        return name, (), {"kernel_size": tuple(layer.kernel_size), "stride": tuple(layer.stride)}
    return spec


def _bn_spec(name):
    def spec(layer):
        return name, (layer.num_features,), {"eps": layer.eps, "momentum": layer.momentum}
    return spec


_TO_TORCH = {
    layers.Conv2D: _conv_spec,
    layers.MaxPool2D: _pool_spec("nn.MaxPool2d"),
    layers.AvgPool2D: _pool_spec("nn.AvgPool2d"),
    layers.GlobalAvgPool2D: lambda l: ("GlobalAvgPool2d", (), {}),
    layers.Dense: lambda l: ("nn.Linear", (l.in_features, l.out_features), {}),
    layers.Flatten: lambda l: ("nn.Flatten", (), {}),
    layers.ReLU: lambda l: ("nn.ReLU", (), {}),
    layers.LeakyReLU: lambda l: ("nn.LeakyReLU", (), {"negative_slope": l.alpha}),
    layers.Sigmoid: lambda l: ("nn.Sigmoid", (), {}),
    layers.Tanh: lambda l: ("nn.Tanh", (), {}),
    layers.Dropout: lambda l: ("nn.Dropout", (), {"p": l.p}),
    layers.BatchNorm2D: _bn_spec("nn.BatchNorm2d"),
    layers.BatchNorm1D: _bn_spec("nn.BatchNorm1d"),
}


def _spec(layer, where, kind):
    if type(layer) is layers.Residual:
        return "Residual", None, None
    spec = _TO_TORCH.get(type(layer))
    if spec is None:
        raise TypeError(f"{kind}: {where} ({layer!r}) has no PyTorch counterpart in tinycnn.interop; "
                        f"supported layers: {', '.join(SUPPORTED)}")
    return spec(layer)


def _check_model(model, kind):
    if not isinstance(model, Sequential):
        raise TypeError(f"{kind}: expected a tinycnn Sequential, got {type(model).__name__}")


def _build(layer, where, torch, custom):
    """The module for ``layer``, weights and running statistics copied."""
    nn = torch.nn
    name, args, kwargs = _spec(layer, where, "to_torch")
    if name == "Residual":
        f = nn.Sequential(*[_build(l, f"{where}.layers[{k}]", torch, custom) for k, l in enumerate(layer.layers)])
        s = nn.Sequential(*[_build(l, f"{where}.shortcut[{k}]", torch, custom) for k, l in enumerate(layer.shortcut)])
        return custom.Residual(f, s)
    owner = nn if name.startswith("nn.") else custom
    module = getattr(owner, name.split(".")[-1])(*args, **kwargs).to(getattr(torch, _dtype_of(layer).name))
    with torch.no_grad():
        for p in layer.parameters():                           # weight, bias (γ, β for BatchNorm)
            getattr(module, p.name).copy_(torch.from_numpy(np.array(p.data)))
        for key, value in layer.state_arrays().items():        # running statistics
            getattr(module, key).copy_(torch.from_numpy(np.array(value)))
    return module


def _dtype_of(layer):
    """The dtype of a layer's parameters (float32 when it has none)."""
    params = layer.parameters()
    return params[0].data.dtype if params else np.dtype(np.float32)


def to_torch(model):
    """A ``torch.nn.Sequential`` computing the same function, weights copied.

    The module has the model's dtype and mode (``train()``/``eval()``); its state-dict keys
    are ``"<layer index>.weight"`` / ``"<layer index>.bias"`` (``"<k>.f.<j>.weight"`` inside a
    residual block), as ``nn.Sequential`` names them.
    """
    torch = require("torch", "tinycnn.interop.to_torch")
    from tinycnn.interop import torch_modules as custom
    _check_model(model, "to_torch")
    modules = [_build(layer, f"layer {k}", torch, custom) for k, layer in enumerate(model.layers)]
    return torch.nn.Sequential(*modules).train(model.training)     # each module has its layer's dtype


def _format(spec):
    name, args, kwargs = spec
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def _code_lines(layer, where, indent):
    pad = " " * indent
    name, args, kwargs = _spec(layer, where, "torch_code")
    if name != "Residual":
        return [f"{pad}{_format((name, args, kwargs))},"]
    lines = [f"{pad}Residual(", f"{pad}    nn.Sequential("]
    for k, child in enumerate(layer.layers):
        lines += _code_lines(child, f"{where}.layers[{k}]", indent + 8)
    lines += [f"{pad}    ),", f"{pad}    nn.Sequential("]
    for k, child in enumerate(layer.shortcut):
        lines += _code_lines(child, f"{where}.shortcut[{k}]", indent + 8)
    return lines + [f"{pad}    ),", f"{pad}),"]


def _uses(layer):
    names = set()
    for group in layer.children().values():
        for child in group:
            names |= _uses(child)
    name = _spec(layer, "", "torch_code")[0]
    return names | ({name} if not name.startswith("nn.") else set())


def torch_code(model, state_dict_path=None):
    """Python source that rebuilds ``to_torch(model)`` (and loads its weights, if given a path).

    >>> from tinycnn import layers
    >>> print(torch_code(Sequential(layers.Flatten(), layers.Dense(4, 2, rng=0))))
    import torch
    from torch import nn
    <BLANKLINE>
    model = nn.Sequential(
        nn.Flatten(),                                    # 0: Flatten()
        nn.Linear(4, 2),                                 # 1: Dense(4→2)
    )
    """
    _check_model(model, "torch_code")
    lines = ["import torch", "from torch import nn", ""]
    custom = sorted(set().union(*[_uses(layer) for layer in model.layers]) if model.layers else set())
    if custom:
        from tinycnn.interop.torch_modules import SOURCE
        for name in custom:
            lines += [SOURCE[name], "", ""]
    lines.append("model = nn.Sequential(")
    for k, layer in enumerate(model.layers):
        block = _code_lines(layer, f"layer {k}", 4)
        block[0] = f"{block[0]:<52} # {k}: {layer!r}" if len(block) == 1 else f"{block[0]}  # {k}: {layer!r}"
        lines += block
    lines.append(")")
    if model.dtype == np.float64:
        lines.append("model = model.double()")
    if state_dict_path is not None:
        lines.append(f"model.load_state_dict(torch.load({str(state_dict_path)!r}, weights_only=True))")
    return "\n".join(lines)


# ------------------------------------------------------------------ PyTorch -> tinycnn
def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(int(a) for a in v)


def _dtype(t):
    return np.dtype(str(t.dtype).replace("torch.", ""))


def _conv_from(m, convert):
    if m.groups != 1 or _pair(m.dilation) != (1, 1) or m.padding_mode != "zeros":
        raise TypeError(f"from_torch: {m} uses groups, dilation or non-zero padding, "
                        "which tinycnn's Conv2D does not have")
    padding = m.padding
    if isinstance(padding, str):        # "valid" or "same" (PyTorch allows "same" at stride 1)
        kh, kw = m.kernel_size
        if padding == "same" and (kh % 2 == 0 or kw % 2 == 0):
            raise TypeError(f"from_torch: {m} pads 'same' with an even kernel (asymmetric padding)")
        padding = (0, 0) if padding == "valid" else (kh // 2, kw // 2)
    return layers.Conv2D(m.in_channels, m.out_channels, tuple(m.kernel_size), stride=tuple(m.stride),
                         padding=tuple(padding), bias=m.bias is not None, rng=0, dtype=_dtype(m.weight))


def _pool_from(cls):
    def build(m, convert):
        if _pair(m.padding) != (0, 0) or m.ceil_mode or _pair(getattr(m, "dilation", 1)) != (1, 1):
            raise TypeError(f"from_torch: {m} uses padding, ceil_mode or dilation, which "
                            f"tinycnn's {cls.__name__} does not have")
        stride = m.kernel_size if m.stride is None else m.stride
        return cls(_pair(m.kernel_size), stride=_pair(stride))
    return build


def _bn_from(cls):
    def build(m, convert):
        if not (m.affine and m.track_running_stats) or m.momentum is None:
            raise TypeError(f"from_torch: {m} needs affine=True, track_running_stats=True and a "
                            f"momentum, as tinycnn's {cls.__name__} has")
        return cls(m.num_features, eps=m.eps, momentum=m.momentum, dtype=_dtype(m.weight))
    return build


def _flatten_from(m, convert):
    if m.start_dim != 1 or m.end_dim != -1:
        raise TypeError(f"from_torch: {m} must flatten from dim 1 to -1, as tinycnn's Flatten does")
    return layers.Flatten()


def _residual_from(m, convert):
    return layers.Residual(*convert(m.f), shortcut=convert(m.shortcut) or None)


def _from_table(nn, custom):
    return {
        nn.Conv2d: _conv_from,
        nn.MaxPool2d: _pool_from(layers.MaxPool2D),
        nn.AvgPool2d: _pool_from(layers.AvgPool2D),
        custom.GlobalAvgPool2d: lambda m, c: layers.GlobalAvgPool2D(),
        nn.Linear: lambda m, c: layers.Dense(m.in_features, m.out_features, rng=0, dtype=_dtype(m.weight)),
        nn.Flatten: _flatten_from,
        nn.ReLU: lambda m, c: layers.ReLU(),
        nn.LeakyReLU: lambda m, c: layers.LeakyReLU(m.negative_slope),
        nn.Sigmoid: lambda m, c: layers.Sigmoid(),
        nn.Tanh: lambda m, c: layers.Tanh(),
        nn.Dropout: lambda m, c: layers.Dropout(m.p),
        nn.BatchNorm2d: _bn_from(layers.BatchNorm2D),
        nn.BatchNorm1d: _bn_from(layers.BatchNorm1D),
        custom.Residual: _residual_from,
    }


def _copy_arrays(layer, m):
    """Weights (and running statistics) of module ``m`` into ``layer``, recursively."""
    if type(layer) is layers.Residual:
        for child, sub in zip(layer.layers, m.f):
            _copy_arrays(child, sub)
        for child, sub in zip(layer.shortcut, m.shortcut):
            _copy_arrays(child, sub)
        return
    for p in layer.parameters():
        tensor = getattr(m, p.name)
        if tensor is not None:           # nn.Linear(bias=False): the Dense keeps its zero bias
            p.data = _array(tensor)
            p.grad = np.zeros_like(p.data)
    state = {key: _array(getattr(m, key)) for key in layer.state_arrays()}
    if state:
        layer.load_state_arrays(state)


def from_torch(module, input_shape=None):
    """A tinycnn ``Sequential`` with the layers and weights of a PyTorch ``nn.Sequential``.

    ``input_shape`` (per sample, e.g. ``(1, 28, 28)``) is recorded in ``model.meta`` so the
    model can be summarised and saved with it.
    """
    torch = require("torch", "tinycnn.interop.from_torch")
    from tinycnn.interop import torch_modules as custom
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"from_torch: expected a torch.nn.Sequential, got {type(module).__name__}; "
                        "wrap a custom module's layers in nn.Sequential first")
    table = _from_table(nn, custom)

    def convert(container):
        converted = []
        for k, m in enumerate(_leaves(container, nn)):
            build = table.get(type(m))
            if build is None:
                supported = ", ".join(sorted(t.__name__ for t in table))
                raise TypeError(f"from_torch: module {k} ({type(m).__name__}: {m}) has no tinycnn "
                                f"counterpart; supported modules: {supported}, nested nn.Sequential")
            layer = build(m, convert)
            _copy_arrays(layer, m)
            converted.append(layer)
        return converted

    model = Sequential(*convert(module), input_shape=input_shape)
    return model.train(module.training)


def _leaves(module, nn):
    """The modules of nested ``nn.Sequential`` containers, in order."""
    for child in module.children():
        if type(child) is nn.Sequential:
            yield from _leaves(child, nn)
        else:
            yield child
