"""Per-shape convolution timings: naive loops, reference, numba, PyTorch.

Every number is the median of ``repeats`` (>= 7) timed calls after two warm-up calls; the
backends take turns block by block (:func:`interleaved_ms`).
"forward+backward" is one forward call followed by one backward call (dx, dw, db), as in a
training step; PyTorch computes the same three gradients (x and w require grad).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

import naive
from tinycnn.kernels import fast, reference

# name, N, C, H, W, F, K, stride, padding
SHAPES = [
    ("tiny 3x8x8->4 k3 p1", 2, 3, 8, 8, 4, 3, 1, 1),
    ("LeNet conv1 1x28x28->6 k5 p2", 64, 1, 28, 28, 6, 5, 1, 2),
    ("LeNet conv2 6x14x14->16 k5", 64, 6, 14, 14, 16, 5, 1, 0),
    ("1x64x64->16 k3 p1", 32, 1, 64, 64, 16, 3, 1, 1),
    ("16x32x32->32 k3 p1", 32, 16, 32, 32, 32, 3, 1, 1),
    ("1x64x64->16 k3 p1 s2", 32, 1, 64, 64, 16, 3, 2, 1),
    ("16x32x32->32 k3 p1 s2", 32, 16, 32, 32, 32, 3, 2, 1),
    ("64x16x16->64 k3 p1", 32, 64, 16, 16, 64, 3, 1, 1),
    ("1x224x224->16 k3 p1", 8, 1, 224, 224, 16, 3, 1, 1),
]


# The clock of every timed call: wall time (default) or, with ``run.py --cpu-time``, CPU
# seconds of the whole process (``time.process_time``) -- on a machine shared with other
# jobs a 1-thread run's CPU time is what the code costs, its wall time mostly the queue.
CLOCK = time.perf_counter


def median_ms(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = CLOCK()
        fn()
        times.append(CLOCK() - t0)
    return 1e3 * float(np.median(times))


def interleaved_ms(fns, repeats, warmup=2, rounds=3):
    """Median ms of each function in ``fns`` (a dict), timed in alternating blocks.

    Each backend runs ``rounds`` blocks of ``repeats / rounds`` timed calls (each block
    after one untimed call), the backends taking turns block by block: a a a, b b b, a a a,
    b b b, ... On a shared machine the speed drifts over seconds; taking turns gives every
    backend the same conditions. (Turns call by call were worse: each library's idle
    thread pool then slows the other's next call, which never happens in real use.)
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in fns}
    per_block = max(3, -(-repeats // rounds))
    for _ in range(rounds):
        for k, fn in fns.items():
            fn()
            for _ in range(per_block):
                t0 = CLOCK()
                fn()
                times[k].append(CLOCK() - t0)
    return {k: 1e3 * float(np.median(v)) for k, v in times.items()}


def forward_flops(N, C, H, W, F, K, s, p):
    Ho, Wo = (H + 2 * p - K) // s + 1, (W + 2 * p - K) // s + 1
    return 2.0 * N * F * Ho * Wo * C * K * K


def arrays(N, C, H, W, F, K, s, p, dtype=np.float32):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, K, K)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    Ho, Wo = (H + 2 * p - K) // s + 1, (W + 2 * p - K) // s + 1
    dy = rng.standard_normal((N, F, Ho, Wo)).astype(dtype)
    return x, w, b, dy


def numpy_backend(mod, x, w, b, dy, s, p):
    def fwd():
        return mod.conv2d_forward(x, w, b, s, p)

    def fwd_bwd():
        mod.conv2d_forward(x, w, b, s, p)
        return mod.conv2d_backward(dy, x, w, s, p)
    return fwd, fwd_bwd


def torch_backend(torch, x, w, b, dy, s, p):
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    dyt = torch.tensor(dy)
    conv = torch.nn.functional.conv2d

    def fwd():
        with torch.no_grad():
            return conv(xt, wt, bt, stride=s, padding=p)

    def fwd_bwd():
        for t in (xt, wt, bt):
            t.grad = None
        conv(xt, wt, bt, stride=s, padding=p).backward(dyt)
    return fwd, fwd_bwd


def peak_mib(fn):
    """Peak NumPy memory (MiB) of one call, traced by tracemalloc, scratch buffers included."""
    fast.clear_workspace()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


COMPILE_SNIPPET = """
import json, sys, time
t0 = time.perf_counter()
from tinycnn.kernels import fast
import numpy as np
t1 = time.perf_counter()
N, C, H, W, F, K, s, p = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.standard_normal((N, C, H, W)).astype(np.float32)
w = rng.standard_normal((F, C, K, K)).astype(np.float32)
b = np.zeros(F, np.float32)
def step():
    y = fast.conv2d_forward(x, w, b, s, p)
    fast.conv2d_backward(y, x, w, s, p)
t2 = time.perf_counter(); step(); t3 = time.perf_counter(); step(); t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first": t3 - t2, "steady": t4 - t3}))
"""


def compile_seconds(shape, cache_dir):
    """JIT cost of this shape's kernels in a fresh process: first call minus a steady call."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", COMPILE_SNIPPET, json.dumps(shape)], env=env,
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return max(0.0, r["first"] - r["steady"])


def run(repeats, torch=None, log=print, compile_times=True):
    rows = []
    for name, *shape in SHAPES:
        N, C, H, W, F, K, s, p = shape
        x, w, b, dy = arrays(*shape)
        flops = forward_flops(*shape)
        backends = {"reference": numpy_backend(reference, x, w, b, dy, s, p),
                    "numba": numpy_backend(fast, x, w, b, dy, s, p)}
        if name.startswith("tiny"):
            backends = {"naive loops": numpy_backend(naive, x, w, b, dy, s, p), **backends}
        if torch is not None:
            backends["torch"] = torch_backend(torch, x, w, b, dy, s, p)
        row = {"shape": name, "dims": shape, "gflop_fwd": flops / 1e9, "backends": {}}
        reps = 7 if "naive loops" in backends else repeats
        fwd = interleaved_ms({k: f for k, (f, _) in backends.items()}, reps)
        fb = interleaved_ms({k: f for k, (_, f) in backends.items()}, reps)
        for label, (_, fwd_bwd) in backends.items():
            r = {"fwd_ms": fwd[label], "fb_ms": fb[label]}
            if label != "torch":
                r["peak_mib"] = peak_mib(fwd_bwd)
            row["backends"][label] = r
        row["jit_cold_s"] = row["jit_warm_s"] = None
        if compile_times:
            with tempfile.TemporaryDirectory() as cache:
                row["jit_cold_s"] = compile_seconds(shape, cache)
                row["jit_warm_s"] = compile_seconds(shape, cache)
        rows.append(row)
        log(f"  {name}: " + ", ".join(f"{k} {v['fb_ms']:.2f} ms" for k, v in row["backends"].items()))
    return rows
