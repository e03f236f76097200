"""A trainable array and its gradient."""
import numpy as np

__all__ = ["Parameter"]


class Parameter:
    """A trainable tensor: ``.data`` (the values) and ``.grad`` (dL/d data, same shape).

    ``backward`` passes *accumulate* into ``.grad`` (``+=``), so gradients of several
    losses add up; an optimizer's ``zero_grad()`` resets them.

    >>> p = Parameter(np.ones((2, 3)), name="weight")
    >>> p.shape, float(p.grad.sum())
    ((2, 3), 0.0)
    """

    def __init__(self, data, name="param"):
        self.data = np.asarray(data)
        self.grad = np.zeros_like(self.data)
        self.name = name

    @property
    def shape(self):
        return self.data.shape

    @property
    def size(self):
        return self.data.size

    def zero_grad(self):
        self.grad[...] = 0

    def astype(self, dtype):
        """Cast data and grad in place to ``dtype``."""
        self.data = self.data.astype(dtype)
        self.grad = self.grad.astype(dtype)
        return self

    def __repr__(self):
        return f"Parameter({self.name}, shape={self.shape}, dtype={self.data.dtype})"
