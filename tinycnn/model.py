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
        """``y`` for a batch ``x``; the first successful call records ``meta["input_shape"]``."""
        x_in = x
        for layer in self.layers:
            x = layer.forward(x)
        # recorded only after every layer accepted x: a refused input leaves no trace
        if self.meta.get("input_shape") is None and isinstance(x_in, np.ndarray) and x_in.ndim >= 2:
            self.meta["input_shape"] = list(x_in.shape[1:])
        return x

    __call__ = forward

    def backward(self, dy, input_grad=True):
        """Back-propagate ``dy = dL/dy``; fills every ``p.grad`` and returns ``dL/dx``.

        ``input_grad=False`` (training, where nobody needs ``dL/dx``, as in PyTorch) stops
        at the first layer with parameters and lets it skip its input gradient
        (``Layer.input_grad``): every ``p.grad`` is the same, and ``None`` is returned.
        """
        if input_grad:
            for layer in reversed(self.layers):
                dy = layer.backward(dy)
            return dy
        first = next((k for k, layer in enumerate(self.layers) if layer.parameters()), None)
        if first is None:
            return None                        # no parameters: no gradient to compute
        for layer in reversed(self.layers[first + 1:]):
            dy = layer.backward(dy)
        head = self.layers[first]
        head.input_grad = False
        try:
            head.backward(dy)
        finally:
            head.input_grad = True
        return None

    # ------------------------------------------------------------ parameters and modes
    def parameters(self):
        """Every layer's parameters, in layer order (frozen ones included)."""
        return [p for layer in self.layers for p in layer.parameters()]

    def named_parameters(self):
        """``[("3.Dense(400→120).weight", Parameter), ...]`` in layer order."""
        return [(f"{k}.{layer!r}.{p.name}", p)
                for k, layer in enumerate(self.layers) for p in layer.parameters()]

    def zero_grad(self):
        """Reset every parameter's ``.grad`` to zeros."""
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode=True):
        """Put every layer in training mode (or evaluation mode with ``mode=False``)."""
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self):
        """Evaluation mode for every layer (dropout off); returns the model."""
        return self.train(False)

    @property
    def training(self):
        """True when every layer is in training mode."""
        return all(layer.training for layer in self.layers)

    def to(self, dtype):
        """Cast every parameter to ``dtype`` (e.g. ``np.float64`` for gradient checks)."""
        for layer in self.layers:
            layer.to(dtype)
        return self

    @property
    def dtype(self):
        """dtype of the parameters (float32 for a model without any)."""
        params = self.parameters()
        return params[0].data.dtype if params else np.dtype(np.float32)

    def clear_cache(self):
        """Forget every layer's forward cache (frees memory; backward needs a new forward)."""
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
    #: Set to True (e.g. by a callback) to make ``fit`` stop after the current batch.
    stop_training = False

    def fit(self, x, y, *, loss, optimizer, epochs=1, batch_size=32, validation_data=None,
            shuffle=True, seed=None, verbose=True, scheduler=None, callbacks=(), augment=None,
            sampler=None):
        """Train with minibatch gradient descent; returns a :class:`~tinycnn.callbacks.History`.

        Each epoch shuffles ``(x, y)`` into batches; per batch: forward, ``loss``, backward,
        ``optimizer.step()`` (see :mod:`tinycnn.train`). Everything is checked before the
        first step, and a refused call changes nothing in the model.

        Parameters
        ----------
        x : (N, C, H, W) images or (N, features) vectors; cast to the model's dtype.
        y : (N,) targets: integer class labels for ``SoftmaxCrossEntropy``, 0/1 for
            ``BinaryCrossEntropyWithLogits``, values of the output's shape for ``MSE``.
        loss : a loss object, e.g. ``losses.SoftmaxCrossEntropy()`` (an instance, not the class).
        optimizer : built from this model, e.g. ``optim.SGD(model.parameters(), lr=0.1)``.
        epochs, batch_size : ints >= 1 (NumPy integers welcome).
        validation_data : ``(x_val, y_val)``, scored after every epoch as ``val_loss``, ...
        shuffle : reshuffle the samples every epoch.
        seed : fixes shuffling, augmentation and dropout: the same seed, the same run.
        verbose : ``True``/``1``: a progress bar in a terminal, one line per epoch elsewhere
            (logs, CI, notebooks); ``2``: always one line per epoch; ``False``/``0``: silent.
        scheduler : e.g. ``optim.StepLR(optimizer, ...)``, stepped after each epoch.
        callbacks : list of callback objects, e.g. ``[EarlyStopping(patience=3)]``; Keras's
            protocol (``on_epoch_end(epoch, logs)``, ``self.model``,
            ``model.stop_training``), see :mod:`tinycnn.callbacks`.
        augment : ``augment(x_batch, rng) -> x_batch``, applied to each training batch.
        sampler : ``sampler(y, batch_size, rng) -> iterable of index arrays``, replaces
            plain shuffling (e.g. ``datasets.balanced_batches``).

        Returns a ``History``: ``history["loss"]``, ``history["val_accuracy"]``, ...

        Raises ``DivergenceError`` (a ``FloatingPointError``) at the first NaN or inf in
        an output, the loss, a gradient or a weight, naming the epoch and batch; the model
        keeps its last finite weights.
        """
        from tinycnn.train import fit
        return fit(self, x, y, loss=loss, optimizer=optimizer, epochs=epochs,
                   batch_size=batch_size, validation_data=validation_data, shuffle=shuffle,
                   seed=seed, verbose=verbose, scheduler=scheduler, callbacks=callbacks,
                   augment=augment, sampler=sampler)

    def evaluate(self, x, y, *, loss=None, batch_size=256):
        """Mean loss (and accuracy, for classification) on ``(x, y)`` in eval mode.

        Returns ``{"loss": float, "accuracy": float}``. Without ``loss`` it picks the one
        that fits the model's output: ``BinaryCrossEntropyWithLogits`` for one output and
        0/1 targets, ``SoftmaxCrossEntropy`` for several outputs and integer labels;
        otherwise it asks you to pass ``loss=``. ``batch_size`` only bounds memory.
        """
        from tinycnn.train import evaluate
        return evaluate(self, x, y, loss=loss, batch_size=batch_size)

    def predict(self, x, *, batch_size=256, logits=False):
        """Class probabilities in eval mode, computed batch by batch; no cache is kept.

        Softmax over the outputs, or the sigmoid for a model with one output (the
        probability of class 1). ``logits=True`` returns the raw outputs instead.
        """
        from tinycnn.train import predict
        return predict(self, x, batch_size=batch_size, logits=logits)

    def predict_classes(self, x, *, batch_size=256):
        """Predicted class index per sample: argmax, or probability > 0.5 for one output."""
        probs = self.predict(x, batch_size=batch_size)
        return (probs[:, 0] > 0.5).astype(np.int64) if probs.shape[1] == 1 else probs.argmax(axis=1)

    # ------------------------------------------------------------ files
    def save(self, path):
        """Write architecture, weights and ``meta`` to one ``.npz`` (no pickle)."""
        from tinycnn.saving import save_model
        return save_model(self, path)
