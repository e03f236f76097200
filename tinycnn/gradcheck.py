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

Kinks. The formula assumes :math:`L` is smooth on :math:`[\theta_k-\epsilon, \theta_k+\epsilon]`.
Where that window contains a ReLU input crossing 0 or a max-pool tie (two equal maxima, e.g.
all-zero pixels), the difference quotient mixes two slopes and can be off by 100% although
backward is right. Each layer reports the discrete choices its last forward made
(``layer.kink_states()``: ReLU's sign mask, max pooling's argmax); when a choice at
:math:`\theta_k \pm \epsilon` differs from the one at :math:`\theta_k`, the entry is
reported as a KINK and not compared, so it can neither pass nor fail the check.

Without a ``loss``, the checked scalar is :math:`L = \sum y \odot r` for a fixed random
:math:`r`, so ``dL/dy = r`` and every output entry takes part.
"""
import copy
from dataclasses import dataclass, field

import numpy as np

__all__ = ["gradcheck", "assert_gradients_close", "GradcheckReport", "GradEntry"]


@dataclass
class GradEntry:
    """The check of one tensor: its worst compared entry, with both gradient values.

    ``checked`` entries were sampled; ``kinks`` of them had a kink inside the ±ε window
    (``kink_indices``, the first one caused by ``kink_where``) and were not compared.
    ``max_rel_error`` is over the other ``checked - kinks`` entries (0.0 if there are none).
    """
    name: str
    shape: tuple
    checked: int
    max_rel_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    kink_where: str = ""
    kink_indices: list = field(default_factory=list)

    @property
    def kinks(self):
        """How many sampled entries were skipped as kinks: ``len(kink_indices)``."""
        return len(self.kink_indices)


class GradcheckReport:
    """Per-tensor results of :func:`gradcheck`.

    ``report.passed`` (also ``bool(report)``) is True when every compared entry is within
    ``tol``; ``report.failures(tol)`` lists the tensors that are not; ``report["input x"]``
    gives one tensor's :class:`GradEntry`; ``print(report)`` shows the table.
    """

    def __init__(self, entries, eps, tol):
        self.entries, self.eps, self.tol = entries, eps, tol

    @property
    def max_rel_error(self):
        """Largest relative error over every compared (non-kink) entry of every tensor."""
        return max((e.max_rel_error for e in self.entries), default=0.0)

    @property
    def passed(self):
        """True when no tensor has a compared entry with relative error above ``tol``."""
        return not self.failures()

    def __bool__(self):
        return self.passed

    @property
    def kinks(self):
        """How many sampled entries were skipped because their ±ε window crossed a kink."""
        return sum(e.kinks for e in self.entries)

    def failures(self, tol=None):
        """The :class:`GradEntry` of every tensor whose worst error exceeds ``tol``
        (default: the report's ``tol``)."""
        tol = self.tol if tol is None else tol
        return [e for e in self.entries if e.max_rel_error > tol]

    def __getitem__(self, name):
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(f"no tensor {name!r} in this report; checked: {[e.name for e in self.entries]}")

    def __str__(self):
        width = max([len("tensor")] + [len(e.name) for e in self.entries])
        lines = [f"gradcheck (float64, central differences, eps={self.eps:g}, tol={self.tol:g})",
                 f"{'tensor'.ljust(width)}  {'shape':>16}  {'checked':>7}  {'max rel err':>11}  status"]
        for e in self.entries:
            status = "ok" if e.max_rel_error <= self.tol else \
                f"FAIL at {e.worst_index}: analytic {e.analytic:.6g}, numeric {e.numeric:.6g}"
            if e.kinks:
                status += f", {e.kinks} KINK ({e.kink_where})"
            lines.append(f"{e.name.ljust(width)}  {str(e.shape):>16}  {e.checked:>7}  "
                         f"{e.max_rel_error:>11.2e}  {status}")
        if self.kinks:
            lines.append("KINK: the ±eps window crosses a ReLU zero or a max-pool tie, where the "
                         "finite difference is meaningless; those entries are not compared.")
        bad = self.failures()
        lines.append("passed" if not bad else f"FAILED: {', '.join(e.name for e in bad)}")
        return "\n".join(lines)

    __repr__ = __str__


def _named_tensors(model):
    if hasattr(model, "named_parameters"):
        return model.named_parameters()
    return [(f"{model!r}.{p.name}", p) for p in model.parameters()]


def _kink_states(model):
    """The model's (or layer's) current discrete decisions; [] if it reports none."""
    states = getattr(model, "kink_states", None)
    return [] if states is None else states()


def _changed(reference, states):
    """Label of the first decision in ``states`` that differs from ``reference``, else None."""
    if len(reference) != len(states):
        return "a layer's decisions"
    for (label, before), (_, after) in zip(reference, states):
        if not np.array_equal(before, after):
            return label
    return None


def gradcheck(model_or_layer, x, target=None, loss=None, eps=1e-6, max_entries=30, seed=0,
              floor=1e-4, tol=1e-5, check_input=True):
    """Check every parameter's (and the input's) gradient against finite differences.

    Works on a float64 deep copy, so the caller's model is untouched. Tensors with more than
    ``max_entries`` entries are checked on a random subset. Entries whose ±``eps`` window
    crosses a kink (a ReLU input changing sign, a max-pool argmax changing) are counted as
    kinks and not compared. Returns a :class:`GradcheckReport`; never raises on a mismatch
    (see :func:`assert_gradients_close`).
    """
    model = copy.deepcopy(model_or_layer).to(np.float64)
    x = np.array(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    # dropout masks must be the same in every evaluation: remember the generators' states
    rngs = [layer.rng for layer in getattr(model, "layers", [model]) if hasattr(layer, "rng")]
    states = [g.bit_generator.state for g in rngs]
    projection = None

    def objective():
        """The scalar loss at the current values, and the decisions the forward made."""
        nonlocal projection
        for g, state in zip(rngs, states):
            g.bit_generator.state = state
        y = model.forward(x)
        if loss is not None:
            value = loss.forward(y, target)
        else:
            if projection is None:
                projection = rng.standard_normal(y.shape)
            value = float(np.sum(y * projection))
        return value, _kink_states(model)

    model.zero_grad()
    _, centre = objective()
    dx = model.backward(loss.backward() if loss is not None else projection)
    tensors = ([("input x", x, dx)] if check_input else []) + \
        [(name, p.data, p.grad.copy()) for name, p in _named_tensors(model)]

    entries = []
    for name, values, analytic in tensors:
        flat = np.arange(values.size)
        if values.size > max_entries:
            flat = rng.choice(values.size, size=max_entries, replace=False)
        worst = (0.0, None, float("nan"), float("nan"))
        kinks, kink_where = [], ""
        for k in flat:
            idx = np.unravel_index(k, values.shape)
            original = values[idx]
            values[idx] = original + eps
            plus, plus_states = objective()
            values[idx] = original - eps
            minus, minus_states = objective()
            values[idx] = original
            where = _changed(centre, plus_states) or _changed(centre, minus_states)
            if where is not None:
                kinks.append(tuple(int(i) for i in idx))
                kink_where = kink_where or where
                continue
            numeric = (plus - minus) / (2 * eps)
            a = float(analytic[idx])
            rel = abs(a - numeric) / max(abs(a), abs(numeric), floor)
            if rel > worst[0] or worst[1] is None:
                worst = (rel, tuple(int(i) for i in idx), a, numeric)
        entries.append(GradEntry(name, values.shape, len(flat), *worst,
                                 kink_where=kink_where, kink_indices=kinks))
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
