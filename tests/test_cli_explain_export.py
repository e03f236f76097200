"""``tinycnn explain`` and ``tinycnn export``: exit codes, one-line errors, the files they write."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from explain_models import page_data

import tinycnn as tc
from tinycnn.explain.data import decode
from tinycnn.models import lenet5

SAMPLES = Path(tc.__file__).parent / "datasets" / "data" / "samples"


def tinycnn_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tinycnn", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    model = lenet5(rng=0)
    model.meta.update({"dataset": "mnist5k", "seed": 0, "class_names": [str(k) for k in range(10)],
                       "mean": [0.13], "std": [0.3]})
    return Path(model.save(folder / "model.npz"))


def test_explain_writes_a_page_next_to_the_model(model_file, tmp_path):
    result = tinycnn_cli("explain", model_file, "--index", 3, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = model_file.with_suffix(".explain.html")
    data = page_data(page.read_text(encoding="utf-8"))
    # the page holds the model's forward pass on test image 3, normalised as predict does
    model = tc.load_model(model_file)
    (_, _), (x_test, _) = tc.datasets.load_mnist5k(seed=0)
    x = (x_test[3:4] - 0.13) / 0.3
    np.testing.assert_array_equal(decode(data["layers"][-1]["output"]), model.forward(x.astype(np.float32))[0])


def test_explain_an_image_file_uses_predicts_preparation(model_file, tmp_path):
    image = next(SAMPLES.glob("*.png"))
    result = tinycnn_cli("explain", model_file, "--image", image, "--out", tmp_path / "p.html", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "p.html").stat().st_size > 10_000


@pytest.mark.parametrize("args, message", [
    (["explain", "missing.npz"], "no such model file: missing.npz"),
    (["explain", "{model}", "--image", "{dir}"], "is a directory, not an image file"),
    (["explain", "{model}", "--index", "100000"], "--index must be between 0 and 999"),
    (["explain", "{model}", "--image", "{text}"], "notes.png"),
    (["export", "missing.npz", "--to", "onnx"], "no such model file"),
    (["export", "{model}", "--to", "keras"], "invalid choice"),
    (["export", "{model}", "--to", "onnx", "-o", "{dir}"], "is a directory"),
])
def test_errors_are_one_line(model_file, tmp_path, args, message):
    (tmp_path / "notes.png").write_text("not an image")
    subs = {"{model}": model_file, "{dir}": tmp_path, "{text}": tmp_path / "notes.png"}
    result = tinycnn_cli(*[subs.get(a, a) for a in args], cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_export_onnx_and_torch(model_file, tmp_path):
    result = tinycnn_cli("export", model_file, "--to", "onnx", "-o", tmp_path / "m.onnx", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "opset 17" in result.stdout and (tmp_path / "m.onnx").stat().st_size > 200_000
    result = tinycnn_cli("export", model_file, "--to", "torch", "-o", tmp_path / "m.pt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    code = result.stdout.split("Rebuild the module with:")[1]
    scope = {}
    exec(code, scope)                                   # the printed code runs as printed
    import torch
    x = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
    got = scope["model"](torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, tc.load_model(model_file).forward(x), rtol=1e-5, atol=2e-5)


def test_train_model_option(tmp_path):
    result = tinycnn_cli("train", "--model", "resnet_mini", "--epochs", 1, "--limit", 200,
                         "--no-plots", "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "resnet_mini on mnist5k" in result.stdout
    model = tc.load_model(next(tmp_path.glob("*/model.npz")))
    assert model.meta["architecture"] == "resnet_mini"
    assert any(type(layer).__name__ == "Residual" for layer in model.layers)
    bad = tinycnn_cli("train", "--model", "lesion_cnn", cwd=tmp_path)
    assert bad.returncode == 2 and "use it with --dataset lesions" in bad.stderr


def test_lesion_job_with_resnet_writes_an_explainer_page(tmp_path):
    result = tinycnn_cli("train", "--dataset", "lesions", "--model", "resnet_mini", "--epochs", 1,
                         "--samples", 100, "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = next(tmp_path.glob("*/"))
    page = (folder / "explain_lesion.html").read_text(encoding="utf-8")
    assert page_data(page)["class_names"] == ["healthy", "lesion"]
