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
# # Tutorial 04 — Gradient checking
#
# Every `backward` in tinycnn was derived by hand, and hand derivations go wrong: a missing
# factor, a transposed matrix, a forgotten mask. Such bugs rarely crash. The network still
# trains, just worse, and you may never find out why. The cure is cheap: compare the
# analytic gradient with a *numerical* one computed from the forward pass alone.
#
# **What you will learn**
#
# 1. forward vs central finite differences, and why the central one is $O(\varepsilon^2)$;
# 2. the two errors that pull $\varepsilon$ in opposite directions (truncation and
#    rounding), and why gradient checks must run in **float64** (float32 fails);
# 3. the *relative* error, and the floor that keeps near-zero gradients from crying wolf;
# 4. `tc.gradcheck` and `tc.assert_gradients_close` on layers and whole models;
# 5. kinks — ReLU at 0, max-pool ties — that make correct code look wrong, and how to
#    choose inputs that avoid them;
# 6. breaking a backward on purpose and watching the check catch it and point at the culprit.

# %%
import numpy as np
import matplotlib.pyplot as plt

from tinycnn.tutorial_helpers import FAST, show
import tinycnn as tc
from tinycnn import layers, losses

np.set_printoptions(precision=4, linewidth=100)
print("tinycnn", tc.__version__, "| backend:", tc.get_backend(), "| fast mode:", FAST)

# %% [markdown]
# ## 1. Finite differences
#
# The derivative is a limit, $f'(x) = \lim_{\varepsilon\to 0} (f(x+\varepsilon) - f(x))/\varepsilon$.
# Taylor-expanding $f(x \pm \varepsilon) = f(x) \pm \varepsilon f'(x) +
# \tfrac{\varepsilon^2}{2} f''(x) \pm \tfrac{\varepsilon^3}{6} f'''(x) + \dots$ shows how
# good two finite formulas are:
#
# $$\text{forward: } \frac{f(x+\varepsilon) - f(x)}{\varepsilon} = f'(x) + \tfrac{\varepsilon}{2}f''(x) + \dots
# \qquad
# \text{central: } \frac{f(x+\varepsilon) - f(x-\varepsilon)}{2\varepsilon} = f'(x) + \tfrac{\varepsilon^2}{6}f'''(x) + \dots$$
#
# In the central difference the even terms cancel, so its *truncation error* shrinks like
# $\varepsilon^2$ instead of $\varepsilon$: at $\varepsilon = 10^{-5}$, about $10^{-10}$
# instead of $10^{-5}$.
#
# Shrinking $\varepsilon$ is not free, though. $f$ is computed with rounding error
# $\delta \approx u\,|f|$, where $u$ is the *unit roundoff*: $2^{-53} \approx 1.1\times10^{-16}$
# in float64, $2^{-24} \approx 6\times10^{-8}$ in float32. Dividing by $2\varepsilon$ amplifies
# it to about $u|f|/\varepsilon$. The total error of the central difference is roughly
#
# $$E(\varepsilon) \approx \frac{\varepsilon^2}{6}|f'''| + \frac{u\,|f|}{\varepsilon},
# \qquad \text{smallest at} \qquad
# \varepsilon^* = \Big(\frac{3u\,|f|}{|f'''|}\Big)^{1/3} \approx u^{1/3}$$
#
# when $|f|$ and $|f'''|$ are of similar size. So the **optimal step is about
# $u^{1/3}$: $5\times10^{-6}$ in float64 and $4\times10^{-3}$ in float32**, and the best
# achievable error is about $u^{2/3}$: $\approx 10^{-11}$ in float64 but only
# $\approx 10^{-5}$ in float32. These are the values this tutorial uses throughout. Note
# the assumption $f''' \neq 0$: for a function that is *linear* in the perturbed variable
# there is no truncation error at all, and the larger $\varepsilon$ the better (section 3
# measures that case). Let us measure the V on $f(x) = \sin(3x)\,e^x$ at $x = 0.7$, where
# $f''' = -e^x(26\sin 3x + 18\cos 3x)$.

# %%
def f(x):
    return np.sin(3 * x) * np.exp(x)


def df(x):
    return (3 * np.cos(3 * x) + np.sin(3 * x)) * np.exp(x)


x0 = 0.7
epsilons = np.logspace(-12, -1, 45)
err_forward, err_central, err_central32 = [], [], []
for eps in epsilons:
    err_forward.append(abs((f(x0 + eps) - f(x0)) / eps - df(x0)))
    err_central.append(abs((f(x0 + eps) - f(x0 - eps)) / (2 * eps) - df(x0)))
    x32, e32 = np.float32(x0), np.float32(eps)           # the same, in float32 arithmetic
    central32 = (f(x32 + e32) - f(x32 - e32)) / (np.float32(2) * e32)
    err_central32.append(abs(float(central32) - df(x0)))
err_forward, err_central, err_central32 = map(np.array, (err_forward, err_central, err_central32))

best = lambda err: (err.min(), epsilons[err.argmin()])  # noqa: E731
d3f = -np.exp(x0) * (26 * np.sin(3 * x0) + 18 * np.cos(3 * x0))
eps_star = {name: (3 * u * abs(f(x0)) / abs(d3f)) ** (1 / 3)
            for name, u in (("float64", 2.0 ** -53), ("float32", 2.0 ** -24))}
print("smallest error  forward (float64): %.1e at eps=%.0e" % best(err_forward))
print("smallest error  central (float64): %.1e at eps=%.0e   (predicted eps* = %.0e)"
      % (*best(err_central), eps_star["float64"]))
print("smallest error  central (float32): %.1e at eps=%.0e   (predicted eps* = %.0e)"
      % (*best(err_central32), eps_star["float32"]))
assert err_central.min() < 1e-9 < err_forward.min()      # central is far better ...
assert err_central32.min() > 1e3 * err_central.min()     # ... and float32 cannot get close
for err, name in ((err_central, "float64"), (err_central32, "float32")):
    assert 1 / 3 < best(err)[1] / eps_star[name] < 3     # the measured minimum is where theory says

fig, ax = plt.subplots(figsize=(7.5, 4.8))
ax.loglog(epsilons, err_forward, "o-", ms=3, label="forward difference, float64")
ax.loglog(epsilons, err_central, "o-", ms=3, label="central difference, float64")
ax.loglog(epsilons, err_central32, "o-", ms=3, label="central difference, float32")
ax.set_xlabel("step ε")
ax.set_ylabel("|numeric − exact|")
ax.set_title("truncation error (right) vs rounding error (left)")
ax.legend()
ax.grid(True, which="major", alpha=0.3)
show(fig, "04_eps_sweep")

# %% [markdown]
# The V shapes are the two error terms: to the right of the minimum, truncation dominates
# (slope 1 for forward, slope 2 for central); to the left, rounding dominates (slope −1).
# The measured minima sit within a factor of three of the predicted $\varepsilon^*$ (the
# code asserts it). The float32 curve bottoms out at a few $10^{-5}$ — the level at which
# we want to *detect* bugs. That is why tinycnn's gradient checker works on a float64 copy
# of the model, with $\varepsilon = 10^{-6}$: a little below the float64 optimum, which
# costs almost nothing in accuracy (section 3 measures it) and keeps fewer inputs within
# $\varepsilon$ of a kink (section 5).
#
# ## 2. The relative error
#
# Gradients come in all sizes: $10^{-6}$ for one weight, $10^{3}$ for another. An absolute
# difference of $10^{-4}$ is a disaster for the first and perfect for the second. So we
# compare analytic $a$ and numeric $n$ with the relative error
#
# $$\text{rel}(a, n) = \frac{|a - n|}{\max(|a|,\; |n|,\; \text{floor})}.$$
#
# The floor (tinycnn uses $10^{-4}$) matters when the true gradient is essentially zero:
# then $a$ and $n$ are both rounding noise, and without a floor their ratio could be
# anything. Rules of thumb in float64 with a smooth function: $< 10^{-7}$ is excellent,
# $10^{-7}$ to $10^{-5}$ fine, $> 10^{-3}$ almost certainly a bug.

# %%
def rel_error(a, n, floor=1e-4):
    return np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)


print(f"{rel_error(1e-10, 3e-10, floor=0):.2f}  <- two rounding-noise values look 67% apart")
print(f"{rel_error(1e-10, 3e-10):.0e} <- with the floor, both are recognised as ~0")
print(f"{rel_error(1000.0, 1000.0001):.0e} <- a large gradient that agrees to 7 digits")
print(f"{rel_error(0.5, 0.25):.2f}  <- a real discrepancy stays large")
assert rel_error(1e-10, 3e-10) < 1e-5 < rel_error(1e-10, 3e-10, floor=0)

# %% [markdown]
# ## 3. A numerical gradient by hand
#
# For a tensor of parameters $\theta$, perturb one entry at a time:
#
# $$\frac{\partial L}{\partial \theta_k} \approx
#   \frac{L(\theta + \varepsilon e_k) - L(\theta - \varepsilon e_k)}{2\varepsilon}.$$
#
# That costs two forward passes per entry, which is why checks use tiny layers (and
# tinycnn checks a random subset of entries of big tensors). To turn a layer's output
# into a scalar we use $L = \sum y \odot r$ for a fixed random $r$, so $dy = r$ and every
# output entry takes part.

# %%
def numerical_gradient(loss_of, theta, eps=1e-6):
    """Central differences of the scalar ``loss_of()`` w.r.t. every entry of ``theta`` (in place)."""
    grad = np.zeros(theta.shape)
    for idx in np.ndindex(theta.shape):
        original = theta[idx]
        theta[idx] = original + eps
        plus = loss_of()
        theta[idx] = original - eps
        minus = loss_of()
        theta[idx] = original                       # always put it back
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


rng = np.random.default_rng(0)
conv = layers.Conv2D(2, 3, kernel_size=3, stride=2, padding=1, rng=0, dtype=np.float64)
conv.bias.data[...] = rng.standard_normal(3)
x = rng.standard_normal((2, 2, 5, 5))
r = rng.standard_normal(conv.forward(x).shape)


def loss_of():
    return float(np.sum(conv.forward(x) * r))


conv.zero_grad()
conv.forward(x)
dx = conv.backward(r)                                 # analytic: dL/dy = r
checks = {"input x": (dx, numerical_gradient(loss_of, x)),
          "weight": (conv.weight.grad, numerical_gradient(loss_of, conv.weight.data)),
          "bias": (conv.bias.grad, numerical_gradient(loss_of, conv.bias.data))}
for name, (analytic, numeric) in checks.items():
    err = rel_error(analytic, numeric).max()
    print(f"Conv2D {name:8s} max relative error {err:.1e}")
    assert err < 1e-6

# %% [markdown]
# ### The same check in float32 fails — and which ε?
#
# Now run that check on a float32 copy of the layer. Which $\varepsilon$? Careful: the
# scalar we used, $L = \sum y \odot r$, is **linear** in $w$ (and in $x$ and $b$), so its
# central difference has no truncation error at all — $L''' = 0$, the $u^{1/3}$ rule does
# not apply, and only rounding is left, which shrinks as $\varepsilon$ grows. Real losses
# are nonlinear. Put a tanh on the output, $L = \sum r \odot \tanh(y)$, and the V of
# section 1 comes back. We sweep $\varepsilon$ for the weight gradient of both losses in
# float32, and of the nonlinear one in float64, against the float64 analytic gradient.
# Each point is the median relative error over the 54 weights (the check itself uses
# the maximum, printed afterwards).

# %%
conv32 = layers.Conv2D(2, 3, kernel_size=3, stride=2, padding=1, dtype=np.float32)
conv32.weight.data[...] = conv.weight.data
conv32.bias.data[...] = conv.bias.data
x32, r32 = x.astype(np.float32), r.astype(np.float32)

# the analytic weight gradients of both losses, in float64
conv.zero_grad()
conv.forward(x)
conv.backward(r)
grad_linear = conv.weight.grad.copy()
conv.zero_grad()
y64 = conv.forward(x)
conv.backward(r * (1 - np.tanh(y64) ** 2))             # d tanh(y)/dy = 1 - tanh(y)^2
grad_tanh = conv.weight.grad.copy()

LINEAR32, TANH32, TANH64 = "float32, linear L = Σ y·r", "float32, L = Σ r·tanh(y)", "float64, L = Σ r·tanh(y)"
curves = {  # name: (scalar loss, layer whose weights are perturbed, exact gradient)
    LINEAR32: (lambda: np.sum(conv32.forward(x32) * r32), conv32, grad_linear),
    TANH32: (lambda: np.sum(np.tanh(conv32.forward(x32)) * r32), conv32, grad_tanh),
    TANH64: (lambda: float(np.sum(np.tanh(conv.forward(x)) * r)), conv, grad_tanh),
}
eps_grid = np.logspace(-7, 0, 15)                      # half-decade steps
sweeps = {}
for name, (loss_fn, layer, exact) in curves.items():
    sweeps[name] = np.array([np.median(rel_error(exact, numerical_gradient(loss_fn, layer.weight.data, eps=e)))
                             for e in eps_grid])
    k = sweeps[name].argmin()
    print(f"{name:26s} smallest median error {sweeps[name][k]:.1e} at eps={eps_grid[k]:.0e}")

u32, u64 = 2.0 ** -24, 2.0 ** -53
best_eps = {name: eps_grid[err.argmin()] for name, err in sweeps.items()}
assert best_eps[LINEAR32] >= 0.1                                   # linear: the bigger the better
assert 1 / 3 < best_eps[TANH32] / u32 ** (1 / 3) < 3               # nonlinear: near u^(1/3)
assert 1 / 3 < best_eps[TANH64] / u64 ** (1 / 3) < 3
k6 = np.argmin(abs(np.log(eps_grid / 1e-6)))
print(f"float64, nonlinear, at tinycnn's eps=1e-6: median error {sweeps[TANH64][k6]:.1e}")
assert sweeps[TANH64][k6] < 1e-8

fig, ax = plt.subplots(figsize=(7.5, 4.6))
for name, err in sweeps.items():
    ax.loglog(eps_grid, err, "o-", ms=3, label=name)
for u, label in ((u64, "float64"), (u32, "float32")):
    ax.axvline(u ** (1 / 3), color="grey", ls=":", lw=1)
    ax.text(u ** (1 / 3), 2.0, f"$u^{{1/3}}$\n{label}", fontsize=8, ha="center", va="bottom")
ax.set_xlabel("step ε")
ax.set_ylabel("median relative error of dL/dw")
ax.set_title("Conv2D weight gradient by central differences", pad=28)
ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
ax.grid(True, which="major", alpha=0.3)
show(fig, "04_eps_sweep_conv")

# the check itself (the maximum over all weights) on the nonlinear loss, at two steps
for eps in (1e-6, 4e-3):
    err32 = rel_error(grad_tanh, numerical_gradient(curves[TANH32][0], conv32.weight.data, eps=eps)).max()
    print(f"float32, nonlinear loss, eps={eps:g}: max relative error {err32:.1e}")
    assert err32 > 1e-4        # far above the 1e-5 tolerance: float32 cannot certify a gradient

# %% [markdown]
# What the plot and the printout say:
#
# * the **linear** loss in float32 keeps getting better as $\varepsilon$ grows, all the way
#   to $\varepsilon = 1$: with no truncation error there is no V, so "the float32-optimal
#   $\varepsilon$" means nothing for it — one more reason to check with a nonlinear loss;
# * the **nonlinear** loss has its V, with the minimum near $u^{1/3}$ — about
#   $4\times10^{-3}$ in float32 and $5\times10^{-6}$ in float64; the printed minima are
#   within a factor of three of those (the code asserts it), as in section 1. Right of
#   the minimum the two dtypes lie on one line: that is truncation error, the same in any
#   precision;
# * even at its best $\varepsilon$ the float32 check's *worst* weight is off by far more
#   than the $10^{-5}$ we want to certify; at $\varepsilon = 10^{-6}$ the perturbation is
#   barely representable next to weights of order 1 (float32 has about 7 significant
#   digits) and the error is of order one. In float64, tinycnn's $\varepsilon = 10^{-6}$
#   gives an error within a small factor of the minimum and far below $10^{-5}$.

# %% [markdown]
# ## 4. `tc.gradcheck`: the tool
#
# `tc.gradcheck(layer_or_model, x, target=None, loss=None)` does all of the above on a
# **float64 deep copy** (your model is not touched), for the input and every parameter,
# and returns a report: one row per tensor with its largest relative error and, for a
# failure, the index and both values. `tc.assert_gradients_close(...)` is the same but
# raises `AssertionError` — the form to use in tests.
#
# Without `loss`, it uses $L = \sum y \odot r$ like we did; with a loss and targets, it
# checks the real training objective end to end.

# %%
report = tc.gradcheck(conv, x)
print(report)
assert report.passed and report.max_rel_error < 1e-6

# %% [markdown]
# A small CNN with every kind of layer from tutorials 01–03, checked through the
# softmax-cross-entropy loss. The model is float32, as for training; `gradcheck` makes the
# float64 copy itself.

# %%
side = 8 if FAST else 12           # conv keeps the size, pool halves it, conv -2, pool halves
flat = 4 * ((side // 2 - 2) // 2) ** 2
cnn = tc.Sequential(
    layers.Conv2D(1, 3, kernel_size=3, padding=1, rng=0), layers.ReLU(),
    layers.MaxPool2D(2),
    layers.Conv2D(3, 4, kernel_size=3, rng=1), layers.Tanh(),
    layers.AvgPool2D(2),
    layers.Flatten(),
    layers.Dense(flat, 5, rng=2),
)
x_img = rng.standard_normal((3, 1, side, side)).astype(np.float32)
labels = np.array([0, 3, 4])

report = tc.gradcheck(cnn, x_img, labels, loss=losses.SoftmaxCrossEntropy())
print(report)
assert report.passed
tc.assert_gradients_close(cnn, x_img, labels, loss=losses.SoftmaxCrossEntropy())   # silent when fine

# %% [markdown]
# ## 5. Kinks: when correct code fails the check
#
# Finite differences assume $f$ is smooth between $x - \varepsilon$ and $x + \varepsilon$.
# ReLU has a kink at 0. For an input within $\varepsilon$ of 0 the central difference
# straddles it:
#
# $$n(x) = \frac{\text{ReLU}(x+\varepsilon) - \text{ReLU}(x-\varepsilon)}{2\varepsilon}
#   = \frac{x + \varepsilon}{2\varepsilon} \in (0, 1) \qquad (-\varepsilon < x < \varepsilon),$$
#
# while the analytic derivative is $a = [x > 0]$: 0 or 1. With the relative error of
# section 2 that gives
#
# $$\text{rel}(a, n) = \begin{cases} n / \max(n, \text{floor}) = 1 & -\varepsilon < x \le 0
#   \quad (a = 0,\ n > 0;\ \text{exactly 1 once } n \text{ exceeds the floor}),\\
#   1 - n = \dfrac{\varepsilon - x}{2\varepsilon} \in (0, \tfrac12) & 0 < x < \varepsilon
#   \quad (a = 1). \end{cases}$$
#
# So a plain finite-difference check fails every input in $(-\varepsilon, 0]$ — not only
# an exact 0 — with an error of exactly 1.0, and every input in $(0, \varepsilon)$ with an
# error below one half, although the backward is perfectly correct. Measured, with $dy = 1$ and $\varepsilon = 10^{-6}$:

# %%
eps = 1e-6
relu = layers.ReLU()
t = np.array([-0.99, -0.5, -0.1, 0.0, 0.1, 0.5, 0.99])
x_near = (t * eps)[None, :]                           # inputs inside (-eps, eps)
relu.forward(x_near)
analytic = relu.backward(np.ones_like(x_near))        # [x > 0]
numeric = (relu.forward(x_near + eps) - relu.forward(x_near - eps)) / (2 * eps)
measured = rel_error(analytic, numeric)[0]
predicted = np.where(t <= 0, 1.0, (1 - t) / 2)        # the two cases above
for ti, a_i, n_i, m_i, p_i in zip(t, analytic[0], numeric[0], measured, predicted):
    print(f"x = {ti:+.2f} eps: analytic {a_i:.0f}, numeric {n_i:.3f}, relative error {m_i:.3f} "
          f"(predicted {p_i:.3f})")
np.testing.assert_allclose(measured, predicted, rtol=1e-6)

# %% [markdown]
# Max pooling has the same problem with ties (tutorial 02). What does `tc.gradcheck` make
# of such inputs?

# %%
x_kinky = rng.standard_normal((1, 12))
x_kinky[0, :4] = [0.0, 3e-7, -2e-7, 5e-8]             # within eps = 1e-6 of the kink
numeric = (np.maximum(x_kinky + 1e-6, 0) - np.maximum(x_kinky - 1e-6, 0)) / 2e-6
print("central differences at the four near-zero inputs:", numeric[0, :4])   # neither 0 nor 1
report = tc.gradcheck(relu, x_kinky)
print(report)
assert report.passed and report["input x"].kinks == 4  # recognised as kinks, not failures
assert sorted(i[1] for i in report["input x"].kink_indices) == [0, 1, 2, 3]

x_tie = np.array([[[[2.0, 2.0], [1.0, 0.5]]]])        # two equal maxima in one window
report = tc.gradcheck(layers.MaxPool2D(2), x_tie)
print(report)
assert report.passed and report["input x"].kinks == 2

# %% [markdown]
# `tc.gradcheck` recognises kinks instead of calling them failures. Every layer with a kink
# reports the discrete decision its forward made (`layer.kink_states()`: ReLU, which inputs
# were positive; max pooling, which element won each window). When a decision at
# $x \pm \varepsilon$ differs from the one at $x$, the finite difference straddles the kink,
# so the entry is reported as KINK and not compared.
#
# A KINK entry checks nothing, though. In a test, choose inputs away from the kinks so that
# every sampled entry is compared, and do **not** loosen the tolerance (a looser tolerance
# also lets real bugs through). Keep every ReLU input at least 0.1 away from 0, and make
# pooling windows free of ties (random continuous values almost surely have none; integer or
# constant images, such as the blank background of a digit, do).

# %%
x_safe = rng.standard_normal((1, 12))
x_safe = np.sign(x_safe) * (0.1 + np.abs(x_safe))      # |x| >= 0.1
for report in (tc.gradcheck(relu, x_safe),
               tc.gradcheck(layers.MaxPool2D(2), x_tie + rng.uniform(0, 0.1, x_tie.shape))):
    assert report.passed and report.kinks == 0        # every sampled entry compared
print("away from the kinks, ReLU and MaxPool2D pass")

# %% [markdown]
# ## 6. Breaking a backward on purpose
#
# Two plausible bugs, each a layer whose forward is right and whose backward is wrong:
#
# * `ForgetfulReLU` passes the gradient through unchanged, $dx = dy$, forgetting the mask
#   $[x > 0]$;
# * `SloppySigmoid` uses $dx = dy\,y$ instead of $dy\,y(1 - y)$.
#
# Neither bug crashes anything, and — as the end of this section measures — a network
# with either one still *trains*: its loss falls and its accuracy rises far above chance.
# That is what makes such bugs dangerous.

# %%
class ForgetfulReLU(layers.ReLU):
    """Correct forward; backward forgets the mask [x > 0]."""

    def backward(self, dy):
        super().backward(dy)          # keep the layer's checks (shape, forward-before-backward)
        return dy                     # BUG: should be dy * (x > 0)


class SloppySigmoid(layers.Sigmoid):
    """Correct forward; backward drops the (1 - y) factor."""

    def forward(self, x):
        self.y = super().forward(x)
        return self.y

    def backward(self, dy):
        super().backward(dy)
        return dy * self.y            # BUG: should be dy * y * (1 - y)


x_in = rng.standard_normal((4, 6))
x_in = np.sign(x_in) * (0.1 + np.abs(x_in))            # no kinks: any failure is a real bug
report = tc.gradcheck(SloppySigmoid(), x_in)
print(report)
assert not report.passed

# %% [markdown]
# In a model the report also says **where** the bug is. Gradients flow backwards, so a
# broken layer corrupts the gradients of everything *before* it, and nothing after it. Put
# the forgetful ReLU between two dense layers: the second layer's gradients stay correct,
# the first layer's and the input's are wrong.

# %%
buggy = tc.Sequential(layers.Dense(6, 8, rng=0), ForgetfulReLU(), layers.Dense(8, 3, rng=1))
targets = np.array([0, 1, 2, 1])
report = tc.gradcheck(buggy, x_in, targets, loss=losses.SoftmaxCrossEntropy())
print(report)
failing = [e.name for e in report.failures()]
print("failing tensors:", failing)
assert failing == ["input x", "0.Dense(6→8).weight", "0.Dense(6→8).bias"]

try:
    tc.assert_gradients_close(buggy, x_in, targets, loss=losses.SoftmaxCrossEntropy())
except AssertionError as error:
    message = str(error)
    print("AssertionError:", message.splitlines()[0][:200], "...")
else:
    raise RuntimeError("the gradient check should have caught the bug")
assert "0.Dense(6→8).weight" in message

# the honest ReLU in the same place passes
fixed = tc.Sequential(layers.Dense(6, 8, rng=0), layers.ReLU(), layers.Dense(8, 3, rng=1))
tc.assert_gradients_close(fixed, x_in, targets, loss=losses.SoftmaxCrossEntropy())
print("with the correct ReLU every tensor passes")

# %%
names = ["\n".join(e.name.rsplit(".", 1)) for e in report.entries]   # "0.Dense(6→8)\nweight"
errors = [max(e.max_rel_error, 1e-16) for e in report.entries]
fig, ax = plt.subplots(figsize=(9, 4))
ax.bar(names, errors, color=["tab:red" if e > report.tol else "tab:green" for e in errors])
ax.axhline(report.tol, color="k", ls="--", label=f"tolerance {report.tol:g}")
ax.set_yscale("log")
ax.set_ylabel("max relative error")
ax.set_title("Dense → ForgetfulReLU → Dense: the bug shows up upstream")
ax.legend()
show(fig, "04_bug_localised")

# %% [markdown]
# ### Would you notice the bug from training alone?
#
# Train four small classifiers on flattened MNIST digits — `Dense(784→64) → activation →
# Dense(64→10)` with the correct ReLU, the `ForgetfulReLU`, the correct `Sigmoid` and the
# `SloppySigmoid` — with the same data, initial weights and SGD settings, and watch the
# training loss and the validation accuracy.

# %%
from tinycnn import optim
from tinycnn.datasets import load_mnist5k

(digits_train, labels_train), (digits_val, labels_val) = load_mnist5k(seed=0)
n_train, n_val, n_epochs = (300, 300, 3) if FAST else (2000, 1000, 8)
flat_train = digits_train[:n_train].reshape(n_train, -1)
flat_val = digits_val[:n_val].reshape(n_val, -1)
activations = {"ReLU": layers.ReLU, "ForgetfulReLU (bug)": ForgetfulReLU,
               "Sigmoid": layers.Sigmoid, "SloppySigmoid (bug)": SloppySigmoid}
curves_train = {}
for name, activation in activations.items():
    net = tc.Sequential(layers.Dense(784, 64, rng=0), activation(), layers.Dense(64, 10, rng=1))
    history = net.fit(flat_train, labels_train[:n_train], loss=losses.SoftmaxCrossEntropy(),
                      optimizer=optim.SGD(net.parameters(), lr=0.1, momentum=0.9), epochs=n_epochs,
                      batch_size=32, validation_data=(flat_val, labels_val[:n_val]), seed=0, verbose=False)
    curves_train[name] = history.history
    h_ = history.history
    print(f"{name:20s} training loss {h_['loss'][0]:.3f} -> {h_['loss'][-1]:.3f} (lowest {min(h_['loss']):.3f}); "
          f"validation accuracy {h_['val_accuracy'][0]:.3f} -> {h_['val_accuracy'][-1]:.3f} "
          f"(best {max(h_['val_accuracy']):.3f})")
    assert min(h_["loss"]) < h_["loss"][0] and max(h_["val_accuracy"]) > 0.3   # it learns (chance: 0.1)
if not FAST:
    for buggy, correct in (("ForgetfulReLU (bug)", "ReLU"), ("SloppySigmoid (bug)", "Sigmoid")):
        assert max(curves_train[buggy]["val_accuracy"]) > 0.7                  # trains well ...
        assert max(curves_train[buggy]["val_accuracy"]) < max(curves_train[correct]["val_accuracy"])  # ... but worse
    forgetful_loss = curves_train["ForgetfulReLU (bug)"]["loss"]
    assert forgetful_loss[-1] > min(forgetful_loss)                        # its loss turns back up

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
for (name, h_), style in zip(curves_train.items(), ["-", "--", "-", "--"]):
    color = "tab:blue" if "ReLU" in name else "tab:orange"
    epochs_ = np.arange(1, len(h_["loss"]) + 1)
    axes[0].plot(epochs_, h_["loss"], style, marker="o", ms=3, color=color, label=name)
    axes[1].plot(epochs_, h_["val_accuracy"], style, marker="o", ms=3, color=color, label=name)
axes[0].set_ylim(0, None)
axes[0].set_ylabel("training loss")
axes[1].set_ylim(0, 1)
axes[1].axhline(0.1, color="grey", ls=":", lw=1)
axes[1].text(1, 0.12, "chance", color="grey", fontsize=8)
axes[1].set_ylabel("validation accuracy")
for ax in axes:
    ax.set_xlabel("epoch")
axes[1].legend(fontsize=8, loc="lower right")
fig.suptitle(f"Dense(784→64) → activation → Dense(64→10), {n_train} digits: buggy backward passes still train")
show(fig, "04_buggy_nets_train")

# %% [markdown]
# Both buggy networks learn: in full mode their validation accuracy climbs far above the
# 10 % of guessing within the first epochs, as the printout and the plot show. Neither
# reaches the accuracy of its correct twin (the code asserts it in full mode), and the
# `ForgetfulReLU` network's training loss turns back up after a few epochs. But without
# the correct twin to compare with you would see a network that learns reasonably well
# at first, and blame the learning rate, the data or the architecture. The
# gradient check points at the broken layer in a second.

# %% [markdown]
# ## Summary
#
# * Central differences, $\frac{L(\theta+\varepsilon e_k) - L(\theta-\varepsilon e_k)}{2\varepsilon}$,
#   have $O(\varepsilon^2)$ truncation error; rounding adds $\approx u|L|/\varepsilon$.
# * The best step is about $u^{1/3}$ — $5\times10^{-6}$ in float64, $4\times10^{-3}$ in
#   float32 — for a loss that is nonlinear in the checked variable (a linear one has no
#   truncation error, and a larger step is simply better). `tc.gradcheck` runs in float64
#   with $\varepsilon = 10^{-6}$, where the correct gradients above agree to $10^{-6}$ or
#   better; in float32 even the best step leaves a tensor's worst entry near $10^{-3}$.
#   So checks run in float64.
# * Compare with a relative error and a floor; a tolerance of $10^{-5}$ separates rounding
#   from bugs.
# * Kinks (ReLU inputs within $\varepsilon$ of 0, pooling ties) make correct code fail a
#   plain finite-difference check — with an error of exactly 1.0 for every ReLU input in
#   $(-\varepsilon, 0]$: move the inputs, keep the tolerance.
# * `tc.gradcheck` reports per tensor; `tc.assert_gradients_close` raises; a bug corrupts the
#   gradients of every tensor before the broken layer, which localises it.
# * A network with a broken backward can still train, only worse (measured in section 6):
#   the training curves alone will not tell you.
#
# ## Exercises
#
# 1. Write a `WrongBiasDense(layers.Dense)` whose backward adds only the *first* sample's
#    `dy` to `bias.grad` instead of the sum over the batch. Does `gradcheck` catch it with a
#    batch of one sample? With two?
# 2. Repeat the ε sweep of section 1 with $f(x) = |x|$ at $x = 10^{-4}$. Where does the
#    central difference stop being trustworthy, and why?
# 3. Check `layers.LeakyReLU(0.1)` on inputs straddling 0. Is the false alarm smaller than
#    for ReLU? Derive what the numeric gradient should be for $|x| < \varepsilon$.
# 4. `Dropout` draws a new random mask at every forward pass. Why would a naive gradient
#    check fail on it, and how does `tc.gradcheck` avoid that (read `tinycnn/gradcheck.py`)?
# 5. Use the forward difference instead of the central one in `numerical_gradient`. How much
#    worse is the Conv2D check at $\varepsilon = 10^{-6}$? Does it still pass $10^{-5}$?
