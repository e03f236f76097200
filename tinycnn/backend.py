"""Which kernel implementation the layers call.

Two backends share one set of function signatures (see ``tinycnn.kernels``):

* ``"numba"`` (default) -- ``tinycnn.kernels.fast``, JIT-compiled loops and BLAS;
* ``"reference"`` -- ``tinycnn.kernels.reference``, readable NumPy that *is* the spec.

>>> import tinycnn
>>> tinycnn.get_backend()
'numba'
>>> with tinycnn.use_backend("reference"):
...     tinycnn.get_backend()
'reference'

The kernel modules are imported lazily, on the first layer call, so ``import tinycnn``
never imports or compiles Numba code.
"""
from contextlib import contextmanager
import importlib

__all__ = ["set_backend", "get_backend", "use_backend", "kernels", "BACKENDS"]

BACKENDS = {
    "numba": "tinycnn.kernels.fast",
    "reference": "tinycnn.kernels.reference",
}

_current = "numba"


def set_backend(name):
    """Make ``name`` ("numba" or "reference") the backend every layer calls."""
    global _current
    if name not in BACKENDS:
        raise ValueError(
            f"set_backend: unknown backend {name!r}; expected one of {sorted(BACKENDS)}"
        )
    _current = name


def get_backend():
    """Name of the backend layers currently call."""
    return _current


@contextmanager
def use_backend(name):
    """Temporarily switch backend: ``with use_backend("reference"): ...``."""
    previous = _current
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def kernels(name=None):
    """The kernel module of backend ``name`` (default: the current one)."""
    name = _current if name is None else name
    if name not in BACKENDS:
        raise ValueError(f"kernels: unknown backend {name!r}; expected one of {sorted(BACKENDS)}")
    module = _loaded.get(name)
    if module is None:          # every layer call asks: import_module costs ~3 us a time
        module = _loaded[name] = importlib.import_module(BACKENDS[name])
    return module


_loaded = {}    # backend name -> its imported kernel module
