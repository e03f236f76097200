"""The command line: ``python -m tinycnn {train, evaluate, predict, explain, export, bench}``.

``tinycnn train`` with no arguments trains LeNet-5 on the 5,000 real MNIST digits shipped
with the package and writes a run folder (``runs/<timestamp>/``) with the model, its
history and plots. ``tinycnn train --dataset lesions`` runs the medical case study instead
(tutorial 08; the pipeline lives in ``tinycnn/lesions_job.py``). Mistakes (a bad option, a
missing file, a file that is not a model) print one line and exit with 2, and the checks
that can fail do so before any training starts (see ``tinycnn/cli_checks.py``).
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from tinycnn.cli_checks import (
    UsageError, check_image_path, check_input_shape, check_model_path, check_split_sizes,
    check_writable, decide, shape_text,
)
from tinycnn.safe_npz import NPZ, file_kind

__all__ = ["main", "build_parser", "load_data", "UsageError"]

DATASETS = ("mnist5k", "idx", "medmnist", "lesions")
# per-dataset defaults of --epochs and --lr: LeNet-5 uses SGD, the lesion detector Adam
TRAIN_DEFAULTS = {"lesions": {"epochs": 25, "lr": 2e-3}}
# LeNet-5 on mnist5k: chosen on the validation split by benchmarks/accuracy_sweep.py (issue 15)
TRAIN_DEFAULT = {"epochs": 30, "lr": 0.02}
MAX_SHIFT, MAX_ROTATION = 2, 10.0            # training augmentation: pixels, degrees


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see: {self.prog} --help)")


# ------------------------------------------------------------------ data

def load_data(dataset, data=None, labels=None, seed=0):
    """``{"train": (x, y), "val": (x, y) | None, "test": (x, y), "class_names": [...]}``."""
    from tinycnn import datasets
    if dataset == "mnist5k":
        train, test = datasets.load_mnist5k(seed=seed)
        return {"train": train, "val": None, "test": test, "class_names": [str(k) for k in range(10)]}
    if dataset == "lesions":                     # synthetic, standardised patch by patch
        from tinycnn.lesions_job import lesion_splits
        return {**lesion_splits(seed=seed), "class_names": ["healthy", "lesion"]}
    if data is None:
        raise UsageError(f"--dataset {dataset} needs --data PATH")
    for path in (data, labels):
        if path is not None and not os.path.isfile(path):
            raise UsageError(f"no such file: {path}")
    if dataset == "idx":
        if labels is None:
            raise UsageError("--dataset idx needs --labels PATH (the labels IDX file) besides --data")
        x, y = datasets.load_mnist_idx(data, labels)
        train_idx, test_idx = datasets.stratified_split(y, 0.2, seed=seed)
        names = [str(k) for k in range(int(y.max()) + 1)]
        return {"train": (x[train_idx], y[train_idx]), "val": None, "test": (x[test_idx], y[test_idx]),
                "class_names": names}
    if dataset == "medmnist":
        kind = file_kind(data)
        if kind != NPZ:
            raise UsageError(f"{data} is not a MedMNIST .npz file (it is {kind or 'not a .npz archive'})")
        splits = datasets.load_medmnist(data)
        y = splits["train"][1]
        return {"train": splits["train"], "val": splits.get("val"), "test": splits["test"],
                "class_names": [str(k) for k in range(int(y.max()) + 1)]}
    raise UsageError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")


# ------------------------------------------------------------------ commands

def _new_run_folder(root, prefix=""):
    """A fresh folder ``root/<prefix><YYYYmmdd-HHMMSS>[-k]``, never an existing one."""
    stamp = prefix + time.strftime("%Y%m%d-%H%M%S")
    folder, k = Path(root) / stamp, 1
    while folder.exists():
        k += 1
        folder = Path(root) / f"{stamp}-{k}"
    folder.mkdir(parents=True)
    return folder


def _background(x, n=200):
    """"dark" or "bright": the typical border level of up to ``n`` training images."""
    from tinycnn.datasets.images import border_level
    level = float(np.median([border_level(im) for im in x[:n]]))
    return "bright" if level > 0.5 else "dark"


def cmd_train(args):
    import tinycnn as tc
    from tinycnn import losses, metrics, optim, transforms
    from tinycnn.datasets import stratified_split
    from tinycnn.models import lenet5, resnet_mini

    check_writable(args.out)                     # fail now, not after training
    if args.dataset == "lesions":
        from tinycnn.lesions_job import run
        run(args, _new_run_folder)
        return 0
    data = load_data(args.dataset, args.data, args.labels, seed=args.seed)
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    classes = data["class_names"]
    if data["val"] is None:
        check_split_sizes(y_train, args.limit, args.val_split, len(classes))
    if args.limit and args.limit < len(y_train):     # quick runs: a stratified subset
        keep, _ = stratified_split(y_train, 1 - args.limit / len(y_train), seed=args.seed)
        x_train, y_train = x_train[keep], y_train[keep]
    if data["val"] is None:                      # hold out part of the training set
        fit_idx, val_idx = stratified_split(y_train, args.val_split, seed=args.seed)
        data["val"] = (x_train[val_idx], y_train[val_idx])
        x_train, y_train = x_train[fit_idx], y_train[fit_idx]
    x_val, y_val = data["val"]
    background = _background(x_train)            # before normalising: pixels in [0, 1]
    norm = transforms.Normalize.fit(x_train)     # statistics of the training set only
    x_train, x_val, x_test = norm(x_train), norm(x_val), norm(x_test)
    N, C, H, W = x_train.shape
    if H != W or H < 12:
        raise UsageError(f"LeNet-5 here takes square images of at least 12×12; the {args.dataset} "
                         f"data holds images of {shape_text((C, H, W))}")
    build = {"lenet5": lenet5, "resnet_mini": resnet_mini}[args.model]
    model = build(in_channels=C, num_classes=len(classes), input_size=H, rng=args.seed)
    model.meta.update({"dataset": args.dataset, "seed": args.seed, "class_names": classes,
                       "background": background, "architecture": args.model, **norm.to_dict()})
    print(f"tinycnn {tc.__version__}: {args.model} on {args.dataset} — {len(x_train)} train, "
          f"{len(x_val)} validation, {len(x_test)} test images of {C}×{H}×{W}; backend {tc.get_backend()}")
    print(model.summary())
    started = time.perf_counter()
    if tc.get_backend() == "numba":
        print("compiling the Numba kernels (cached after the first run) ...", flush=True)
        tc.warmup(model=model, x=x_train[:args.batch_size])    # only the kernels it calls
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    history = model.fit(x_train, y_train, loss=losses.SoftmaxCrossEntropy(), optimizer=opt,
                        epochs=args.epochs, batch_size=args.batch_size, validation_data=(x_val, y_val),
                        seed=args.seed, verbose=True, scheduler=optim.CosineLR(opt, T_max=args.epochs),
                        augment=None if args.no_augment else _augmentation(args.rotation))
    seconds = time.perf_counter() - started
    y_pred, _ = decide(model, model.predict(x_test))
    accuracy = metrics.accuracy(y_test, y_pred)
    print(f"test accuracy: {accuracy:.2%} ({int(round(accuracy * len(y_test)))}/{len(y_test)}) "
          f"after {len(history.epoch)} epochs in {seconds:.1f} s")

    folder = _new_run_folder(args.out)
    model.save(folder / "model.npz")
    record = {"history": history.to_dict(), "test_accuracy": accuracy, "seconds": seconds,
              "args": vars(args), "backend": tc.get_backend()}
    (folder / "history.json").write_text(json.dumps(record, indent=2, default=str))
    if not args.no_plots:
        from tinycnn import viz
        cm = metrics.confusion_matrix(y_test, y_pred, num_classes=len(classes))
        viz.plot_history(history, save=folder / "curves.png")
        viz.plot_confusion_matrix(cm, class_names=classes, save=folder / "confusion.png",
                                  title=f"Confusion matrix, {args.dataset} test set ({len(y_test)} images)")
        viz.plot_filters(model.layers[0].weight.data, title="First-layer conv filters",
                         save=folder / "filters.png")
        viz.plot_feature_maps(model, x_test[:1], save=folder / "feature_maps.png")
    print(f"run folder: {folder}")
    return 0


def _augmentation(max_degrees=MAX_ROTATION):
    """Random ±2 px shifts, then rotations of up to ±``max_degrees`` (none if 0): the
    training augmentation of ``train``."""
    from tinycnn import transforms
    if not max_degrees:
        return transforms.RandomShift(MAX_SHIFT)
    return transforms.Compose([transforms.RandomShift(MAX_SHIFT), transforms.RandomRotation(max_degrees)])


def _load_model(path, image=None):
    import tinycnn as tc
    check_model_path(path, image)
    return tc.load_model(path)


def _normalise_for(model, x):
    from tinycnn import transforms
    if model.meta.get("standardize") == "per_image":
        from tinycnn.lesions_job import standardize_patches
        x = standardize_patches(x)
    if "mean" in model.meta:
        x = transforms.Normalize.from_dict(model.meta)(x)
    return x.astype(model.dtype)


def cmd_evaluate(args):
    from tinycnn import metrics, transforms
    model = _load_model(args.model)
    dataset = args.dataset or model.meta.get("dataset", "mnist5k")
    if dataset == "lesions":                     # the test split of the run that trained it
        from tinycnn.lesions_job import lesion_splits
        splits = lesion_splits(model.meta.get("samples", 4000), seed=model.meta.get("seed", 0))
        data = {"test": splits["test"], "class_names": ["healthy", "lesion"]}
        x, y = data["test"]
        check_input_shape(model, x, "the lesions test split")
        x = transforms.Normalize.from_dict(model.meta)(x).astype(model.dtype)   # already standardised
        probs = model.predict(x)
        print(f"ROC AUC: {metrics.roc_auc(y, probs[:, -1]):.4f}")
    else:
        data = load_data(dataset, args.data, args.labels, seed=model.meta.get("seed", 0))
        x, y = data["test"]
        check_input_shape(model, x, f"the {dataset} test split")
        probs = model.predict(_normalise_for(model, x))
    y_pred, threshold = decide(model, probs)
    if threshold is not None:
        print(f"decision: positive when the score is >= {threshold:.4g} ({_threshold_source(model)})")
    names = model.meta.get("class_names") or data["class_names"]
    print(f"{dataset} test split: {len(y)} images")
    print(f"accuracy: {metrics.accuracy(y, y_pred):.2%}")
    print(metrics.classification_report(y, y_pred, class_names=names, num_classes=len(names)))
    print("confusion matrix (rows: true class, columns: predicted):")
    print(metrics.confusion_matrix(y, y_pred, num_classes=len(names)))
    return 0


def _threshold_source(model):
    return ("stored with the model, chosen on validation data" if "threshold" in model.meta
            else "the default for a single sigmoid output")


def _model_background(model):
    """The background the model was trained on: stored by ``train``; for older MNIST-style
    models (light ink on black) inferred from the dataset; otherwise unknown (None)."""
    if model.meta.get("background") in ("dark", "bright"):
        return model.meta["background"]
    return "dark" if model.meta.get("dataset") in ("mnist5k", "idx") else None


def prepare_image(model, path, invert="auto", frame="auto"):
    """``(image, x, notes)``: an image file fitted to ``model``'s input (channels, background,
    size, MNIST-style framing) in [0, 1], the same normalised as the model expects
    ``(1, C, H, W)``, and what was changed, as notes to print. ``predict`` and ``explain`` share it."""
    from tinycnn.datasets import load_image
    from tinycnn.datasets.images import fit_to_input
    image = load_image(path)
    shape = model.meta.get("input_shape") or image.shape
    # MNIST digits were framed (20 px box, centred by mass): frame a drawing the same way
    frame = frame == "yes" or (frame == "auto" and model.meta.get("dataset") == "mnist5k")
    x, notes = fit_to_input(image, shape, background=_model_background(model), invert=invert,
                            frame=frame)
    return x, _normalise_for(model, x[None]), notes


def cmd_predict(args):
    import tinycnn as tc
    check_model_path(args.model, args.image)     # first: it knows when the two are swapped
    check_image_path(args.image)
    model = tc.load_model(args.model)            # MODEL was checked just above
    _, x, notes = prepare_image(model, args.image, invert=args.invert, frame=args.frame)
    for note in notes:
        print(f"note: {note}")
    probs = model.predict(x)
    (best,), threshold = decide(model, probs)
    probs = probs[0] if probs.shape[1] > 1 else np.r_[1 - probs[0, 0], probs[0, 0]]
    names = model.meta.get("class_names") or [str(k) for k in range(len(probs))]
    if threshold is None:
        print(f"class: {names[best]} (probability {probs[best]:.3f})")
    else:
        print(f"class: {names[best]} (score {probs[1]:.3f} {'>=' if best else '<'} threshold "
              f"{threshold:.3f}: {_threshold_source(model)}, the same rule evaluate uses)")
    for name, p in sorted(zip(names, probs), key=lambda t: -t[1]):
        print(f"  {name:>10}  {p:.4f}")
    return 0


BENCH_HELP = ("tinycnn bench: time the kernels and LeNet-5 against PyTorch (runs "
              "benchmarks/run.py from a git checkout). Results go to a fresh folder "
              "runs/bench-<time>/ unless --out DIR is given; --out benchmarks rewrites the "
              "committed benchmarks/RESULTS.md. Its options:")


def _run_bench_script(script, argv):
    """Load ``benchmarks/run.py`` as a module and call its ``main(argv)``, with ``sys.argv[0]``
    set to ``tinycnn bench`` so its ``--help`` and error messages name this command."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("tinycnn_benchmarks_run", script)
    module = importlib.util.module_from_spec(spec)
    saved = sys.argv
    sys.argv = ["tinycnn bench"] + argv
    try:
        spec.loader.exec_module(module)
        return module.main(argv)
    finally:
        sys.argv = saved


def cmd_bench(args):
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
    if not script.is_file():
        raise UsageError("the benchmark suite lives in the repository (benchmarks/run.py); "
                         "run it from a git checkout: python benchmarks/run.py")
    rest = list(args.bench_args)
    if "-h" in rest or "--help" in rest:
        print(BENCH_HELP + "\n")
    elif not any(a == "--out" or a.startswith("--out=") for a in rest):
        if "--render" in rest:
            raise UsageError("bench --render rebuilds the report of an earlier run: name its "
                             "folder (with results_threads*.json) with --out DIR")
        rest += ["--out", str(_new_run_folder("runs", prefix="bench-"))]
        print(f"benchmark results go to {rest[-1]}/", file=sys.stderr, flush=True)
    return _run_bench_script(script, rest)


# ------------------------------------------------------------------ parser

def build_parser():
    """The ``argparse`` parser of ``python -m tinycnn`` and its subcommands."""
    parser = _Parser(prog="tinycnn", description="tinycnn: train, evaluate and benchmark small CNNs.")
    parser.add_argument("--backend", choices=("numba", "reference"), default="numba",
                        help="kernel implementation (default: numba)")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    def data_options(p):
        p.add_argument("--dataset", choices=DATASETS, help="which data (default: mnist5k)")
        p.add_argument("--data", metavar="PATH", help="images file: IDX (.gz) or MedMNIST .npz")
        p.add_argument("--labels", metavar="PATH", help="labels IDX file (with --dataset idx)")

    train = sub.add_parser("train", help="train LeNet-5 (lesions: a small detector) and write a run folder")
    data_options(train)
    train.set_defaults(dataset="mnist5k")
    train.add_argument("--model", choices=("lenet5", "resnet_mini", "lesion_cnn"), default=None,
                       help="the network: lenet5 (default) or resnet_mini; with --dataset lesions, "
                            "lesion_cnn (default) or resnet_mini")
    train.add_argument("--epochs", type=int, default=None, help="default: 30 (lesions: 25)")
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=None,
                       help="learning rate, cosine-annealed: SGD 0.02 (lesions: Adam 0.002)")
    train.add_argument("--weight-decay", type=float, default=5e-4)
    train.add_argument("--val-split", type=float, default=0.1,
                       help="fraction of the training set held out for validation")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default="runs", metavar="DIR", help="parent of the run folder")
    train.add_argument("--limit", type=int, default=0, metavar="N",
                       help="train on about N training images only (quick runs)")
    train.add_argument("--no-plots", action="store_true")
    train.add_argument("--no-augment", action="store_true",
                       help="turn off random ±2 px shifts and rotations (lesions: random flips)")
    train.add_argument("--rotation", type=float, default=MAX_ROTATION, metavar="DEG",
                       help="largest random rotation of a training image, in degrees (default: "
                            f"{MAX_ROTATION:g}; 0: shifts only; not used with --dataset lesions)")
    lesions = train.add_argument_group(
        "--dataset lesions (synthetic microaneurysms)",
        "lesion_cnn with Adam, class weights and early stopping; --weight-decay, --val-split "
        "and --limit apply to LeNet-5 only")
    lesions.add_argument("--samples", type=int, default=4000, help="patches to generate (default 4000)")
    lesions.add_argument("--patience", type=int, default=5, help="early-stopping patience in epochs")
    lesions.add_argument("--imbalance", choices=("weights", "sampler"), default="weights",
                         help="class-weighted loss or balanced minibatches")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="accuracy, per-class precision/recall, confusion matrix")
    evaluate.add_argument("model", metavar="MODEL", help="a model.npz written by train")
    data_options(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    predict = sub.add_parser("predict", help="class probabilities for one image (PNG, JPEG, .npy)")
    predict.add_argument("model", metavar="MODEL", help="a model.npz written by train")
    predict.add_argument("image", metavar="IMAGE",
                         help="a PNG/JPEG drawing or photo, or a .npy array; resized to fit")
    predict.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                         help="auto: invert (1 - x) when the image's background is the opposite "
                              "of the training images' (black ink on white paper for MNIST)")
    predict.add_argument("--frame", choices=("auto", "yes", "no"), default="auto",
                         help="frame the ink like MNIST (20 px box, centred by mass) when resizing; "
                              "auto: for models trained on the shipped MNIST digits")
    predict.set_defaults(func=cmd_predict)

    from tinycnn.explain import job as explain_job
    from tinycnn.interop import export_job
    explain_job.add_parser(sub).set_defaults(func=lambda args: explain_job.run(args, sys.modules[__name__]))
    export_job.add_parser(sub).set_defaults(
        func=lambda args: export_job.run(args, lambda path: _load_model(path), UsageError))

    bench = sub.add_parser("bench", help="time kernels and LeNet-5 against PyTorch (benchmarks/run.py, "
                                         "needs a git checkout) into runs/bench-<time>/; its "
                                         "options: tinycnn bench --help")
    bench.set_defaults(func=cmd_bench)
    return parser


def _check_train_args(args):
    defaults = TRAIN_DEFAULTS.get(args.dataset, TRAIN_DEFAULT)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    lesions = args.dataset == "lesions"
    if args.model is None:
        args.model = "lesion_cnn" if lesions else "lenet5"
    if args.model == "lesion_cnn" and not lesions:
        raise UsageError("--model lesion_cnn is the lesion detector: use it with --dataset lesions")
    if args.model == "lenet5" and lesions:
        raise UsageError("--dataset lesions trains lesion_cnn or resnet_mini, not lenet5")
    if args.dataset == "lesions" and args.samples < 50:
        raise UsageError(f"--samples must be >= 50, got {args.samples}")
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0 <= args.rotation <= 180:
        raise UsageError(f"--rotation must be between 0 and 180 degrees, got {args.rotation:g}")
    if args.limit < 0:
        raise UsageError(f"--limit must be >= 0 (0: all training images), got {args.limit}")
    if args.lr <= 0:
        raise UsageError(f"--lr must be > 0, got {args.lr}")
    if not 0 < args.val_split < 1:
        raise UsageError(f"--val-split must be between 0 and 1, got {args.val_split}")


def _split_bench(argv):
    """``[..., "bench", *rest]`` -> (``[..., "bench"]``, rest): bench's options go to its script."""
    k = 0
    while k < len(argv) and argv[k].startswith("-"):
        k += 2 if argv[k] == "--backend" else 1          # global options (--backend takes a value)
    if k < len(argv) and argv[k] == "bench":
        rest = argv[k + 1:]
        return argv[:k + 1], rest[1:] if rest[:1] == ["--"] else rest
    return argv, []


def main(argv=None):
    """Entry point of ``tinycnn`` and ``python -m tinycnn``; returns the exit code."""
    import tinycnn as tc
    try:
        argv, bench_args = _split_bench(sys.argv[1:] if argv is None else list(argv))
        args = build_parser().parse_args(argv)
        if args.command == "bench":
            args.bench_args = bench_args
        if args.command is None:
            raise UsageError("choose a command: train, evaluate, predict, explain, export or bench "
                             "(see: tinycnn --help)")
        if args.command == "train":
            _check_train_args(args)
        tc.set_backend(args.backend)
        return args.func(args)
    except UsageError as err:
        print(f"tinycnn: error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as err:   # unreadable data or model files
        if os.environ.get("TINYCNN_DEBUG"):
            raise
        print(f"tinycnn: error: {err} (set TINYCNN_DEBUG=1 for a traceback)", file=sys.stderr)
        return 2
    except BrokenPipeError:                          # `tinycnn predict ... | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("tinycnn: interrupted", file=sys.stderr)
        return 130
