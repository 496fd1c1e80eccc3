"""Run the workloads and collect one JSON-ready result dictionary (schema ``corenet-bench/2``).

Result layout::

    {"schema", "machine": {...}, "settings": {..., "impl": [tiers]},
     "torch": {"available", "version", "threads", "reason"},
     "results": [{"workload", "title", "dtype", "impl" (selected | reference | fast),
                  "status" (ok | skipped | error), "note",
                  "optimizer", "corenet": {median_ms, min_ms, max_ms, times_ms, peak_bytes, held_bytes,
                                           kernel: {page_faults_per_step, system_ms_per_step}, dtypes},
                  "torch": {... same ...} | null, "ratio" (of the medians), "ratio_of_minimums",
                  "target", "meets_target" (judged on the medians; fast and selected rows),
                  "ratio_to_fast", "reference_target", "meets_reference_target" (reference rows
                  measured beside a fast row)}, ...]}

With several tiers (``--impl both``) every tier's step and PyTorch's are interleaved
in one run, so all ratios of a workload come from the same minutes. W7 rows have
``dtype`` and ``impl`` null, ``command`` set and ``target_ms`` instead of ``target``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from corenet_bench import corenet_cases, measure, torch_cases
from corenet_bench import workloads as wl
from corenet_bench.environment import (
    blas_threads,
    cpu_snapshot,
    foreign_cpu_share,
    limited_blas_threads,
    machine_info,
)
from corenet_bench.measure import (
    BLOCK,
    LEAD,
    held_bytes,
    interleaved,
    kernel_cost,
    numpy_peak_bytes,
    summarize,
    torch_peak_bytes,
)
from corenet_bench.startup import time_command
from corenet_bench.tiers import TierRegistry

SCHEMA = "corenet-bench/2"
TORCH_MISSING = "PyTorch is not installed (pip install 'corenet[bench]'); showing corenet's own figures only"


def load_torch(use_torch: bool = True):
    """(torch module or None, the reason it is missing or '')."""
    if not use_torch:
        return None, "PyTorch comparison switched off (--no-torch)"
    try:
        import torch
    except ImportError:
        return None, TORCH_MISSING
    return torch, ""


def run(
    keys: list[str],
    dtypes: tuple[str, ...],
    repeats: int = 10,
    warmup: int = 3,
    use_torch: bool = True,
    registry=None,
    log: Callable[[str], None] = lambda line: None,
    threads: int | None = None,
    tiers: tuple[str, ...] = ("selected",),
) -> dict:
    """Measure every workload in ``keys`` for every dtype in ``dtypes`` and tier in ``tiers``
    (``selected``, ``reference``, ``fast``); return the result dictionary.

    ``threads`` limits NumPy's BLAS (and so PyTorch, which follows it) to that many threads.
    """
    if registry is None:
        from corenet.plugins import get_registry

        registry = get_registry()
    torch, reason = load_torch(use_torch)
    if torch is None:
        log(reason)
    previous_threads = torch.get_num_threads() if torch is not None else None
    with limited_blas_threads(threads):
        torch_threads = None
        if torch is not None:  # PyTorch gets as many threads as NumPy's BLAS
            torch_threads = blas_threads()[0]
            torch.set_num_threads(torch_threads)
        try:
            machine = machine_info(torch)
            start = cpu_snapshot()
            results = _all_rows(keys, dtypes, registry, tiers, torch, repeats, warmup, log)
            machine["load_average_at_end"] = _load_average()
            # how busy the machine was with other work while we measured (0 = quiet)
            machine["foreign_cpu_share"] = foreign_cpu_share(start, cpu_snapshot())
        finally:
            if torch is not None:
                torch.set_num_threads(previous_threads)
    return {
        "schema": SCHEMA,
        "machine": machine,
        "settings": {"repeats": repeats, "warmup": warmup, "dtypes": list(dtypes), "workloads": list(keys),
                     "threads_limit": threads, "block": BLOCK, "lead": LEAD, "impl": list(tiers),
                     "settle_seconds": measure.SETTLE},
        "torch": {"available": torch is not None, "version": getattr(torch, "__version__", None),
                  "threads": torch_threads, "reason": reason},
        "results": results,
    }


def _load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _all_rows(keys, dtypes, registry, tiers, torch, repeats: int, warmup: int, log) -> list[dict]:
    results: list[dict] = []
    for key in keys:
        if key == "W7":
            results.extend(_startup_rows(repeats, warmup, log))
            continue
        for dtype in dtypes:
            log(f"{key} {dtype} ({', '.join(tiers)}) ...")
            results.extend(_step_rows(key, dtype, registry, tiers, torch, repeats, warmup))
    return results


def _base_row(key: str, dtype: str | None, tier: str | None = None) -> dict:
    workload = wl.WORKLOADS[key]
    judged = dtype is not None and tier != "reference"
    return {"workload": key, "title": workload.title, "dtype": dtype, "impl": tier, "status": "ok", "note": "",
            "optimizer": workload.optimizer, "corenet": None, "torch": None, "ratio": None,
            "ratio_of_minimums": None,
            "target": workload.targets.get(dtype) if judged else None, "meets_target": None,
            "ratio_to_fast": None, "reference_target": None, "meets_reference_target": None}


def _build(key: str, dtype: str, registry, tier: str, row: dict):
    """The corenet case of one tier, or None after marking ``row`` skipped or failed."""
    view = TierRegistry(registry, None if tier == "selected" else tier)
    if not view.covered:
        row.update(status="skipped", note=f"skipped: no implementation labelled {tier!r} is installed"
                   + (" (install the plugin corenet-fast)" if tier == "fast" else ""))
        return None
    try:
        case, held = held_bytes(lambda: corenet_cases.build(key, dtype, view), lambda case: case.step)
    except wl.Skip as exc:
        row.update(status="skipped", note=f"skipped: {exc}")
        return None
    except Exception as exc:  # a broken layer must not stop the other workloads
        row.update(status="error", note=f"corenet failed to build: {type(exc).__name__}: {exc}")
        return None
    row["held"] = held
    return case


def _step_rows(key: str, dtype: str, registry, tiers, torch, repeats: int, warmup: int) -> list[dict]:
    rows = {tier: _base_row(key, dtype, tier) for tier in tiers}
    cases = {}
    for tier, row in rows.items():
        case = _build(key, dtype, registry, tier, row)
        if case is not None:
            cases[tier] = case
    if not cases:
        return [_finish(row) for row in rows.values()]
    steps = {tier: case.step for tier, case in cases.items()}
    theirs, torch_note = None, ""
    if torch is not None:
        try:
            theirs = torch_cases.build(key, dtype, torch)
            steps["torch"] = theirs.step
        except Exception as exc:  # e.g. an op PyTorch lacks for this dtype: keep corenet's figures
            torch_note = f"PyTorch case failed: {type(exc).__name__}: {exc}"
    try:
        times = interleaved(steps, repeats, warmup)
    except Exception as exc:
        for tier in cases:
            rows[tier].update(status="error", note=f"a step failed: {type(exc).__name__}: {exc}")
        return [_finish(row) for row in rows.values()]
    torch_summary = None
    if theirs is not None:
        torch_summary = {**summarize(times["torch"]), "peak_bytes": torch_peak_bytes(torch, theirs.step),
                         "kernel": kernel_cost(theirs.step), "dtypes": theirs.dtypes()}
    for tier, case in cases.items():
        _fill(rows[tier], case, times[tier], torch_summary, torch_note, dtype)
    fast, reference = rows.get("fast"), rows.get("reference")
    if fast and reference and fast["corenet"] and reference["corenet"]:
        reference["ratio_to_fast"] = float(f"{reference['corenet']['median_ms'] / fast['corenet']['median_ms']:.4g}")
        if dtype in wl.WORKLOADS[key].reference_dtypes:
            reference["reference_target"] = wl.REFERENCE_TARGET
            reference["meets_reference_target"] = reference["ratio_to_fast"] <= wl.REFERENCE_TARGET
    return [_finish(row) for row in rows.values()]


def _fill(row: dict, case, times: list[float], torch_summary: dict | None, torch_note: str, dtype: str) -> None:
    notes = [note for note in (case.note, torch_note) if note]
    try:
        row["corenet"] = {**summarize(times), "peak_bytes": numpy_peak_bytes(case.step),
                          "held_bytes": row.get("held", 0),
                          "kernel": kernel_cost(case.step), "dtypes": case.dtypes()}
    except Exception as exc:
        row.update(status="error", note=f"corenet step failed: {type(exc).__name__}: {exc}")
        return
    if set(row["corenet"]["dtypes"]) != {dtype}:
        notes.append(f"corenet not {dtype} end to end: saw {', '.join(row['corenet']['dtypes'])}")
    if torch_summary is not None:
        row["torch"] = torch_summary
        row["ratio"] = float(f"{row['corenet']['median_ms'] / torch_summary['median_ms']:.4g}")
        # fastest step against fastest step: steadier than the medians when other jobs share the CPU
        row["ratio_of_minimums"] = float(f"{row['corenet']['min_ms'] / torch_summary['min_ms']:.4g}")
        if row["target"] is not None:
            row["meets_target"] = row["ratio"] <= row["target"]
    row["note"] = "; ".join(notes)


def _finish(row: dict) -> dict:
    row.pop("held", None)
    return row


def _startup_rows(repeats: int, warmup: int, log: Callable[[str], None]) -> list[dict]:
    rows = []
    for arguments in wl.STARTUP_COMMANDS:
        command = "corenet " + " ".join(arguments)
        log(f"W7 {command} ...")
        row = {**_base_row("W7", None), "command": command, "target_ms": wl.STARTUP_TARGET_MS}
        try:
            times = time_command(arguments, repeats, min(warmup, 1))
        except Exception as exc:
            row.update(status="error", note=str(exc))
        else:
            row["corenet"] = summarize(times)
            row["meets_target"] = row["corenet"]["median_ms"] < wl.STARTUP_TARGET_MS
        rows.append(row)
    return rows
