"""The other shipped models: lesion CNN and ``resnet_mini`` training steps, tinycnn vs PyTorch.

Each network is built once by ``tinycnn.models`` and once by
``tinycnn.interop.to_torch`` from that same model (weights copied), so the two frameworks
run exactly the same function. A training step is what the model's own training job does
at batch 64, float32:

- lesion CNN (1×32×32, 2 classes): class-weighted softmax cross-entropy and Adam
  (lr 2e-3), as ``tinycnn.lesions_job.train_detector``;
- ``resnet_mini`` (1×28×28, 10 classes, BatchNorm in training mode): softmax
  cross-entropy and SGD with momentum 0.9, as ``python -m tinycnn train --model resnet_mini``.

forward + loss + backward (no input gradient, as in ``fit`` and in PyTorch) + optimizer
step + zero_grad; images/s is batch / median step time, the two frameworks taking turns
in blocks of steps (``conv_shapes.interleaved_ms``) in this one process.
:func:`per_type_ms` splits tinycnn's ``resnet_mini`` step by layer type.
"""
import time
from collections import defaultdict

import numpy as np

from tinycnn import losses, models, optim

B = 64
#: class weights of the lesion job's loss (``class_weights`` of a 1:4 imbalanced set)
LESION_WEIGHTS = np.array([0.625, 2.5])

# label, model builder, input shape, classes, optimizer
CASES = [
    ("lesion CNN", lambda: models.lesion_cnn(rng=0), (1, 32, 32), 2, "adam"),
    ("resnet_mini", lambda: models.resnet_mini(rng=0), (1, 28, 28), 10, "sgd"),
]


def batch(shape, classes, n=B):
    """A fixed random float32 batch ``(n,) + shape`` and its integer labels."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((n,) + shape).astype(np.float32), rng.integers(0, classes, n)


def tinycnn_step(model, shape, classes, opt_name):
    """One tinycnn training step of ``model`` (a closure)."""
    weights = LESION_WEIGHTS if opt_name == "adam" else None
    loss_fn = losses.SoftmaxCrossEntropy(class_weights=weights)
    opt = (optim.Adam(model.parameters(), lr=2e-3) if opt_name == "adam"
           else optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    x, labels = batch(shape, classes)

    def step():
        loss_fn.forward(model.forward(x), labels)
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
        opt.zero_grad()
    return step


def torch_step(torch, module, shape, classes, opt_name):
    """The same step in PyTorch on ``module`` (``to_torch`` of the tinycnn model)."""
    weight = torch.tensor(LESION_WEIGHTS, dtype=torch.float32) if opt_name == "adam" else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    opt = (torch.optim.Adam(module.parameters(), lr=2e-3) if opt_name == "adam"
           else torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9))
    x, labels = batch(shape, classes)
    x, labels = torch.tensor(x), torch.tensor(labels)

    def step():
        loss_fn(module(x), labels).backward()
        opt.step()
        opt.zero_grad()
    return step


def run(repeats, interleaved_ms, torch=None, log=print):
    """Median step times of every case, tinycnn and PyTorch taking turns in blocks."""
    rows = []
    for label, build, shape, classes, opt_name in CASES:
        model = build()
        fns = {"ours": tinycnn_step(model, shape, classes, opt_name)}
        if torch:
            from tinycnn.interop import to_torch
            fns["torch"] = torch_step(torch, to_torch(model), shape, classes, opt_name)
        ms = interleaved_ms(fns, repeats, warmup=3)
        row = {"model": label, "case": f"train step, float32, {'Adam' if opt_name == 'adam' else 'SGD'}",
               "batch": B, "input": "×".join(map(str, shape)), "ours_ms": ms["ours"],
               "torch_ms": ms.get("torch")}
        rows.append(row)
        log(f"  {label} b{B}: tinycnn {row['ours_ms']:.2f} ms"
            + (f", torch {row['torch_ms']:.2f} ms" if torch else ""))
    return rows


def _every_layer(layers):
    """Each layer of ``layers`` and, depth first, of its ``children()`` (containers too)."""
    for layer in layers:
        yield layer
        for group in layer.children().values():
            yield from _every_layer(group)


def _type_name(layer):
    """``"Conv2D 3×3 s2"`` for convolutions (the shapes cost differently), else the class name."""
    name = type(layer).__name__
    if name == "Conv2D":
        name += " {}×{}".format(*layer.kernel_size)
        if tuple(layer.stride) != (1, 1):
            name += f" s{layer.stride[0]}"
    elif name == "Residual":
        name += " (its sums F(x)+S(x), dF+dS)"
    return name


def per_type_ms(repeats=15):
    """Where tinycnn's ``resnet_mini`` b64 training step goes: median CPU ms per layer type.

    Every layer's ``forward``/``backward`` (those inside residual blocks included) is
    wrapped in a ``time.process_time`` stopwatch for the timed steps, and the step runs as in
    training; a ``Residual``'s own share is its time minus its inner layers' (the sum
    ``F(x) + S(x)`` and ``dF + dS``). Loss and optimizer are timed too. Returns rows
    ``{"type", "count", "fwd_ms", "bwd_ms", "total_ms"}`` (loss and optimizer: total only) plus the whole step's median CPU ms.
    """
    model = models.resnet_mini(rng=0)
    loss_fn = losses.SoftmaxCrossEntropy()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, labels = batch((1, 28, 28), 10)
    every = list(_every_layer(model.layers))
    acc = {}                                      # id(layer) -> [fwd s, bwd s] of this step

    def wrap(layer, which):
        inner = getattr(layer, which)

        def timed(*a, **k):
            t = time.process_time()
            out = inner(*a, **k)
            acc[id(layer)][which == "backward"] += time.process_time() - t
            return out
        setattr(layer, which, timed)

    for layer in every:
        acc[id(layer)] = [0.0, 0.0]
        wrap(layer, "forward")
        wrap(layer, "backward")
    samples, steps, extra = defaultdict(list), [], defaultdict(list)
    for n in range(repeats + 3):
        for v in acc.values():
            v[:] = [0.0, 0.0]
        t0 = time.process_time()
        out = model.forward(x)
        t1 = time.process_time()
        loss_fn.forward(out, labels)
        d = loss_fn.backward()
        t2 = time.process_time()
        model.backward(d, input_grad=False)
        t3 = time.process_time()
        opt.step()
        opt.zero_grad()
        t4 = time.process_time()
        if n < 3:
            continue
        steps.append(t4 - t0)
        extra["loss (softmax cross-entropy)"].append(t2 - t1)
        extra["SGD step + zero_grad"].append(t4 - t3)
        per = defaultdict(lambda: [0.0, 0.0])
        for layer in every:
            if type(layer).__name__ == "Conv2D":                  # and each conv shape
                per["conv " + repr(layer)][0] += acc[id(layer)][0]
                per["conv " + repr(layer)][1] += acc[id(layer)][1]
            f, b = acc[id(layer)]
            for group in layer.children().values():              # a container: own share only
                for child in group:
                    f -= acc[id(child)][0]
                    b -= acc[id(child)][1]
            name = _type_name(layer)
            per[name][0] += f
            per[name][1] += b
        for name, (f, b) in per.items():
            samples[name].append((f, b))
    counts = defaultdict(int)
    for layer in every:
        counts[_type_name(layer)] += 1
        counts["conv " + repr(layer)] += 1
    rows = [{"type": name, "count": counts[name],
             "fwd_ms": 1e3 * float(np.median([s[0] for s in v])),
             "bwd_ms": 1e3 * float(np.median([s[1] for s in v])),
             "total_ms": 1e3 * float(np.median([s[0] + s[1] for s in v]))}
            for name, v in samples.items()]
    rows.sort(key=lambda r: -r["total_ms"])
    convs = [dict(r, type=r["type"][5:]) for r in rows if r["type"].startswith("conv ")]
    rows = [r for r in rows if not r["type"].startswith("conv ")]
    rows += [{"type": name, "count": None, "fwd_ms": None, "bwd_ms": None,
              "total_ms": 1e3 * float(np.median(v))} for name, v in extra.items()]
    return {"rows": rows, "convs": convs, "step_ms": 1e3 * float(np.median(steps))}


def _torch_category(key):
    """(row, "fwd" / "bwd" / "total") of a PyTorch profiler op name."""
    k = key.lower()
    if not key.startswith("aten::"):
        return "everything else (autograd engine, optimizer, allocation, ...)", "total"
    way = "bwd" if "backward" in k else "fwd"
    if "conv" in k:
        return "Conv2D (all shapes)", way
    if "batch_norm" in k:
        return "BatchNorm2D", way
    if k in ("aten::relu", "aten::clamp_min", "aten::threshold_backward"):
        return "ReLU", way
    if k in ("aten::add", "aten::copy_"):
        return key + (" (residual sums)" if k == "aten::add" else ""), "total"
    return "everything else (autograd engine, optimizer, allocation, ...)", "total"


def torch_per_type_ms(torch, steps=10):
    """PyTorch's ``resnet_mini`` b64 step by layer type, from ``torch.profiler``.

    Self time of each ATen op (the profiler's "CPU time" is time on the calling thread, not
    CPU seconds, and includes the profiler's own overhead), summed by the layer type it
    belongs to and divided by ``steps``: read the shares, not the absolute ms.
    """
    from torch.profiler import ProfilerActivity, profile

    from tinycnn.interop import to_torch
    step = torch_step(torch, to_torch(models.resnet_mini(rng=0)), (1, 28, 28), 10, "sgd")
    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    acc = defaultdict(lambda: {"fwd": 0.0, "bwd": 0.0, "total": 0.0})
    for e in prof.key_averages():
        row, way = _torch_category(e.key)
        acc[row][way] += e.self_cpu_time_total / 1e3 / steps          # µs -> ms per step
    rows = []
    for name, v in acc.items():
        split = name in ("Conv2D (all shapes)", "BatchNorm2D", "ReLU")
        rows.append({"type": name, "count": None, "fwd_ms": v["fwd"] if split else None,
                     "bwd_ms": v["bwd"] if split else None,
                     "total_ms": v["fwd"] + v["bwd"] + v["total"]})
    rows.sort(key=lambda r: (r["type"].startswith("everything"), -r["total_ms"]))
    return {"rows": rows, "step_ms": sum(r["total_ms"] for r in rows)}
