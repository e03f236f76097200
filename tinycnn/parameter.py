"""A trainable array and its gradient."""
import numpy as np

__all__ = ["Parameter"]


class Parameter:
    """A tensor the optimizer updates: ``.data`` (the values) and ``.grad`` (dL/d data).

    ``backward`` passes *accumulate* into ``.grad`` (``+=``), so gradients of several
    losses add up; an optimizer's ``zero_grad()`` resets them.

    ``trainable`` (default True) is the freezing switch, PyTorch's ``requires_grad`` idea:
    every tinycnn optimizer skips a parameter with ``trainable=False``. Its gradient is
    still computed (backward does not look at the flag), so layers before a frozen one keep
    learning. ``layer.freeze()`` / ``model.freeze()`` set it for you. The flag is not stored
    in model files: a loaded model is fully trainable.

    >>> p = Parameter(np.ones((2, 3)), name="weight")
    >>> p.shape, float(p.grad.sum()), p.trainable
    ((2, 3), 0.0, True)
    """

    def __init__(self, data, name="param", trainable=True):
        self.data = np.asarray(data)
        self.grad = np.zeros_like(self.data)
        self.name = name
        self.trainable = bool(trainable)

    @property
    def shape(self):
        """Shape of ``data`` (and of ``grad``)."""
        return self.data.shape

    @property
    def size(self):
        """Number of entries in ``data``."""
        return self.data.size

    def zero_grad(self):
        """Reset ``grad`` to zeros in place."""
        self.grad[...] = 0

    def astype(self, dtype):
        """Cast data and grad in place to ``dtype``."""
        self.data = self.data.astype(dtype)
        self.grad = self.grad.astype(dtype)
        return self

    def __repr__(self):
        frozen = "" if self.trainable else ", frozen"
        return f"Parameter({self.name}, shape={self.shape}, dtype={self.data.dtype}{frozen})"
