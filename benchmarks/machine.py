"""Thread settings and a description of the machine a benchmark ran on.

:func:`thread_env` must be applied *before* NumPy is imported: OpenBLAS reads its thread
count once, when it loads. ``run.py`` therefore re-launches itself with this environment.
"""
import os
import platform
import time

# OpenBLAS tuning variables the environment may set (CPU type, cache size). The benchmark
# unsets them so that BLAS picks its own kernels for this CPU, and says so in RESULTS.md.
OPENBLAS_TUNING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def thread_env(threads, base=None):
    """A copy of ``base`` (default ``os.environ``) with every thread pool set to ``threads``."""
    env = dict(os.environ if base is None else base)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    unset = [v for v in OPENBLAS_TUNING if v in env]
    for v in unset:
        env.pop(v)
    env["TINYCNN_BENCH_UNSET"] = ",".join(f"{v}={os.environ[v]}" for v in unset)
    return env


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "n/a"


def blas_name():
    import numpy as np
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}"
    except Exception:                       # older NumPy: no dict mode
        return "unknown"


def describe(threads, torch=None):
    """Markdown bullet list: date, CPU, versions, thread counts, load."""
    import numba
    import numpy as np

    unset = os.environ.get("TINYCNN_BENCH_UNSET", "")
    lines = [
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} "
        f"{platform.release()}",
        f"- Python {platform.python_version()}, NumPy {np.__version__} ({blas_name()}), "
        f"Numba {numba.__version__}, PyTorch {torch.__version__ if torch else 'not installed'}",
        f"- threads: {threads} for every pool, set explicitly (OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS')}, NUMBA_NUM_THREADS="
        f"{os.environ.get('NUMBA_NUM_THREADS')}, torch.set_num_threads("
        f"{torch.get_num_threads() if torch else '-'})). tinycnn's Numba loops are serial "
        "`nogil` functions that tinycnn runs on NUMBA_NUM_THREADS Python threads, one piece "
        "of the batch each (no Numba threading layer is started); inside tinycnn's kernels "
        "BLAS runs single-threaded (switched through threadpoolctl, restored after) on "
        "fixed-size chunks of each GEMM that the threads share out.",
        "- OpenBLAS tuning variables: "
        + (f"unset for this run ({unset})" if unset else "none were set"),
        f"- load average at start: {os.environ.get('TINYCNN_BENCH_LOAD0', 'n/a')}, "
        f"at end: {load_average()} (other processes share these cores: read ratios, "
        "measured in one process, before absolute times)",
    ]
    return "\n".join(lines)
