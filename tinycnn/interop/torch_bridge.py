"""tinycnn ⇄ PyTorch, one layer at a time.

==================  =========================  ========================================
tinycnn             PyTorch                    what is copied
==================  =========================  ========================================
Conv2D              nn.Conv2d                  weight (F, C, KH, KW), bias (F,) if any
MaxPool2D           nn.MaxPool2d               kernel size, stride
AvgPool2D           nn.AvgPool2d               kernel size, stride
Dense               nn.Linear                  weight (out, in), bias (out,)
Flatten             nn.Flatten                 --
ReLU / LeakyReLU    nn.ReLU / nn.LeakyReLU     negative slope α
Sigmoid / Tanh      nn.Sigmoid / nn.Tanh       --
Dropout             nn.Dropout                 p
==================  =========================  ========================================

The arrays need no transpose: tinycnn stores them in PyTorch's layouts. A layer with no
row here is refused with a ``TypeError`` that lists the rows, never skipped quietly.
"""
import numpy as np

from tinycnn import layers
from tinycnn.interop.extras import require
from tinycnn.model import Sequential

__all__ = ["to_torch", "from_torch", "torch_code", "SUPPORTED"]

SUPPORTED = ("Conv2D", "MaxPool2D", "AvgPool2D", "Dense", "Flatten", "ReLU", "LeakyReLU",
             "Sigmoid", "Tanh", "Dropout")


def _tensor(torch, a):
    return torch.from_numpy(np.array(a, copy=True))


def _array(t):
    return t.detach().cpu().numpy().copy()


def _bias_of(layer):
    bias = getattr(layer, "bias", None)
    return None if bias is None else bias.data


# ------------------------------------------------------------------ tinycnn -> PyTorch
# Each entry maps a layer to (PyTorch class name, positional args, keyword args): enough to
# build the module *and* to print the line of code that builds it.
def _conv_spec(layer):
    kwargs = {"kernel_size": tuple(layer.kernel_size), "stride": tuple(layer.stride),
              "padding": tuple(layer.padding)}
    if _bias_of(layer) is None:
        kwargs["bias"] = False
    return "Conv2d", (layer.in_channels, layer.out_channels), kwargs


def _pool_spec(name):
    def spec(layer):
        return name, (), {"kernel_size": tuple(layer.kernel_size), "stride": tuple(layer.stride)}
    return spec


_TO_TORCH = {
    layers.Conv2D: _conv_spec,
    layers.MaxPool2D: _pool_spec("MaxPool2d"),
    layers.AvgPool2D: _pool_spec("AvgPool2d"),
    layers.Dense: lambda l: ("Linear", (l.in_features, l.out_features), {}),
    layers.Flatten: lambda l: ("Flatten", (), {}),
    layers.ReLU: lambda l: ("ReLU", (), {}),
    layers.LeakyReLU: lambda l: ("LeakyReLU", (), {"negative_slope": l.alpha}),
    layers.Sigmoid: lambda l: ("Sigmoid", (), {}),
    layers.Tanh: lambda l: ("Tanh", (), {}),
    layers.Dropout: lambda l: ("Dropout", (), {"p": l.p}),
}


def _unsupported(what, kind):
    return TypeError(f"{kind}: {what} has no PyTorch counterpart in tinycnn.interop; "
                     f"supported layers: {', '.join(SUPPORTED)}")


def _specs(model, kind):
    if not isinstance(model, Sequential):
        raise TypeError(f"{kind}: expected a tinycnn Sequential, got {type(model).__name__}")
    specs = []
    for k, layer in enumerate(model.layers):
        spec = _TO_TORCH.get(type(layer))
        if spec is None:
            raise _unsupported(f"layer {k} ({layer!r})", kind)
        specs.append(spec(layer))
    return specs


def _code(name, args, kwargs):
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"nn.{name}({', '.join(parts)})"


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
    lines = ["import torch", "from torch import nn", "", "model = nn.Sequential("]
    for k, (spec, layer) in enumerate(zip(_specs(model, "torch_code"), model.layers)):
        lines.append(f"    {_code(*spec) + ',':<48} # {k}: {layer!r}")
    lines.append(")")
    if model.dtype == np.float64:
        lines.append("model = model.double()")
    if state_dict_path is not None:
        lines.append(f"model.load_state_dict(torch.load({str(state_dict_path)!r}, weights_only=True))")
    return "\n".join(lines)


def to_torch(model):
    """A ``torch.nn.Sequential`` computing the same function, weights copied.

    The module has the model's dtype and mode (``train()``/``eval()``); its state-dict keys
    are ``"<layer index>.weight"`` / ``"<layer index>.bias"``, as in ``nn.Sequential``.
    """
    torch = require("torch", "tinycnn.interop.to_torch")
    nn = torch.nn
    modules = [getattr(nn, name)(*args, **kwargs) for name, args, kwargs in _specs(model, "to_torch")]
    module = nn.Sequential(*modules)
    if model.dtype == np.float64:
        module = module.double()
    with torch.no_grad():
        for layer, m in zip(model.layers, modules):
            if getattr(layer, "weight", None) is not None:
                m.weight.copy_(_tensor(torch, layer.weight.data))
            if _bias_of(layer) is not None:
                m.bias.copy_(_tensor(torch, layer.bias.data))
    return module.train(model.training)


# ------------------------------------------------------------------ PyTorch -> tinycnn
def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(int(a) for a in v)


def _conv_from(m, nn):
    if m.groups != 1 or _pair(m.dilation) != (1, 1) or m.padding_mode != "zeros":
        raise TypeError(f"from_torch: {m} uses groups, dilation or non-zero padding, "
                        "which tinycnn's Conv2D does not have")
    padding = m.padding
    if isinstance(padding, str):        # "valid" or "same" (PyTorch allows "same" at stride 1)
        kh, kw = m.kernel_size
        if padding == "same" and (kh % 2 == 0 or kw % 2 == 0):
            raise TypeError(f"from_torch: {m} pads 'same' with an even kernel (asymmetric padding)")
        padding = (0, 0) if padding == "valid" else (kh // 2, kw // 2)
    layer = layers.Conv2D(m.in_channels, m.out_channels, tuple(m.kernel_size), stride=tuple(m.stride),
                          padding=tuple(padding), rng=0, dtype=_dtype(m.weight))
    layer.weight.data[...] = _array(m.weight)
    if m.bias is None:
        if hasattr(layer, "bias") and layer.bias is not None:
            layer.bias.data[...] = 0       # a tinycnn Conv2D without bias=False keeps a zero bias
    else:
        layer.bias.data[...] = _array(m.bias)
    return layer


def _pool_from(cls):
    def convert(m, nn):
        if _pair(m.padding) != (0, 0) or m.ceil_mode or _pair(getattr(m, "dilation", 1)) != (1, 1):
            raise TypeError(f"from_torch: {m} uses padding, ceil_mode or dilation, which "
                            f"tinycnn's {cls.__name__} does not have")
        stride = m.kernel_size if m.stride is None else m.stride
        return cls(_pair(m.kernel_size), stride=_pair(stride))
    return convert


def _linear_from(m, nn):
    layer = layers.Dense(m.in_features, m.out_features, rng=0, dtype=_dtype(m.weight))
    layer.weight.data[...] = _array(m.weight)
    if m.bias is not None:
        layer.bias.data[...] = _array(m.bias)
    else:
        layer.bias.data[...] = 0
    return layer


def _flatten_from(m, nn):
    if m.start_dim != 1 or m.end_dim != -1:
        raise TypeError(f"from_torch: {m} must flatten from dim 1 to -1, as tinycnn's Flatten does")
    return layers.Flatten()


def _dtype(t):
    return np.dtype(str(t.dtype).replace("torch.", ""))


def _from_table(nn):
    return {
        nn.Conv2d: _conv_from,
        nn.MaxPool2d: _pool_from(layers.MaxPool2D),
        nn.AvgPool2d: _pool_from(layers.AvgPool2D),
        nn.Linear: _linear_from,
        nn.Flatten: _flatten_from,
        nn.ReLU: lambda m, nn: layers.ReLU(),
        nn.LeakyReLU: lambda m, nn: layers.LeakyReLU(m.negative_slope),
        nn.Sigmoid: lambda m, nn: layers.Sigmoid(),
        nn.Tanh: lambda m, nn: layers.Tanh(),
        nn.Dropout: lambda m, nn: layers.Dropout(m.p),
    }


def _leaves(module, nn):
    """The modules of nested ``nn.Sequential`` containers, in order."""
    for child in module.children():
        if type(child) is nn.Sequential:
            yield from _leaves(child, nn)
        else:
            yield child


def from_torch(module, input_shape=None):
    """A tinycnn ``Sequential`` with the layers and weights of a PyTorch ``nn.Sequential``.

    ``input_shape`` (per sample, e.g. ``(1, 28, 28)``) is recorded in ``model.meta`` so the
    model can be summarised and saved with it.
    """
    torch = require("torch", "tinycnn.interop.from_torch")
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"from_torch: expected a torch.nn.Sequential, got {type(module).__name__}; "
                        "wrap a custom module's layers in nn.Sequential first")
    table = _from_table(nn)
    converted = []
    for k, m in enumerate(_leaves(module, nn)):
        convert = table.get(type(m))
        if convert is None:
            supported = ", ".join(sorted(t.__name__ for t in table))
            raise TypeError(f"from_torch: module {k} ({type(m).__name__}: {m}) has no tinycnn "
                            f"counterpart; supported modules: {supported}, nested nn.Sequential")
        converted.append(convert(m, nn))
    model = Sequential(*converted, input_shape=input_shape)
    return model.train(module.training)
