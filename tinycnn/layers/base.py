"""The ``Layer`` base class and the input checks every layer shares.

A layer is stateful: ``forward(x)`` computes ``y`` and caches what ``backward`` needs;
``backward(dy)`` returns ``dx = dL/dx`` and *adds* ``dL/dW`` into each parameter's
``.grad``. Checks run where data enters a layer, so a mistake is reported in the words of
the layer (``Conv2D(1→6, k=5): expected 1 input channel, got 3 ...``) and never as a
NumPy traceback from deep inside a kernel.
"""
import numpy as np

__all__ = ["Layer", "REGISTRY", "register_layer", "check_input", "check_dy", "check_positive_int", "pair"]


#: Layer classes by name: what ``load_model`` may build from a file's JSON. Every public
#: subclass of :class:`Layer` adds itself when its ``class`` statement runs (see
#: :func:`register_layer`), so a layer in a new module needs no edit anywhere else.
REGISTRY = {}


def register_layer(cls):
    """Put ``cls`` into :data:`REGISTRY` under its class name; returns ``cls``.

    Called for every ``Layer`` subclass. Skipped: private names (``_Pool2D``) and classes
    defined inside a function. A name keeps its first owner: a different class of the same
    name (another module) is not registered, so it cannot silently replace a built-in layer
    when files are loaded; redefining the same class (a re-run notebook cell) replaces it.
    """
    name = cls.__name__
    if name.startswith("_") or "<locals>" in cls.__qualname__:
        return cls
    old = REGISTRY.get(name)
    if old is None or (old.__module__, old.__qualname__) == (cls.__module__, cls.__qualname__):
        REGISTRY[name] = cls
    return cls


class Layer:
    """Base class: ``forward``, ``backward``, ``parameters``, ``train``/``eval``, ``__call__``."""

    def __init_subclass__(cls, **kwargs):
        """Register every subclass by name (for model files); see :func:`register_layer`."""
        super().__init_subclass__(**kwargs)
        register_layer(cls)

    #: Whether :meth:`backward` must return ``dx``. ``Sequential.backward(dy,
    #: input_grad=False)`` sets it to False on the first layer with parameters while it
    #: runs: that layer's input is the data, whose gradient nobody uses. A layer that can
    #: skip the work (Conv2D: about half of its backward) then returns ``None``; any
    #: other layer may ignore the flag.
    input_grad = True

    def __init__(self):
        self.training = True
        self._cache = None

    # --- the pair every layer implements
    def forward(self, x):
        """Compute the output ``y`` for a batch ``x`` and cache what ``backward`` needs."""
        raise NotImplementedError

    def backward(self, dy):
        """Given ``dy = dL/dy`` (the shape ``forward`` returned), add ``dL/dW`` into each
        parameter's ``.grad`` and return ``dx = dL/dx``."""
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    # --- parameters and modes
    def parameters(self):
        """Trainable parameters, weight first (empty for layers without weights)."""
        return [p for p in (getattr(self, "weight", None), getattr(self, "bias", None)) if p is not None]

    def zero_grad(self):
        """Reset every parameter's ``.grad`` to zeros."""
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode=True):
        """Training mode (``mode=True``, e.g. dropout active) or evaluation mode; returns self."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Evaluation mode (dropout off); same as ``train(False)``."""
        return self.train(False)

    def to(self, dtype):
        """Cast parameters (data and grad) to ``dtype`` in place."""
        for p in self.parameters():
            p.astype(dtype)
        return self

    def clear_cache(self):
        """Forget what ``forward`` cached (``predict`` calls it to free memory)."""
        self._cache = None

    # --- freezing (transfer learning): frozen parameters are skipped by every optimizer
    def freeze(self):
        """Mark this layer's parameters as not trainable; optimizers leave them unchanged.

        Backward still runs through a frozen layer (earlier layers keep learning) and still
        fills its ``.grad``. The flag lives on each :class:`~tinycnn.Parameter`
        (``p.trainable``) and is not saved in model files: freeze again after loading.
        """
        for p in self.parameters():
            p.trainable = False
        return self

    def unfreeze(self):
        """Make this layer's parameters trainable again (the default)."""
        for p in self.parameters():
            p.trainable = True
        return self

    # --- kinks, for gradcheck: where the function is not differentiable
    def kink_states(self):
        """The discrete choices the last ``forward`` made, as ``[(label, array), ...]``.

        A piecewise layer returns its decision (ReLU: which inputs were positive; max
        pooling: which element won each window); a smooth layer returns ``[]``.
        :func:`tinycnn.gradcheck` compares these between the ``x+ε`` and ``x−ε``
        evaluations: if a decision changed, the finite difference straddles a kink and
        says nothing about the derivative, so that entry is reported as a kink. The default
        collects the decisions of the layers in :meth:`children` (so a container needs no
        code of its own) and is ``[]`` for a plain layer.
        """
        return [(f"{self!r} {group}[{k}] {label}", state)
                for group, layers in self.children().items()
                for k, layer in enumerate(layers) for label, state in layer.kink_states()]

    # --- description, used by summary() and by save/load
    def output_shape(self, input_shape):
        """Per-sample output shape for a per-sample ``input_shape`` (no batch axis)."""
        return tuple(input_shape)

    def receptive_window(self, input_shape):
        """How one output pixel looks at the input grid, for :func:`tinycnn.receptive_field`.

        ``((KH, s_h, p_h), (KW, s_w, p_w))``: kernel, stride and padding per spatial axis
        (a 4th entry, the dilation, is allowed); output pixel ``h`` reads input rows
        ``h·s_h − p_h … h·s_h − p_h + KH − 1``. ``None`` means every output may depend on
        its whole input (Dense, Flatten). The default, ``((1, 1, 0), (1, 1, 0))``, is
        right for any pixel-by-pixel layer (activations, dropout).
        """
        return ((1, 1, 0), (1, 1, 0))

    def param_formula(self):
        """How the parameter count comes about, e.g. ``"(5·5·1 + 1)·6"``; None if no weights."""
        return None

    def config(self):
        """Constructor keyword arguments that rebuild this layer (JSON-serialisable)."""
        return {}

    # --- model files (tinycnn.saving): everything a file needs, asked through these hooks
    #     so saving.py never names a layer type. A new layer overrides only what it has.
    @classmethod
    def array_shapes(cls, config):
        """Shape of every array this layer saves, for a given ``config()``, without building it.

        ``{name: shape}`` for the layer's *own* parameters (by ``Parameter.name``) and its
        :meth:`state_arrays`, e.g. ``Conv2D.array_shapes({"in_channels": 1, "out_channels":
        6, "kernel_size": [5, 5], ...}) == {"weight": (6, 1, 5, 5), "bias": (6,)}``. The
        loader compares these with the ``.npy`` headers in the file *before* it builds the
        layer, so a file whose config asks for terabytes is refused before anything is
        allocated. Compute from ``config`` only (it comes from the file: raise ``TypeError``
        or ``ValueError`` if it is malformed); allocate nothing. The default, ``{}``, is right
        for a layer without arrays; ``save`` checks the answer against the real arrays, so a
        layer with weights that forgets this hook cannot be saved.
        """
        return {}

    def state_arrays(self):
        """Arrays that are saved and loaded but never optimised: ``{name: ndarray}``.

        E.g. BatchNorm's ``{"running_mean": ..., "running_var": ...}``. They are not
        :class:`~tinycnn.Parameter` objects and are not in :meth:`parameters`, so no optimizer
        touches them. Names are Python identifiers, distinct from the parameter names; only
        this layer's own state (a container does not repeat its children's). Default ``{}``.
        """
        return {}

    def load_state_arrays(self, arrays):
        """Restore :meth:`state_arrays` from ``{name: ndarray}`` when a model is loaded.

        The loader has already checked names, shapes and dtypes against :meth:`array_shapes`.
        The default sets each as an attribute of the same name (``self.running_mean = ...``);
        override it if the state lives elsewhere.
        """
        own = self.state_arrays()
        for name, value in arrays.items():
            if name not in own:
                raise ValueError(f"{self!r}: no state array named {name!r} (has {sorted(own)})")
            setattr(self, name, value)

    def children(self):
        """Sub-layers this layer holds, in named groups: ``{"layers": [...], "shortcut": [...]}``.

        A container (e.g. ``Residual``) returns its layers here so that save/load recurse into
        them: each child is saved as a nested entry and rebuilt before its parent, and
        :meth:`from_config` receives them back in the same groups and order. Group names are
        Python identifiers; a group may be empty. A container's :meth:`parameters` includes
        its children's parameters (the saver stores each parameter once, with the child that
        owns it). Default ``{}``: a plain layer.
        """
        return {}

    @classmethod
    def from_config(cls, config, children):
        """Build a layer from its saved ``config()`` and rebuilt ``children()`` groups.

        The default is ``cls(**config)`` for a layer without children. A container overrides
        it, e.g. ``Residual``: ``cls(*children["layers"], shortcut=children["shortcut"] or
        None, **config)``. Weights are set by the loader afterwards.
        """
        if children:
            raise TypeError(f"{cls.__name__} holds no sub-layers, got groups {sorted(children)}")
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}()"

    # --- cache helpers shared by subclasses
    def _cached(self):
        if self._cache is None:
            raise ValueError(
                f"{self!r}: backward() called before forward(); run forward(x) first "
                "(and do not call predict() in between: it clears the caches)"
            )
        return self._cache


def pair(value, name, layer_name, minimum=1):
    """``value`` as a ``(rows, cols)`` pair of ints ``>= minimum``, or a clear ValueError."""
    values = (value, value) if isinstance(value, (int, np.integer)) else \
        tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{layer_name}: {name} must be an int or a pair of ints, got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{layer_name}: {name} must be >= {minimum}, got {value!r}")
    return int(values[0]), int(values[1])


def check_positive_int(value, name, layer_name):
    """``value`` as an int ``>= 1``, or a TypeError/ValueError naming the layer."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{layer_name}: {name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{layer_name}: {name} must be >= 1, got {value}")
    return int(value)


_LAYOUTS = {2: "(N, features)", 4: "(N, C, H, W)"}


def check_input(layer, x, ndim=None, dtype=None):
    """Check that ``x`` is a floating ndarray of rank ``ndim`` and (optionally) ``dtype``."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer!r}: expected a numpy.ndarray input, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(
            f"{layer!r}: expected a floating-point input, got dtype {x.dtype}; "
            "hint: x.astype(np.float32)"
        )
    if ndim is not None and x.ndim != ndim:
        hint = ""
        if ndim == 2 and x.ndim == 4:
            hint = "; hint: put a Flatten() layer before it"
        elif ndim == 4 and x.ndim == 3:
            hint = ("; hint: a batch of images without a channel axis needs one, x[:, None] "
                    f"(shape {(x.shape[0], 1) + x.shape[1:]}); one image (C, H, W) needs the "
                    f"batch axis, x[None] (shape {(1,) + x.shape})")
        raise ValueError(
            f"{layer!r}: expected a {ndim}-D input {_LAYOUTS.get(ndim, '')}, got shape {x.shape}{hint}"
        )
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{layer!r}: input dtype {x.dtype} differs from the layer's parameters ({dtype}); "
            f"cast one of them: x.astype(np.{dtype}) or model.to(np.{x.dtype})"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{layer!r}: got an empty batch, shape {x.shape}")


def check_dy(layer, dy, expected_shape):
    """``dy`` must be an array with the shape of the forward output."""
    if not isinstance(dy, np.ndarray):
        raise TypeError(f"{layer!r}: backward expected a numpy.ndarray dy, got {type(dy).__name__}")
    if dy.shape != tuple(expected_shape):
        raise ValueError(
            f"{layer!r}: backward expected dy of shape {tuple(expected_shape)} "
            f"(the shape forward returned), got {dy.shape}"
        )
