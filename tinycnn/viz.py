r"""Pictures of training and of what a network learned: curves, confusion matrix,
filters, feature maps, ROC curve, saliency maps and Grad-CAM.

Every ``plot_*`` function returns a ``matplotlib.figure.Figure`` and, given ``save=path``,
writes it as a PNG. Figures are built with matplotlib's object API (no pyplot state), so
this works headless (``MPLBACKEND=Agg``, CI, servers); in Jupyter a returned Figure
displays itself. matplotlib is imported inside the functions: ``import tinycnn`` never
loads it.

Explanations use tinycnn's own backward pass:

* saliency :math:`S_{h,w} = \max_c |\partial s / \partial x_{c,h,w}|`, where ``s`` is the
  score (logit) of the class of interest -- which pixels would change the score most;
* Grad-CAM (Selvaraju et al., 2017): for the activation :math:`A` (F, h, w) of a conv
  layer, weights :math:`\alpha_f = \mathrm{mean}_{h,w}\, \partial s / \partial A_{f,h,w}`
  and map :math:`\mathrm{ReLU}(\sum_f \alpha_f A_f)`, upsampled to the input -- which
  regions the later layers rely on.
"""
import numpy as np

__all__ = [
    "plot_history", "plot_confusion_matrix", "plot_filters", "plot_feature_maps", "plot_roc",
    "plot_images", "plot_saliency", "saliency_map", "grad_cam", "as_one_image",
]

ACTIVATIONS = ("ReLU", "LeakyReLU", "Sigmoid", "Tanh")


def _figure(figsize):
    from matplotlib.figure import Figure      # lazy: keep `import tinycnn` light and headless
    return Figure(figsize=figsize, layout="constrained")


def _finish(fig, save):
    if save is not None:
        fig.savefig(save, dpi=100)
    return fig


def _grid(n, max_cols=8):
    cols = min(n, max_cols)
    return -(-n // cols), cols


def _show(ax, img, title=None, cmap="gray", **kw):
    """Draw a (H, W) or (3, H, W) image without ticks; returns the ``AxesImage``."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[0] == 3:
        img = np.clip(np.moveaxis(img, 0, -1), 0, 1)
    elif img.ndim == 3:
        img = img[0]
    im = ax.imshow(img, cmap=cmap, **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8)
    return im


# ------------------------------------------------------------------ training

def plot_history(history, save=None, title="Learning curves: loss and accuracy per epoch"):
    """Loss and accuracy per epoch, training and validation (a ``History`` or its dict).

    Training values are averages over the epoch while the weights were still changing;
    validation values use the end-of-epoch weights. A validation loss that rises while the
    training loss keeps falling is the signature of overfitting.
    """
    h = getattr(history, "history", history)
    if not isinstance(h, dict) or "loss" not in h:
        raise ValueError("plot_history: expected a History or a dict with at least a 'loss' list")
    epochs = list(getattr(history, "epoch", None) or h.get("epoch") or range(1, len(h["loss"]) + 1))
    panels = [("loss", "loss")] + ([("accuracy", "accuracy")] if "accuracy" in h or "val_accuracy" in h else [])
    fig = _figure((5 * len(panels), 3.7))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (key, label) in zip(axes, panels):
        for prefix, style in (("", "o-"), ("val_", "s--")):
            if prefix + key in h:
                ax.plot(epochs[:len(h[prefix + key])], h[prefix + key], style,
                        label=("validation " if prefix else "training ") + label, markersize=3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(f"{label} per epoch", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return _finish(fig, save)


def _percent(p):
    return "<0.1%" if 0 < p < 0.1 else f"{p:.0f}%" if p >= 9.5 else f"{p:.1f}%"


def plot_confusion_matrix(cm, class_names=None, normalize=False, save=None,
                          title="Confusion matrix"):
    """The confusion matrix as a heat map: rows are the true class, columns the prediction.

    Each non-empty cell shows its count and, below it, its share of the true class (the
    row percentage; on the diagonal that is the class's recall). Colour follows the row
    percentage, so a rare class's mistakes are as visible as a common one's. Empty cells
    (0) stay blank. ``normalize=True`` writes only the percentages.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square (K, K) matrix, got shape {cm.shape}")
    K = cm.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(K))]
    if len(names) != K:
        raise ValueError(f"plot_confusion_matrix: {len(names)} class names for {K} classes")
    pct = 100.0 * cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.62 * K + 2.2)
    fig = _figure((size + 1.2, size))
    ax = fig.subplots()
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    fig.colorbar(im, ax=ax, shrink=0.8, label="% of the true class (row)")
    ax.set_xticks(range(K), names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(range(K), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    for i in range(K):
        for j in range(K):
            if cm[i, j] == 0:
                continue                                  # no clutter: blank means 0
            text = _percent(pct[i, j]) if normalize else f"{int(cm[i, j])}\n{_percent(pct[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8 if K > 6 else 10,
                    linespacing=0.95, color="white" if pct[i, j] > 50 else "black")
    what = "% of the true class (row)" if normalize else "count, and below it % of the true class (row)"
    ax.set_title(f"{title}\ncells: {what}; blank = 0", fontsize=10)
    return _finish(fig, save)


def plot_filters(weight, max_filters=64, max_channels=8, save=None, title="Conv filters"):
    """Conv filters as small images: a weight array (F, C, KH, KW) or a ``Conv2D`` layer.

    One-channel filters (first layer on grayscale input) are laid out in a grid; otherwise
    one row per filter and one column per input channel. One diverging colour scale,
    centred on zero and shared by every filter, with a colourbar: red pixels are positive
    weights, blue negative, white zero -- a filter that is red on one side and blue on the
    other responds to an edge.
    """
    w = getattr(getattr(weight, "weight", None), "data", weight)
    w = np.asarray(w)
    if w.ndim != 4:
        raise ValueError(f"plot_filters: expected conv weights (F, C, KH, KW), got shape {w.shape}")
    F, C = min(w.shape[0], max_filters), min(w.shape[1], max_channels)
    if C == 1:
        rows, cols = _grid(F)
        cells = [(f, 0) for f in range(F)]
    else:
        rows, cols = F, C
        cells = [(f, c) for f in range(F) for c in range(C)]
    top = float(np.abs(w[:F, :C]).max()) or 1.0
    fig = _figure((max(1.0 * cols + 1.6, 5.0), 1.0 * rows + 1.2))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (f, c) in zip(axes.ravel(), cells):
        im = ax.imshow(w[f, c], cmap="RdBu_r", vmin=-top, vmax=top, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"filter {f}" if C == 1 else (f"in ch {c}" if f == 0 else None), fontsize=8)
        if C > 1 and c == 0:
            ax.set_ylabel(f"filter {f}", fontsize=8)
    for ax in axes.ravel()[len(cells):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label="weight (0 = white)")
    shown = [f"{F} of {w.shape[0]} filters" if F < w.shape[0] else f"{F} filters"]
    if C < w.shape[1]:
        shown.append(f"{C} of {w.shape[1]} input channels")
    fig.suptitle(f"{title} ({', '.join(shown)}, {w.shape[2]}×{w.shape[3]})\n"
                 "red = positive weight, blue = negative, white = 0", fontsize=10)
    return _finish(fig, save)


def as_one_image(model, x, who="viz", check_shape=False):
    """``x`` as a batch of one ``(1, C, H, W)`` in the model's dtype, or a ValueError naming
    ``who`` when it is not one image (or, with ``check_shape``, not the input shape the model
    records in its ``meta``)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"{who}: expected one image of shape (C, H, W) or (1, C, H, W), got {x.shape}")
    shape = getattr(model, "meta", {}).get("input_shape")
    if check_shape and shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{who}: the model expects images of shape {tuple(shape)}, got {tuple(x.shape[1:])}")
    return x.astype(getattr(model, "dtype", x.dtype), copy=False)


class _EvalMode:
    """``with _EvalMode(model):`` -- eval mode inside, previous mode and no caches after."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.was_training = getattr(self.model, "training", False)
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        if hasattr(self.model, "clear_cache"):
            self.model.clear_cache()
        if self.was_training:
            self.model.train()


def plot_feature_maps(model, x, max_layers=4, max_channels=8, save=None,
                      title="Feature maps of one image, layer by layer"):
    """What the first layers make of one image: row 0 is the input, then one row per
    layer output (Conv2D, activations, pooling ...) until ``max_layers`` rows or the first
    layer whose output is not an image (e.g. ``Flatten``). Up to ``max_channels`` maps each,
    every one labelled with its channel; each row has one colour scale shared by its
    channels, with a colourbar (diverging around 0 when the row has negative values), so
    a weak channel looks weak. A row that shows fewer channels than the layer has says so."""
    x = as_one_image(model, x)
    rows = [("input", x[0])]
    with _EvalMode(model):
        a = x
        for k, layer in enumerate(model.layers):
            a = layer.forward(a)
            if a.ndim != 4 or len(rows) > max_layers:
                break
            rows.append((f"{k}: {type(layer).__name__}", a[0]))
    cols = min(max_channels, max(r[1].shape[0] for r in rows))
    fig = _figure((1.25 * cols + 1.6, 1.45 * len(rows) + 0.6))
    axes = fig.subplots(len(rows), cols, squeeze=False)
    truncated = []
    for (name, maps), row in zip(rows, axes):
        rgb = name == "input" and maps.shape[0] == 3
        n = 1 if rgb else min(cols, maps.shape[0])
        lo, hi = float(maps[:n].min()), float(maps[:n].max())
        signed = lo < 0 < hi and name != "input"     # the input stays a gray photo
        scale = dict(cmap="RdBu_r", vmin=-max(-lo, hi), vmax=max(-lo, hi)) if signed else \
            dict(cmap="gray" if name == "input" else "magma", vmin=lo, vmax=hi if hi > lo else lo + 1)
        for c, ax in enumerate(row):
            if c >= n:
                ax.axis("off")
                continue
            im = _show(ax, maps if rgb else maps[c], title="RGB" if rgb else f"ch {c}", **scale)
        label = f"{name}\n{'×'.join(map(str, maps.shape))}"
        if maps.shape[0] > n and not rgb:
            label += f"\n{n} of {maps.shape[0]} ch"
            truncated.append(f"{n} of {maps.shape[0]} channels shown")
        row[0].set_ylabel(label, fontsize=8)
        if not rgb:
            fig.colorbar(im, ax=list(row), shrink=0.9, pad=0.01,
                         label="pixel value" if name == "input" else "activation")
    note = f" ({truncated[0]} where a layer has more)" if truncated else ""
    fig.suptitle(f"{title}{note}", fontsize=10)
    return _finish(fig, save)


def plot_roc(fpr, tpr, auc=None, point=None, label=None, threshold=None, save=None,
             title="ROC curve: sensitivity against false positive rate"):
    """The ROC curve (TPR against FPR) with the chance diagonal.

    ``point=(fpr, tpr)`` marks the operating point of a chosen threshold; pass its value as
    ``threshold=`` and the plot writes it next to the point.
    """
    fig = _figure((5, 5))
    ax = fig.subplots()
    name = label or "model"
    ax.plot(fpr, tpr, "-", lw=2, label=name if auc is None else f"{name} (AUC = {auc:.3f})")
    ax.plot([0, 1], [0, 1], ":", color="gray", label="chance (AUC = 0.5)")
    if point is not None:
        what = "chosen threshold" if threshold is None else f"threshold {threshold:.3g}"
        ax.plot([point[0]], [point[1]], "o", color="crimson", label=what)
        text = (f"{what}\nTPR {point[1]:.2f}, FPR {point[0]:.2f}")
        right, low = point[0] > 0.6, point[1] < 0.3           # keep the label inside the axes
        ax.annotate(text, xy=(point[0], point[1]), xytext=(-12 if right else 12, 18 if low else -28),
                    textcoords="offset points", ha="right" if right else "left",
                    fontsize=8, color="crimson",
                    arrowprops=dict(arrowstyle="-", color="crimson", lw=0.8))
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    return _finish(fig, save)


def plot_images(x, labels=None, max_images=32, ncols=8, save=None, title=None):
    """A grid of images from a batch (N, C, H, W), titled with ``labels`` if given.

    ``title`` says what the images are (default: how many are shown, and that the small
    titles are their labels)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    n = min(len(x), max_images)
    rows, cols = _grid(n, ncols)
    fig = _figure((1.3 * cols, 1.4 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        if i < n:
            _show(ax, x[i], title=None if labels is None else str(labels[i]))
        else:
            ax.axis("off")
    if title is None:
        title = f"{n} of {len(x)} images" if n < len(x) else f"{n} images"
        title += ", titled with the labels given" if labels is not None else ""
    fig.suptitle(title, fontsize=10)
    return _finish(fig, save)


# ------------------------------------------------------------------ explanations

def _default_class(s, target_class):
    if target_class is not None:
        return int(target_class)
    return 0 if s.shape[1] == 1 else int(np.argmax(s[0]))


def saliency_map(model, x, target_class=None):
    """``|d score / d input|``, maximised over channels: an (H, W) array >= 0.

    ``score`` is the model's raw output (logit) for ``target_class`` (default: the
    predicted class; column 0 for a single-logit binary model). Computed with one forward
    and one backward pass of the model in eval mode; parameter gradients it leaves behind
    are zeroed.
    """
    x = as_one_image(model, x)
    with _EvalMode(model):
        s = model.forward(x)
        dy = np.zeros_like(s)
        dy[0, _default_class(s, target_class)] = 1.0      # d score / d outputs
        dx = model.backward(dy)
    model.zero_grad()
    return np.abs(dx[0]).max(axis=0)


def grad_cam(model, x, target_class=None, layer_index=None):
    """Grad-CAM heat map for one image: (H, W) array in [0, 1], input-sized.

    ``layer_index``: which layer's output to explain. Default: the last ``Conv2D`` --
    or, when activation layers (ReLU, ...) directly follow it, the last of those, since
    Grad-CAM is defined on the rectified feature maps of the last conv block (with the
    raw conv output, negative activations times negative weights light up wrong places).
    Forward runs through every layer keeping that activation ``A``; backward from the
    score runs only through the layers after it, giving ``dA``. Then
    ``alpha_f = mean(dA_f)``, ``cam = relu(sum_f alpha_f A_f)``, bilinearly upsampled to
    the input size and divided by its maximum (all zeros if the map is zero everywhere).
    """
    from tinycnn.transforms import resize
    x = as_one_image(model, x)
    layers = list(model.layers)
    if layer_index is None:
        convs = [k for k, layer in enumerate(layers) if type(layer).__name__ == "Conv2D"]
        if not convs:
            raise ValueError("grad_cam: the model has no Conv2D layer; pass layer_index")
        layer_index = convs[-1]
        while (layer_index + 1 < len(layers)
               and type(layers[layer_index + 1]).__name__ in ACTIVATIONS):
            layer_index += 1
    k = layer_index % len(layers)
    with _EvalMode(model):
        a = x
        for i, layer in enumerate(layers):
            a = layer.forward(a)
            if i == k:
                A = a
        if A.ndim != 4:
            raise ValueError(f"grad_cam: layer {k} ({layers[k]!r}) outputs shape {A.shape}, not (1, F, h, w)")
        dy = np.zeros_like(a)
        dy[0, _default_class(a, target_class)] = 1.0
        for layer in reversed(layers[k + 1:]):
            dy = layer.backward(dy)
    model.zero_grad()
    alpha = dy[0].mean(axis=(1, 2))                               # (F,)
    cam = np.maximum(np.tensordot(alpha, A[0], axes=1), 0.0)      # relu(sum_f alpha_f A_f)
    cam = resize(cam.astype(np.float64), x.shape[2:])
    top = cam.max()
    return cam / top if top > 0 else cam


def plot_saliency(image, heat, title=None, alpha=0.5, marks=None, save=None):
    """Image, heat map (saliency or Grad-CAM) and the two overlaid, side by side.

    ``image``: (H, W) or (C, H, W); ``heat``: (H, W). ``marks``: optional
    ``[(row, col, radius), ...]`` circles drawn on the overlay, e.g. where lesions truly are.
    """
    heat = np.asarray(heat, dtype=np.float64)
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] == 1:
        img = img[0]
    if heat.shape != img.shape[-2:]:
        raise ValueError(f"plot_saliency: heat map {heat.shape} and image {img.shape[-2:]} differ in size")
    name = title or "heat map"
    fig = _figure((10.5, 3.9))
    axes = fig.subplots(1, 3)
    _show(axes[0], img, title="image")
    im = _show(axes[1], heat, title=name, cmap="inferno")
    fig.colorbar(im, ax=axes[1], shrink=0.85, label="influence on the score (higher = more)")
    _show(axes[2], img, title=f"{name} over the image")
    axes[2].imshow(heat, cmap="inferno", alpha=alpha)
    for (r, c, rad) in (marks or []):
        from matplotlib.patches import Circle
        axes[2].add_patch(Circle((c, r), max(rad, 1) + 2, fill=False, color="lime", lw=1.5))
    if marks:
        axes[2].set_xlabel("green circles: true lesions", fontsize=8)
    fig.suptitle(f"{name}: which pixels the class score depends on", fontsize=10)
    return _finish(fig, save)
