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


def test_readme_code_blocks_run(tmp_path, monkeypatch, capsys):
    """Every ```python block of the README, in order, as one program (smaller and shorter)."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 2 and "## Quick start" in text
    program = "\n".join(blocks)
    split = "x_fit, y_fit, x_val, y_val = x_train[fit_idx], y_train[fit_idx], x_train[val_idx], y_train[val_idx]"
    assert split in program and "epochs=5" in program
    # same code, smaller: one epoch on a few hundred digits
    program = program.replace("epochs=5", "epochs=1").replace(
        split, split + "\nx_fit, y_fit, x_val, y_val = x_fit[:300], y_fit[:300], x_val[:60], y_val[:60]")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(program, "README.md", "exec"), namespace)
    assert namespace["probs"].shape == (len(namespace["x_test"]), 10)
    assert (tmp_path / "lenet.npz").is_file()
    assert namespace["history"].history["loss"][0] > 0
    # the quick start validates on a split of the training set, never on the test set
    assert "validation_data=(x_val, y_val)" in program and "validation_data=(x_test" not in program
    # the gradient check a newcomer copies passes, and says so
    report = namespace["report"]
    assert report.passed and bool(report)
    out = capsys.readouterr().out
    assert "Total parameters: 51,902 (trainable: 51,902, frozen: 0)" in out
    assert str(report) in out and str(report).endswith("passed") and "FAIL" not in str(report)
