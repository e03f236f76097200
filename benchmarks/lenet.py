"""Whole-model figures: LeNet-5 training steps and inference, tinycnn vs PyTorch.

The model is DESIGN.md's LeNet-5 (conv5 p2 -> ReLU -> max-pool 2 -> conv5 -> ReLU ->
avg-pool 2 -> 120 -> 84 -> 10), built the same way in both frameworks. A training step is
forward + softmax cross-entropy + backward + SGD (momentum 0.9) + zero_grad; images/s is
batch size / median step time. Both run in this one process, taking turns in blocks of
steps (``conv_shapes.interleaved_ms``).
"""
import time

import numpy as np

import tinycnn as tc
from tinycnn import layers, losses, optim


def tinycnn_lenet(dtype):
    return tc.Sequential(
        layers.Conv2D(1, 6, kernel_size=5, padding=2, rng=0, dtype=dtype), layers.ReLU(),
        layers.MaxPool2D(2),
        layers.Conv2D(6, 16, kernel_size=5, rng=1, dtype=dtype), layers.ReLU(),
        layers.AvgPool2D(2),
        layers.Flatten(),
        layers.Dense(16 * 5 * 5, 120, rng=2, dtype=dtype), layers.ReLU(),
        layers.Dense(120, 84, rng=3, dtype=dtype), layers.ReLU(),
        layers.Dense(84, 10, rng=4, dtype=dtype),
    )


def torch_lenet(torch, dtype):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    ).to(dtype)


def batch(B, dtype):
    rng = np.random.default_rng(0)
    return rng.standard_normal((B, 1, 28, 28)).astype(dtype), rng.integers(0, 10, B)


def tinycnn_step(B, dtype):
    model, loss_fn = tinycnn_lenet(dtype), losses.SoftmaxCrossEntropy()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, labels = batch(B, dtype)

    def step():
        loss_fn.forward(model.forward(x), labels)
        model.backward(loss_fn.backward(), input_grad=False)   # as torch: x needs no grad
        opt.step()
        opt.zero_grad()
    return step


def torch_step(torch, B, dtype):
    model = torch_lenet(torch, dtype)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, labels = batch(B, np.float32)
    x, labels = torch.tensor(x).to(dtype), torch.tensor(labels)

    def step():
        loss_fn(model(x), labels).backward()
        opt.step()
        opt.zero_grad()
    return step


def tinycnn_infer(B):
    model = tinycnn_lenet(np.float32)
    x, _ = batch(B, np.float32)
    model.eval()
    return lambda: model.forward(x)


def torch_infer(torch, B):
    model = torch_lenet(torch, torch.float32).eval()
    x = torch.tensor(batch(B, np.float32)[0])

    def infer():
        with torch.no_grad():
            return model(x)
    return infer


CASES = [  # label, batch, kind, dtype
    ("train step, float32", 1, "train", "float32"),
    ("train step, float32", 64, "train", "float32"),
    ("train step, float32", 256, "train", "float32"),
    ("inference, float32", 256, "infer", "float32"),
    ("train step, float64", 64, "train", "float64"),
]


def run(repeats, interleaved_ms, torch=None, log=print):
    """Median step times, tinycnn and PyTorch taking turns in blocks of steps."""
    rows = []
    for label, B, kind, dt in CASES:
        if kind == "train":
            fns = {"ours": tinycnn_step(B, np.dtype(dt))}
            if torch:
                fns["torch"] = torch_step(torch, B, getattr(torch, dt))
        else:
            fns = {"ours": tinycnn_infer(B)}
            if torch:
                fns["torch"] = torch_infer(torch, B)
        ms = interleaved_ms(fns, max(repeats, 30 if B == 1 else 3 * repeats), warmup=3)
        row = {"case": label, "batch": B, "ours_ms": ms["ours"], "torch_ms": ms.get("torch")}
        rows.append(row)
        log(f"  LeNet {label} b{B}: tinycnn {row['ours_ms']:.2f} ms"
            + (f", torch {row['torch_ms']:.2f} ms" if torch else ""))
    return rows


def per_layer_ms(B=64, repeats=25):
    """Where a tinycnn LeNet training step spends its time: median CPU ms per layer.

    Forward and backward of each layer timed on its own (``time.process_time``: CPU
    seconds of every thread of this process, so a busy machine inflates them less than
    wall time), the first layer without ``dx`` as in a training step.
    """
    model, loss_fn = tinycnn_lenet(np.float32), losses.SoftmaxCrossEntropy()
    x, labels = batch(B, np.float32)
    fwd = [[] for _ in model.layers]
    bwd = [[] for _ in model.layers]
    for _ in range(repeats + 3):
        h = x
        for k, layer in enumerate(model.layers):
            t = time.process_time()
            h = layer.forward(h)
            fwd[k].append(time.process_time() - t)
        loss_fn.forward(h, labels)
        d = loss_fn.backward()
        for k in reversed(range(len(model.layers))):
            layer = model.layers[k]
            layer.input_grad = k > 0
            t = time.process_time()
            d = layer.backward(d)
            bwd[k].append(time.process_time() - t)
            layer.input_grad = True
        model.zero_grad()
    return [{"layer": repr(layer), "fwd_ms": 1e3 * float(np.median(f[3:])),
             "bwd_ms": 1e3 * float(np.median(b[3:]))}
            for layer, f, b in zip(model.layers, fwd, bwd)]
