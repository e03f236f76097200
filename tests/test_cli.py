"""The command line: a short real training run, evaluate, predict, and one-line errors."""
import json

import numpy as np
import pytest

from tinycnn.cli import main


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["train", "--epochs", "1", "--limit", "600", "--out", str(out), "--seed", "1"]) == 0
    (folder,) = list(out.iterdir())
    return folder


def test_train_writes_a_complete_run_folder(run_folder):
    names = sorted(p.name for p in run_folder.iterdir())
    assert names == ["confusion.png", "curves.png", "feature_maps.png", "filters.png",
                     "history.json", "model.npz"]
    record = json.loads((run_folder / "history.json").read_text())
    assert record["history"]["epoch"] == [1]
    assert 0.2 < record["test_accuracy"] <= 1.0          # 1 epoch on 600 digits: above chance (0.1)
    for png in run_folder.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_and_predict(run_folder, tmp_path, capsys):
    assert main(["evaluate", str(run_folder / "model.npz")]) == 0
    out = capsys.readouterr().out
    assert "accuracy:" in out and "precision" in out and "confusion matrix" in out
    from tinycnn.datasets import load_mnist5k
    _, (x_test, y_test) = load_mnist5k(seed=1)
    np.save(tmp_path / "digit.npy", x_test[0])
    assert main(["predict", str(run_folder / "model.npz"), str(tmp_path / "digit.npy")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("class: ")
    probs = [float(line.split()[-1]) for line in out.splitlines()[1:]]
    assert len(probs) == 10 and abs(sum(probs) - 1) < 1e-3


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--epochs", "0"], "--epochs must be >= 1"),
    (["train", "--lr", "-1"], "--lr must be > 0"),
    (["train", "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
    (["train", "--dataset", "medmnist"], "--dataset medmnist needs --data PATH"),
    (["train", "--dataset", "idx", "--data", "/no/such/file.gz"], "no such file: /no/such/file.gz"),
    (["evaluate", "/no/such/model.npz"], "no such model file"),
    ([], "choose a command"),
])
def test_mistakes_print_one_line_and_exit_2(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1


def test_corrupt_data_file_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip file")
    assert main(["train", "--dataset", "medmnist", "--data", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "broken.npz" in err and len(err.splitlines()) == 1


def test_bench_passes_its_options_to_the_benchmark_script(monkeypatch):
    import runpy
    import sys
    calls = []
    monkeypatch.setattr(runpy, "run_path", lambda path, run_name: calls.append((path, list(sys.argv))))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    assert main(["bench", "--quick", "--threads", "1"]) == 0
    assert main(["bench", "--", "--no-torch"]) == 0
    assert calls[0][0].endswith("benchmarks/run.py") and calls[0][1][1:] == ["--quick", "--threads", "1"]
    assert calls[1][1][1:] == ["--no-torch"]
