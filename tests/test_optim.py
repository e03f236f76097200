"""Optimizer steps against updates computed by hand (PyTorch's rules)."""
import numpy as np
import pytest

from tinycnn import Parameter, optim


def run(opt_factory, grads, start=1.0):
    p = Parameter(np.array([start]))
    opt = opt_factory([p])
    trace = []
    for g in grads:
        opt.zero_grad()
        p.grad += g
        opt.step()
        trace.append(float(p.data[0]))
    return trace


def test_plain_sgd():
    assert run(lambda ps: optim.SGD(ps, lr=0.1), [1.0, 2.0]) == pytest.approx([0.9, 0.7])


def test_sgd_momentum():
    # v1 = g1 = 1 -> p = 1 - 0.1 = 0.9;  v2 = 0.9·1 + 1 = 1.9 -> p = 0.9 - 0.19 = 0.71
    assert run(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), [1.0, 1.0]) == pytest.approx([0.9, 0.71])


def test_sgd_nesterov():
    # step 1: v = 1, update g + μv = 1.9 -> 0.81; step 2: v = 1.9, update 1 + 0.9·1.9 = 2.71 -> 0.539
    trace = run(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), [1.0, 1.0])
    assert trace == pytest.approx([0.81, 0.539])


def test_sgd_weight_decay():
    # g = 1 + 0.1·1 = 1.1 -> p = 1 - 0.11
    assert run(lambda ps: optim.SGD(ps, lr=0.1, weight_decay=0.1), [1.0]) == pytest.approx([0.89])


def test_adam_bias_correction():
    # t=1: m=0.1, v=0.001, m̂=1, v̂=1 -> p = 1 - 0.1·1/(1 + 1e-8) = 0.900000001
    # t=2 (g=3): m=0.39, v=0.009999, m̂=0.39/0.19, v̂=0.009999/0.001999 -> p = 0.808221889...
    trace = run(lambda ps: optim.Adam(ps, lr=0.1), [1.0, 3.0])
    assert trace == pytest.approx([0.900000001, 0.8082218895123323], rel=1e-12)


def lrs_after_each_epoch(make_schedule, epochs=5):
    sgd = optim.SGD([Parameter(np.zeros(1))], lr=1.0)
    schedule = make_schedule(sgd)
    lrs = []
    for _ in range(epochs):
        schedule.step()
        lrs.append(sgd.lr)
    return lrs


def test_schedules():
    assert lrs_after_each_epoch(lambda o: optim.StepLR(o, step_size=2, gamma=0.5)) == [1.0, 0.5, 0.5, 0.25, 0.25]
    # 0.5·(1 + cos(π·e/4)) for e = 1..4, then held at eta_min
    assert lrs_after_each_epoch(lambda o: optim.CosineLR(o, T_max=4, eta_min=0.0)) == pytest.approx(
        [0.8535533905932737, 0.5, 0.14644660940672624, 0.0, 0.0])


@pytest.mark.parametrize("make, message", [
    (lambda ps: optim.SGD(ps, lr=0), "lr must be a number in"),
    (lambda ps: optim.SGD(ps, lr=-1), "lr must be"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=1.5), "momentum"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), "nesterov=True needs a momentum"),
    (lambda ps: optim.Adam(ps, lr=0.1, betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda ps: optim.SGD([], lr=0.1), "empty parameter list"),
])
def test_bad_hyper_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make([Parameter(np.zeros(1))])
