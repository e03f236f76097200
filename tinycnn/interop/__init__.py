"""The road out: tinycnn models to and from PyTorch, and to ONNX.

tinycnn's layouts are PyTorch's (NCHW, conv weight ``(F, C, KH, KW)``, dense weight
``(out, in)``), so moving a model across is a table lookup per layer plus a copy of its
arrays -- no transposes. PyTorch, ``onnx`` and ``onnxruntime`` are optional extras,
imported only when one of these functions is called::

    pip install -e ".[interop]"

* :func:`to_torch` -- a ``torch.nn.Sequential`` with the same layers and weights.
* :func:`from_torch` -- back again; ``from_torch(to_torch(m))`` has bit-identical weights.
* :func:`torch_code` -- the Python source that rebuilds the PyTorch module.
* :func:`export_onnx` -- an ONNX graph written with ``onnx.helper`` (no PyTorch needed).
"""
from tinycnn.interop.onnx_export import OPSET, export_onnx
from tinycnn.interop.torch_bridge import SUPPORTED, from_torch, to_torch, torch_code

__all__ = ["to_torch", "from_torch", "torch_code", "export_onnx", "SUPPORTED", "OPSET"]
