"""``python -m tinycnn explain MODEL.npz [--image PNG|NPY | --index N] [--out PATH]``.

Writes the explainer page for one image: a file given with ``--image`` (prepared exactly as
``predict`` prepares it), or test image ``--index N`` of the dataset the model was trained
on (default 0). The page goes next to the model (``<model>.explain.html``) unless ``--out``.
"""
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Register the ``explain`` command on an ``argparse`` sub-parser collection."""
    p = subparsers.add_parser("explain", help="write an interactive page that opens up a trained model",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("model", metavar="MODEL", help="a model.npz written by train")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--image", metavar="PATH", help="a PNG/JPEG drawing or photo, or a .npy array")
    which.add_argument("--index", type=int, default=None, metavar="N",
                       help="test image N of the model's dataset (default: 0)")
    p.add_argument("--out", metavar="PATH", help="the HTML file (default: next to the model)")
    return p


def run(args, cli):
    """Make the page; ``cli`` is :mod:`tinycnn.cli` (its loaders and one-line errors)."""
    from tinycnn.explain import save_explainer
    import tinycnn as tc
    cli.check_model_path(args.model, args.image)     # first: it knows when the two are swapped
    if args.image is not None:
        cli.check_image_path(args.image, usage="usage: tinycnn explain MODEL --image IMAGE")
    model = tc.load_model(args.model)
    out = Path(args.out) if args.out else Path(args.model).with_suffix(".explain.html")
    if out.is_dir():
        raise cli.UsageError(f"--out {out} is a directory; give a file name")
    cli.check_writable(out.parent if str(out.parent) else ".")
    if args.image is not None:
        raw, x, notes = cli.prepare_image(model, args.image)
        for note in notes:
            print(f"note: {note}")
        label = Path(args.image).name
    else:
        raw, x, label = test_image(model, args, cli)
    names = model.meta.get("class_names")
    path = save_explainer(model, x[0], out, raw=raw, class_names=names,
                          title=f"tinycnn explainer: {Path(args.model).name} on {label}")
    size = out.stat().st_size
    print(f"wrote {path} ({size / 1024:.0f} KB): open it in a browser (works offline, by double-click)")
    return 0


def test_image(model, args, cli):
    """``(raw, x, label)`` for test image ``args.index`` of the model's dataset."""
    dataset = model.meta.get("dataset", "mnist5k")
    if dataset == "lesions":
        from tinycnn.lesions_job import lesion_splits
        x_all, y_all = lesion_splits(model.meta.get("samples", 4000), seed=model.meta.get("seed", 0))["test"]
    elif dataset == "mnist5k":
        x_all, y_all = cli.load_data("mnist5k", seed=model.meta.get("seed", 0))["test"]
    else:
        raise cli.UsageError(f"the model was trained on --dataset {dataset}; give the image with --image PATH")
    k = 0 if args.index is None else args.index
    if not 0 <= k < len(x_all):
        raise cli.UsageError(f"--index must be between 0 and {len(x_all) - 1}, got {k}")
    cli.check_input_shape(model, x_all[k:k + 1], f"the {dataset} test split")
    raw = x_all[k]
    if dataset == "lesions":             # patches are stored standardised already
        from tinycnn import transforms
        x = transforms.Normalize.from_dict(model.meta)(raw[None]).astype(model.dtype)
    else:
        x = cli._normalise_for(model, raw[None])
    names = model.meta.get("class_names") or []
    label = int(y_all[k])
    return raw, x, f"{dataset} test image {k} (label {names[label] if label < len(names) else label})"
