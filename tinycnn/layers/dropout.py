r"""Inverted dropout.

Training: draw a mask :math:`m_k \sim \text{Bernoulli}(1-p)` and scale the survivors so the
expected activation is unchanged:

.. math:: y = x \odot m / (1 - p), \qquad dx = dy \odot m / (1 - p)

Evaluation (``eval()``): :math:`y = x`, :math:`dx = dy` — nothing to undo at test time,
which is why the scaling happens during training ("inverted").
"""
import numbers

import numpy as np

from tinycnn.init import as_generator
from tinycnn.layers.base import Layer, check_dy, check_input

__all__ = ["Dropout"]


class Dropout(Layer):
    """Zero each activation with probability ``p`` during training.

    ``rng`` (a Generator or int seed) draws the masks; ``fit(seed=...)`` re-seeds it so a
    training run is reproducible.
    """

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        if isinstance(p, bool) or not (isinstance(p, numbers.Real) and 0 <= p < 1):  # np.float32 welcome
            raise ValueError(f"Dropout: p must be a probability in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = as_generator(rng)

    def forward(self, x):
        check_input(self, x)
        if not self.training or self.p == 0:
            self._cache = (x.shape, None)
            return x
        mask = (self.rng.random(x.shape) >= self.p).astype(x.dtype) / x.dtype.type(1 - self.p)
        self._cache = (x.shape, mask)
        return x * mask

    def backward(self, dy):
        shape, mask = self._cached()
        check_dy(self, dy, shape)
        return dy if mask is None else dy * mask

    def config(self):
        return {"p": self.p}

    def __repr__(self):
        return f"Dropout({self.p})"
