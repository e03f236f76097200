"""Export a tinycnn model as an ONNX inference graph, built with ``onnx.helper`` alone.

The graph takes ``input`` ``(batch, C, H, W)`` (the batch axis is dynamic) and returns
two outputs: ``logits`` (what ``model.forward`` returns) and ``probabilities`` (what
``model.predict`` returns: softmax over classes, or a sigmoid for a one-output model).

==================  ==========================================================
tinycnn             ONNX operator (opset :data:`OPSET`)
==================  ==========================================================
Conv2D              Conv(kernel_shape, strides, pads = [ph, pw, ph, pw])
MaxPool2D           MaxPool(kernel_shape, strides)
AvgPool2D           AveragePool(kernel_shape, strides)   (no padding: nothing to count)
Dense               Gemm(x, W, b, transB=1)              y = x Wᵀ + b
Flatten             Flatten(axis=1)
ReLU / LeakyReLU    Relu / LeakyRelu(alpha)
Sigmoid / Tanh      Sigmoid / Tanh
Dropout             Identity                              (inference: dropout is off)
GlobalAvgPool2D     GlobalAveragePool, then Flatten(axis=1)
BatchNorm2D / 1D    BatchNormalization(epsilon) with the running statistics
Residual            the branch's nodes, the shortcut's nodes, then Add
==================  ==========================================================

Weights are stored as float32 initializers (ONNX runtimes compute convolutions in float32),
so a float64 model agrees with its export to float32 rounding.
"""
import json
import os

import numpy as np

from tinycnn import layers
from tinycnn.interop.extras import require
from tinycnn.model import Sequential

__all__ = ["export_onnx", "OPSET"]

OPSET = 17


# Each converter appends the nodes that compute ``layer`` on the tensor named ``x`` -- as
# plain (op, inputs, output, attributes) tuples -- and returns its output's name.
# ``weights(name, array)`` registers an initializer and returns its name.
def _one(op, attrs_of=lambda layer: {}):
    """A layer that is one ONNX node: inputs ``x``, then the layer's parameters and state
    arrays in their order (weight, bias; BatchNorm: γ, β, running mean, running variance --
    the order of ONNX's Conv, Gemm and BatchNormalization inputs)."""
    def emit(layer, x, name, nodes, weights):
        arrays = [(p.name, p.data) for p in layer.parameters()] + list(layer.state_arrays().items())
        inputs = [x] + [weights(f"{name}.{key}", value) for key, value in arrays]
        nodes.append((op, inputs, f"{name}.out", attrs_of(layer)))
        return f"{name}.out"
    return emit


def _window(layer):
    return {"kernel_shape": list(layer.kernel_size), "strides": list(layer.stride)}


def _conv_attrs(layer):
    (ph, pw) = layer.padding
    return {**_window(layer), "pads": [ph, pw, ph, pw]}


def _global_avg_pool(layer, x, name, nodes, weights):      # (N, C, H, W) -> (N, C, 1, 1) -> (N, C)
    nodes.append(("GlobalAveragePool", [x], f"{name}.pooled", {}))
    nodes.append(("Flatten", [f"{name}.pooled"], f"{name}.out", {"axis": 1}))
    return f"{name}.out"


def _residual(layer, x, name, nodes, weights):              # y = F(x) + S(x)
    f = s = x
    for j, child in enumerate(layer.layers):
        f = _emit(child, f, f"{name}.layers.{j}", nodes, weights)
    for j, child in enumerate(layer.shortcut):
        s = _emit(child, s, f"{name}.shortcut.{j}", nodes, weights)
    nodes.append(("Add", [f, s], f"{name}.out", {}))
    return f"{name}.out"


_BATCHNORM = _one("BatchNormalization", lambda l: {"epsilon": l.eps})

_TO_ONNX = {
    layers.Conv2D: _one("Conv", _conv_attrs),
    layers.MaxPool2D: _one("MaxPool", _window),
    layers.AvgPool2D: _one("AveragePool", _window),
    layers.GlobalAvgPool2D: _global_avg_pool,
    layers.Dense: _one("Gemm", lambda l: {"transB": 1}),
    layers.Flatten: _one("Flatten", lambda l: {"axis": 1}),
    layers.ReLU: _one("Relu"),
    layers.LeakyReLU: _one("LeakyRelu", lambda l: {"alpha": l.alpha}),
    layers.Sigmoid: _one("Sigmoid"),
    layers.Tanh: _one("Tanh"),
    layers.Dropout: _one("Identity"),
    layers.BatchNorm2D: _BATCHNORM,
    layers.BatchNorm1D: _BATCHNORM,
    layers.Residual: _residual,
}


def _emit(layer, x, name, nodes, weights):
    """Append the nodes computing ``layer`` on the tensor named ``x``; return the output's name."""
    emit = _TO_ONNX.get(type(layer))
    if emit is None:
        raise TypeError(f"export_onnx: {name} ({layer!r}) has no ONNX counterpart; supported layers: "
                        f"{', '.join(c.__name__ for c in _TO_ONNX)}")
    return emit(layer, x, name, nodes, weights)


def export_onnx(model, path, input_shape=None):
    """Write ``model`` to ``path`` as an ONNX graph (opset :data:`OPSET`); returns the path.

    ``input_shape`` is the per-sample shape ``(C, H, W)``; by default the one recorded in
    ``model.meta`` (set by training or ``Sequential(..., input_shape=...)``). The model's
    ``meta`` (normalisation, class names) travels along as JSON in the graph's metadata
    under the key ``"tinycnn.meta"``.
    """
    onnx = require("onnx", "tinycnn.interop.export_onnx")
    from onnx import TensorProto, helper, numpy_helper
    if not isinstance(model, Sequential):
        raise TypeError(f"export_onnx: expected a tinycnn Sequential, got {type(model).__name__}")
    shape = input_shape if input_shape is not None else model.meta.get("input_shape")
    if shape is None:
        raise ValueError("export_onnx: the model has no recorded input shape; pass "
                         "input_shape=(C, H, W)")
    shape = tuple(int(s) for s in shape)
    out_shape = shape
    for layer in model.layers:                  # shape inference: a mismatch fails here, clearly
        out_shape = layer.output_shape(out_shape)
    if len(out_shape) != 1:
        raise ValueError(f"export_onnx: the model must end in a vector of class scores; "
                         f"its output per sample has shape {out_shape}")

    initializers = []

    def weights(name, array):
        initializers.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    if not model.layers:
        raise ValueError("export_onnx: the model has no layers")
    steps, x = [], "input"
    for k, layer in enumerate(model.layers):
        x = _emit(layer, x, f"layer{k}", steps, weights)
    nodes = [helper.make_node(op, inputs, [out], name=out, **attrs) for op, inputs, out, attrs in steps]
    nodes.append(helper.make_node("Identity", [x], ["logits"], name="logits"))
    probs = "Sigmoid" if out_shape[0] == 1 else "Softmax"
    nodes.append(helper.make_node(probs, ["logits"], ["probabilities"], name=probs,
                                  **({} if probs == "Sigmoid" else {"axis": 1})))

    def value(name, dims):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *dims])

    graph = helper.make_graph(nodes, "tinycnn", [value("input", shape)],
                              [value("logits", out_shape), value("probabilities", out_shape)],
                              initializer=initializers)
    onnx_model = helper.make_model(graph, producer_name="tinycnn",
                                   opset_imports=[helper.make_opsetid("", OPSET)])
    onnx_model.ir_version = min(onnx_model.ir_version, 8)   # readable by older runtimes too
    helper.set_model_props(onnx_model, {"tinycnn.meta": json.dumps(model.meta, default=_jsonable)})
    onnx.checker.check_model(onnx_model)
    path = os.fspath(path)
    onnx.save(onnx_model, path)
    return path


def _jsonable(value):
    return value.tolist() if hasattr(value, "tolist") else str(value)
