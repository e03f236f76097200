"""Import an optional extra, or say in one line which ``pip install`` provides it."""
import importlib

__all__ = ["require"]

_PIP = {"torch": "torch", "onnx": "onnx", "onnxruntime": "onnxruntime"}


def require(module, feature):
    """``importlib.import_module(module)``, or an ``ImportError`` naming the fix.

    >>> require("math", "a test").sqrt(4.0)
    2.0
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{feature} needs the optional package '{_PIP.get(module, module)}': "
            f"pip install \"tinycnn[interop]\" (or pip install {_PIP.get(module, module)})"
        ) from None
