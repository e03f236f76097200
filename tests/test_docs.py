"""Run what the docs show: docstring examples (doctest) and the README quick start."""
import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import tinycnn

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(m.name for m in pkgutil.walk_packages(tinycnn.__path__, "tinycnn.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest failure(s) in {name}"


def test_readme_quick_start_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start\s+```python\n(.*?)```", text, re.S).group(1)
    # same code, smaller: one epoch on a few hundred digits
    block = block.replace("epochs=5", "epochs=1").replace(
        "(x_train, y_train), (x_test, y_test) = load_mnist5k(seed=0)",
        "(x_train, y_train), (x_test, y_test) = load_mnist5k(seed=0)\n"
        "x_train, y_train, x_test, y_test = x_train[:300], y_train[:300], x_test[:100], y_test[:100]")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["probs"].shape == (100, 10)
    assert (tmp_path / "lenet.npz").is_file()
    assert namespace["history"].history["loss"][0] > 0
