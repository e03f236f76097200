"""Every tutorial runs top to bottom, headless and in fast mode.

Each ``tutorials/NN_*.py`` is started in its own Python process (as a reader would run it),
with ``TINYCNN_FAST=1`` (small data, few epochs), ``MPLBACKEND=Agg`` (no display) and
``TINYCNN_TUTORIAL_OUT`` pointing into a temporary folder, so the test leaves no files
behind. The tutorials' own ``assert`` statements are the real checks: a tutorial whose
hand-made computation disagrees with tinycnn exits non-zero and fails here.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
SCRIPTS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
TIMEOUT_S = 600


def test_tutorials_found():
    assert SCRIPTS, f"no tutorials found in {TUTORIALS}"


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_tutorial_runs(script, tmp_path):
    env = dict(os.environ, TINYCNN_FAST="1", MPLBACKEND="Agg",
               TINYCNN_TUTORIAL_OUT=str(tmp_path / "out"), PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, (
        f"{script.name} exited with code {result.returncode}\n"
        f"--- stdout (last 3000 chars) ---\n{result.stdout[-3000:]}\n"
        f"--- stderr ---\n{result.stderr[-6000:]}"
    )
