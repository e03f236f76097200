"""The tutorials' worked solutions run, and a tutorial runs as a plain script, headless.

Each script is started in its own Python process (as a reader would run it), with
``TINYCNN_FAST=1`` (small data, few epochs), no ``MPLBACKEND`` (tinycnn.tutorial_helpers
must pick a file-only backend by itself) and ``TINYCNN_TUTORIAL_OUT`` pointing into a
temporary folder, so the test leaves no files behind. The scripts' own ``assert``
statements are the real checks: a solution whose measurement contradicts its answer
exits non-zero and fails here.

Every tutorial is executed in full by ``tests/test_notebooks.py`` (as a notebook, the
same cells); running all of them a second time as scripts would double the time for
little, so only the smallest one runs here, to cover the script path (figures saved as
PNG files next to nothing but the temporary folder).
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
SCRIPTS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
SOLUTIONS = sorted((TUTORIALS / "solutions").glob("[0-9][0-9]_*.py"))
TIMEOUT_S = 600


def run_script(script, tmp_path):
    """Run ``script`` in a fresh process from ``tmp_path`` in fast mode; return the result."""
    env = dict(os.environ, TINYCNN_FAST="1", TINYCNN_TUTORIAL_OUT=str(tmp_path / "out"),
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("MPLBACKEND", None)
    env.pop("DISPLAY", None)          # as on a headless server: no window may be opened
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, (
        f"{script.name} exited with code {result.returncode}\n"
        f"--- stdout (last 3000 chars) ---\n{result.stdout[-3000:]}\n"
        f"--- stderr ---\n{result.stderr[-6000:]}"
    )
    return result


def test_tutorials_and_solutions_found():
    assert SCRIPTS, f"no tutorials found in {TUTORIALS}"
    assert SOLUTIONS, f"no solutions found in {TUTORIALS / 'solutions'}"


def test_every_exercise_has_a_solution_section():
    """Each tutorial's numbered exercises have a matching ``Exercise k`` in its solutions file."""
    by_number = {s.name[:2]: s for s in SOLUTIONS}
    for script in SCRIPTS:
        if script.name[:2] > "08" and script.name[:2] not in by_number:
            continue        # tutorials 09+ were written after the solutions round; checked once they have one
        text = script.read_text()
        exercises = text[text.rfind("## Exercises"):] if "## Exercises" in text else ""
        numbers = re.findall(r"^# (\d+)\. ", exercises, re.M)
        if not numbers:
            continue
        solution = by_number.get(script.name[:2])
        assert solution is not None, f"{script.name} has exercises but no tutorials/solutions/{script.name[:2]}_*.py"
        answered = set(re.findall(r"Exercise (\d+)\b", solution.read_text()))
        missing = [n for n in numbers if n not in answered]
        assert not missing, f"{solution.name} answers no 'Exercise {missing}' of {script.name}"


def test_a_tutorial_runs_as_a_headless_script(tmp_path):
    script = TUTORIALS / "01_convolution.py"
    result = run_script(script, tmp_path)
    saved = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert saved and all(name.startswith("01_") for name in saved), saved
    assert f"[saved {tmp_path / 'out'}" in result.stdout


@pytest.mark.parametrize("script", SOLUTIONS, ids=[s.stem for s in SOLUTIONS])
def test_solution_runs(script, tmp_path):
    run_script(script, tmp_path)
