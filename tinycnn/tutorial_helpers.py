"""Helpers for the tutorials and their worked solutions (``tutorials/NN_*.py``).

They live in the installed package, so a tutorial runs the same way as a script, as a
notebook converted anywhere (``jupytext --to notebook``), or copied to another folder:
it imports ``tinycnn`` and nothing else of ours.

* ``FAST`` -- True when the environment sets ``TINYCNN_FAST=1``: tutorials shrink data
  sizes and epochs so the test suite can run them in a few seconds.
* ``OUT`` -- the folder figures are saved in: ``TINYCNN_TUTORIAL_OUT`` if set, else
  ``out/`` next to the running script (``tutorials/out/``, git-ignored), else (in a
  notebook) ``out/`` in the current directory.
* ``show(fig, name)`` -- save ``fig`` as ``OUT/<name>.png``; in a notebook, also display it
  inline as an image. Returns nothing, so a cell ending in ``show(...)`` echoes nothing.
* ``draw_grid(ax, a, title)`` -- a small matrix drawn as a picture with its numbers in it.

Importing this module also (only when not inside a notebook and no ``MPLBACKEND`` is set)
selects matplotlib's file-only ``Agg`` backend, so a script never opens a window and runs
on a headless machine; and, when ``TINYCNN_BACKEND`` is set (``reference`` or ``numba``),
switches tinycnn's kernels to it -- handy when you step through a kernel in a debugger.
Unlike :mod:`tinycnn.viz` (the library's plots), this is teaching scaffolding; ``import
tinycnn`` does not import it.
"""
import os
import sys
from pathlib import Path

import numpy as np

__all__ = ["FAST", "OUT", "show", "draw_grid", "in_notebook", "env_flag"]


def env_flag(name):
    """True when the environment variable ``name`` is set to something other than
    empty, ``0``, ``false`` or ``no`` (any case)."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def in_notebook():
    """True inside a Jupyter (IPython) kernel, where figures can be displayed inline."""
    return "ipykernel" in sys.modules


def _default_out():
    if os.environ.get("TINYCNN_TUTORIAL_OUT"):
        return Path(os.environ["TINYCNN_TUTORIAL_OUT"])
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file and not in_notebook():
        return Path(main_file).resolve().parent / "out"     # a script: next to it
    return Path.cwd() / "out"                                # a notebook or a REPL


FAST = env_flag("TINYCNN_FAST")
OUT = _default_out()

if not in_notebook() and not os.environ.get("MPLBACKEND"):
    # a script only writes PNG files: the file-only backend never needs a display
    import matplotlib
    matplotlib.use("Agg")

if os.environ.get("TINYCNN_BACKEND"):
    from tinycnn.backend import set_backend
    set_backend(os.environ["TINYCNN_BACKEND"])


def show(fig, name):
    """Save ``fig`` (a matplotlib Figure) to ``OUT/<name>.png``, print where, and in a
    notebook display that PNG inline (an ``image/png`` output). The figure is closed afterwards,
    so it is never shown twice. Returns None."""
    if not hasattr(fig, "savefig"):
        raise TypeError(f"show: expected a matplotlib Figure, received {type(fig).__name__}")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    if in_notebook():
        # the saved PNG itself: an image output whatever matplotlib backend is active
        from IPython.display import Image, display
        display(Image(filename=str(path)))
    plt.close(fig)
    print(f"[saved {path}]")


def draw_grid(ax, a, title, box=None, cmap="Greys", fmt="{:g}"):
    """Draw the small matrix ``a`` on the Axes ``ax`` with its numbers written in.

    ``box=(row, col, h, w)`` outlines an ``h × w`` patch whose top-left cell is
    ``(row, col)``; ``fmt`` formats each number.
    """
    import matplotlib.pyplot as plt

    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"draw_grid: expected a 2-D matrix, received shape {a.shape}")
    ax.imshow(a, cmap=cmap, vmin=min(a.min(), 0), vmax=max(a.max(), 1))
    for (r, c), v in np.ndenumerate(a):
        ax.text(c, r, fmt.format(v), ha="center", va="center", color="tab:red", fontsize=11)
    if box is not None:
        r, c, h, w = box
        ax.add_patch(plt.Rectangle((c - 0.5, r - 0.5), w, h, fill=False, lw=3, ec="tab:blue"))
    ax.set_title(title)
    ax.set_xticks(range(a.shape[1]))
    ax.set_yticks(range(a.shape[0]))
