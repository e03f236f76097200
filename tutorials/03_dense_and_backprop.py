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
# # Tutorial 03 — Dense layers and backpropagation
#
# A network is a chain of simple functions; training needs the derivative of the loss with
# respect to every weight. Backpropagation gets all of them in one backward sweep by
# applying the chain rule layer by layer, each layer turning "how the loss changes with my
# output" into "how it changes with my input and my weights".
#
# **What you will learn**
#
# 1. the dense (fully connected) layer $y = Wx + b$ and its batch form $Y = XW^T + b$;
# 2. the chain rule in the shape backprop uses it, and the three backward equations of a
#    dense layer: $dX = dY\,W$, $dW = dY^T X$, $db = \sum_n dY_n$;
# 3. the backward of ReLU, $dx = dy \odot [x > 0]$;
# 4. softmax + cross-entropy, why it is computed stably, and its famously simple gradient
#    $\partial L / \partial z = p - \text{onehot}(t)$;
# 5. a two-layer network trained with a hand-written loop in pure NumPy — and the same
#    network in tinycnn, step for step, with identical losses.

# %%
import numpy as np
import matplotlib.pyplot as plt

from tinycnn.tutorial_helpers import FAST, show
import tinycnn as tc
from tinycnn import layers, losses, optim
from tinycnn.kernels import reference

np.set_printoptions(precision=4, suppress=True, linewidth=100)
print("tinycnn", tc.__version__, "| backend:", tc.get_backend(), "| fast mode:", FAST)

# %% [markdown]
# ## 1. The dense layer
#
# A dense layer with $I$ inputs and $O$ outputs holds a weight matrix $W$ of shape
# $(O, I)$ and a bias $b$ of shape $(O,)$. For one sample $x \in \mathbb{R}^I$:
#
# $$y_o = \sum_{i=1}^{I} W_{o,i}\, x_i + b_o \qquad\Longleftrightarrow\qquad y = Wx + b.$$
#
# For a batch we stack the samples as *rows* of $X$ $(N, I)$; then $Y = XW^T + b$ is
# $(N, O)$, with $b$ added to every row. (tinycnn stores $W$ as $(O, I)$, like PyTorch, so
# weights move between the two without transposes.)

# %%
W = np.array([[0.5, -1.0, 2.0],
              [1.5, 0.0, -0.5]])          # (O=2, I=3)
b = np.array([0.1, -0.2])                 # (O,)
x = np.array([1.0, 2.0, 3.0])             # one sample, (I,)

# one sample, written out: y_o = sum_i W[o, i] x[i] + b[o]
y_hand = np.array([sum(W[o, i] * x[i] for i in range(3)) + b[o] for o in range(2)])
print("y =", y_hand)
assert np.allclose(y_hand, [0.5 - 2 + 6 + 0.1, 1.5 - 1.5 - 0.2])
np.testing.assert_allclose(W @ x + b, y_hand)

X = np.stack([x, -x, np.ones(3)])         # a batch of N=3 samples, (3, 3)
dense = layers.Dense(3, 2, dtype=np.float64)
dense.weight.data[...] = W
dense.bias.data[...] = b
Y = dense.forward(X)
np.testing.assert_allclose(Y, X @ W.T + b, rtol=1e-15)
np.testing.assert_allclose(Y[0], y_hand, rtol=1e-15)
np.testing.assert_allclose(reference.dense_forward(X, W, b), Y, rtol=1e-15)
print("Dense(3→2) on a batch:\n", Y)

# %% [markdown]
# ## 2. The chain rule, the way backprop uses it
#
# Training minimises a scalar loss $L$. Suppose a layer computes $y = f(x; \theta)$ and
# everything after it — the rest of the network and the loss — has already told us
# $dy = \partial L / \partial y$ (same shape as $y$). The chain rule gives the two things
# the layer must produce:
#
# $$\frac{\partial L}{\partial x_i} = \sum_o \frac{\partial L}{\partial y_o}
#   \frac{\partial y_o}{\partial x_i}
# \qquad\qquad
# \frac{\partial L}{\partial \theta_k} = \sum_o \frac{\partial L}{\partial y_o}
#   \frac{\partial y_o}{\partial \theta_k}.$$
#
# The first, $dx$, is handed to the previous layer as *its* $dy$ — that is the "back" in
# backpropagation. The second is the gradient the optimizer uses. A layer never needs to
# know what comes after it; $dy$ summarises all of it.
#
# ### The three backward equations of a dense layer
#
# From $y_o = \sum_i W_{o,i} x_i + b_o$ the local derivatives are
# $\partial y_o / \partial x_i = W_{o,i}$,
# $\partial y_o / \partial W_{o',i} = [o = o']\, x_i$ and
# $\partial y_o / \partial b_{o'} = [o = o']$. Plugging them in:
#
# $$dx_i = \sum_o dy_o\, W_{o,i} \;\Rightarrow\; dx = W^T dy,
# \qquad dW_{o,i} = dy_o\, x_i \;\Rightarrow\; dW = dy\, x^T,
# \qquad db = dy.$$
#
# For a batch, the loss is a sum (or mean) over samples and the same weights serve every
# sample, so parameter gradients **add up over the batch**:
#
# $$dX = dY\,W \;(N, I), \qquad dW = dY^T X \;(O, I), \qquad db = \sum_n dY_{n,:} \;(O,).$$
#
# A handy sanity check: every gradient has the shape of the thing it is the gradient of.

# %%
def dense_backward_by_hand(dY, X, W):
    dX = dY @ W            # (N, O) @ (O, I) -> (N, I)
    dW = dY.T @ X          # (O, N) @ (N, I) -> (O, I): one outer product per sample, summed
    db = dY.sum(axis=0)    # (O,)
    return dX, dW, db


rng = np.random.default_rng(0)
dY = rng.standard_normal(Y.shape)      # pretend the rest of the network sent this

dX, dW, db = dense_backward_by_hand(dY, X, W)
# dW really is a sum of per-sample outer products dy_n x_n^T
np.testing.assert_allclose(dW, sum(np.outer(dY[n], X[n]) for n in range(len(X))))

dense.zero_grad()
dX_layer = dense.backward(dY)          # returns dL/dX, and fills the parameters' .grad
np.testing.assert_allclose(dX_layer, dX, rtol=1e-14)
np.testing.assert_allclose(dense.weight.grad, dW, rtol=1e-14)
np.testing.assert_allclose(dense.bias.grad, db, rtol=1e-14)
print("Dense.backward: dX, weight.grad and bias.grad match the hand-derived equations")

# %% [markdown]
# Note *fills*: `backward` **adds** into `.grad` (`+=`). That is what you want when one
# parameter is used in several places (the contributions must add up), but it means a
# training loop must reset the gradients before every step. Forget `zero_grad()` and the
# gradients silently accumulate:

# %%
dense.backward(dY)                     # a second backward without zero_grad ...
np.testing.assert_allclose(dense.weight.grad, 2 * dW, rtol=1e-14)   # ... doubles .grad
dense.zero_grad()
assert not dense.weight.grad.any()
print("backward accumulates; zero_grad() resets")

# %% [markdown]
# ## 3. ReLU
#
# $\text{ReLU}(x) = \max(0, x)$, element-wise. Its derivative is 1 where $x > 0$ and 0
# where $x < 0$ (at exactly 0 it has a kink; tinycnn, like PyTorch, uses 0 there). Since
# each output depends only on the input at the same position, the chain-rule sum has one
# term:
#
# $$dx = dy \odot [x > 0].$$
#
# A ReLU lets gradient pass unchanged through active units and blocks it at inactive ones.

# %%
z = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
dy_relu = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
relu = layers.ReLU()
np.testing.assert_array_equal(relu.forward(z), np.maximum(z, 0))
np.testing.assert_array_equal(relu.backward(dy_relu), dy_relu * (z > 0))
print("ReLU backward:", relu.backward(dy_relu))

# %% [markdown]
# ## 4. Softmax and cross-entropy
#
# A classifier's last dense layer outputs one raw score (*logit*) $z_k$ per class. Softmax
# turns them into probabilities, and cross-entropy is the negative log-probability of the
# true class $t$:
#
# $$p_k = \frac{e^{z_k}}{\sum_j e^{z_j}}, \qquad L = -\log p_t.$$
#
# **Stability.** $e^{1000}$ overflows. Since softmax does not change when the same constant
# is subtracted from every logit, we subtract $m = \max_j z_j$ first; then every exponent
# is $\le 0$. Better still, compute $\log p_t = (z_t - m) - \log\sum_j e^{z_j - m}$
# directly (the "log-sum-exp trick"), so we never take the log of an underflowed 0.

# %%
def softmax_naive(z):
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def softmax_stable(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


z_big = np.array([[1000.0, 1001.0, 999.0]])
with np.errstate(over="ignore", invalid="ignore"):
    print("naive :", softmax_naive(z_big))        # inf / inf = nan
print("stable:", softmax_stable(z_big))
with np.errstate(over="ignore", invalid="ignore"):
    assert np.isnan(softmax_naive(z_big)).all()
np.testing.assert_allclose(softmax_stable(z_big), softmax_stable(z_big - 1000))

# %% [markdown]
# **The gradient.** Differentiate through softmax first. For $j = k$,
# $\partial p_k / \partial z_k = p_k - p_k^2$; for $j \ne k$,
# $\partial p_j / \partial z_k = -p_j p_k$. Together:
# $\partial p_j / \partial z_k = p_j(\delta_{jk} - p_k)$. Then, since $L = -\log p_t$,
#
# $$\frac{\partial L}{\partial z_k} = -\frac{1}{p_t}\frac{\partial p_t}{\partial z_k}
#   = -\frac{1}{p_t}\, p_t(\delta_{tk} - p_k) = p_k - \delta_{tk}.$$
#
# So $\partial L / \partial z = p - \text{onehot}(t)$: the predicted distribution minus the
# target distribution. The two messy Jacobians cancel into a subtraction — one reason
# libraries usually fuse softmax and cross-entropy into one loss that takes the logits
# (tinycnn's `SoftmaxCrossEntropy`, PyTorch's `CrossEntropyLoss`); the other is stability,
# since $\log p$ is computed without forming a $p$ that may round to 0. For a batch with the mean
# loss $L = \frac{1}{N}\sum_n -\log p_{n,t_n}$, every row gets an extra $\frac{1}{N}$.

# %%
def softmax_cross_entropy_by_hand(Z, t):
    """Mean cross-entropy of logits Z (N, K) against integer labels t (N,), and dL/dZ."""
    N = len(t)
    shifted = Z - Z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    L = -log_p[np.arange(N), t].mean()
    onehot = np.eye(Z.shape[1])[t]
    dZ = (np.exp(log_p) - onehot) / N            # p - onehot(t), per sample, / N for the mean
    return L, dZ


Z = rng.standard_normal((4, 3)) * 2
t = np.array([0, 2, 1, 2])
L_hand, dZ_hand = softmax_cross_entropy_by_hand(Z, t)

loss_fn = losses.SoftmaxCrossEntropy()
L_tc = loss_fn.forward(Z, t)
dZ_tc = loss_fn.backward()
print(f"L = {L_hand:.6f} (hand) vs {L_tc:.6f} (tinycnn)")
np.testing.assert_allclose(L_tc, L_hand, rtol=1e-14)
np.testing.assert_allclose(dZ_tc, dZ_hand, rtol=1e-13, atol=1e-16)
np.testing.assert_allclose(dZ_hand * len(t), softmax_stable(Z) - np.eye(3)[t], rtol=1e-13)

# each row of p - onehot sums to 0: pushing one logit up means pushing the others down
np.testing.assert_allclose(dZ_hand.sum(axis=1), 0, atol=1e-15)

# a finite-difference spot check of one entry (tutorial 04 does this properly)
eps = 1e-6
Z_plus, Z_minus = Z.copy(), Z.copy()
Z_plus[1, 2] += eps
Z_minus[1, 2] -= eps
numeric = (softmax_cross_entropy_by_hand(Z_plus, t)[0] - softmax_cross_entropy_by_hand(Z_minus, t)[0]) / (2 * eps)
print(f"dL/dZ[1, 2]: analytic {dZ_hand[1, 2]:.8f}, numeric {numeric:.8f}")
np.testing.assert_allclose(numeric, dZ_hand[1, 2], rtol=1e-6)

# %% [markdown]
# ## 5. A whole network, backward by hand
#
# Chain the pieces: $x \xrightarrow{\text{Dense}} h \xrightarrow{\text{ReLU}} a
# \xrightarrow{\text{Dense}} z \xrightarrow{\text{softmax-CE}} L$. Forward runs left to
# right, caching $x, h, a$; backward runs right to left, each step one of the equations
# above:
#
# $$dz = (p - \text{onehot}(t))/N,\quad dW_2 = dz^T a,\quad db_2 = \textstyle\sum_n dz_n,
#   \quad da = dz\, W_2,$$
# $$dh = da \odot [h > 0],\quad dW_1 = dh^T x,\quad db_1 = \textstyle\sum_n dh_n,
#   \quad dx = dh\, W_1.$$

# %%
def two_layer_forward_backward(params, x, t):
    """Loss and all gradients of Dense -> ReLU -> Dense -> softmax-CE, written out."""
    W1, b1, W2, b2 = params
    h = x @ W1.T + b1                       # forward
    a = np.maximum(h, 0)
    z = a @ W2.T + b2
    L, dz = softmax_cross_entropy_by_hand(z, t)
    dW2, db2 = dz.T @ a, dz.sum(axis=0)     # backward: the same steps, in reverse
    da = dz @ W2
    dh = da * (h > 0)
    dW1, db1 = dh.T @ x, dh.sum(axis=0)
    dx = dh @ W1
    return L, (dW1, db1, dW2, db2), dx


D, HIDDEN, K = 2, 16, 3
model = tc.Sequential(layers.Dense(D, HIDDEN, rng=1, dtype=np.float64), layers.ReLU(),
                      layers.Dense(HIDDEN, K, rng=2, dtype=np.float64))
xb = rng.standard_normal((8, D))
tb = rng.integers(0, K, size=8)

params = [p.data.copy() for p in model.parameters()]     # W1, b1, W2, b2
L_hand, grads_hand, dx_hand = two_layer_forward_backward(params, xb, tb)

loss_fn = losses.SoftmaxCrossEntropy()
model.zero_grad()
L_tc = loss_fn.forward(model.forward(xb), tb)
dx_tc = model.backward(loss_fn.backward())
np.testing.assert_allclose(L_tc, L_hand, rtol=1e-14)
np.testing.assert_allclose(dx_tc, dx_hand, rtol=1e-12, atol=1e-15)
for (name, p), g in zip(model.named_parameters(), grads_hand):
    np.testing.assert_allclose(p.grad, g, rtol=1e-12, atol=1e-15, err_msg=name)
    print(f"{name:28s} grad matches the hand-written backward, shape {p.grad.shape}")

# %% [markdown]
# ## 6. Training it: a hand-written loop on a toy problem
#
# Three interleaved spirals in the plane — no straight line separates them, so the
# hidden ReLU layer has real work to do. We train the same network twice from the same
# initial weights, with full-batch gradient descent $\theta \leftarrow \theta - \eta\,
# \partial L / \partial\theta$:
#
# * **by hand**: the NumPy function above plus one line of update per parameter;
# * **with tinycnn**: `model.forward`, `loss.forward`, `model.backward`, `optim.SGD.step`.
#
# Both must produce the same loss at every step.

# %%
def spirals(n_per_class, classes=3, noise=0.2, seed=0):
    g = np.random.default_rng(seed)
    xs, ts = [], []
    for c in range(classes):
        r = np.linspace(0.05, 1, n_per_class)
        angle = np.linspace(c * 4, (c + 1) * 4, n_per_class) + g.standard_normal(n_per_class) * noise
        xs.append(np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1))
        ts.append(np.full(n_per_class, c))
    return np.concatenate(xs), np.concatenate(ts)


x_toy, t_toy = spirals(100)
HIDDEN, LR = 64, 1.0
STEPS = 300 if FAST else 3000

net = tc.Sequential(layers.Dense(2, HIDDEN, rng=0, dtype=np.float64), layers.ReLU(),
                    layers.Dense(HIDDEN, 3, rng=1, dtype=np.float64))
params = [p.data.copy() for p in net.parameters()]       # the hand loop's own copy
opt = optim.SGD(net.parameters(), lr=LR)
loss_fn = losses.SoftmaxCrossEntropy()

hand_losses, tc_losses = [], []
for step in range(STEPS):
    # --- by hand
    L, grads, _ = two_layer_forward_backward(params, x_toy, t_toy)
    for theta, g in zip(params, grads):
        theta -= LR * g
    hand_losses.append(L)
    # --- tinycnn
    opt.zero_grad()
    L = loss_fn.forward(net.forward(x_toy), t_toy)
    net.backward(loss_fn.backward())
    opt.step()
    tc_losses.append(L)
    if step % (STEPS // 6) == 0 or step == STEPS - 1:
        print(f"step {step:5d}  loss by hand {hand_losses[-1]:.6f}   tinycnn {tc_losses[-1]:.6f}")

np.testing.assert_allclose(tc_losses, hand_losses, rtol=1e-8)
for p, theta in zip(net.parameters(), params):
    np.testing.assert_allclose(p.data, theta, rtol=1e-6, atol=1e-9)


def accuracy(params, x, t):
    W1, b1, W2, b2 = params
    return float(np.mean((np.maximum(x @ W1.T + b1, 0) @ W2.T + b2).argmax(axis=1) == t))


acc = accuracy(params, x_toy, t_toy)
print(f"training accuracy after {STEPS} steps: {acc:.1%} (chance: 33%)")
assert hand_losses[-1] < 0.5 * hand_losses[0]
assert acc > (0.7 if FAST else 0.95)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
axes[0].plot(hand_losses, label="hand-written NumPy", lw=3, alpha=0.5)
axes[0].plot(tc_losses, "--", label="tinycnn", color="k")
axes[0].set_xlabel("gradient step")
axes[0].set_ylabel("cross-entropy loss")
axes[0].set_yscale("log")
axes[0].legend()
axes[0].set_title("the two loops give the same losses")

grid = np.linspace(-1.1, 1.1, 200)
gx, gy = np.meshgrid(grid, grid)
W1, b1, W2, b2 = params
cls = (np.maximum(np.c_[gx.ravel(), gy.ravel()] @ W1.T + b1, 0) @ W2.T + b2).argmax(axis=1)
colours = ["tab:red", "tab:blue", "tab:green"]
axes[1].contourf(gx, gy, cls.reshape(gx.shape), levels=[-0.5, 0.5, 1.5, 2.5], colors=colours, alpha=0.25)
axes[1].scatter(x_toy[:, 0], x_toy[:, 1], c=[colours[c] for c in t_toy], s=12,
                edgecolors="k", linewidths=0.3)
axes[1].set_title(f"decision regions, accuracy {acc:.0%}")
axes[1].set_aspect("equal")
show(fig, "03_spirals")

# %% [markdown]
# ## Summary
#
# | piece | forward | backward |
# |---|---|---|
# | Dense | $Y = XW^T + b$ | $dX = dY\,W$, $dW = dY^TX$, $db = \sum_n dY_n$ |
# | ReLU | $y = \max(0, x)$ | $dx = dy \odot [x > 0]$ |
# | softmax-CE | $L = -\frac1N\sum_n \log p_{n,t_n}$ | $dZ = (P - \text{onehot}(t))/N$ |
#
# Backpropagation is these rules applied in reverse order, each layer reading only what
# its own forward cached and the $dy$ handed to it. `backward` adds into `.grad`, so reset
# with `zero_grad()` before each step.
#
# ## Exercises
#
# 1. Replace ReLU by `layers.Tanh()` in the spiral network. Derive $dx$ for
#    $y = \tanh x$ (answer: $dy\,(1 - y^2)$), update `two_layer_forward_backward`, and check
#    that the hand loop and tinycnn still agree.
# 2. Add L2 weight decay $\frac{\lambda}{2}\lVert W\rVert^2$ to the loss. What is added to
#    $dW$? Compare your hand loop with `optim.SGD(..., weight_decay=λ)`.
# 3. Use the *sum* instead of the mean over the batch. Which gradients change, and what
#    learning rate gives the same training run?
# 4. The symmetry problem. Initialise the spiral network with every weight of a layer
#    equal (all of $W_1$ = 0.1, all of $W_2$ = 0.1, biases 0) and train it as above. Show
#    that all 64 hidden units receive the same gradient at every step and still have
#    identical weights after training, so the network computes what *one* hidden unit
#    could; compare its accuracy with the random initialisation. (Why are all-zero
#    weights even worse with ReLU?)
# 5. Compute the full softmax Jacobian $\partial p / \partial z$ (a $K\times K$ matrix) for
#    one sample and check that $J^T \cdot (-\text{onehot}(t)/p_t) = p - \text{onehot}(t)$.
