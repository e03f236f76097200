"""tinycnn benchmark suite: ``python benchmarks/run.py [--threads 2] [--repeats 9] [--quick]``.

Times the convolution kernels of every backend on the issue's shapes, then LeNet-5
training and inference against PyTorch (when installed), the JIT compile cost, and writes
a markdown report to stdout and ``benchmarks/RESULTS.md`` plus ``benchmarks/results.png``.
Ratios are speeds: ``torch time / tinycnn time`` (> 1 means tinycnn is faster).

Thread pools read their size when they load, so the script re-launches itself once with
``OPENBLAS_NUM_THREADS`` / ``NUMBA_NUM_THREADS`` / ``OMP_NUM_THREADS`` set to ``--threads``
(and ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` unset; the report says if they were set).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))          # run from a checkout without installing

import machine  # noqa: E402  (stdlib only; NumPy is imported after the re-launch)


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="size of every thread pool (2)")
    ap.add_argument("--repeats", type=int, default=9, help="timed calls per median (>= 7)")
    ap.add_argument("--quick", action="store_true", help="7 repeats, no compile-time runs")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    ap.add_argument("--out", default=HERE, help="folder for RESULTS.md and results.png")
    args = ap.parse_args(argv)
    args.repeats = 7 if args.quick else max(7, args.repeats)
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    if os.environ.get("TINYCNN_BENCH_CHILD") != "1":      # re-launch with the thread env
        env = machine.thread_env(args.threads)
        env.update(TINYCNN_BENCH_CHILD="1", TINYCNN_BENCH_LOAD0=machine.load_average())
        return subprocess.call([sys.executable, os.path.abspath(__file__)] + argv, env=env)
    return run_all(args)


def import_torch(args):
    if args.no_torch:
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(args.threads)
    return torch


def run_all(args):
    import conv_shapes
    import lenet
    import report
    from tinycnn.kernels import fast

    torch = import_torch(args)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)   # noqa: E731
    log(f"warming up (threads={args.threads}, repeats={args.repeats}) ...")
    fast.warmup()
    log("convolution shapes:")
    shapes = conv_shapes.run(args.repeats, torch, log)
    if args.quick:
        for row in shapes:
            row["jit_cold_s"] = row["jit_warm_s"] = None
    log("LeNet-5:")
    model = lenet.run(args.repeats, conv_shapes.median_ms, torch, log)
    first = None if args.quick else lenet.first_step_seconds()
    warm = None if args.quick else warmup_seconds()
    md = report.markdown_report(machine.describe(args.threads, torch), shapes, model, first,
                                warm, torch is not None)
    print(md)
    with open(os.path.join(args.out, "RESULTS.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"shapes": shapes, "lenet": model, "first_step": first, "warmup": warm}, f,
                  indent=1)
    report.bar_chart(shapes, model, os.path.join(args.out, "results.png"))
    return 0


WARMUP_SNIPPET = ("import json, time; t = time.perf_counter(); from tinycnn.kernels import fast; "
                  "i = time.perf_counter() - t; s = fast.warmup(dtypes={dtypes!r}); "
                  "print(json.dumps({{'import': i, 'warmup': s}}))")


def warmup_seconds():
    """``fast.warmup`` in fresh processes: empty Numba cache, then the cache it left."""
    import tempfile
    out = {}
    for dtypes in (("float32",), ("float32", "float64")):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            code = WARMUP_SNIPPET.format(dtypes=dtypes)
            for which in ("cold", "warm"):
                res = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                     capture_output=True, text=True)
                out[f"{'+'.join(dtypes)} {which}"] = json.loads(res.stdout.splitlines()[-1])
    return out


if __name__ == "__main__":
    sys.exit(main())
