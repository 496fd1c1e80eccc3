"""The benchmark suite: corenet (either tier) against PyTorch CPU on the workloads W1-W7.

``corenet bench`` and ``benchmarks/run.py`` both call :func:`run_and_report`.
Everything heavy (NumPy layers, PyTorch) is imported only when a run starts.

Modules: :mod:`~corenet_bench.workloads` (what W1-W7 are and their targets),
:mod:`~corenet_bench.tiers` (the reference or fast tier's view of the registry),
:mod:`~corenet_bench.corenet_cases` / :mod:`~corenet_bench.torch_cases` (one
training step of each workload per framework), :mod:`~corenet_bench.measure`
(interleaved timing, peak memory), :mod:`~corenet_bench.startup` (W7),
:mod:`~corenet_bench.environment` (threads, machine), :mod:`~corenet_bench.runner`
(the JSON result), :mod:`~corenet_bench.report` (text and markdown tables).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

WORKLOAD_KEYS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")
DTYPE_CHOICES = {"float64": ("float64",), "float32": ("float32",), "both": ("float64", "float32")}


def parse_workloads(names: list[str] | None) -> list[str]:
    """Normalise workload names (``w1``, ``W1``, ``1``; comma lists allowed); all when empty."""
    if not names:
        return list(WORKLOAD_KEYS)
    chosen: list[str] = []
    for name in names:
        for part in str(name).split(","):
            key = part.strip().upper()
            key = key if key.startswith("W") else f"W{key}"
            if key not in WORKLOAD_KEYS:
                raise ValueError(f"unknown workload {part.strip()!r}; choose from {', '.join(WORKLOAD_KEYS)}")
            if key not in chosen:
                chosen.append(key)
    return chosen


def parse_dtypes(dtype: str) -> tuple[str, ...]:
    """``float64``, ``float32`` or ``both`` -> the dtype names to run."""
    try:
        return DTYPE_CHOICES[dtype.strip().lower()]
    except KeyError:
        raise ValueError(f"--dtype must be one of {', '.join(DTYPE_CHOICES)}, got {dtype!r}") from None


def run_and_report(
    workloads: list[str] | None = None,
    dtype: str = "both",
    repeats: int = 10,
    warmup: int = 3,
    json_path: str | Path | None = None,
    use_torch: bool = True,
    out: TextIO | None = None,
    registry=None,
    threads: int | None = None,
    impl: str | None = None,
) -> dict:
    """Run the chosen workloads, print the table to ``out`` and optionally write JSON; return the results.

    ``impl``: ``reference``, ``fast`` or ``both`` tiers; None measures the registry's selection.
    """
    from corenet_bench.report import text_report
    from corenet_bench.runner import run
    from corenet_bench.tiers import parse_impl

    out = out or sys.stdout
    if repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"--warmup must be at least 0, got {warmup}")
    tiers = parse_impl(impl)
    results = run(
        parse_workloads(workloads),
        parse_dtypes(dtype),
        repeats=repeats,
        warmup=warmup,
        use_torch=use_torch,
        registry=registry,
        threads=threads,
        tiers=tiers,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    out.write(text_report(results))
    if json_path is not None:
        path = Path(json_path)
        path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        out.write(f"results written to {path}\n")
    return results
