"""``python -m tinycnn export MODEL.npz --to {onnx,torch} [-o FILE]``.

* ``--to onnx`` writes ``MODEL.onnx`` (or ``-o FILE``): the inference graph, loadable by
  onnxruntime and any other ONNX runtime.
* ``--to torch`` writes ``MODEL.pt`` (or ``-o FILE``), a PyTorch ``state_dict`` of plain
  tensors, and prints the ``nn.Sequential`` code that rebuilds the module and loads it
  (``torch.load(..., weights_only=True)``, which refuses anything but tensors).
"""
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Register the ``export`` command on an ``argparse`` sub-parser collection."""
    p = subparsers.add_parser("export", help="write a trained model as ONNX or as PyTorch weights + code",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a tinycnn model file (runs/<run>/model.npz)")
    p.add_argument("--to", choices=("onnx", "torch"), required=True, help="target format")
    p.add_argument("-o", "--out", help="output file (default: next to the model, .onnx or .pt)")
    return p


def run(args, load_model, usage_error):
    """Do the export; ``load_model(path)`` and ``usage_error`` come from the CLI (one-line errors)."""
    model = load_model(args.model)
    out = Path(args.out) if args.out else Path(args.model).with_suffix(".onnx" if args.to == "onnx" else ".pt")
    if out.is_dir():
        raise usage_error(f"--out {out} is a directory; give a file name")
    if not out.parent.exists():
        raise usage_error(f"--out {out}: folder {out.parent} does not exist")
    try:
        if args.to == "onnx":
            from tinycnn.interop import OPSET, export_onnx
            export_onnx(model, out)
            print(f"wrote {out} (ONNX opset {OPSET}; input 'input' (batch, "
                  f"{', '.join(map(str, model.meta['input_shape']))}), outputs 'logits', 'probabilities')")
        else:
            from tinycnn.interop import to_torch, torch_code
            from tinycnn.interop.extras import require
            torch = require("torch", "tinycnn export --to torch")
            torch.save(to_torch(model).state_dict(), out)
            print(f"wrote {out} (a PyTorch state_dict). Rebuild the module with:\n")
            print(torch_code(model, out))
    except (ImportError, TypeError) as err:      # missing extra, or a layer with no counterpart
        raise usage_error(str(err)) from None
    return 0
