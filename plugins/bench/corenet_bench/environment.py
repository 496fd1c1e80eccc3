"""The machine a benchmark runs on: BLAS threads, CPU, library versions, relevant environment."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import sys

#: Environment variables that change NumPy's or PyTorch's speed; recorded with every run.
SPEED_VARIABLES = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def blas_threads() -> tuple[int, str]:
    """How many threads NumPy's BLAS uses, and how that was found out.

    threadpoolctl (installed with scikit-learn, a corenet dependency) asks the
    loaded BLAS library itself; without it the usual environment variables are
    read, and failing those every logical core is assumed (OpenBLAS's default).
    """
    import numpy  # noqa: F401  (threadpoolctl only sees libraries already loaded)

    try:
        from threadpoolctl import threadpool_info

        blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
        if blas:
            return int(blas[0]["num_threads"]), f"threadpoolctl ({blas[0].get('internal_api', 'blas')})"
    except Exception:  # threadpoolctl missing or unable to inspect the library
        pass
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(variable, "")
        if value.isdigit() and int(value) > 0:
            return int(value), f"${variable}"
    return os.cpu_count() or 1, "os.cpu_count() (assumed)"


@contextlib.contextmanager
def limited_blas_threads(threads: int | None):
    """Run the block with NumPy's BLAS limited to ``threads`` (no limit when None); needs threadpoolctl."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ValueError("--threads needs threadpoolctl; set OPENBLAS_NUM_THREADS for the command instead") \
            from None
    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(busy CPU seconds of the whole machine, elapsed CPU capacity in seconds, this process's CPU seconds).

    Read from /proc/stat (Linux); None elsewhere. Two snapshots give :func:`foreign_cpu_share`.
    """
    try:
        with open("/proc/stat", encoding="utf-8") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    own = os.times()
    return (sum(fields) - idle) / ticks, sum(fields) / ticks, own.user + own.system + own.children_user \
        + own.children_system


def foreign_cpu_share(start, end) -> float | None:
    """Share of the machine's CPU capacity that other processes used between two :func:`cpu_snapshot`."""
    if start is None or end is None or end[1] <= start[1]:
        return None
    foreign = (end[0] - start[0]) - (end[2] - start[2])
    return round(min(1.0, max(0.0, foreign / (end[1] - start[1]))), 3)


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def blas_description() -> str:
    """NumPy's BLAS as ``name version`` (``unknown`` if NumPy does not say)."""
    import numpy as np

    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name', 'blas')} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy without mode="dicts"
        return "unknown"


def machine_info(torch_module=None) -> dict:
    """Everything a reader needs to judge the figures: date, CPU, versions, threads, load, environment."""
    import numpy as np

    threads, source = blas_threads()
    try:
        load = [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "blas": blas_description(),
        "numpy_blas_threads": threads,
        "numpy_blas_threads_source": source,
        "torch": getattr(torch_module, "__version__", None),
        "torch_threads": torch_module.get_num_threads() if torch_module is not None else None,
        "load_average_at_start": load,
        "environment": {name: os.environ.get(name) for name in SPEED_VARIABLES},
    }
