"""``Sequential``: layers applied in order; backward walks them in reverse.

Forward:  ``x -> layer_1 -> layer_2 -> ... -> y``.
Backward: the chain rule, ``dx_k = layer_k.backward(dx_{k+1})`` from the last layer to the
first; each layer adds its parameter gradients into ``p.grad`` on the way.
"""
import numpy as np

from tinycnn.layers.base import Layer
from tinycnn.summary import infer_shapes, summarize

__all__ = ["Sequential"]


class Sequential:
    """A stack of layers, plus training helpers (``fit``, ``evaluate``, ``predict``).

    ``meta`` holds what a saved model needs besides weights: the per-sample
    ``input_shape``, normalisation ``mean``/``std`` and ``class_names``.

    >>> from tinycnn import layers
    >>> m = Sequential(layers.Dense(4, 3, rng=0), layers.ReLU(), layers.Dense(3, 2, rng=1))
    >>> m.forward(np.ones((5, 4), np.float32)).shape
    (5, 2)
    >>> sum(p.size for p in m.parameters())
    23
    """

    def __init__(self, *layers, input_shape=None):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for k, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {k} is a {type(layer).__name__}, not a tinycnn Layer")
        self.layers = list(layers)
        self.meta = {"input_shape": None if input_shape is None else list(input_shape)}
        if input_shape is not None:  # shape inference at build time: mismatches fail here
            infer_shapes(self.layers, input_shape)

    # ------------------------------------------------------------ forward / backward
    def forward(self, x):
        if self.meta.get("input_shape") is None and isinstance(x, np.ndarray) and x.ndim >= 2:
            self.meta["input_shape"] = list(x.shape[1:])
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dy):
        """Back-propagate ``dy = dL/dy``; fills every ``p.grad`` and returns ``dL/dx``."""
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    # ------------------------------------------------------------ parameters and modes
    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def named_parameters(self):
        """``[("3.Dense(400→120).weight", Parameter), ...]`` in layer order."""
        return [(f"{k}.{layer!r}.{p.name}", p)
                for k, layer in enumerate(self.layers) for p in layer.parameters()]

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode=True):
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self):
        return self.train(False)

    @property
    def training(self):
        return all(layer.training for layer in self.layers)

    def to(self, dtype):
        """Cast every parameter to ``dtype`` (e.g. ``np.float64`` for gradient checks)."""
        for layer in self.layers:
            layer.to(dtype)
        return self

    @property
    def dtype(self):
        params = self.parameters()
        return params[0].data.dtype if params else np.dtype(np.float32)

    def clear_cache(self):
        for layer in self.layers:
            layer.clear_cache()

    # ------------------------------------------------------------ description
    def summary(self, input_shape=None):
        """A table: layer, output shape, parameter count and how the count comes about,
        with trainable and frozen totals.

        ``input_shape`` is per sample, e.g. ``(1, 28, 28)`` (default: the one the model was
        built or first called with). Shapes are inferred layer by layer, so a layer that
        cannot take its input (a Dense after a Flatten of the wrong size) raises
        ``ValueError`` naming both sizes. Returns a :class:`~tinycnn.summary.ModelSummary`:
        a string that a REPL or notebook shows as the table.
        """
        return summarize(self, input_shape or self.meta.get("input_shape"))

    def output_shapes(self, input_shape):
        """Per-sample output shape of every layer for a per-sample ``input_shape``;
        ``ValueError`` (naming the layer and both sizes) if one does not fit."""
        return [out for _, out in infer_shapes(self.layers, input_shape)]

    # ------------------------------------------------------------ freezing and kinks
    def freeze(self):
        """Freeze every layer: optimizers stop updating all parameters (see
        :meth:`tinycnn.layers.Layer.freeze`). To freeze a part, freeze its layers:
        ``for layer in model[:6]: layer.freeze()``."""
        for layer in self.layers:
            layer.freeze()
        return self

    def unfreeze(self):
        """Make every parameter trainable again."""
        for layer in self.layers:
            layer.unfreeze()
        return self

    def kink_states(self):
        """Every layer's discrete decisions from the last forward, labelled by layer
        (see :meth:`tinycnn.layers.Layer.kink_states`); used by :func:`tinycnn.gradcheck`."""
        return [(f"layer {k} {label}", state) for k, layer in enumerate(self.layers)
                for label, state in layer.kink_states()]

    def __repr__(self):
        inner = ",\n".join(f"  {layer!r}" for layer in self.layers)
        return f"Sequential(\n{inner}\n)"

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, k):
        return self.layers[k]

    # ------------------------------------------------------------ training helpers
    def fit(self, x, y, **kwargs):
        """Train with minibatch gradient descent; see :func:`tinycnn.train.fit`."""
        from tinycnn.train import fit
        return fit(self, x, y, **kwargs)

    def evaluate(self, x, y, **kwargs):
        """Loss and accuracy on ``(x, y)``; see :func:`tinycnn.train.evaluate`."""
        from tinycnn.train import evaluate
        return evaluate(self, x, y, **kwargs)

    def predict(self, x, **kwargs):
        """Class probabilities in eval mode, batched; see :func:`tinycnn.train.predict`."""
        from tinycnn.train import predict
        return predict(self, x, **kwargs)

    def predict_classes(self, x, **kwargs):
        """Predicted class index per sample (argmax, or probability > 0.5 for one output)."""
        probs = self.predict(x, **kwargs)
        return (probs[:, 0] > 0.5).astype(np.int64) if probs.shape[1] == 1 else probs.argmax(axis=1)

    # ------------------------------------------------------------ files
    def save(self, path):
        """Write architecture, weights and ``meta`` to one ``.npz`` (no pickle)."""
        from tinycnn.saving import save_model
        return save_model(self, path)
