"""tinycnn ⇄ PyTorch and tinycnn → ONNX: same numbers on both sides, weights bit-exact.

Tolerances: float64 forward and gradients agree to 1e-10 (relative to max(1, |value|));
float32 to 2e-5, because PyTorch sums convolution products in another order (measured:
max |Δ| ≈ 3e-6 on LeNet-5 logits of size ~1).
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from optional import require

torch = require("torch")
onnx = require("onnx")
ort = require("onnxruntime")

import tinycnn as tc  # noqa: E402
from tinycnn import layers, losses  # noqa: E402
from tinycnn.interop import export_onnx, from_torch, to_torch, torch_code  # noqa: E402
from tinycnn.models import lenet5, lesion_cnn, resnet_mini  # noqa: E402

TOL = {np.float32: 2e-5, np.float64: 1e-10}


def close(a, b, dtype):
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    assert np.abs(np.asarray(a) - np.asarray(b)).max(initial=0.0) <= TOL[dtype] * scale


@st.composite
def models(draw):
    """A random stack: conv/pool/activation blocks, Flatten, then dense/activation blocks."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    C, H = draw(st.integers(1, 3)), draw(st.integers(8, 14))
    shape, seq, seed = (C, H, H), [], draw(st.integers(0, 1000))
    acts = [lambda: layers.ReLU(), lambda: layers.LeakyReLU(0.1), lambda: layers.Sigmoid(),
            lambda: layers.Tanh(), lambda: layers.Dropout(0.3, rng=seed)]
    r = np.random.default_rng(seed)

    def batchnorm(C):                      # non-trivial statistics, as after some training
        bn = layers.BatchNorm2D(C, dtype=dtype)
        bn.weight.data[...] = r.random(C) + 0.5
        bn.bias.data[...] = r.standard_normal(C)
        bn.running_mean[...] = r.standard_normal(C)
        bn.running_var[...] = r.random(C) + 0.5
        return bn

    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv", "max", "avg", "act", "bn", "res"]))
        if kind == "conv":
            k = draw(st.integers(1, 3))
            layer = layers.Conv2D(shape[0], draw(st.integers(1, 4)), kernel_size=k,
                                  stride=draw(st.integers(1, 2)), padding=draw(st.integers(0, 1)),
                                  bias=draw(st.booleans()), rng=seed, dtype=dtype)
            if layer.bias is not None:
                layer.bias.data[...] = r.standard_normal(layer.bias.data.shape)
        elif kind == "bn":
            layer = batchnorm(shape[0])
        elif kind == "res":                # a basic block, identity or projection shortcut
            F, stride = draw(st.integers(1, 3)), draw(st.integers(1, 2))
            shortcut = None
            if F != shape[0] or stride != 1:
                shortcut = [layers.Conv2D(shape[0], F, 1, stride=stride, bias=False, rng=seed, dtype=dtype),
                            batchnorm(F)]
            layer = layers.Residual(
                layers.Conv2D(shape[0], F, 3, stride=stride, padding=1, bias=False, rng=seed, dtype=dtype),
                batchnorm(F), layers.ReLU(), shortcut=shortcut)
        elif kind in ("max", "avg") and min(shape[1:]) >= 2:
            cls = layers.MaxPool2D if kind == "max" else layers.AvgPool2D
            layer = cls(2, stride=draw(st.sampled_from([None, 1])))
        else:
            layer = draw(st.sampled_from(acts))()
        shape = layer.output_shape(shape)
        seq.append(layer)
    if draw(st.booleans()):
        seq.append(layers.Flatten())
        features = int(np.prod(shape))
    else:
        seq.append(layers.GlobalAvgPool2D())
        features = shape[0]
    for _ in range(draw(st.integers(1, 2))):
        out = draw(st.integers(1, 6))
        seq += [layers.Dense(features, out, rng=seed, dtype=dtype), draw(st.sampled_from(acts))()]
        features = out
    return tc.Sequential(*seq, input_shape=(C, H, H)), dtype


@settings(max_examples=20)
@given(models(), st.integers(0, 2**31 - 1))
def test_to_torch_computes_the_same_function_and_gradients(model_dtype, seed):
    model, dtype = model_dtype
    model.eval()                      # dropout off on both sides: the same function
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3,) + tuple(model.meta["input_shape"])).astype(dtype)
    module = to_torch(model)
    assert not module.training
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = module(xt)
    y = model.forward(x)
    close(yt.detach().numpy(), y, dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    (yt * torch.from_numpy(dy)).sum().backward()
    model.zero_grad()
    dx = model.backward(dy)
    close(xt.grad.numpy(), dx, dtype)
    torch_params = [p for p in module.parameters()]
    assert len(torch_params) == len(model.parameters())
    for p, tp in zip(model.parameters(), torch_params):
        close(tp.grad.numpy(), p.grad, dtype)


@settings(max_examples=10)
@given(models())
def test_round_trip_keeps_every_weight_bit_exact(model_dtype):
    model, dtype = model_dtype
    back = from_torch(to_torch(model), input_shape=model.meta["input_shape"])
    assert [repr(layer) for layer in back.layers] == [repr(layer) for layer in model.layers]
    for p, q in zip(model.parameters(), back.parameters()):
        assert q.data.dtype == p.data.dtype and np.array_equal(q.data, p.data)
    x = np.random.default_rng(0).standard_normal((2,) + tuple(model.meta["input_shape"])).astype(dtype)
    assert np.array_equal(back.eval().forward(x), model.eval().forward(x))   # running stats too


def _trained_resnet():
    model = resnet_mini(widths=(4, 8), blocks_per_stage=1, rng=3)
    model.forward(np.random.default_rng(0).random((8, 1, 28, 28)).astype(np.float32))  # running stats
    return model.eval()


@pytest.mark.parametrize("make", [lambda: lenet5(rng=3), _trained_resnet], ids=["lenet5", "resnet_mini"])
def test_torch_code_rebuilds_the_module(make, tmp_path):
    model = make()
    path = tmp_path / "lenet.pt"
    torch.save(to_torch(model).state_dict(), path)
    scope = {}
    exec(torch_code(model, path), scope)          # the code the CLI prints, run as printed
    scope["model"].eval()
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    close(scope["model"](torch.from_numpy(x)).detach().numpy(), model.forward(x), np.float32)


def test_training_in_torch_then_importing_back_gives_the_same_accuracy():
    (x, y), (xt, yt) = tc.datasets.load_mnist5k(seed=0)
    x, y, xt, yt = x[:512], y[:512], xt[:300], yt[:300]
    module = to_torch(lenet5(rng=0))
    opt = torch.optim.SGD(module.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(torch.from_numpy(x[idx.numpy()])),
                                              torch.from_numpy(y[idx.numpy()]).long()).backward()
            opt.step()
    module.eval()
    with torch.no_grad():
        torch_acc = (module(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean()
    back = from_torch(module, input_shape=(1, 28, 28))
    logs = back.evaluate(xt, yt, loss=losses.SoftmaxCrossEntropy())
    assert torch_acc > 0.5                       # it did learn something in two epochs
    assert logs["accuracy"] == pytest.approx(torch_acc, abs=1 / len(yt))


@pytest.mark.parametrize("make", [lambda: lenet5(rng=1), lambda: lesion_cnn(rng=2), _trained_resnet],
                         ids=["lenet5", "lesion_cnn", "resnet_mini"])
def test_onnxruntime_agrees_with_predict(make, tmp_path):
    model = make()
    path = export_onnx(model, tmp_path / "model.onnx")
    checked = onnx.load(path)
    assert checked.opset_import[0].version == tc.interop.OPSET
    assert checked.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = tuple(model.meta["input_shape"])
    for n in (1, 5):                              # the batch axis is dynamic
        x = np.random.default_rng(n).random((n,) + shape).astype(np.float32)
        logits, probs = session.run(["logits", "probabilities"], {"input": x})
        close(logits, model.forward(x), np.float32)
        close(probs, model.predict(x), np.float32)


def test_modules_without_bias():
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, bias=False), torch.nn.Flatten(),
                                 torch.nn.Linear(2 * 4 * 4, 3, bias=False))
    model = from_torch(module, input_shape=(1, 6, 6))
    assert model.layers[0].bias is None                   # a Conv2D without the parameter
    assert np.array_equal(model.layers[2].bias.data, np.zeros(3, np.float32))   # Dense: zero bias
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    close(module(torch.from_numpy(x)).detach().numpy(), model.forward(x), np.float32)


def test_unsupported_layers_are_named():
    class Custom(layers.ReLU):
        pass
    model = tc.Sequential(layers.Flatten(), Custom())
    with pytest.raises(TypeError, match=r"layer 1 \(Custom\(\)\).*supported layers: Conv2D"):
        to_torch(model)
    with pytest.raises(TypeError, match=r"GELU.*supported modules"):
        from_torch(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.GELU()))
    with pytest.raises(TypeError, match="groups"):
        from_torch(torch.nn.Sequential(torch.nn.Conv2d(2, 2, 3, groups=2)))
    with pytest.raises(TypeError, match="nn.Sequential"):
        from_torch(torch.nn.Linear(2, 2))


def test_a_missing_extra_is_a_one_line_pip_hint():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from tinycnn.models import lenet5\nfrom tinycnn.interop import to_torch\n"
            "try:\n    to_torch(lenet5())\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ("tinycnn.interop.to_torch needs the optional package 'torch': "
                           'pip install "tinycnn[interop]" (or pip install torch)')


def test_import_tinycnn_imports_no_extra():
    code = "import sys, tinycnn, tinycnn.interop; print(sorted({'torch', 'onnx', 'onnxruntime'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ)).stdout
    assert out.strip() == "[]"


def test_the_ddp_example_runs_on_two_processes(tmp_path):
    script = os.path.join(os.path.dirname(__file__), "..", "tutorials", "train_ddp.py")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         script, "--epochs", "1", "--limit", "2000", "--out", str(tmp_path / "ddp")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "[rank 1] epoch 1/1" in result.stdout          # both processes trained
    last = [line for line in result.stdout.splitlines() if "PyTorch test accuracy" in line][-1]
    torch_acc = float(last.split("PyTorch test accuracy ")[1].split(",")[0])
    tiny_acc = float(last.split("(imported back) ")[1])
    assert torch_acc == tiny_acc and torch_acc > 0.8
    assert (tmp_path / "ddp" / "after_ddp.npz").exists()
