r"""Optimizers (PyTorch's update rules, so a step matches ``torch.optim``) and LR schedules.

SGD with weight decay λ, momentum μ, learning rate η (buffer v starts as the first g):

.. math::
    g = \nabla_\theta L + \lambda\theta,\quad v \leftarrow \mu v + g,\quad
    \theta \leftarrow \theta - \eta\,(g + \mu v \text{ if Nesterov else } v)

Adam (step t from 1):

.. math::
    g = \nabla_\theta L + \lambda\theta,\quad m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
    v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
    \theta \leftarrow \theta - \eta\,\frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)} + \epsilon}

Schedules change ``optimizer.lr`` once per epoch (``scheduler.step()``):
``StepLR``: :math:`\eta_e = \eta_0 \gamma^{\lfloor e / \text{step} \rfloor}`;
``CosineLR``: :math:`\eta_e = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})(1 + \cos(\pi e / T))`.
"""
import math

import numpy as np

from tinycnn.checks import as_float, as_int
from tinycnn.parameter import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "StepLR", "CosineLR"]


def _check_params(owner, params):
    """The list of :class:`~tinycnn.Parameter` objects an optimizer updates.

    Catches the usual slips: a model or a layer instead of its ``parameters()``, a single
    Parameter, an item that is not a Parameter, the same Parameter listed twice.
    """
    hint = f"pass its parameters: {owner}(model.parameters(), lr=...)"
    if hasattr(params, "parameters") and callable(params.parameters):
        raise TypeError(f"{owner}: got a {type(params).__name__} (a model or layer) instead of "
                        f"its parameters; {hint}")
    if isinstance(params, Parameter):
        raise TypeError(f"{owner}: got a single Parameter; pass a list: {owner}([p], lr=...)")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{owner}: params must be a list of tc.Parameter, got "
                        f"{type(params).__name__}; {hint}") from None
    if not params:
        raise ValueError(f"{owner}: got an empty parameter list (pass model.parameters())")
    for k, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"{owner}: item {k} of params is a {type(p).__name__}, not a "
                            f"tc.Parameter; {hint}")
    if len({id(p) for p in params}) != len(params):
        raise ValueError(f"{owner}: the same Parameter appears more than once in params; "
                         "it would be updated twice per step")
    return params


class Optimizer:
    """Holds the parameter list; subclasses implement ``step``."""

    def __init__(self, params, lr):
        self.params = _check_params(type(self).__name__, params)
        self.lr = as_float(lr, "lr", type(self).__name__, low=0)

    def zero_grad(self):
        """Reset the ``.grad`` of every parameter this optimizer holds."""
        for p in self.params:
            p.zero_grad()

    def step(self):
        """Update every trainable parameter once from its ``.grad`` (frozen ones are skipped)."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and weight decay."""

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum = as_float(momentum, "momentum", "SGD", 0, 1, low_inclusive=True)
        self.weight_decay = as_float(weight_decay, "weight_decay", "SGD", low=0, low_inclusive=True)
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        self.nesterov = bool(nesterov)
        self.velocity = [None] * len(self.params)

    def step(self):
        for k, p in enumerate(self.params):
            if not p.trainable:  # frozen (layer.freeze()): no decay, no momentum, no update
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:                 # v = momentum * v + g, in place
                v = self.velocity[k]
                if v is None:
                    v = self.velocity[k] = g.copy()
                else:
                    v *= self.momentum
                    v += g
                g = g + self.momentum * v if self.nesterov else v
            p.data -= self.lr * g          # a Python float times an array keeps its dtype


class Adam(Optimizer):
    """Adam with bias correction; ``weight_decay`` is added to the gradient (L2, as torch.optim.Adam)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list, np.ndarray)) or len(betas) != 2:
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        b1, b2 = betas
        self.betas = (as_float(b1, "betas[0]", "Adam", 0, 1, low_inclusive=True),
                      as_float(b2, "betas[1]", "Adam", 0, 1, low_inclusive=True))
        self.eps = as_float(eps, "eps", "Adam", low=0, low_inclusive=True)
        self.weight_decay = as_float(weight_decay, "weight_decay", "Adam", low=0, low_inclusive=True)
        self.t = 0
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]

    def step(self):
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v):
            if not p.trainable:  # frozen (layer.freeze()): its moments stay untouched too
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            m_hat = m / (1 - b1 ** self.t)
            v_hat = v / (1 - b2 ** self.t)
            p.data -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.data.dtype, copy=False)


class _Schedule:
    """Base: remembers the optimizer's starting lr; ``step()`` moves to the next epoch."""

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected a tinycnn optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.epoch = 0

    def step(self):
        self.epoch += 1
        self.optimizer.lr = self.lr_at(self.epoch)

    def lr_at(self, epoch):
        """The learning rate for ``epoch`` (0 is the start)."""
        raise NotImplementedError


class StepLR(_Schedule):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.step_size = as_int(step_size, "step_size", "StepLR")
        self.gamma = as_float(gamma, "gamma", "StepLR", low=0)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineLR(_Schedule):
    """Cosine annealing from the starting lr to ``eta_min`` over ``T_max`` epochs."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        self.T_max = as_int(T_max, "T_max", "CosineLR")
        self.eta_min = as_float(eta_min, "eta_min", "CosineLR", low=0, low_inclusive=True)

    def lr_at(self, epoch):
        e = min(epoch, self.T_max)
        return self.eta_min + 0.5 * (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * e / self.T_max))
