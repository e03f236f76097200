r"""Gradient checking: compare backward's gradients with central finite differences.

For a scalar loss :math:`L(\theta)` and one entry :math:`\theta_k`,

.. math::
    \frac{\partial L}{\partial \theta_k} \approx
    \frac{L(\theta + \epsilon e_k) - L(\theta - \epsilon e_k)}{2\epsilon},
    \qquad
    \text{rel\_error} = \frac{|a - n|}{\max(|a|, |n|, \text{floor})}

The central difference is accurate to :math:`O(\epsilon^2)`; rounding adds about
:math:`10^{-16}|L|/\epsilon`, which is why everything runs in float64 (in float32 the rounding
term alone would be ~0.1). The ``floor`` keeps near-zero gradients from producing huge
relative errors out of pure rounding noise.

Without a ``loss``, the checked scalar is :math:`L = \sum y \odot r` for a fixed random
:math:`r`, so ``dL/dy = r`` and every output entry takes part.
"""
import copy
from dataclasses import dataclass

import numpy as np

__all__ = ["gradcheck", "assert_gradients_close", "GradcheckReport", "GradEntry"]


@dataclass
class GradEntry:
    """The check of one tensor: its worst entry, with both gradient values."""
    name: str
    shape: tuple
    checked: int
    max_rel_error: float
    worst_index: tuple
    analytic: float
    numeric: float


class GradcheckReport:
    """Per-tensor maximum relative error; ``report.passed(tol)``; ``print(report)``."""

    def __init__(self, entries, eps, tol):
        self.entries, self.eps, self.tol = entries, eps, tol

    @property
    def max_rel_error(self):
        return max(e.max_rel_error for e in self.entries)

    def passed(self, tol=None):
        return self.max_rel_error <= (self.tol if tol is None else tol)

    def failures(self, tol=None):
        tol = self.tol if tol is None else tol
        return [e for e in self.entries if e.max_rel_error > tol]

    def __getitem__(self, name):
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(f"no tensor {name!r} in this report; checked: {[e.name for e in self.entries]}")

    def __str__(self):
        width = max(len(e.name) for e in self.entries)
        lines = [f"gradcheck (float64, central differences, eps={self.eps:g}, tol={self.tol:g})",
                 f"{'tensor'.ljust(width)}  {'shape':>16}  {'checked':>7}  {'max rel err':>11}  status"]
        for e in self.entries:
            status = "ok" if e.max_rel_error <= self.tol else \
                f"FAIL at {e.worst_index}: analytic {e.analytic:.6g}, numeric {e.numeric:.6g}"
            lines.append(f"{e.name.ljust(width)}  {str(e.shape):>16}  {e.checked:>7}  "
                         f"{e.max_rel_error:>11.2e}  {status}")
        return "\n".join(lines)

    __repr__ = __str__


def _named_tensors(model):
    if hasattr(model, "named_parameters"):
        return model.named_parameters()
    return [(f"{model!r}.{p.name}", p) for p in model.parameters()]


def gradcheck(model_or_layer, x, target=None, loss=None, eps=1e-6, max_entries=30, seed=0,
              floor=1e-4, tol=1e-5, check_input=True):
    """Check every parameter's (and the input's) gradient against finite differences.

    Works on a float64 deep copy, so the caller's model is untouched. Tensors with more than
    ``max_entries`` entries are checked on a random subset. Returns a
    :class:`GradcheckReport`; never raises on a mismatch (see :func:`assert_gradients_close`).
    """
    model = copy.deepcopy(model_or_layer).to(np.float64)
    x = np.array(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    # dropout masks must be the same in every evaluation: remember the generators' states
    rngs = [layer.rng for layer in getattr(model, "layers", [model]) if hasattr(layer, "rng")]
    states = [g.bit_generator.state for g in rngs]
    projection = None

    def objective():
        nonlocal projection
        for g, state in zip(rngs, states):
            g.bit_generator.state = state
        y = model.forward(x)
        if loss is not None:
            return loss.forward(y, target)
        if projection is None:
            projection = rng.standard_normal(y.shape)
        return float(np.sum(y * projection))

    model.zero_grad()
    objective()
    dx = model.backward(loss.backward() if loss is not None else projection)
    tensors = ([("input x", x, dx)] if check_input else []) + \
        [(name, p.data, p.grad.copy()) for name, p in _named_tensors(model)]

    entries = []
    for name, values, analytic in tensors:
        flat = np.arange(values.size)
        if values.size > max_entries:
            flat = rng.choice(values.size, size=max_entries, replace=False)
        worst = (-1.0, None, 0.0, 0.0)
        for k in flat:
            idx = np.unravel_index(k, values.shape)
            original = values[idx]
            values[idx] = original + eps
            plus = objective()
            values[idx] = original - eps
            minus = objective()
            values[idx] = original
            numeric = (plus - minus) / (2 * eps)
            a = float(analytic[idx])
            rel = abs(a - numeric) / max(abs(a), abs(numeric), floor)
            if rel > worst[0]:
                worst = (rel, tuple(int(i) for i in idx), a, numeric)
        entries.append(GradEntry(name, values.shape, len(flat), *worst))
    return GradcheckReport(entries, eps, tol)


def assert_gradients_close(model_or_layer, x, target=None, loss=None, tol=1e-5, **kwargs):
    """Like :func:`gradcheck`, but raise ``AssertionError`` naming every failing tensor."""
    report = gradcheck(model_or_layer, x, target=target, loss=loss, tol=tol, **kwargs)
    bad = report.failures()
    if bad:
        details = "; ".join(
            f"{e.name} at index {e.worst_index}: analytic {e.analytic:.8g} vs numeric "
            f"{e.numeric:.8g} (rel. error {e.max_rel_error:.2e} > {tol:g})" for e in bad)
        raise AssertionError(f"gradient check failed for {details}\n{report}")
    return report
