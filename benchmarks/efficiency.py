"""The machine's GEMM peak, and the memory a training step adds, for both frameworks.

* :func:`gemm_peak` -- GFLOP/s of a large float32 matrix product (1024 x 1024 x 1024) on
  this process's thread settings, through NumPy's BLAS and through PyTorch: the best of
  the two is the "measured GEMM peak" the per-shape table compares every convolution to
  (a convolution is a matrix product in disguise; reaching the GEMM's speed is the
  ceiling for both frameworks).
* :func:`step_memory` -- the memory a training step needs, in a fresh process per
  framework and case: the process builds the model, runs two steps on a batch of 2 (so
  Numba compiles and both allocators start up on a small batch), reads its resident size,
  resets the kernel's peak-RSS counter (``/proc/self/clear_refs``, Linux), runs five
  steps on the real batch and reads the peak (``VmHWM``). The number is that peak minus
  the resident size before: activations, gradients and scratch of the real batch (an
  allocator that keeps freed memory counts it once). The same protocol for both. Linux
  only (``None`` elsewhere).
"""
import json
import os
import subprocess
import sys

import numpy as np

from conv_shapes import median_ms

HERE = os.path.dirname(os.path.abspath(__file__))
N_GEMM = 1024


def gemm_peak(torch=None):
    """{"numpy": GFLOP/s, "torch": GFLOP/s or None, "peak": the larger} for 1024^3 float32,
    timed with the benchmark's clock (``conv_shapes.median_ms``)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((N_GEMM, N_GEMM)).astype(np.float32)
    b = rng.standard_normal((N_GEMM, N_GEMM)).astype(np.float32)
    flop = 2 * N_GEMM ** 3
    out = {"numpy": flop / median_ms(lambda: a @ b, 7, warmup=1) / 1e6, "torch": None}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        out["torch"] = flop / median_ms(lambda: ta @ tb, 7, warmup=1) / 1e6
    out["peak"] = max(v for v in (out["numpy"], out["torch"]) if v is not None)
    return out


# The child process: build one case, warm up, measure. Printed as one JSON line.
CHILD = r"""
import json, sys
sys.path.insert(0, {here!r})
import numpy as np

def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])

framework, case, batch = {framework!r}, {case!r}, {batch}
if framework == "torch":
    import torch
    torch.set_num_threads(1)

def make_step(n):
    if case == "lenet":
        import lenet
        if framework == "torch":
            return lenet.torch_step(torch, n, torch.float32)
        return lenet.tinycnn_step(n, np.float32)
    import networks
    label, build, shape, classes, opt_name = [c for c in networks.CASES if c[0] == case][0]
    model = build()
    networks.batch.__defaults__ = (n,)          # the batch size its steps use
    if framework == "torch":
        from tinycnn.interop import to_torch
        return networks.torch_step(torch, to_torch(model), shape, classes, opt_name)
    return networks.tinycnn_step(model, shape, classes, opt_name)

small = make_step(2)
small(); small()
step = make_step(batch)
before = rss_kib("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                               # reset VmHWM to the current RSS
for _ in range(5):
    step()
print(json.dumps({{"added_mib": (rss_kib("VmHWM") - before) / 1024, "rss_mib": before / 1024}}))
"""

MEMORY_CASES = [("lenet", 64), ("lenet", 256), ("lesion CNN", 64), ("resnet_mini", 64)]


def _child(framework, case, batch):
    code = CHILD.format(here=HERE, framework=framework, case=case, batch=batch)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"memory child ({framework}, {case}) failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def step_memory(have_torch, log=print):
    """Rows {case, batch, ours_mib, torch_mib, ours_rss_mib, torch_rss_mib}; None off Linux."""
    if not os.path.exists("/proc/self/clear_refs"):
        return None
    rows = []
    for case, batch in MEMORY_CASES:
        ours = _child("tinycnn", case, batch)
        theirs = _child("torch", case, batch) if have_torch else None
        rows.append({"case": "LeNet-5" if case == "lenet" else case, "batch": batch,
                     "ours_mib": ours["added_mib"], "ours_rss_mib": ours["rss_mib"],
                     "torch_mib": theirs and theirs["added_mib"],
                     "torch_rss_mib": theirs and theirs["rss_mib"]})
        log(f"  {rows[-1]['case']} b{batch}: tinycnn +{ours['added_mib']:.1f} MiB"
            + (f", torch +{theirs['added_mib']:.1f} MiB" if theirs else ""))
    return rows


if __name__ == "__main__":
    try:
        import torch
    except ImportError:
        torch = None
    print(gemm_peak(torch))
    print(step_memory(torch is not None))
