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


def _conv(layer, x, y, name, weights):
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    inputs = [x, weights(f"{name}.weight", layer.weight.data)]
    if getattr(layer, "bias", None) is not None:
        inputs.append(weights(f"{name}.bias", layer.bias.data))
    return "Conv", inputs, {"kernel_shape": [kh, kw], "strides": [sh, sw], "pads": [ph, pw, ph, pw]}


def _pool(op):
    def node(layer, x, y, name, weights):
        return op, [x], {"kernel_shape": list(layer.kernel_size), "strides": list(layer.stride)}
    return node


def _dense(layer, x, y, name, weights):
    return "Gemm", [x, weights(f"{name}.weight", layer.weight.data),
                    weights(f"{name}.bias", layer.bias.data)], {"transB": 1}


def _plain(op, **attrs):
    return lambda layer, x, y, name, weights: (op, [x], dict(attrs))


def _batchnorm(layer, x, y, name, weights):
    inputs = [x] + [weights(f"{name}.{key}", value) for key, value in
                    (("weight", layer.weight.data), ("bias", layer.bias.data),
                     ("running_mean", layer.running_mean), ("running_var", layer.running_var))]
    return "BatchNormalization", inputs, {"epsilon": layer.eps}


_TO_ONNX = {
    layers.Conv2D: _conv,
    layers.MaxPool2D: _pool("MaxPool"),
    layers.AvgPool2D: _pool("AveragePool"),
    layers.Dense: _dense,
    layers.Flatten: _plain("Flatten", axis=1),
    layers.ReLU: _plain("Relu"),
    layers.LeakyReLU: lambda l, x, y, n, w: ("LeakyRelu", [x], {"alpha": l.alpha}),
    layers.Sigmoid: _plain("Sigmoid"),
    layers.Tanh: _plain("Tanh"),
    layers.Dropout: _plain("Identity"),
    layers.BatchNorm2D: _batchnorm,
    layers.BatchNorm1D: _batchnorm,
}


def _emit(layer, x, name, nodes, weights):
    """Append the nodes computing ``layer`` on the tensor named ``x``; return the output's name."""
    if type(layer) is layers.Residual:                    # y = F(x) + S(x)
        f = s = x
        for j, child in enumerate(layer.layers):
            f = _emit(child, f, f"{name}.layers.{j}", nodes, weights)
        for j, child in enumerate(layer.shortcut):
            s = _emit(child, s, f"{name}.shortcut.{j}", nodes, weights)
        y = f"{name}.out"
        nodes.append(_helper().make_node("Add", [f, s], [y], name=f"{name}:{layer!r}"))
        return y
    if type(layer) is layers.GlobalAvgPool2D:            # (N, C, H, W) -> (N, C, 1, 1) -> (N, C)
        nodes.append(_helper().make_node("GlobalAveragePool", [x], [f"{name}.pooled"], name=f"{name}:pool"))
        nodes.append(_helper().make_node("Flatten", [f"{name}.pooled"], [f"{name}.out"], name=f"{name}:flatten", axis=1))
        return f"{name}.out"
    make = _TO_ONNX.get(type(layer))
    if make is None:
        raise TypeError(f"export_onnx: {name} ({layer!r}) has no ONNX counterpart; supported layers: "
                        f"{', '.join(c.__name__ for c in _TO_ONNX)}, GlobalAvgPool2D, Residual")
    y = f"{name}.out"
    op, inputs, attrs = make(layer, x, y, name, weights)
    nodes.append(_helper().make_node(op, inputs, [y], name=f"{name}:{layer!r}", **attrs))
    return y


def _helper():
    return require("onnx", "tinycnn.interop.export_onnx").helper


def export_onnx(model, path, input_shape=None):
    """Write ``model`` to ``path`` as an ONNX graph (opset :data:`OPSET`); returns the path.

    ``input_shape`` is the per-sample shape ``(C, H, W)``; by default the one recorded in
    ``model.meta`` (set by training or ``Sequential(..., input_shape=...)``). The model's
    ``meta`` (normalisation, class names) travels along as JSON in the graph's metadata
    under the key ``"tinycnn.meta"``.
    """
    onnx = require("onnx", "tinycnn.interop.export_onnx")
    helper, TensorProto = onnx.helper, onnx.TensorProto
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
        initializers.append(helper.make_tensor(name, TensorProto.FLOAT, array.shape,
                                               np.asarray(array, np.float32).ravel().tolist()))
        return name

    if not model.layers:
        raise ValueError("export_onnx: the model has no layers")
    nodes, x = [], "input"
    for k, layer in enumerate(model.layers):
        x = _emit(layer, x, f"layer{k}", nodes, weights)
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
