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
# $\delta \approx u\,|f|$, where $u$ is the *unit roundoff*: $1.1\times10^{-16}$ in float64,
# $6\times10^{-8}$ in float32. Dividing by $2\varepsilon$ amplifies it to about
# $u|f|/\varepsilon$. The total error of the central difference is roughly
#
# $$\frac{\varepsilon^2}{6}|f'''| + \frac{u\,|f|}{\varepsilon},$$
#
# smallest near $\varepsilon \approx u^{1/3}$: about $10^{-5}$ in float64 (error
# $\approx 10^{-11}$) but $4\times10^{-3}$ in float32 (error $\approx 10^{-5}$ at best).
# Let us measure it on $f(x) = \sin(3x)\,e^x$ at $x = 0.7$.

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
print("smallest error  forward (float64): %.1e at eps=%.0e" % best(err_forward))
print("smallest error  central (float64): %.1e at eps=%.0e" % best(err_central))
print("smallest error  central (float32): %.1e at eps=%.0e" % best(err_central32))
assert err_central.min() < 1e-9 < err_forward.min()      # central is far better ...
assert err_central32.min() > 1e3 * err_central.min()     # ... and float32 cannot get close

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
# The float32 curve bottoms out around $10^{-5}$ — the level at which we want to *detect*
# bugs. That is why tinycnn's gradient checker works on a float64 copy of the model.
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
# ### The same check in float32 fails
#
# Run exactly that check on a float32 copy of the layer. With $\varepsilon = 10^{-6}$ the
# perturbation is barely representable next to values of order 1 (float32 has about 7
# significant digits); with the float32-optimal $\varepsilon = 10^{-3}$ it is better but
# still two or three orders of magnitude above the $10^{-5}$ we want to certify.

# %%
conv32 = layers.Conv2D(2, 3, kernel_size=3, stride=2, padding=1, dtype=np.float32)
conv32.weight.data[...] = conv.weight.data
conv32.bias.data[...] = conv.bias.data
x32, r32 = x.astype(np.float32), r.astype(np.float32)


def loss_of32():
    return np.sum(conv32.forward(x32) * r32)          # float32 all the way


for eps in (1e-6, 1e-3):
    numeric32 = numerical_gradient(loss_of32, conv32.weight.data, eps=eps)
    err32 = rel_error(conv.weight.grad, numeric32).max()
    print(f"float32, eps={eps:g}: max relative error {err32:.1e}")
    assert err32 > 1e-4        # far above the 1e-5 tolerance: float32 cannot certify a gradient

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
assert report.passed() and report.max_rel_error < 1e-6

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
assert report.passed()
tc.assert_gradients_close(cnn, x_img, labels, loss=losses.SoftmaxCrossEntropy())   # silent when fine

# %% [markdown]
# ## 5. Kinks: when correct code fails the check
#
# Finite differences assume $f$ is smooth between $x - \varepsilon$ and $x + \varepsilon$.
# ReLU has a kink at 0. For an input within $\varepsilon$ of 0 the central difference
# straddles it:
#
# $$\frac{\text{ReLU}(x+\varepsilon) - \text{ReLU}(x-\varepsilon)}{2\varepsilon}
#   = \frac{x + \varepsilon}{2\varepsilon} \approx \tfrac12 \quad (|x| \ll \varepsilon),$$
#
# while the analytic derivative is 0 or 1. The relative error is of order one (up to 1.0
# for an input of exactly 0), and yet the backward is perfectly correct. Max pooling has the same problem with ties (tutorial 02).

# %%
relu = layers.ReLU()
x_kinky = rng.standard_normal((1, 12))
x_kinky[0, :4] = [0.0, 3e-7, -2e-7, 5e-8]             # within eps = 1e-6 of the kink
report = tc.gradcheck(relu, x_kinky)
print(report)
assert not report.passed()                             # a false alarm ...
worst = report["input x"].worst_index
assert worst[1] < 4                                    # ... caused by one of the near-zero inputs

x_tie = np.array([[[[2.0, 2.0], [1.0, 0.5]]]])        # two equal maxima in one window
report = tc.gradcheck(layers.MaxPool2D(2), x_tie)
print(report)
assert not report.passed()

# %% [markdown]
# The fix is to choose inputs away from the kinks, **not** to loosen the tolerance (a
# looser tolerance also lets real bugs through). Keep every ReLU input at least 0.1 away
# from 0, and make pooling windows free of ties (random continuous values almost surely
# have none; integer or constant images do).

# %%
x_safe = rng.standard_normal((1, 12))
x_safe = np.sign(x_safe) * (0.1 + np.abs(x_safe))      # |x| >= 0.1
assert tc.gradcheck(relu, x_safe).passed()
assert tc.gradcheck(layers.MaxPool2D(2), x_tie + rng.uniform(0, 0.1, x_tie.shape)).passed()
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
# Both networks would still *train* (the gradients point roughly the right way), which is
# what makes such bugs dangerous.

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
assert not report.passed()

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
# ## Summary
#
# * Central differences, $\frac{L(\theta+\varepsilon e_k) - L(\theta-\varepsilon e_k)}{2\varepsilon}$,
#   have $O(\varepsilon^2)$ truncation error; rounding adds $\approx u|L|/\varepsilon$.
# * In float64 ($\varepsilon \approx 10^{-6}$) correct gradients agree to $10^{-6}$ or
#   better; in float32 a whole tensor rarely gets below $10^{-3}$, so checks run in float64.
# * Compare with a relative error and a floor; a tolerance of $10^{-5}$ separates rounding
#   from bugs.
# * Kinks (ReLU at 0, pooling ties) cause false alarms: move the inputs, keep the tolerance.
# * `tc.gradcheck` reports per tensor; `tc.assert_gradients_close` raises; a bug corrupts the
#   gradients of every tensor before the broken layer, which localises it.
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
