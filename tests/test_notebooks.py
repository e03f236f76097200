"""Every tutorial runs as a Jupyter notebook, converted and executed outside the repository.

Each ``tutorials/NN_*.py`` (a jupytext "percent" script) is copied into a temporary folder,
converted there with jupytext and executed top to bottom by nbclient on an IPython kernel
that runs this very Python (``sys.executable``), in fast mode (``TINYCNN_FAST=1``). That is
what a learner does with ``jupytext --to notebook``; it proves the tutorial needs nothing
from ``tutorials/`` besides itself (tinycnn is imported, never a local helper file).

A tutorial passes when no cell raises (its own ``assert`` statements are the real checks),
its figures arrive as ``image/png`` outputs (never a ``<Figure ...>`` text), and no cell
echoes a stray ``PosixPath(...)`` or matplotlib object. These tests also cover what
``tests/test_tutorials.py`` used to check by running every tutorial as a script; that file
now runs one tutorial as a script (the headless script path) and the worked solutions.

Needs the ``notebooks`` extra (jupytext, nbclient, ipykernel); without it the tests skip,
except under ``CI=true``, where they fail.
"""
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
SCRIPTS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT_S = 600
KERNEL_NAME = "tinycnn-test-python"
# text a cell should never echo: a path object, or a matplotlib object instead of its picture
STRAY_ECHO = re.compile(r"PosixPath\(|WindowsPath\(|<Figure size|<matplotlib\.|^Text\(|^\[<matplotlib")


def _import_notebook_tools():
    try:
        import jupytext
        import nbclient
        import ipykernel  # noqa: F401  (the kernel nbclient starts)
    except ImportError as err:
        if os.environ.get("CI", "").lower() == "true":
            raise AssertionError(f"the notebooks extra must be installed in CI: {err}") from err
        pytest.skip(f"notebooks extra not installed ({err}); pip install -e '.[notebooks]'")
    return jupytext, nbclient


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """A kernelspec that starts ipykernel with the Python running the tests (not whatever
    ``python`` is first on PATH)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (tinycnn tests)", "language": "python"}))
    return root


def test_tutorials_found():
    assert SCRIPTS, f"no tutorials found in {TUTORIALS}"


def _outputs(nb):
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            yield index, cell, out


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_tutorial_runs_as_notebook(script, tmp_path, kernel_dir, monkeypatch):
    jupytext, nbclient = _import_notebook_tools()
    work = tmp_path / "anywhere"
    work.mkdir()
    copy = work / script.name
    shutil.copy(script, copy)
    nb = jupytext.read(copy)

    # the kernel inherits this environment: fast mode, figures into the temp folder, and no
    # MPLBACKEND (the test session sets Agg; a real notebook uses the inline backend)
    monkeypatch.setenv("TINYCNN_FAST", "1")
    monkeypatch.setenv("TINYCNN_TUTORIAL_OUT", str(work / "out"))
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name=KERNEL_NAME,
                                     resources={"metadata": {"path": str(work)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{script.name} failed as a notebook:\n{str(err)[-6000:]}")
    finally:
        jupytext.write(nb, work / f"{script.stem}.ipynb")   # left in tmp_path for a post-mortem

    images = [i for i, _, out in _outputs(nb) if "image/png" in out.get("data", {})]
    saved = sorted((work / "out").glob("*.png"))
    assert images, f"{script.name}: no figure was displayed as an image/png output"
    assert len(images) == len(saved), (
        f"{script.name}: {len(saved)} figures saved but {len(images)} image outputs "
        f"(a figure shown twice, or saved without being displayed)")
    for index, cell, out in _outputs(nb):
        text = out.get("data", {}).get("text/plain", "") or out.get("text", "")
        text = "".join(text) if isinstance(text, list) else text
        if out.get("output_type") == "stream":
            continue            # printed lines are meant to be read
        assert not STRAY_ECHO.search(text), (
            f"{script.name}, cell {index} echoes {text[:120]!r}; end the cell with ';' or "
            f"assign the value.\nCell source:\n{cell.source[-400:]}")
