r"""Weight initialisers, each driven by a ``numpy.random.Generator``.

For a weight with ``fan_in`` inputs and ``fan_out`` outputs per unit (a conv weight
``(F, C, KH, KW)`` has ``fan_in = C·KH·KW`` and ``fan_out = F·KH·KW``):

* He / Kaiming (for ReLU nets):  :math:`w \sim \mathcal N(0,\ 2/\text{fan\_in})`,
  or uniform on :math:`\pm\sqrt{6/\text{fan\_in}}`.
* Xavier / Glorot (for tanh/sigmoid): :math:`w \sim \mathcal N(0,\ 2/(\text{fan\_in}+\text{fan\_out}))`,
  or uniform on :math:`\pm\sqrt{6/(\text{fan\_in}+\text{fan\_out})}`.

Both keep the variance of activations (He: of ReLU activations) roughly constant from
layer to layer, so deep nets neither explode nor vanish at the start of training.
"""
import numpy as np

__all__ = ["fans", "he_normal", "he_uniform", "xavier_normal", "xavier_uniform", "zeros",
           "get_initializer", "as_generator"]


def as_generator(rng):
    """A ``numpy.random.Generator`` from ``None`` (fresh entropy), an int seed or a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng: expected None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def fans(shape):
    """(fan_in, fan_out) of a dense ``(out, in)`` or conv ``(F, C, KH, KW)`` weight shape."""
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def he_normal(shape, rng=None, dtype=np.float32):
    r"""He/Kaiming normal: :math:`\mathcal N(0, 2/\text{fan\_in})`, for ReLU networks."""
    fan_in, _ = fans(shape)
    return (as_generator(rng).standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def he_uniform(shape, rng=None, dtype=np.float32):
    r"""He/Kaiming uniform on :math:`\pm\sqrt{6/\text{fan\_in}}`, for ReLU networks."""
    fan_in, _ = fans(shape)
    limit = np.sqrt(6.0 / fan_in)
    return as_generator(rng).uniform(-limit, limit, shape).astype(dtype)


def xavier_normal(shape, rng=None, dtype=np.float32):
    r"""Xavier/Glorot normal: :math:`\mathcal N(0, 2/(\text{fan\_in}+\text{fan\_out}))`, for tanh/sigmoid."""
    fan_in, fan_out = fans(shape)
    return (as_generator(rng).standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


def xavier_uniform(shape, rng=None, dtype=np.float32):
    r"""Xavier/Glorot uniform on :math:`\pm\sqrt{6/(\text{fan\_in}+\text{fan\_out})}`, for tanh/sigmoid."""
    fan_in, fan_out = fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return as_generator(rng).uniform(-limit, limit, shape).astype(dtype)


def zeros(shape, rng=None, dtype=np.float32):
    """All zeros (``rng`` is ignored); fine for biases, a symmetry trap for weights."""
    return np.zeros(shape, dtype=dtype)


_INITIALIZERS = {
    "he": he_normal, "he_normal": he_normal, "he_uniform": he_uniform,
    "xavier": xavier_uniform, "xavier_uniform": xavier_uniform, "xavier_normal": xavier_normal,
    "zeros": zeros,
}


def get_initializer(name):
    """Look an initialiser up by name ("he", "he_uniform", "xavier", "xavier_normal", ...)."""
    if callable(name):
        return name
    if name not in _INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; expected one of {sorted(_INITIALIZERS)}")
    return _INITIALIZERS[name]
