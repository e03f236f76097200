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
# # Solutions — Tutorial 03, Dense layers and backpropagation
#
# Worked answers to the exercises of `tutorials/03_dense_and_backprop.py`, each checked by
# an `assert` on numbers computed here. `TINYCNN_FAST=1` shortens the training runs.

# %%
import numpy as np
import matplotlib.pyplot as plt

from tinycnn.tutorial_helpers import FAST, show
import tinycnn as tc
from tinycnn import layers, losses, optim

STEPS = 300 if FAST else 3000


def spirals(n_per_class, classes=3, noise=0.2, seed=0):
    """The tutorial's three interleaved spirals: points (n·classes, 2) and labels."""
    g = np.random.default_rng(seed)
    xs, ts = [], []
    for c in range(classes):
        r = np.linspace(0.05, 1, n_per_class)
        angle = np.linspace(c * 4, (c + 1) * 4, n_per_class) + g.standard_normal(n_per_class) * noise
        xs.append(np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1))
        ts.append(np.full(n_per_class, c))
    return np.concatenate(xs), np.concatenate(ts)


def softmax_cross_entropy(Z, t, reduction="mean"):
    """Cross-entropy of logits Z (N, K) against labels t, and dL/dZ; mean or sum over N."""
    shifted = Z - Z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    scale = 1 / len(t) if reduction == "mean" else 1.0
    L = -log_p[np.arange(len(t)), t].sum() * scale
    return L, (np.exp(log_p) - np.eye(Z.shape[1])[t]) * scale


def two_layer(params, x, t, activation="relu", reduction="mean"):
    """Loss and gradients of Dense -> activation -> Dense -> softmax-CE, by hand."""
    W1, b1, W2, b2 = params
    h = x @ W1.T + b1
    a = np.maximum(h, 0) if activation == "relu" else np.tanh(h)
    z = a @ W2.T + b2
    L, dz = softmax_cross_entropy(z, t, reduction)
    dW2, db2 = dz.T @ a, dz.sum(axis=0)
    da = dz @ W2
    dh = da * (h > 0) if activation == "relu" else da * (1 - a ** 2)   # tanh' = 1 - tanh²
    dW1, db1 = dh.T @ x, dh.sum(axis=0)
    return L, [dW1, db1, dW2, db2]


def accuracy(params, x, t, activation="relu"):
    W1, b1, W2, b2 = params
    h = x @ W1.T + b1
    a = np.maximum(h, 0) if activation == "relu" else np.tanh(h)
    return float(np.mean((a @ W2.T + b2).argmax(axis=1) == t))


def make_net(hidden=64, activation=layers.ReLU):
    return tc.Sequential(layers.Dense(2, hidden, rng=0, dtype=np.float64), activation(),
                         layers.Dense(hidden, 3, rng=1, dtype=np.float64))


x_toy, t_toy = spirals(100)
LR = 1.0

# %% [markdown]
# ## Exercise 1 — Tanh instead of ReLU
#
# $y = \tanh x$ has $\frac{dy}{dx} = 1 - \tanh^2 x = 1 - y^2$, so $dx = dy\,(1 - y^2)$:
# computed from the layer's *output*, which is what `Tanh` caches. In the hand-written
# backward only the line for $dh$ changes (`two_layer(..., activation="tanh")` above).

# %%
net = make_net(activation=layers.Tanh)
params = [p.data.copy() for p in net.parameters()]
opt = optim.SGD(net.parameters(), lr=LR)
loss_fn = losses.SoftmaxCrossEntropy()
hand, ours = [], []
for step in range(STEPS):
    L, grads = two_layer(params, x_toy, t_toy, activation="tanh")
    for theta, g in zip(params, grads):
        theta -= LR * g
    hand.append(L)
    opt.zero_grad()
    ours.append(loss_fn.forward(net.forward(x_toy), t_toy))
    net.backward(loss_fn.backward())
    opt.step()
np.testing.assert_allclose(ours, hand, rtol=1e-8)
print(f"Exercise 1: tanh network, hand loop == tinycnn for {STEPS} steps; "
      f"loss {hand[0]:.3f} -> {hand[-1]:.3f}, accuracy {accuracy(params, x_toy, t_toy, 'tanh'):.0%}")
assert hand[-1] < hand[0]

# %% [markdown]
# ## Exercise 2 — L2 weight decay
#
# $\frac{\partial}{\partial W} \frac{\lambda}{2}\lVert W \rVert^2 = \lambda W$: the gradient
# gains $\lambda W$, so each step also shrinks $W$ by the factor $(1 - \eta\lambda)$ —
# hence "weight decay". `optim.SGD(weight_decay=λ)` adds $\lambda\theta$ to the gradient of
# *every* parameter it is given, biases included; to match it exactly the hand loop decays
# the biases too. (To spare the biases, give the optimiser only the weights, or use a
# second optimiser without decay for the biases.)

# %%
LAM = 1e-3
net = make_net()
params = [p.data.copy() for p in net.parameters()]
opt = optim.SGD(net.parameters(), lr=LR, weight_decay=LAM)
hand, ours = [], []
for step in range(STEPS // 3):
    L, grads = two_layer(params, x_toy, t_toy)
    L += LAM / 2 * sum(np.sum(theta ** 2) for theta in params)       # the decayed loss
    for theta, g in zip(params, grads):
        theta -= LR * (g + LAM * theta)
    hand.append(L)
    opt.zero_grad()
    ours.append(loss_fn.forward(net.forward(x_toy), t_toy))
    net.backward(loss_fn.backward())
    opt.step()
for p, theta in zip(net.parameters(), params):
    np.testing.assert_allclose(p.data, theta, rtol=1e-7, atol=1e-10)
print(f"Exercise 2: SGD(weight_decay={LAM}) == hand loop with dθ += λθ on all four parameters")

# %% [markdown]
# ## Exercise 3 — sum instead of mean over the batch
#
# With $L_{sum} = N L_{mean}$, *every* gradient is $N$ times larger (they all flow from
# $dz$, which loses its $\frac1N$). Gradient descent with learning rate $\eta / N$ on the
# sum therefore takes exactly the steps of rate $\eta$ on the mean. Here $N = 300$, so
# $\eta = 1$ on the mean equals $\eta = 1/300$ on the sum.

# %%
N = len(t_toy)
init = [p.data.copy() for p in make_net().parameters()]
p_mean, p_sum = [a.copy() for a in init], [a.copy() for a in init]
for step in range(STEPS // 3):
    L_mean, g_mean = two_layer(p_mean, x_toy, t_toy, reduction="mean")
    L_sum, g_sum = two_layer(p_sum, x_toy, t_toy, reduction="sum")
    assert np.isclose(L_sum, N * L_mean, rtol=1e-10)
    for a, g in zip(p_mean, g_mean):
        a -= LR * g
    for a, g in zip(p_sum, g_sum):
        a -= (LR / N) * g
for a, b in zip(p_mean, p_sum):
    np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
print(f"Exercise 3: sum with lr {LR}/{N} follows the mean with lr {LR} step for step")

# %% [markdown]
# ## Exercise 4 — the symmetry problem
#
# If all hidden units start with the same incoming weights and the same outgoing weights,
# they compute the same $h_j$, and since $W_2$'s columns are equal they also receive the
# same $da_j$, hence the same $dh_j$ and the same gradient rows $dW_{1,j}$; their outgoing
# gradients $dW_{2,:,j} = \sum_n dz_n a_{n,j}$ are equal too. After the update they are
# still equal — by induction, forever. Gradient descent cannot break a symmetry the
# initialisation did not break: 64 identical units compute what one unit can.
#
# Random initialisation makes every unit different from the start. (All-zero weights are
# worse still with ReLU: $h = 0$ exactly, ReLU's derivative at 0 is 0 in tinycnn, so
# $W_1$ and $W_2$ receive no gradient at all and only $b_2$ learns — the network predicts
# the class frequencies.)

# %%
def train(net, steps):
    opt = optim.SGD(net.parameters(), lr=LR)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn.forward(net.forward(x_toy), t_toy)
        net.backward(loss_fn.backward())
        opt.step()
    return [p.data for p in net.parameters()]


def constant_init(net, value):
    for p in net.parameters():
        p.data[...] = value if p.name == "weight" else 0.0
    return net


equal = train(constant_init(make_net(), 0.1), STEPS)
W1, b1, W2, b2 = equal
spread = max(np.ptp(W1, axis=0).max(), np.ptp(b1), np.ptp(W2, axis=1).max())
acc_equal = accuracy(equal, x_toy, t_toy)
acc_random = accuracy(train(make_net(), STEPS), x_toy, t_toy)
zero = train(constant_init(make_net(), 0.0), STEPS)
acc_zero = accuracy(zero, x_toy, t_toy)

# compare: a network with ONE hidden unit, started the same way
one = train(constant_init(make_net(hidden=1), 0.1), STEPS)
print(f"Exercise 4: after {STEPS} steps from equal weights, the 64 hidden units differ by at most "
      f"{spread:.1e}; accuracy: equal init {acc_equal:.0%}, one hidden unit "
      f"{accuracy(one, x_toy, t_toy):.0%}, random init {acc_random:.0%}, all zeros {acc_zero:.0%}")
assert spread == 0.0                                   # exactly identical, not just close
assert np.abs(W1 - 0.1).max() > 1e-3                 # ...although the weights did train
assert acc_random > acc_equal + 0.2
assert np.all(zero[0] == 0) and np.all(zero[2] == 0)   # zeros: W1 and W2 never move
assert acc_zero < 0.4

# %% [markdown]
# ## Exercise 5 — the full softmax Jacobian
#
# $J_{jk} = \partial p_j / \partial z_k = p_j(\delta_{jk} - p_k)$, i.e.
# $J = \operatorname{diag}(p) - p p^T$ (symmetric). With $L = -\log p_t$,
# $\partial L / \partial p = -\text{onehot}(t) / p_t$, and the chain rule gives
# $\partial L / \partial z = J^T (\partial L / \partial p) = p - \text{onehot}(t)$.

# %%
rng = np.random.default_rng(0)
z = rng.standard_normal(5) * 2
t = 3
p = np.exp(z - z.max())
p /= p.sum()
J = np.diag(p) - np.outer(p, p)
eps = 1e-6
J_numeric = np.empty((5, 5))
for k in range(5):
    dz = np.zeros(5)
    dz[k] = eps
    p_plus, p_minus = np.exp(z + dz), np.exp(z - dz)
    J_numeric[:, k] = (p_plus / p_plus.sum() - p_minus / p_minus.sum()) / (2 * eps)
np.testing.assert_allclose(J, J_numeric, atol=1e-9)
onehot = np.eye(5)[t]
np.testing.assert_allclose(J.T @ (-onehot / p[t]), p - onehot, atol=1e-12)
print("Exercise 5: J = diag(p) - p pᵀ (checked by finite differences); Jᵀ(-onehot/p_t) = p - onehot")

fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
for ax, (a, title) in zip(axes, [(J, "softmax Jacobian ∂p/∂z"),
                                 (np.c_[J.T @ (-onehot / p[t]), p - onehot], "Jᵀ(−onehot/p_t) | p − onehot")]):
    lim = np.abs(a).max()
    im = ax.imshow(a, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(title)
    ax.set_xlabel("k" if a.shape[1] == 5 else "column")
    ax.set_ylabel("j")
    fig.colorbar(im, ax=ax)
show(fig, "03_solution_jacobian")
