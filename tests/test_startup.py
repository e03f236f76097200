"""What a fresh process loads for a first training step (no timings here:
``benchmarks/startup.py`` measures them).

Start-up cost grows with every kernel variant Numba compiles (cold) or loads from its
cache (warm), so a step must load only the kernels it calls, once each, in the model's
dtype: one stray float64 scalar or a Python int where an ``np.int64`` went before would
double a kernel's compile time without any test noticing.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinycnn as tc
from tinycnn import models

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tinycnn as tc
    from tinycnn import layers, losses, optim

    def kernels_loaded():
        out = {}
        for name, module in list(sys.modules.items()):
            if name.startswith("tinycnn.kernels."):
                for attr, f in vars(module).items():
                    if hasattr(f, "py_func") and hasattr(f, "signatures"):
                        out[name + "." + attr] = [str(s) for s in f.signatures]
        return out

    def small_lenet(dtype):
        return tc.Sequential(
            layers.Conv2D(1, 4, kernel_size=3, padding=1, rng=0, dtype=dtype), layers.ReLU(),
            layers.MaxPool2D(2),
            layers.Conv2D(4, 4, kernel_size=3, rng=1, dtype=dtype), layers.ReLU(),
            layers.AvgPool2D(2), layers.Flatten(),
            layers.Dense(4 * 2 * 2, 3, rng=2, dtype=dtype))

    x = np.random.default_rng(0).standard_normal((5, 1, 12, 12))

    def train_step(dtype):
        model, x_ = small_lenet(dtype), x.astype(dtype)
        loss_fn, opt = losses.SoftmaxCrossEntropy(), optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            loss_fn.forward(model.forward(x_), np.arange(5) % 3)
            model.backward(loss_fn.backward(), input_grad=False)
            opt.step()
            opt.zero_grad()

    modules = {"after import": sorted({"numba", "matplotlib", "tqdm"} & set(sys.modules))}
    tc.warmup(model=small_lenet(np.float32), x=x)
    warmed = kernels_loaded()
    train_step(np.float32)
    after32 = kernels_loaded()
    train_step(np.float64)
    modules["after two steps"] = sorted({"matplotlib", "tqdm"} & set(sys.modules))
    print(json.dumps({"warmed": warmed, "float32": after32, "both": kernels_loaded(),
                      "modules": modules}))
""")


@pytest.fixture(scope="module")
def result():
    """What SCRIPT saw, from one fresh interpreter."""
    env = dict(os.environ)
    env.pop("NUMBA_DISABLE_JIT", None)      # the dispatchers must exist to be counted
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_step_loads_each_kernel_it_calls_once_in_its_dtype(result):
    """Exactly one variant per kernel called, and in the model's dtype only (a float64
    scalar in a float32 step's signature would also mean float64 arithmetic in the loop)."""
    f32, both = result["float32"], result["both"]
    used = {name: sigs for name, sigs in f32.items() if sigs}
    assert len(used) >= 4, f"expected the conv and pooling kernels to be loaded, got {f32}"
    for name, sigs in used.items():
        assert len(sigs) == 1, f"{name}: one float32 step compiled {len(sigs)} variants: {sigs}"
        assert "float64" not in sigs[0], f"{name}: a float32 step compiled {sigs[0]}"
    for name, sigs in both.items():
        new = sigs[len(f32.get(name, [])):]
        assert len(new) <= 1, f"{name}: one float64 step compiled {len(new)} variants: {new}"
        assert all("float32" not in s for s in new), f"{name}: a float64 step compiled {new}"


def test_import_and_steps_leave_plotting_and_progress_bars_unloaded(result):
    """``import tinycnn`` loads no Numba; training steps load no matplotlib or tqdm."""
    modules = result["modules"]
    assert modules == {"after import": [], "after two steps": []}, modules


def test_warmup_of_a_model_loads_exactly_what_its_training_step_uses(result):
    """``tc.warmup(model=..., x=...)`` loads the step's kernels and no others."""
    assert result["warmed"] == result["float32"]


@pytest.mark.parametrize("build", [models.lenet5, models.lesion_cnn, models.resnet_mini])
def test_warmup_of_a_model_leaves_the_model_untouched(build):
    model = build(rng=0, widths=(4, 8, 8)) if build is not models.lenet5 else build(rng=0)
    model.train()
    size = model.meta.get("input_shape") or [1, 28, 28]
    x = np.random.default_rng(1).standard_normal([3] + list(size)).astype(np.float32)
    before = [(k, v.copy()) for k, v in _state(model)]
    assert tc.warmup(model=model, x=x) >= 0
    after = _state(model)
    assert [k for k, _ in before] == [k for k, _ in after]
    for (k, v0), (_, v1) in zip(before, after):
        assert np.array_equal(v0, v1), f"warmup changed {k}"
    assert all(layer.training for _, layer in _layers(model)), "warmup changed the model's mode"


def _layers(model):
    """``(name, layer)`` for every layer, those inside containers (``Residual``) included."""
    def walk(layer, name):
        yield name, layer
        for group, kids in layer.children().items():
            for k, child in enumerate(kids):
                yield from walk(child, f"{name}.{group}.{k}")

    for k, top in enumerate(model.layers):
        yield from walk(top, str(k))


def _state(model):
    """Every array the layers hold (parameters, gradients, running statistics, caches)."""
    out = []
    for name, layer in _layers(model):
        out += [(f"{name}.{attr}", v) for attr, v in sorted(vars(layer).items())
                if isinstance(v, np.ndarray)]
        out += [(f"{name}.{p.name}.{part}", getattr(p, part))
                for p in layer.parameters() for part in ("data", "grad")]
    return out


def test_warmup_of_a_model_needs_its_inputs():
    with pytest.raises(TypeError, match="x="):
        tc.warmup(model=models.lenet5(rng=0))
