"""Start-up cost: LeNet-5's first b64 training step in fresh processes, cold and warm.

* **cold** -- an empty ``NUMBA_CACHE_DIR``: every kernel the step uses is compiled.
* **warm** -- the cache a cold process left: the kernels are loaded from disk.
* **import numba** -- a fresh process in the state the first step starts from (NumPy,
  tinycnn and the model ready), timing ``import numba`` alone. tinycnn imports Numba
  lazily, inside the first step, so *warm first step minus import numba* is what tinycnn
  (and Numba's first load from its cache) adds on top of the import itself.
* **breakdown** -- one warm process timing the pieces of the first step one after the
  other (CPU ms): ``import numba``; Numba's one-off initialisation, which its first load
  from the cache runs (it imports and registers every typing and lowering registry; with
  SciPy installed that includes ``scipy.linalg``, Numba's BLAS probe -- timed on its own);
  importing tinycnn's kernel modules; the first step proper (loading each kernel the
  step calls from the cache, first-call work such as finding BLAS through threadpoolctl);
  and the second step, for comparison.
* **warm, SciPy hidden** -- the warm step again with ``import scipy`` made to fail, as on
  an install without SciPy (tinycnn does not use it; Numba's BLAS probe imports it when
  it is there).
* ``fast.warmup`` -- cold and warm, for float32 and for both dtypes.

Each figure is the median over ``repeats`` processes; the warm processes take turns
(step, import numba, breakdown, step, ...) so a change in machine load hits all alike.
The children run with Python's default bytecode caching (``PYTHONDONTWRITEBYTECODE``
removed), so a warm process reads tinycnn's compiled ``.pyc`` files as a user's second run
does instead of recompiling ~50 modules from source (~30 ms).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PRELUDE = f"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
sys.path[:0] = [{HERE!r}, {ROOT!r}]
import lenet
step = lenet.tinycnn_step(64, lenet.np.dtype("float32"))
t1, c1 = time.perf_counter(), time.process_time()
"""

STEP = PRELUDE + """
step()
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"import": t1 - t0, "first_step": t2 - t1,
                  "import_cpu": c1 - c0, "first_step_cpu": c2 - c1}))
"""

# The same step where ``import scipy`` fails, as on an install without SciPy (scikit-learn,
# a test dependency, brings it here): Numba's BLAS probe then finds nothing to import.
STEP_NO_SCIPY = "import sys; sys.modules['scipy'] = None\n" + STEP

IMPORT_NUMBA = PRELUDE + """
import numba
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"import_numba": t2 - t1, "import_numba_cpu": c2 - c1}))
"""

BREAKDOWN = PRELUDE + """
clock = time.process_time
out = {}
t = clock(); import numba; out["import numba"] = clock() - t
t = clock()
try:
    import scipy.linalg.cython_blas   # what Numba's BLAS probe imports in its initialisation
except ImportError:
    pass
out["scipy.linalg (Numba's BLAS probe)"] = clock() - t
t = clock()
try:      # what Numba's first load from its cache runs first (numba.core.caching.load_overload)
    from numba.core.registry import cpu_target
    cpu_target.target_context.refresh()
except (ImportError, AttributeError):      # another Numba version: left inside the step
    pass
out["Numba's initialisation (registries)"] = clock() - t
t = clock(); import tinycnn.kernels.fast; out["tinycnn's kernel modules"] = clock() - t
t = clock(); step(); out["first step (kernel loads + first calls)"] = clock() - t
t = clock(); step(); out["second step"] = clock() - t
kernels = 0
for name, module in list(sys.modules.items()):
    if name.startswith("tinycnn.kernels."):
        for f in vars(module).values():
            if hasattr(f, "py_func") and hasattr(f, "signatures"):
                kernels += len(f.signatures)
print(json.dumps({"ms": {k: 1e3 * v for k, v in out.items()}, "kernels": kernels}))
"""


def _child(code, cache):
    """Run ``code`` in a fresh interpreter with Numba's cache in ``cache``; its JSON line."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"start-up child failed:\n{res.stderr}")
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["process"] = time.perf_counter() - t
    return out


def _medians(runs):
    return {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "ms"}


def run(repeats=5, log=print):
    """Medians over ``repeats`` fresh processes of each measurement (module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        cold = [_child(STEP, os.path.join(tmp, f"cold{k}")) for k in range(repeats)]
        warm_cache = os.path.join(tmp, "cold0")
        warm, numba, parts, no_scipy = [], [], [], []
        for _ in range(repeats):
            warm.append(_child(STEP, warm_cache))
            numba.append(_child(IMPORT_NUMBA, warm_cache))
            parts.append(_child(BREAKDOWN, warm_cache))
            no_scipy.append(_child(STEP_NO_SCIPY, warm_cache))
    out = {"repeats": repeats, "cold": _medians(cold), "warm": _medians(warm),
           "import_numba": _medians(numba), "warm_no_scipy": _medians(no_scipy),
           "breakdown_ms": {k: statistics.median(p["ms"][k] for p in parts)
                            for k in parts[0]["ms"]},
           "kernels": parts[0]["kernels"]}
    n = out["import_numba"]
    for key, w in (("warm_minus_numba", out["warm"]), ("no_scipy_minus_numba", out["warm_no_scipy"])):
        out[key] = {"wall": w["first_step"] - n["import_numba"],
                    "cpu": w["first_step_cpu"] - n["import_numba_cpu"]}
    w = out["warm"]
    log(f"  first step: cold {out['cold']['first_step']:.2f} s, warm {w['first_step']:.3f} s, "
        f"import numba {n['import_numba']:.3f} s, warm - import numba "
        f"{out['warm_minus_numba']['wall']:.3f} s (CPU {out['warm_minus_numba']['cpu']:.3f} s)")
    return out


WARMUP = ("import json, sys, time; sys.path.insert(0, {root!r}); t = time.perf_counter(); "
          "from tinycnn.kernels import fast; i = time.perf_counter() - t; "
          "s = fast.warmup(dtypes={dtypes!r}); print(json.dumps({{'import': i, 'warmup': s}}))")


def warmup_seconds():
    """``fast.warmup`` in fresh processes: empty Numba cache, then the cache it left."""
    out = {}
    for dtypes in (("float32",), ("float32", "float64")):
        with tempfile.TemporaryDirectory() as cache:
            code = WARMUP.format(root=ROOT, dtypes=dtypes)
            for which in ("cold", "warm"):
                out[f"{'+'.join(dtypes)} {which}"] = _child(code, cache)
    return out


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="start-up cost in fresh processes")
    ap.add_argument("--repeats", type=int, default=5)
    log = lambda msg: print(msg, file=sys.stderr)   # noqa: E731  (stdout: the JSON only)
    print(json.dumps({"startup": run(ap.parse_args().repeats, log), "warmup": warmup_seconds()},
                     indent=1))
