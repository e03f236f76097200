r"""Residual (skip) connection: ``y = F(x) + S(x)``.

``F`` is the given layers applied in order (the *residual branch*); ``S`` is the identity,
or the ``shortcut`` layers when ``F`` changes the shape (e.g. a strided 1×1 convolution
followed by BatchNorm). Shapes: ``F(x)`` and ``S(x)`` must be equal; that is checked when
the model's shapes are inferred (``summary``, ``Sequential(..., input_shape=...)``) and on
every forward pass, never left to NumPy broadcasting.

Backward is the sum rule, branch by branch:

.. math:: \frac{\partial L}{\partial x} = F'(x)^\top dy + S'(x)^\top dy,

in code ``dx = backward through F (dy) + backward through S (dy)`` -- the identity shortcut
passes ``dy`` through unchanged, which is why gradients reach early layers of deep residual
networks undiminished.
"""
import numpy as np

from tinycnn.layers.base import Layer, check_dy

__all__ = ["Residual"]


def _as_layers(items, what):
    if len(items) == 1 and isinstance(items[0], (list, tuple)):
        items = tuple(items[0])
    for k, layer in enumerate(items):
        if not isinstance(layer, Layer):
            raise TypeError(f"Residual: {what} item {k} is a {type(layer).__name__}, not a tinycnn Layer")
    return list(items)


class Residual(Layer):
    """``Residual(*layers, shortcut=None)``: ``y = F(x) + S(x)``, one block of a ResNet.

    >>> from tinycnn import layers
    >>> block = Residual(layers.Dense(4, 4, rng=0), layers.ReLU())
    >>> block.forward(np.ones((2, 4), np.float32)).shape
    (2, 4)
    """

    def __init__(self, *layers, shortcut=None):
        super().__init__()
        self.layers = _as_layers(layers, "branch")
        if not self.layers:
            raise ValueError("Residual: give at least one layer for the residual branch F")
        if shortcut is None:
            shortcut = []
        elif isinstance(shortcut, Layer):
            shortcut = [shortcut]
        self.shortcut = _as_layers(tuple(shortcut), "shortcut")

    # --- y = F(x) + S(x) and its backward
    @staticmethod
    def _run(layers, x):
        for layer in layers:
            x = layer.forward(x)
        return x

    def forward(self, x):
        f = self._run(self.layers, x)
        s = self._run(self.shortcut, x)
        if f.shape != s.shape:
            raise ValueError(f"{self!r}: the residual branch gives shape {f.shape} but the "
                             f"shortcut gives {s.shape}; add shortcut layers that map the input "
                             "to the branch's shape (e.g. a strided 1×1 Conv2D)")
        self._cache = f.shape
        return f + s

    def backward(self, dy):
        check_dy(self, dy, self._cached())
        dF = dy
        for layer in reversed(self.layers):
            dF = layer.backward(dF)
        dS = dy
        for layer in reversed(self.shortcut):
            dS = layer.backward(dS)
        return dF + dS

    # --- a container: everything recurses into the two branches
    def children(self):
        """``{"layers": F, "shortcut": S}`` (an empty shortcut is the identity)."""
        return {"layers": self.layers, "shortcut": self.shortcut}

    @classmethod
    def from_config(cls, config, children):
        """Rebuild from the saved branches."""
        return cls(*children.get("layers", []), shortcut=children.get("shortcut") or None, **config)

    def _all(self):
        return self.layers + self.shortcut

    def parameters(self):
        return [p for layer in self._all() for p in layer.parameters()]

    def train(self, mode=True):
        self.training = bool(mode)
        for layer in self._all():
            layer.train(mode)
        return self

    def to(self, dtype):
        for layer in self._all():
            layer.to(dtype)
        return self

    def clear_cache(self):
        self._cache = None
        for layer in self._all():
            layer.clear_cache()

    def output_shape(self, input_shape):
        f, s = tuple(input_shape), tuple(input_shape)
        for layer in self.layers:
            f = tuple(layer.output_shape(f))
        for layer in self.shortcut:
            s = tuple(layer.output_shape(s))
        if f != s:
            raise ValueError(f"{self!r}: for an input of shape {tuple(input_shape)} the residual "
                             f"branch gives {f} but the shortcut gives {s}; they must be equal")
        return f

    def receptive_window(self, input_shape):
        """The residual branch's layers as one window per axis (the wider path): the field
        :func:`tinycnn.receptive_field` finds after the branch's last layer, as
        ``(kernel = size, stride = jump, padding = −start)``."""
        from tinycnn.receptive_field import receptive_field   # it builds on layers: import late
        last = receptive_field(self.layers, input_shape)[-1]
        if last.jump is None:                   # the branch mixes everything (a Dense inside)
            return None
        return tuple((last.size[ax], last.jump[ax], -last.start[ax]) for ax in range(2))

    def param_formula(self):
        counts = [sum(p.size for p in layer.parameters()) for layer in self._all()]
        counts = [c for c in counts if c]
        return " + ".join(f"{c:,}" for c in counts) if len(counts) > 1 else None

    def config(self):
        return {}

    def __repr__(self):
        s = f", shortcut: {len(self.shortcut)} layers" if self.shortcut else ", identity shortcut"
        return f"Residual({len(self.layers)} layers{s})"
