# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Solutions — Tutorial 04, Gradient checking
#
# Worked answers to the exercises of `tutorials/04_gradient_checking.py`, each checked by
# an `assert` on numbers computed here. Everything is small, so fast mode changes nothing.

# %%
import numpy as np
import matplotlib.pyplot as plt

from tinycnn.tutorial_helpers import FAST, show
import tinycnn as tc
from tinycnn import layers

print("fast mode:", FAST, "(no effect: every check here takes well under a second)")


def rel_error(a, n, floor=1e-4):
    """|a - n| / max(|a|, |n|, floor), element-wise (the tutorial's definition)."""
    return np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)


def numerical_gradient(loss_of, theta, eps=1e-6, kind="central"):
    """Finite differences of the scalar ``loss_of()`` w.r.t. every entry of ``theta``."""
    grad = np.zeros(theta.shape)
    base = loss_of() if kind == "forward" else None
    for idx in np.ndindex(theta.shape):
        original = theta[idx]
        theta[idx] = original + eps
        plus = loss_of()
        if kind == "central":
            theta[idx] = original - eps
            grad[idx] = (plus - loss_of()) / (2 * eps)
        else:
            grad[idx] = (plus - base) / eps
        theta[idx] = original
    return grad


rng = np.random.default_rng(0)

# %% [markdown]
# ## Exercise 1 — a bias gradient that forgets the batch
#
# $db = \sum_n dY_n$. Keeping only the first row is *exactly right* for a batch of one
# sample ($\sum_n$ has one term), so no check with $N = 1$ can catch it. With $N = 2$ the
# second sample's contribution is missing and the bias error is large. Lesson: gradient
# checks need a batch of at least two samples (and, in general, inputs that exercise
# every path).

# %%
class WrongBiasDense(layers.Dense):
    """Dense whose backward adds only the first sample's dy to bias.grad (a bug)."""

    def backward(self, dy):
        db_before = self.bias.grad.copy()
        dx = super().backward(dy)
        self.bias.grad[...] = db_before + dy[0]     # instead of + dy.sum(axis=0)
        return dx


for n in (1, 2):
    report = tc.gradcheck(WrongBiasDense(4, 3, rng=0), rng.standard_normal((n, 4)))
    failed = [e.name for e in report.failures()]
    print(f"Exercise 1: batch of {n}: {'passes' if bool(report) else 'FAILS'} {failed}")
    if n == 1:
        assert bool(report) and not failed
    else:
        assert not bool(report) and failed and all("bias" in name for name in failed)

# %% [markdown]
# ## Exercise 2 — the ε sweep on $f(x) = |x|$ at $x = 10^{-4}$
#
# The exact derivative is 1. As long as $\varepsilon < x$, both $x \pm \varepsilon$ are
# positive, $f$ is linear there, and the central difference is exact up to rounding
# (about $u|f|/\varepsilon$ — tiny, since $|f| = 10^{-4}$). As soon as
# $\varepsilon > x$ the window straddles the kink at 0:
# $\frac{(x + \varepsilon) - (\varepsilon - x)}{2\varepsilon} = x/\varepsilon$, which
# falls towards 0. The difference stops being trustworthy exactly at $\varepsilon = |x|$,
# the distance to the kink — no "optimal ε" from the smooth theory helps when the
# function is not smooth within reach.

# %%
x0 = 1e-4
epsilons = np.logspace(-12, -1, 45)
numeric = np.array([(abs(x0 + e) - abs(x0 - e)) / (2 * e) for e in epsilons])
err = np.abs(numeric - 1.0)
inside, outside = epsilons < x0, epsilons > x0
print(f"Exercise 2: eps < 1e-4: max error {err[inside].max():.1e}; eps > 1e-4: numeric = x/eps, "
      f"error up to {err[outside].max():.2f}")
assert err[inside].max() < 1e-6
np.testing.assert_allclose(numeric[outside], x0 / epsilons[outside], rtol=1e-9)

fig, ax = plt.subplots(figsize=(7, 4.2))
ax.loglog(epsilons, np.maximum(err, 1e-17), "o-", ms=3)
ax.axvline(x0, color="grey", ls=":")
ax.text(x0, 1e-3, " ε = |x|: the window reaches the kink", fontsize=8)
ax.set_xlabel("step ε")
ax.set_ylabel("|numeric − 1| (floored at 1e-17)")
ax.set_title("central difference of |x| at x = 1e-4")
show(fig, "04_solution_abs_sweep")

# %% [markdown]
# ## Exercise 3 — LeakyReLU at its kink
#
# For $|x| < \varepsilon$, with slope $\alpha$ on the left:
# $\frac{(x + \varepsilon) - \alpha(x - \varepsilon)}{2\varepsilon} = \frac{1 + \alpha}{2} +
# \frac{1 - \alpha}{2}\frac{x}{\varepsilon}$ — a blend of the two slopes, $0.55 + 0.45\,
# x/\varepsilon$ for $\alpha = 0.1$ (ReLU: $0.5 + 0.5\,x/\varepsilon$). The analytic value
# is 1 or $\alpha$. The worst false alarm (just left of 0, analytic $\alpha$) is a relative
# error of $\frac{(1-\alpha)/2}{(1+\alpha)/2} = 0.82$ instead of 1.0 for ReLU; just right of
# 0 it is 0.45 instead of 0.5. Smaller, because the slope jumps by $1 - \alpha = 0.9$
# instead of 1 — but still a glaring "failure" of a correct backward. (`tc.gradcheck`
# detects such entries as kinks and does not compare them.)

# %%
eps = 1e-6
x_kink = np.array([[-0.9e-6, -0.5e-6, -1e-8, 1e-8, 0.5e-6, 0.9e-6]])
worst = {}
for layer in (layers.LeakyReLU(0.1), layers.ReLU()):
    layer.forward(x_kink)
    analytic = layer.backward(np.ones_like(x_kink))
    numeric = numerical_gradient(lambda: float(layer.forward(x_kink).sum()), x_kink, eps=eps)
    alpha = getattr(layer, "alpha", 0.0)
    np.testing.assert_allclose(numeric, (1 + alpha) / 2 + (1 - alpha) / 2 * x_kink / eps, rtol=1e-6)
    worst[repr(layer)] = rel_error(analytic, numeric).max()
    print(f"{layer!r:16s} numeric {np.round(numeric, 3)} vs analytic {analytic.ravel()}; "
          f"worst relative error {worst[repr(layer)]:.2f}")
assert worst["LeakyReLU(0.1)"] < worst["ReLU()"] and worst["LeakyReLU(0.1)"] > 0.8
report = tc.gradcheck(layers.LeakyReLU(0.1), rng.choice([-1, 1], (4, 5)) * rng.uniform(0.1, 1, (4, 5)))
assert bool(report)                  # away from the kink the check passes
print("Exercise 3: LeakyReLU's false alarm is smaller than ReLU's, but still ~0.8; away from 0 it passes")

# %% [markdown]
# ## Exercise 4 — why Dropout breaks a naive check
#
# The check compares $L(\theta + \varepsilon e_k)$ with $L(\theta - \varepsilon e_k)$. If
# each forward pass draws a new mask, the two losses differ mostly because *different
# units were dropped*, a change of order 1 divided by $2\varepsilon$: a numeric gradient of
# order $10^{6}$. The function being differentiated must be the same function at every
# evaluation. `tc.gradcheck` saves the state of every layer's random generator
# (`layer.rng.bit_generator.state`) before the check and restores it before *each*
# forward pass, so every evaluation draws the same mask — then dropout is just a fixed
# multiplication by 0 or $1/(1-p)$, which the backward computes exactly.

# %%
drop = layers.Dropout(0.5, rng=0)
drop.train()
x_d = rng.standard_normal((3, 8))
drop.forward(x_d)
analytic = drop.backward(np.ones_like(x_d))
naive = numerical_gradient(lambda: float(drop.forward(x_d).sum()), x_d)
state = drop.rng.bit_generator.state


def same_mask_loss():
    drop.rng.bit_generator.state = state          # what tc.gradcheck does before each forward
    return float(drop.forward(x_d).sum())


same_mask_loss()
analytic = drop.backward(np.ones_like(x_d))
fixed = numerical_gradient(same_mask_loss, x_d)
print(f"Exercise 4: naive check max error {rel_error(analytic, naive).max():.2f} "
      f"(numeric values up to {np.abs(naive).max():.0e}); same mask: {rel_error(analytic, fixed).max():.1e}")
assert rel_error(analytic, naive).max() > 0.5
assert rel_error(analytic, fixed).max() < 1e-8
assert bool(tc.gradcheck(tc.Sequential(layers.Dense(8, 6, rng=0), layers.Dropout(0.5, rng=1)), x_d))

# %% [markdown]
# ## Exercise 5 — forward instead of central differences
#
# The forward difference has a truncation error $\frac{\varepsilon}{2}|L''|$ instead of
# $\frac{\varepsilon^2}{6}|L'''|$. The tutorial's Conv2D check uses $L = \sum y \odot r$,
# which is *linear* in $x$, $w$ and $b$: $L'' = 0$, so the forward difference has no
# truncation error either and is almost as good (only rounding, about twice the
# central one's, since one evaluation is not shared). On a nonlinear loss,
# $L = \sum r \odot \tanh(y)$, the difference shows: the forward difference's error is
# of order $\varepsilon \approx 10^{-6}$ — we measured $6\times10^{-6}$ against
# $7\times10^{-9}$ for the central one, three orders of magnitude worse — but at
# $\varepsilon = 10^{-6}$ it still passes the $10^{-5}$ tolerance in this case. The margin is gone, though: a larger second derivative, or a larger ε, and it fails.

# %%
conv = layers.Conv2D(2, 3, kernel_size=3, stride=2, padding=1, rng=0, dtype=np.float64)
conv.bias.data[...] = rng.standard_normal(3)
x_c = rng.standard_normal((2, 2, 5, 5))
r = rng.standard_normal(conv.forward(x_c).shape)
conv.zero_grad()
y_c = conv.forward(x_c)
conv.backward(r)
grad_linear = conv.weight.grad.copy()
conv.zero_grad()
conv.forward(x_c)
conv.backward(r * (1 - np.tanh(y_c) ** 2))
grad_tanh = conv.weight.grad.copy()

losses_to_check = {"linear Σ y·r": (lambda: float(np.sum(conv.forward(x_c) * r)), grad_linear),
                   "nonlinear Σ r·tanh(y)": (lambda: float(np.sum(np.tanh(conv.forward(x_c)) * r)), grad_tanh)}
errors = {}
for name, (loss_of, exact) in losses_to_check.items():
    for kind in ("central", "forward"):
        errors[name, kind] = rel_error(exact, numerical_gradient(loss_of, conv.weight.data, 1e-6, kind)).max()
    print(f"Exercise 5: {name:22s} max relative error: central {errors[name, 'central']:.1e}, "
          f"forward {errors[name, 'forward']:.1e}")
assert errors["linear Σ y·r", "forward"] < 1e-6                       # linear: still fine
nonlin = "nonlinear Σ r·tanh(y)"
assert errors[nonlin, "forward"] > 100 * errors[nonlin, "central"]   # nonlinear: far worse ...
assert errors[nonlin, "forward"] < 1e-5                              # ... yet passes 1e-5 here
