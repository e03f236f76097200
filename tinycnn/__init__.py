"""tinycnn -- a from-scratch, educational convolutional neural network framework.

Every layer has an explicit forward and backward pass; the hot loops are Numba-compiled
next to a readable NumPy twin; every gradient is checked against finite differences.

>>> import numpy as np, tinycnn as tc
>>> from tinycnn import layers
>>> model = tc.Sequential(layers.Conv2D(1, 2, kernel_size=3, rng=0), layers.ReLU(),
...                       layers.Flatten(), layers.Dense(2 * 4 * 4, 3, rng=0))
>>> model.forward(np.zeros((5, 1, 6, 6), np.float32)).shape
(5, 3)
"""
__version__ = "0.1.0"

from tinycnn import datasets, init, layers, losses, metrics, models, optim, transforms, viz
from tinycnn.backend import get_backend, set_backend, use_backend
from tinycnn.gradcheck import assert_gradients_close, gradcheck
from tinycnn.model import Sequential
from tinycnn.parameter import Parameter
from tinycnn.receptive_field import receptive_field
from tinycnn.saving import load_model
from tinycnn.train import Callback, DivergenceError, EarlyStopping, History

__all__ = [
    "__version__", "Sequential", "Parameter", "load_model", "gradcheck", "assert_gradients_close",
    "get_backend", "set_backend", "use_backend", "warmup", "set_num_threads", "History", "EarlyStopping",
    "Callback", "DivergenceError", "receptive_field",
    "layers", "losses", "optim", "init", "datasets", "transforms", "metrics", "viz", "models",
]


def warmup(dtypes=("float32", "float64"), verbose=False, *, model=None, x=None):
    """Compile (or load from Numba's cache) the fast kernels before the first training step.

    Without ``model``: every kernel, for each dtype in ``dtypes`` (see
    :func:`tinycnn.kernels.fast.warmup`). With ``model`` and ``x``, a batch like the ones
    it will train on (e.g. ``x_train[:64]``): only the kernels that model calls, in its
    dtype -- a copy of the model runs one training forward and backward pass and one
    evaluation forward on ``x`` (``dtypes`` is then unused; the model itself, its
    gradients and its running statistics are left untouched). Each kernel costs a few
    tenths of a second to compile on a machine's first run and a few ms to load from the
    cache on later runs, so warming only the ones a model uses saves both.

    Returns the seconds it took.
    """
    import time

    if model is None:
        from tinycnn.kernels import fast
        return fast.warmup(dtypes=dtypes, verbose=verbose)
    if x is None:
        raise TypeError("warmup: model= needs x=, a batch of its inputs (e.g. x_train[:64]); "
                        "got x=None")
    import copy

    import numpy as np

    t0 = time.perf_counter()
    twin = copy.deepcopy(model)
    x = np.asarray(x, dtype=twin.dtype)
    with use_backend("numba"):
        y = twin.train().forward(x)
        twin.backward(np.ones_like(y), input_grad=False)
        twin.eval().forward(x)
    seconds = time.perf_counter() - t0
    if verbose:
        print(f"tinycnn.warmup: the kernels of this model ({twin.dtype}) ready after {seconds:.2f} s")
    return seconds


def set_num_threads(n):
    """Threads the fast kernels split a batch over (default: ``NUMBA_NUM_THREADS``, i.e. all
    cores). Results are bit-identical for any ``n``; see :mod:`tinycnn.kernels.numba_runtime`."""
    from tinycnn.kernels import fast
    fast.set_num_threads(n)
