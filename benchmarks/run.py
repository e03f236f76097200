"""tinycnn benchmark suite: ``python benchmarks/run.py [--threads 2,1] [--repeats 9] [--quick]``.

Times the convolution kernels of every backend on the issue's shapes, then LeNet-5
training and inference against PyTorch (when installed), the lesion CNN's and
``resnet_mini``'s training steps against the same networks in PyTorch, the JIT compile cost, and writes
a markdown report to stdout and ``benchmarks/RESULTS.md`` plus ``benchmarks/results.png``.
Ratios are speeds: ``torch time / tinycnn time`` (> 1 means tinycnn is faster).

Thread pools read their size when they load, so every measurement runs in a child process
started with ``OPENBLAS_NUM_THREADS`` / ``NUMBA_NUM_THREADS`` / ``OMP_NUM_THREADS`` set to
one ``--threads`` value (and ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` unset; the report
says if they were set). The first value is the headline run (with the compile-time
measurements); further values repeat the timings for comparison.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))          # run from a checkout without installing

import machine  # noqa: E402  (stdlib only; NumPy is imported after the re-launch)


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="2,1",
                    help="thread-pool sizes, one full run each (default: 2,1)")
    ap.add_argument("--repeats", type=int, default=9, help="timed calls per median (>= 7)")
    ap.add_argument("--quick", action="store_true", help="7 repeats, no compile-time runs")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time CPU seconds of the process instead of wall time (a shared machine)")
    ap.add_argument("--out", default=HERE, help="folder for RESULTS.md and results.png")
    ap.add_argument("--render", action="store_true",
                    help="only rebuild RESULTS.md and the chart from results_threads*.json")
    ap.add_argument("--child", metavar="JSON", help=argparse.SUPPRESS)   # internal
    args = ap.parse_args(argv)
    args.threads = [int(t) for t in str(args.threads).split(",")]
    args.repeats = 7 if args.quick else max(7, args.repeats)
    return args


def main(argv=None):
    """Run one measuring child process per thread count, then write the report."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--"]:                      # python -m tinycnn bench -- --quick
        argv = argv[1:]
    args = parse(argv)
    if args.child:
        return measure(args)
    os.makedirs(args.out, exist_ok=True)
    runs = []
    for k, threads in enumerate(args.threads):
        path = os.path.join(args.out, f"results_threads{threads}.json")
        if args.render:                 # the thread counts that have results on disk
            if os.path.exists(path):
                with open(path) as f:
                    runs.append(json.load(f))
            continue
        env = machine.thread_env(threads)
        env["TINYCNN_BENCH_LOAD0"] = machine.load_average()
        flags = ["--threads", str(threads), "--child", path, "--repeats", str(args.repeats)]
        flags += ["--no-torch"] * args.no_torch + ["--quick"] * (args.quick or k > 0)
        flags += ["--cpu-time"] * args.cpu_time
        print(f"== threads={threads}", file=sys.stderr, flush=True)
        code = subprocess.call([sys.executable, os.path.abspath(__file__)] + flags, env=env)
        if code:
            return code
        with open(path) as f:
            runs.append(json.load(f))
    if not runs:
        wanted = ",".join(map(str, args.threads))
        print(f"run.py --render: no results_threads{{{wanted}}}.json in {args.out}", file=sys.stderr)
        return 1
    import report
    md = report.markdown_report(runs)
    print(md)
    with open(os.path.join(args.out, "RESULTS.md"), "w") as f:
        f.write(md)
    report.bar_chart(runs, os.path.join(args.out, "results.png"))
    return 0


def import_torch(args):
    if args.no_torch:
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(args.threads[0])
    return torch


def measure(args):
    """One full run with this process's thread settings; results to ``args.child`` (JSON)."""
    import conv_shapes
    import efficiency
    import lenet
    import networks
    import startup
    from tinycnn.kernels import fast

    torch = import_torch(args)
    if args.cpu_time:
        conv_shapes.CLOCK = time.process_time
    log = lambda msg: print(msg, file=sys.stderr, flush=True)   # noqa: E731
    log(f"warming up (threads={args.threads[0]}, repeats={args.repeats}) ...")
    fast.warmup()
    log("convolution shapes:")
    shapes = conv_shapes.run(args.repeats, torch, log, compile_times=not args.quick)
    log("LeNet-5:")
    model = lenet.run(args.repeats, conv_shapes.interleaved_ms, torch, log)
    layers = lenet.per_layer_ms(64)
    log("lesion CNN and resnet_mini:")
    nets = networks.run(args.repeats, conv_shapes.interleaved_ms, torch, log)
    resnet_types = networks.per_type_ms()
    if torch is not None:
        resnet_types["torch"] = networks.torch_per_type_ms(torch)
    log("GEMM peak:")
    gemm = efficiency.gemm_peak(torch)
    log(f"  GEMM 1024^3 float32: NumPy {gemm['numpy']:.0f} GFLOP/s"
        + (f", PyTorch {gemm['torch']:.0f} GFLOP/s" if gemm["torch"] else ""))
    startup_s = warm = memory = None
    if not args.quick:
        log("memory per training step (fresh processes):")
        memory = efficiency.step_memory(torch is not None, log=log)
        log("start-up (fresh processes):")
        startup_s, warm = startup.run(log=log), startup.warmup_seconds()
    result = {"threads": args.threads[0], "machine": machine.describe(args.threads[0], torch),
              "clock": "CPU time (time.process_time)" if args.cpu_time else "wall time",
              "have_torch": torch is not None, "shapes": shapes, "lenet": model,
              "lenet_layers": layers, "networks": nets, "resnet_types": resnet_types,
              "startup": startup_s, "warmup": warm, "gemm_peak": gemm, "memory": memory}
    with open(args.child, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
