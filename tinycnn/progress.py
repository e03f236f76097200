"""What ``fit`` prints while it trains, chosen by where the text goes.

* stderr is a terminal: a tqdm bar per epoch that redraws itself in place;
* anything else (a log file, CI, a notebook, a pipe): one plain line per epoch, because a
  redrawn bar becomes hundreds of lines there, and a notebook without ipywidgets would warn
  ``IProgress not found``; the plain ``tqdm`` class (not ``tqdm.auto``) never asks for widgets.

``verbose``: ``False``/``0`` silent, ``True``/``1`` one of the two above, ``2`` always one
line per epoch (as in Keras).
"""
import sys
import time

import numpy as np

from tinycnn.checks import as_int

__all__ = ["Progress"]


def _format(logs):
    return " - ".join(f"{k} {v:.4g}" if k == "lr" else f"{k} {v:.4f}" for k, v in logs.items())


class Progress:
    """Progress output for one ``fit`` call: ``start_epoch``, ``update`` per batch, ``end_epoch``."""

    def __init__(self, verbose, epochs, stream=None):
        if isinstance(verbose, (bool, np.bool_)):
            verbose = int(verbose)
        self.level = as_int(verbose, "verbose", "fit", 0)
        if self.level > 2:
            raise ValueError(f"fit: verbose must be False/True or 0, 1, 2; got {verbose!r}")
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.bar_mode = self.level == 1 and callable(isatty) and bool(isatty())
        self.epochs = epochs
        self.bar = None

    def start_epoch(self, epoch, steps):
        """Begin epoch ``epoch`` of ``steps`` batches."""
        self.epoch, self.steps, self.started = epoch, steps, time.perf_counter()
        if self.bar_mode:
            from tqdm import tqdm   # the terminal class: no notebook widgets involved
            self.bar = tqdm(total=steps, desc=f"epoch {epoch}/{self.epochs}", unit="batch",
                            leave=True, file=self.stream)

    def update(self, running_loss):
        """One batch done; ``running_loss`` is the epoch's mean loss so far."""
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{running_loss:.4f}", refresh=False)

    def end_epoch(self, logs):
        """Epoch finished with metrics ``logs``: close the bar, or print the epoch's line."""
        if self.bar is not None:
            self.bar.set_postfix_str(_format(logs))
            self.bar.close()
            self.bar = None
        elif self.level:
            seconds = time.perf_counter() - self.started
            print(f"epoch {self.epoch}/{self.epochs} - {self.steps} batches - {seconds:.1f}s - "
                  f"{_format(logs)}", file=self.stream, flush=True)

    def close(self):
        """Close an open bar (training stopped inside an epoch)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
