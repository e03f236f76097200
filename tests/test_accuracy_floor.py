"""The promise of ``python -m tinycnn train``: its default recipe (chosen on the validation
split by ``benchmarks/accuracy_sweep.py``; the sweep is in ``benchmarks/accuracy_sweep.md``)
reaches at least 97.2 % test accuracy on the shipped MNIST split for each of seeds 0-4.
This trains it once, seed 0, through the command line itself, so a kernel, layer or
optimiser change that quietly costs accuracy fails here. One run takes about 10-15 CPU
seconds; the test checks accuracy only, never time.
"""
import importlib.util
import json
from pathlib import Path

from tinycnn.cli import MAX_SHIFT, UsageError, _check_train_args, build_parser, main

FLOOR = 0.972
SWEEP = Path(__file__).resolve().parent.parent / "benchmarks" / "accuracy_sweep.py"


def _sweep():
    spec = importlib.util.spec_from_file_location("accuracy_sweep", SWEEP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_defaults_are_the_recipe_the_sweep_chose():
    sweep = _sweep()
    chosen = {**sweep.BASE, **sweep.RECIPES["chosen"]}
    args = build_parser().parse_args(["train"])
    _check_train_args(args)
    used = {"model": args.model, "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
            "weight_decay": args.weight_decay, "shift": MAX_SHIFT, "rotation": args.rotation, "label_smoothing": 0.0, "warmup": 0,
            "train_fraction": 1.0}
    assert used == chosen
    assert args.val_split == 0.1 and not args.no_augment


def test_default_recipe_meets_the_accuracy_floor(tmp_path, capsys):
    assert main(["train", "--seed", "0", "--no-plots", "--out", str(tmp_path)]) == 0
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    record = json.loads((folder / "history.json").read_text())
    accuracy = record["test_accuracy"]
    assert accuracy >= FLOOR, (f"tinycnn train --seed 0 reached {accuracy:.2%} test accuracy, "
                               f"below the {FLOOR:.1%} floor that README.md promises")
    assert len(record["history"]["loss"]) == record["args"]["epochs"]


def test_rotation_option_checked():
    for bad in ("-1", "200"):
        args = build_parser().parse_args(["train", "--rotation", bad])
        try:
            _check_train_args(args)
        except UsageError as err:
            assert "--rotation" in str(err) and bad in str(err)
        else:
            raise AssertionError(f"--rotation {bad} was accepted")
