"""The lesion-detection pipeline of tutorial 08, as functions (and as ``tinycnn train
--dataset lesions``): data → preprocessing → small CNN → imbalance-aware training with
early stopping → ROC/AUC and a threshold chosen on validation data.

For learning only: the lesions are simulated; nothing here is fit for clinical use.

>>> x = np.array([[[[1.0, 3.0], [1.0, 3.0]]]], dtype=np.float32)
>>> standardize_patches(x)[0, 0].tolist()
[[-1.0, 1.0], [-1.0, 1.0]]
"""
import time

import numpy as np

__all__ = ["RECIPE", "standardize_patches", "darkest_pixel_score", "lesion_splits",
           "class_weights", "build_detector", "train_detector", "run"]

# The recipe measured in the closing note of the case study: 4,000 patches, 20 % lesions.
RECIPE = {"samples": 4000, "epochs": 25, "lr": 2e-3, "batch_size": 64, "patience": 5,
          "test_fraction": 0.25, "val_fraction": 0.2}


def standardize_patches(x, eps=1e-6):
    r"""Per-image standardisation :math:`(x - \mu_n) / \max(\sigma_n, \epsilon)`, with the
    mean and std of each image ``n`` over its own pixels (``eps`` guards a flat image).

    Fundus photographs differ in exposure and contrast; a lesion is "darker than *its*
    surroundings", not darker than a fixed grey level. Dividing each patch by its own
    spread removes the gain/contrast differences before the network sees them.
    """
    x = np.asarray(x)
    axes = tuple(range(1, x.ndim))
    x64 = x.astype(np.float64)
    mean, std = x64.mean(axis=axes, keepdims=True), x64.std(axis=axes, keepdims=True)
    return ((x64 - mean) / np.maximum(std, eps)).astype(x.dtype if x.dtype.kind == "f" else np.float32)


def darkest_pixel_score(x):
    """The naive rule "a lesion is a dark dot": each image's score is minus its darkest
    pixel. Vessels are dark too, which is why it is a weak baseline."""
    x = np.asarray(x)
    return -x.reshape(len(x), -1).min(axis=1).astype(np.float64)


def lesion_splits(n=RECIPE["samples"], size=32, seed=0, test_fraction=RECIPE["test_fraction"],
                  val_fraction=RECIPE["val_fraction"]):
    """Generate ``retinal_lesions(n, size, seed=seed)`` and split it three ways, stratified:
    test (``test_fraction``), then validation (``val_fraction`` of the rest) and train.
    Patches are standardised one by one (:func:`standardize_patches`); dataset-level
    normalisation is left to the caller (fit it on the training part only).

    Returns ``{"train": (x, y), "val": (x, y), "test": (x, y)}``.
    """
    from tinycnn.datasets import retinal_lesions, stratified_split
    x, y = retinal_lesions(n, size=size, seed=seed)
    x = standardize_patches(x)
    rest, test = stratified_split(y, test_fraction, seed=seed)
    fit, val = stratified_split(y[rest], val_fraction, seed=seed + 1)
    fit, val = rest[fit], rest[val]
    return {"train": (x[fit], y[fit]), "val": (x[val], y[val]), "test": (x[test], y[test])}


def class_weights(y):
    """Inverse-frequency weights ``w_k = N / (K · n_k)``: each class then contributes the
    same total weight to the loss (at 20 % positives: 0.625 and 2.5)."""
    counts = np.bincount(np.asarray(y))
    return len(y) / (len(counts) * np.maximum(counts, 1))


def build_detector(architecture, input_shape, seed=0):
    """The untrained detector :func:`train_detector` trains: ``"lesion_cnn"`` or
    ``"resnet_mini"`` (narrower than for digits: 32×32 patches, 2 classes) for patches of
    ``input_shape`` (C, H, W)."""
    from tinycnn.models import lesion_cnn, resnet_mini

    if architecture not in ("lesion_cnn", "resnet_mini"):
        raise ValueError(f"train_detector: architecture must be 'lesion_cnn' or 'resnet_mini', got {architecture!r}")
    C, _, W = input_shape
    if architecture == "resnet_mini":
        return resnet_mini(in_channels=C, num_classes=2, widths=(8, 16, 32), input_size=W, rng=seed)
    return lesion_cnn(in_channels=C, input_size=W, rng=seed)


def train_detector(x_train, y_train, x_val, y_val, *, epochs=RECIPE["epochs"], lr=RECIPE["lr"],
                   batch_size=RECIPE["batch_size"], patience=RECIPE["patience"],
                   imbalance="weights", augment=True, seed=0, verbose=False, architecture="lesion_cnn"):
    """Train :func:`tinycnn.models.lesion_cnn` on normalised patches; returns ``(model, history)``.

    Adam with a cosine learning-rate schedule; class imbalance handled by
    ``imbalance="weights"`` (class-weighted cross-entropy) or ``"sampler"`` (balanced
    minibatches); random flips as augmentation (a fundus patch has no up or left); early
    stopping on the validation loss, keeping the best epoch's weights.
    """
    from tinycnn import losses, optim, transforms
    from tinycnn.datasets import balanced_batches
    from tinycnn.train import EarlyStopping

    if imbalance not in ("weights", "sampler", None):
        raise ValueError(f"train_detector: imbalance must be 'weights', 'sampler' or None, got {imbalance!r}")
    model = build_detector(architecture, x_train.shape[1:], seed)
    opt = optim.Adam(model.parameters(), lr=lr)
    weights = class_weights(y_train) if imbalance == "weights" else None
    history = model.fit(
        x_train, y_train, loss=losses.SoftmaxCrossEntropy(class_weights=weights), optimizer=opt,
        epochs=epochs, batch_size=batch_size, validation_data=(x_val, y_val), seed=seed,
        verbose=verbose, scheduler=optim.CosineLR(opt, T_max=epochs),
        augment=transforms.RandomFlip(horizontal=True, vertical=True) if augment else None,
        sampler=balanced_batches if imbalance == "sampler" else None,
        callbacks=[EarlyStopping(monitor="val_loss", patience=patience, restore_best=True)])
    return model, history


def run(args, new_run_folder):
    """``tinycnn train --dataset lesions``: the whole pipeline, a printed report and a run
    folder (model, history.json with every number, ROC curve, learning curves, confusion)."""
    import json

    import tinycnn as tc
    from tinycnn import metrics, transforms
    from tinycnn.validation import binary_report, positive_scores

    started = time.perf_counter()
    data = lesion_splits(args.samples, seed=args.seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data["train"], data["val"], data["test"]
    norm = transforms.Normalize.fit(x_train)         # training statistics only
    x_train, x_val, x_test = norm(x_train), norm(x_val), norm(x_test)
    architecture = getattr(args, "model", None) or "lesion_cnn"
    print(f"tinycnn {tc.__version__}: {architecture} on {args.samples} synthetic fundus patches "
          f"({len(x_train)} train, {len(x_val)} validation, {len(x_test)} test; "
          f"{y_train.mean():.0%} lesions); backend {tc.get_backend()}")
    print("For learning only -- simulated lesions, not for clinical use.")
    if tc.get_backend() == "numba":                # only the kernels this detector calls
        tc.warmup(model=build_detector(architecture, x_train.shape[1:], args.seed),
                  x=x_train[:args.batch_size])
    model, history = train_detector(x_train, y_train, x_val, y_val, epochs=args.epochs, lr=args.lr,
                                    batch_size=args.batch_size, patience=args.patience,
                                    imbalance=args.imbalance, augment=not args.no_augment,
                                    seed=args.seed, verbose=True, architecture=architecture)
    threshold = metrics.best_threshold(y_val, positive_scores(model.predict(x_val)))
    test_scores = positive_scores(model.predict(x_test))
    report = binary_report(y_test, test_scores, threshold)
    baseline = metrics.roc_auc(y_test, darkest_pixel_score(x_test))
    seconds = time.perf_counter() - started
    print(f"test AUC {report['auc']:.4f} (darkest-pixel baseline {baseline:.4f}); at the "
          f"validation-chosen threshold {threshold:.3f}: sensitivity {report['sensitivity']:.3f}, "
          f"specificity {report['specificity']:.3f}, accuracy {report['accuracy']:.3f} "
          f"(always 'healthy' would score {1 - y_test.mean():.3f}); "
          f"{len(history.epoch)} epochs, {seconds:.1f} s")
    print("confusion matrix (rows: true healthy/lesion, columns: called healthy/lesion):")
    print(report["confusion"])

    model.meta.update({"dataset": "lesions", "seed": args.seed, "samples": args.samples,
                       "class_names": ["healthy", "lesion"], "standardize": "per_image",
                       "threshold": threshold, "architecture": architecture, **norm.to_dict()})
    folder = new_run_folder(args.out)
    model.save(folder / "model.npz")
    record = {"history": history.to_dict(), "test_auc": report["auc"], "threshold": threshold,
              "sensitivity": report["sensitivity"], "specificity": report["specificity"],
              "test_accuracy": report["accuracy"], "confusion": report["confusion"].tolist(),
              "baseline_darkest_pixel_auc": baseline, "seconds": seconds, "args": vars(args),
              "backend": tc.get_backend()}
    (folder / "history.json").write_text(json.dumps(record, indent=2, default=str))
    if not args.no_plots:
        from tinycnn import viz
        fpr, tpr, _ = metrics.roc_curve(y_test, test_scores)
        point = (1 - report["specificity"], report["sensitivity"])
        viz.plot_roc(fpr, tpr, auc=report["auc"], point=point, threshold=threshold, label=architecture,
                     title="ROC curve on the test set (threshold chosen on validation)",
                     save=folder / "roc.png")
        viz.plot_history(history, save=folder / "curves.png")
        viz.plot_confusion_matrix(report["confusion"], class_names=["healthy", "lesion"],
                                  title=f"Confusion matrix, test set, threshold {threshold:.3g}",
                                  save=folder / "confusion.png")
        # the explainer page for one lesion patch of the test set (tinycnn explain, issue 13)
        from tinycnn.explain import save_explainer
        k = int(np.argmax(y_test == 1))
        save_explainer(model, x_test[k], folder / "explain_lesion.html", class_names=["healthy", "lesion"],
                       title=f"{architecture} on a lesion test patch (index {k})")
    print(f"run folder: {folder}")
    return record
