"""What ``fit``, ``evaluate`` and ``predict`` check before they change anything.

Every mistake a learner makes at the model-level API should be reported *here*, in the
words of the call (``fit: ...``), before a weight moves or the model records an input
shape -- not as a ``TypeError`` from deep inside NumPy after three epochs. The checks are
cheap: a look at shapes and dtypes, one pass for NaN/inf, and one forward pass of a single
sample (:func:`probe`) that proves the model can take the data.
"""
import numpy as np

__all__ = ["check_x", "check_y", "check_pair", "check_loss", "check_optimizer",
           "check_callable", "check_callbacks", "probe", "check_targets", "describe"]


def describe(value):
    """A short description of ``value`` for an error message: type, and shape or length."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"{value!r} ({type(value).__name__})" if len(repr(value)) < 60 else f"a {type(value).__name__}"


def _non_finite_report(a, name):
    """``"3 NaN and 1 inf in 2 sample(s), first at x[1, 0, 3, 3]"`` for the bad entries of ``a``."""
    bad = ~np.isfinite(a)
    n_nan = int(np.isnan(a).sum())
    n_inf = int(bad.sum()) - n_nan
    per_sample = bad.reshape(len(a), -1).any(axis=1)
    first = np.unravel_index(int(np.argmax(bad)), a.shape)     # argmax of a bool array: first True
    samples = np.flatnonzero(per_sample)
    listed = ", ".join(str(i) for i in samples[:8]) + (", ..." if len(samples) > 8 else "")
    return (f"{n_nan} NaN and {n_inf} inf in {len(samples)} sample(s) [{listed}], first at "
            f"{name}[{', '.join(str(int(i)) for i in first)}]")


def check_x(x, model, where, name="x"):
    """``x`` as an array of the model's dtype with a non-empty batch axis and finite values."""
    if x is None:
        raise ValueError(f"{where}: {name} is None; pass the inputs as a NumPy array, "
                         "(N, C, H, W) for images or (N, features) for vectors")
    if isinstance(x, (tuple, list)) and len(x) == 2 and all(isinstance(a, np.ndarray) for a in x):
        raise TypeError(f"{where}: {name} is a pair of arrays; pass inputs and targets as two "
                        "arguments, (x, y), not as one tuple")
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except (ValueError, TypeError):
            raise TypeError(f"{where}: expected {name} as a numeric NumPy array, got "
                            f"{describe(x)}") from None
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{where}: expected {name} as a numeric NumPy array, got {describe(x)}")
    if x.ndim < 2:
        raise ValueError(f"{where}: {name} has shape {x.shape}, but the first axis must be the batch: "
                         "(N, C, H, W) images or (N, features) vectors; hint: N numbers as N "
                         f"one-feature samples are {name}[:, None], one sample is {name}[None]")
    if x.shape[0] == 0:
        raise ValueError(f"{where}: {name} is empty (shape {x.shape}, 0 samples); it needs at least one sample")
    with np.errstate(over="ignore"):           # an overflow is reported below, by name
        cast = x.astype(model.dtype, copy=False)   # the model-level API casts for the user
    if not np.all(np.isfinite(cast)):
        overflow = " (values beyond the float range of the model became inf)" if np.all(np.isfinite(x)) else ""
        raise ValueError(f"{where}: {name} contains NaN or inf values ({int((~np.isfinite(cast)).sum())} "
                         f"of {cast.size}): {_non_finite_report(cast, name)}{overflow}; remove or "
                         "repair those samples before training")
    return cast


def check_y(y, n, where, name="y", x_name="x"):
    """Targets ``y`` with one entry per sample of ``x`` (``n`` of them), numeric and finite."""
    if y is None:
        raise ValueError(f"{where}: {name} is missing (None); pass the targets, e.g. integer "
                         f"class labels of shape (N,): {where.split('(')[0]}({x_name}, {name}, ...)")
    y = np.asarray(y)
    if y.dtype.kind not in "fiub":
        hint = "; turn names into indices first: names, y = np.unique(y, return_inverse=True)" \
            if y.dtype.kind in "USO" else ""
        raise TypeError(f"{where}: {name} must hold numbers (e.g. integer class labels), got "
                        f"{describe(y)}{hint}")
    if y.ndim == 0:
        raise ValueError(f"{where}: {name} is a single number ({y!r}); it needs one target per "
                         f"sample, shape ({n},)")
    if y.shape[0] != n:
        raise ValueError(f"{where}: {x_name} has {n} samples but {name} has {y.shape[0]}; they must match")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError(f"{where}: {name} contains NaN or inf values ({int((~np.isfinite(y)).sum())} of "
                         f"{y.size}): {_non_finite_report(y, name)}")
    return y


def check_pair(data, where):
    """``validation_data`` must be a pair ``(x_val, y_val)``."""
    if not isinstance(data, (tuple, list)):
        raise TypeError(f"{where}: validation_data must be a pair (x_val, y_val), got {describe(data)}")
    if len(data) != 2:
        raise ValueError(f"{where}: validation_data must be a pair (x_val, y_val), got {describe(data)}")
    return data


def _is_class(obj):
    return isinstance(obj, type)


def _check_object(obj, what, kind, methods, signature, example, create, where):
    """``obj`` must be an instance (not ``None``, not the class) with the callable ``methods``.

    ``what`` names the argument (``"loss"``), ``kind`` the thing it must be (``"a loss
    object"``), ``signature`` how its methods are called, ``example`` a call that makes a
    right one, and ``create`` that call as a format string for the name of a class passed
    without parentheses.
    """
    if obj is None:
        raise ValueError(f"{where}: no {what} given; pass one, e.g. {what}={example}")
    if _is_class(obj):
        raise TypeError(f"{where}: {what} is the class {obj.__name__}, not {kind}; create one "
                        f"with parentheses: {what}={create.format(obj.__name__)}")
    if not all(callable(getattr(obj, m, None)) for m in methods):
        raise TypeError(f"{where}: {what} must be {kind} with {signature}, e.g. {example}; "
                        f"got {describe(obj)}")
    return obj


def check_loss(loss, where):
    """A loss *instance* with ``forward(pred, target)`` and ``backward()``."""
    return _check_object(loss, "loss", "a loss object", ("forward", "backward"),
                         "forward(pred, target) and backward()", "losses.SoftmaxCrossEntropy()",
                         "losses.{}()", where)


def check_optimizer(optimizer, model, where):
    """An optimizer instance that updates parameters of *this* model (and only of it)."""
    example = "optim.SGD(model.parameters(), lr=0.1)"
    _check_object(optimizer, "optimizer", "an optimizer", ("step", "zero_grad"),
                  "step() and zero_grad()", example,
                  "optim.{}(model.parameters(), lr=...)", where)
    params = getattr(optimizer, "params", None)
    if params is not None:
        own = {id(p) for p in model.parameters()}
        foreign = sum(id(p) not in own for p in params)
        if foreign == len(params):
            raise ValueError(f"{where}: none of the optimizer's {len(params)} parameters belong to "
                             "this model (it was built for another model, or before this one was "
                             f"rebuilt), so training would change nothing; build it from this model: {example}")
        if foreign:
            raise ValueError(f"{where}: {foreign} of the optimizer's {len(params)} parameters belong "
                             f"to no layer of this model; build it from this model: {example}")
    return optimizer


def check_callable(value, name, where, signature):
    """``None`` or a function; ``signature`` says how it is called."""
    if value is not None and not callable(value):
        raise TypeError(f"{where}: {name} must be a function {signature}, got {describe(value)}")
    return value


def check_callbacks(callbacks, where):
    """A list of callback *objects* (each with at least one ``on_*`` hook)."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"{where}: callbacks must be a list, e.g. callbacks=[EarlyStopping()], got "
                        f"{describe(callbacks)}")
    for k, cb in enumerate(callbacks):
        if _is_class(cb):
            raise TypeError(f"{where}: callbacks[{k}] is the class {cb.__name__}; create one: "
                            f"{cb.__name__}(...)")
        if not any(callable(getattr(cb, h, None)) for h in dir(cb) if h.startswith("on_")):
            raise TypeError(f"{where}: callbacks[{k}] ({describe(cb)}) has no on_epoch_end or other "
                            "on_* method; see tinycnn.callbacks.Callback")
    return list(callbacks)


def probe(model, x, where, name="x", single=False):
    """Run one sample through the model in eval mode; returns the output's per-sample shape.

    If the model cannot take ``x``, try the usual fixes -- a missing channel axis, channels
    last, a missing batch axis (``single``: ``x`` may be one sample), a missing flatten --
    and name the one that works. Nothing is trained and no cache is kept.
    """
    def run(a, trial=False):
        was_training, shape = model.training, model.meta.get("input_shape")
        model.eval()
        try:
            with np.errstate(over="ignore", invalid="ignore"):   # a shape check, not a value check
                return model.forward(a[:1]).shape[1:]
        finally:
            model.clear_cache()
            model.train(was_training)
            if trial:                      # a trial fix must not become the recorded shape
                model.meta["input_shape"] = shape

    try:
        return run(x)
    except (ValueError, TypeError) as err:
        fixes = []
        if x.ndim == 3:
            fixes.append((f"the images have no channel axis: add it with {name}[:, None] "
                          f"(shape {(x.shape[0], 1) + x.shape[1:]})", x[:, None]))
            if single:
                fixes.append((f"it is one sample without the batch axis: {name}[None]", x[None]))
        if x.ndim == 4:
            fixes.append((f"the images are channels-last (N, H, W, C); tinycnn wants (N, C, H, W): "
                          f"{name}.transpose(0, 3, 1, 2)", x.transpose(0, 3, 1, 2)))
        if x.ndim > 2:
            fixes.append((f"the model takes flat vectors: {name}.reshape(len({name}), -1) "
                          "(or start the model with layers.Flatten())", x.reshape(len(x), -1)))
        working = []
        for text, fixed in fixes:
            try:
                run(fixed, trial=True)
            except (ValueError, TypeError):
                continue
            working.append(text)
        if working:
            raise type(err)(f"{where}: the model cannot take {name} of shape {x.shape}; hint: "
                            + ("either " if len(working) > 1 else "") + ", or ".join(working)) from err
        known = model.meta.get("input_shape")
        built = f" (it was built for per-sample shape {tuple(known)})" if known else ""
        raise type(err)(f"{where}: the model cannot take {name} of shape {x.shape}{built}: {err}") from err


def check_targets(loss, out_shape, y, where, name="y"):
    """Check every target against the loss on the model's output shape, before training.

    The loss itself knows what it accepts (label range, shape, value range), so ask it: a
    forward pass on zeros of the output's shape, which raises the loss's own error.
    """
    zeros = np.zeros((len(y),) + tuple(out_shape), np.float32)
    try:
        with np.errstate(all="ignore"):        # only the loss's checks matter here, not its value
            loss.forward(zeros, y)
    except (ValueError, TypeError) as err:
        hint = ""
        if len(out_shape) == 1 and out_shape[0] == 1 and "labels must lie" in str(err):
            hint = ("; hint: a model with one output is a binary classifier: use "
                    "loss=losses.BinaryCrossEntropyWithLogits(), or give the last layer 2 outputs")
        raise type(err)(f"{where}: {name} does not fit the model's output (N, "
                        f"{', '.join(map(str, out_shape))}): {err}{hint}") from err
    finally:
        if hasattr(loss, "_cache"):
            loss._cache = None
