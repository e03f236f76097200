"""Turn benchmark results into markdown tables and a bar chart."""


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def shape_table(shapes, have_torch, peak=None):
    """Per-shape rows; ``peak``: the machine's measured GEMM GFLOP/s (``efficiency.gemm_peak``)."""
    head = ("| shape (N, C×H×W → F, k, s, p) | backend | fwd ms | fwd+bwd ms | GFLOP/s fwd+bwd "
            "| % of GEMM peak | speed vs torch (fwd / fwd+bwd) | peak MiB | JIT cold / warm s |")
    lines = [head, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in shapes:
        N, C, H, W, F, K, s, p = row["dims"]
        name = f"{row['shape']} (N={N})"
        t = row["backends"].get("torch")
        for label, r in row["backends"].items():
            gflops = 3 * row["gflop_fwd"] / (r["fb_ms"] / 1e3)
            ratio = "-"
            if have_torch and t and label != "torch":
                ratio = f"{t['fwd_ms'] / r['fwd_ms']:.2f}× / {t['fb_ms'] / r['fb_ms']:.2f}×"
            jit = "-"
            if label == "numba" and row.get("jit_cold_s") is not None:
                jit = f"{row['jit_cold_s']:.2f} / {row['jit_warm_s']:.2f}"
            share = "-" if not peak else f"{100 * gflops / peak:.0f}%"
            lines.append(f"| {name} | {label} | {r['fwd_ms']:.3f} | {r['fb_ms']:.3f} | "
                         f"{gflops:.2f} | {share} | {ratio} | {fmt(r.get('peak_mib'), '.1f')} "
                         f"| {jit} |")
            name = ""
    return "\n".join(lines)


def memory_table(rows):
    """Resident memory a training step needs (``efficiency.step_memory``), both frameworks."""
    lines = ["| model | batch | tinycnn MiB | torch MiB | process RSS before the steps, "
             "tinycnn / torch MiB |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['batch']} | {r['ours_mib']:.1f} | "
                     f"{fmt(r['torch_mib'], '.1f')} | {r['ours_rss_mib']:.0f} / "
                     f"{fmt(r['torch_rss_mib'], '.0f')} |")
    return "\n".join(lines)


def lenet_table(model, have_torch):
    lines = ["| LeNet-5 | batch | tinycnn ms | tinycnn img/s | torch ms | torch img/s "
             "| ratio (tinycnn ÷ torch img/s) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in model:
        B = r["batch"]
        ours, theirs = r["ours_ms"], r["torch_ms"]
        lines.append(
            f"| {r['case']} | {B} | {ours:.2f} | {B / ours * 1e3:,.0f} | {fmt(theirs)} | "
            f"{'-' if theirs is None else f'{B / theirs * 1e3:,.0f}'} | "
            f"{'-' if theirs is None else f'{theirs / ours:.2f}×'} |")
    return "\n".join(lines)


def networks_table(rows):
    """Training-step rows of the other shipped models (``networks.py``), as the LeNet table."""
    lines = ["| model (input) | step | batch | tinycnn ms | tinycnn img/s | torch ms | torch img/s "
             "| ratio (tinycnn ÷ torch img/s) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        B, ours, theirs = r["batch"], r["ours_ms"], r["torch_ms"]
        lines.append(
            f"| {r['model']} ({r['input']}) | {r['case']} | {B} | {ours:.2f} | {B / ours * 1e3:,.0f} | "
            f"{fmt(theirs)} | {'-' if theirs is None else f'{B / theirs * 1e3:,.0f}'} | "
            f"{'-' if theirs is None else f'{theirs / ours:.2f}×'} |")
    return "\n".join(lines)


def type_table(types, torch=False):
    """A resnet_mini step by layer type: tinycnn's CPU ms (``networks.per_type_ms``, with the
    number of layers) or, ``torch=True``, PyTorch's profiler self time of its ATen ops
    (``networks.torch_per_type_ms``)."""
    step = types["step_ms"]
    if torch:
        out = ["| layer type (ATen ops) | forward ms | backward ms | total ms | share |",
               "|---|---:|---:|---:|---:|"]
    else:
        out = ["| layer type | layers | forward ms | backward ms | total ms | share of step |",
               "|---|---:|---:|---:|---:|---:|"]
    for r in types["rows"]:
        count = "" if torch else f" {fmt(r['count'], 'd')} |"
        out.append(f"| {r['type']} |{count} {fmt(r['fwd_ms'])} | {fmt(r['bwd_ms'])} | "
                   f"{r['total_ms']:.2f} | {100 * r['total_ms'] / step:.0f}% |")
    out.append(f"| **sum** | | | {step:.2f} | 100% |" if torch else
               f"| **whole step** (median, timers included) | | | | {step:.2f} | 100% |")
    return "\n".join(out)


def conv_table(convs):
    """resnet_mini's convolutions one shape at a time (CPU ms per step, all layers of that shape)."""
    out = ["| convolution | layers | forward ms | backward ms | total ms |", "|---|---:|---:|---:|---:|"]
    for r in convs:
        out.append(f"| {r['type']} | {r['count']} | {r['fwd_ms']:.2f} | {r['bwd_ms']:.2f} | "
                   f"{r['total_ms']:.2f} |")
    return "\n".join(out)


def layer_table(layers):
    """Per-layer CPU ms of one tinycnn LeNet training step (forward, backward)."""
    if not layers:
        return "(not measured)"
    out = ["| layer | forward ms | backward ms |", "|---|---:|---:|"]
    for r in layers:
        out.append(f"| {r['layer']} | {r['fwd_ms']:.3f} | {r['bwd_ms']:.3f} |")
    total_f = sum(r["fwd_ms"] for r in layers)
    total_b = sum(r["bwd_ms"] for r in layers)
    out.append(f"| **sum** | {total_f:.3f} | {total_b:.3f} |")
    return "\n".join(out)


def compile_lines(run):
    """The start-up section: ``startup.run`` and ``startup.warmup_seconds`` results."""
    st, warm = run.get("startup"), run.get("warmup")
    if not st:
        return "(not in these results: a run without --quick measures it)"
    cold, w, n = st["cold"], st["warm"], st["import_numba"]
    d, ns, dns = st["warm_minus_numba"], st["warm_no_scipy"], st["no_scipy_minus_numba"]
    out = [f"Fresh processes, median of {st['repeats']} each (`benchmarks/startup.py`): "
           "LeNet-5's first b64 training step after `import tinycnn` and building the model. "
           "tinycnn imports Numba lazily, inside that step, so the step includes `import numba`; "
           "the row below it subtracts `import numba` timed alone in a process in the same state. "
           "The processes keep Python's default bytecode cache (as a user's second run does).",
           "",
           "| fresh process | wall s | CPU s |", "|---|---:|---:|",
           f"| cold first step (empty Numba cache: compiles the kernels it calls) | "
           f"{cold['first_step']:.2f} | {cold['first_step_cpu']:.2f} |",
           f"| **warm first step** (the kernels loaded from the cache) | {w['first_step']:.3f} | "
           f"{w['first_step_cpu']:.3f} |",
           f"| `import numba` (timed alone, same state) | {n['import_numba']:.3f} | "
           f"{n['import_numba_cpu']:.3f} |",
           f"| **warm first step minus `import numba`** | {d['wall']:.3f} | {d['cpu']:.3f} |",
           f"| warm first step with SciPy hidden (as on an install without it) | "
           f"{ns['first_step']:.3f} | {ns['first_step_cpu']:.3f} |",
           f"| ... minus `import numba` | {dns['wall']:.3f} | {dns['cpu']:.3f} |",
           f"| whole process, cold (Python start, imports, build, first step) | {cold['process']:.2f} | - |",
           f"| whole process, warm | {w['process']:.2f} | - |",
           "",
           "Where the warm first step goes: one process timing its pieces one after the other "
           f"(CPU ms, median of {st['repeats']} processes). Numba's initialisation runs once, "
           "at its first load from the cache: it imports and registers all its typing and "
           "lowering registries, and its BLAS probe imports `scipy.linalg` when SciPy is "
           "installed (timed as its own row).",
           "",
           "| piece of the warm first step | CPU ms |", "|---|---:|"]
    for name, ms in st["breakdown_ms"].items():
        if name.startswith("first step"):
            name += f", {st['kernels']} kernels"
        out.append(f"| {name} | {ms:.1f} |")
    out += ["", "| `fast.warmup` in a fresh process | cold s | warm s |", "|---|---:|---:|"]
    for key in ("float32", "float32+float64"):
        out.append(f"| `fast.warmup(dtypes={key})` | {warm[key + ' cold']['warmup']:.2f} | "
                   f"{warm[key + ' warm']['warmup']:.2f} |")
    out.append(f"| `from tinycnn.kernels import fast` (imports numba) | "
               f"{warm['float32 cold']['import']:.2f} | {warm['float32 warm']['import']:.2f} |")
    return "\n".join(out)


def gemm_line(gemm):
    """The measured GEMM peak the per-shape table's "% of GEMM peak" refers to."""
    if not gemm:
        return ""
    torch = f", PyTorch {gemm['torch']:.0f}" if gemm.get("torch") else ""
    return (f"Measured GEMM peak on this run's threads (1024×1024×1024 float32 matrix product, "
            f"`benchmarks/efficiency.py`): NumPy's BLAS {gemm['numpy']:.0f}{torch} GFLOP/s; "
            f"*% of GEMM peak* divides a row's GFLOP/s by the larger ({gemm['peak']:.0f}).\n\n")


def markdown_report(runs):
    """The whole RESULTS.md from one or more runs (one per thread count)."""
    head, parts = runs[0], []
    parts += [
        "# tinycnn benchmark results",
        "Generated by `python benchmarks/run.py` (see `benchmarks/README.md`). Times are medians "
        "of repeated calls after warm-up; *speed vs torch* = torch time ÷ tinycnn time "
        "(> 1 means tinycnn is faster). Runs: "
        + ", ".join(f"{r['threads']} thread(s)" for r in runs)
        + f"; the first ({head['threads']} threads) is the headline run. On a shared machine "
        "(load average above the number of cores, see below) only the 1-thread run is fair: "
        "a multi-threaded pool then waits for descheduled threads, PyTorch's spinning OpenMP "
        "pool most of all. Even on a quiet machine the multi-threaded rows favour PyTorch: "
        "its OpenMP threads keep spinning after each of its calls and slow tinycnn's next "
        "calls in the same process (LeNet b64 on two threads, measured alternating: 2.02-2.06 "
        "ms alone, 2.03-2.47 ms after PyTorch's blocks; with OMP_WAIT_POLICY=PASSIVE 2.09 ms, "
        "but PyTorch's own step 2.0-2.7x slower, so the benchmark leaves it unset).",
        "## Machine\n\n" + head["machine"]
        + f"\n- clock: {head.get('clock', 'wall time')} of every timed call",
    ]
    for r in runs:
        t = r["threads"]
        title = f"{t} thread{'s' if t > 1 else ''}"
        if r is not head:
            load = [ln for ln in r["machine"].splitlines() if "load average" in ln]
            title += "\n\n" + "\n".join(load)
        parts += [
            f"## Convolution kernels, float32 -- {title}\n\n"
            + gemm_line(r.get("gemm_peak"))
            + shape_table(r["shapes"], r["have_torch"], (r.get("gemm_peak") or {}).get("peak")),
            f"## LeNet-5 (forward + loss + backward + SGD step) -- {t} thread(s)\n\n"
            + lenet_table(r["lenet"], r["have_torch"]),
        ]
        if r.get("lenet_layers"):
            parts.append(f"### Where tinycnn's LeNet b64 training step goes -- {t} thread(s)\n\n"
                         "CPU ms per layer (`time.process_time`, median), the first layer "
                         "without dx as in training; loss and optimizer not included.\n\n"
                         + layer_table(r["lenet_layers"]))
        if r.get("networks"):
            parts.append(
                f"## Lesion CNN and resnet_mini (forward + loss + backward + optimizer step) -- "
                f"{t} thread(s)\n\n"
                "Each network is built by `tinycnn.models` and converted with "
                "`tinycnn.interop.to_torch` (weights copied: both frameworks compute exactly the "
                "same function); the step is the one its training job takes: the lesion CNN with "
                "class-weighted cross-entropy and Adam (lr 2e-3) as `lesions_job.train_detector`, "
                "`resnet_mini` (BatchNorm in training mode) with cross-entropy and SGD momentum 0.9 "
                "as `python -m tinycnn train --model resnet_mini`. Same protocol as LeNet-5 "
                "(alternating blocks, medians, no input gradient).\n\n"
                + networks_table(r["networks"]))
        if r.get("resnet_types"):
            parts.append(
                f"### Where tinycnn's resnet_mini b64 training step goes, by layer type -- "
                f"{t} thread(s)\n\n"
                "CPU ms per step (`time.process_time`, median over steps) of every layer of that "
                "type, inner layers of the residual blocks included, timed inside a normal "
                "training step; `Residual` is the blocks' own share (the sums), without their "
                "inner layers. Conv2D split by kernel and stride.\n\n"
                + type_table(r["resnet_types"]))
            if r["resnet_types"].get("convs"):
                parts.append("The convolutions of that step one shape at a time (the names are "
                             "the layers' own; stage 1 runs on 28×28, stage 2 on 14×14, stage 3 "
                             "on 7×7):\n\n" + conv_table(r["resnet_types"]["convs"]))
            if r["resnet_types"].get("torch"):
                parts.append(
                    "PyTorch's same step (`to_torch` of the same model) for comparison, from "
                    "`torch.profiler`: self time of its ATen ops per step, grouped by the layer "
                    "type they implement. The profiler measures time on the thread (not CPU "
                    "seconds) and adds its own overhead: compare the shares and the order of "
                    "magnitude, not single ms.\n\n"
                    + type_table(r["resnet_types"]["torch"], torch=True))
    if head.get("memory"):
        parts.append(
            "## Memory per training step\n\n"
            "Resident memory the steps of the real batch need on top of what the process "
            "holds (`benchmarks/efficiency.py`): a fresh process per framework and model builds "
            "the model, takes two steps on a batch of 2 (compiling, starting the allocators), "
            "resets the kernel's peak-RSS counter and takes five steps; the number is that peak "
            "minus the resident size before. tinycnn keeps its scratch buffers (one padded "
            "layout per convolution geometry) between steps; PyTorch's allocator keeps freed "
            "blocks.\n\n" + memory_table(head["memory"]))
    parts += [
        "GFLOP/s counts 2·N·F·Ho·Wo·C·K² per forward and 3× that for forward+backward. "
        "Peak MiB: NumPy allocations of one forward+backward traced by tracemalloc, the numba "
        "backend's reused scratch buffers included (PyTorch's allocator is not traced). "
        "JIT: compile time of the kernels this shape uses, in a fresh process with an empty "
        "`NUMBA_CACHE_DIR` (cold) and again with the cache that run left (warm).",
        "## Start-up cost\n\n" + compile_lines(head),
    ]
    return "\n\n".join(parts) + "\n"


def bar_chart(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import textwrap

    run = runs[0]
    shapes, model = run["shapes"], run["lenet"]
    labels = [textwrap.fill(r["shape"], 14) for r in shapes]
    backends = ["naive loops", "reference", "numba", "torch"]
    colors = {"naive loops": "#bbbbbb", "reference": "#8da0cb", "numba": "#fc8d62",
              "torch": "#66c2a5"}
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(15, 5), gridspec_kw={"width_ratios": [3, 1]})
    x = np.arange(len(shapes))
    width = 0.2
    for k, be in enumerate(backends):
        vals = [r["backends"].get(be, {}).get("fb_ms", np.nan) for r in shapes]
        ax.bar(x + (k - 1.5) * width, vals, width, label=be, color=colors[be])
    ax.set_yscale("log")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("forward + backward, ms (log scale, lower is better)")
    ax.set_title(f"Convolution kernels, float32, {run['threads']} thread(s)")
    ax.legend()
    names = [f"LeNet-5 {r['case'].split(',')[0]}\n{r['case'].split(', ')[1]} b{r['batch']}" for r in model]
    names += [f"{r['model']} train\nb{r['batch']}" for r in run.get("networks", [])]
    y = np.arange(len(names))
    height = 0.8 / len(runs)
    for k, r in enumerate(runs):
        rows = r["lenet"] + r.get("networks", [])
        ratio = [m["torch_ms"] / m["ours_ms"] if m["torch_ms"] else np.nan for m in rows]
        ratio = (ratio + [np.nan] * len(names))[:len(names)]     # a run without some rows
        ax2.barh(y + (k - (len(runs) - 1) / 2) * height, ratio, height,
                 label=f"{r['threads']} thread(s)", color=["#fc8d62", "#e5c494"][k % 2])
    ax2.axvline(1.0, color="k", lw=1)
    ax2.legend(fontsize=7)
    ax2.set_yticks(y, names, fontsize=7)
    ax2.set_xlabel("tinycnn speed ÷ PyTorch speed (> 1: faster)")
    ax2.set_title("Whole models (train step unless named)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
