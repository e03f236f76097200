"""Small helpers shared by the tutorials (not part of the tinycnn package).

* ``FAST`` -- True when the environment sets ``TINYCNN_FAST=1``: tutorials shrink data
  sizes and epochs so the test suite can run them in a few seconds.
* ``OUT`` -- the folder where figures are saved: ``tutorials/out/`` (git-ignored), or
  wherever ``TINYCNN_TUTORIAL_OUT`` points.
* ``show(fig, name)`` -- save ``fig`` as ``OUT/name.png``; in a notebook, also show it
  inline. Scripts never open a window, so they run on machines without a display.
* ``draw_grid(ax, a, title)`` -- a small matrix drawn as a picture with its numbers in it.
* ``TINYCNN_BACKEND=reference`` runs the tutorials on the readable NumPy kernels instead
  of the default (Numba) ones -- handy when you step through a kernel in a debugger.
"""
import os
import sys
from pathlib import Path

import numpy as np

__all__ = ["FAST", "OUT", "show", "draw_grid", "in_notebook"]


def _flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def in_notebook():
    """True inside a Jupyter kernel (where figures can be displayed inline)."""
    return "ipykernel" in sys.modules


FAST = _flag("TINYCNN_FAST")
OUT = Path(os.environ.get("TINYCNN_TUTORIAL_OUT") or Path(__file__).resolve().parent / "out")

if not in_notebook() and not os.environ.get("MPLBACKEND"):
    # a script only writes PNG files: pick the file-only backend before pyplot is imported,
    # so a headless machine (CI, ssh) never tries to open a window
    os.environ["MPLBACKEND"] = "Agg"

if os.environ.get("TINYCNN_BACKEND"):
    import tinycnn
    tinycnn.set_backend(os.environ["TINYCNN_BACKEND"])


def show(fig, name):
    """Save ``fig`` to ``OUT/<name>.png`` and display it inline when in a notebook."""
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    if in_notebook():
        from IPython.display import display
        display(fig)
    plt.close(fig)
    print(f"[saved {path}]")
    return path


def draw_grid(ax, a, title, box=None, cmap="Greys", fmt="{:g}"):
    """Draw a small matrix with its numbers written in; ``box=(row, col, h, w)`` outlines a patch."""
    import matplotlib.pyplot as plt

    a = np.asarray(a)
    ax.imshow(a, cmap=cmap, vmin=min(a.min(), 0), vmax=max(a.max(), 1))
    for (r, c), v in np.ndenumerate(a):
        ax.text(c, r, fmt.format(v), ha="center", va="center", color="tab:red", fontsize=11)
    if box is not None:
        r, c, h, w = box
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), w, h, fill=False, lw=3, ec="tab:blue"))
    ax.set_title(title)
    ax.set_xticks(range(a.shape[1]))
    ax.set_yticks(range(a.shape[0]))
