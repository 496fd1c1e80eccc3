"""Tables from a benchmark result dictionary: plain text for the terminal, markdown for the README."""

from __future__ import annotations


def describe_machine(results: dict) -> str:
    """One line: CPU, cores, NumPy/BLAS with threads, PyTorch with threads, date."""
    m = results["machine"]
    torch = results["torch"]
    torch_part = (f"PyTorch {torch['version']} ({torch['threads']} threads)" if torch["available"]
                  else "PyTorch not measured")
    env = ", ".join(f"{k}={v}" for k, v in m.get("environment", {}).items() if v is not None)
    foreign = m.get("foreign_cpu_share")
    return (f"{m['cpu']}, {m['logical_cores']} logical cores; NumPy {m['numpy']} ({m['blas']}, "
            f"{m['numpy_blas_threads']} BLAS threads); {torch_part}; Python {m['python']}; "
            f"{m['date'][:10]} {m['date'][11:16]} UTC"
            + (f"; other processes used {foreign:.0%} of the CPU meanwhile" if foreign is not None else "")
            + (f"; environment: {env}" if env else "; no OpenBLAS/OMP variables set"))


def describe_settings(results: dict) -> str:
    s = results["settings"]
    return (f"Median of {s['repeats']} steps after {s['warmup']} warm-up steps; each step is forward + "
            f"backward + parameter update; corenet and PyTorch interleaved in one process (alternating blocks "
            f"of {s.get('block', 1)} timed steps, {_untimed(s.get('lead', 0), s.get('settle_seconds'))} after each "
            f"switch). 'ratio' is "
            f"corenet's median over PyTorch's (lower is better for corenet; the fast tier's targets are judged on "
            f"it), 'reference / fast' the reference tier's median over the fast tier's (measured in the same "
            f"interleaved run), 'ratio of fastest' compares the fastest steps.")


def _untimed(lead: int, settle: float | None = None) -> str:
    count, noun = {0: "no", 1: "one"}.get(lead, str(lead)), "step" if lead in (0, 1) else "steps"
    if settle:  # results from before the settle time was recorded have none
        return f"untimed steps for at least {settle:g} s ({count} {noun} at least)"
    return f"{count} untimed {noun}"


def verdict(row: dict) -> str:
    """'met', 'missed: 2.5x the target', 'no target' or the row's status (reference rows: against the fast tier)."""
    if row["status"] != "ok":
        return row["status"]
    if row.get("impl") == "reference":
        if row.get("reference_target") is None:
            return "no target"
        return "met" if row["meets_reference_target"] else \
            f"missed: {row['ratio_to_fast'] / row['reference_target']:.1f}x the target"
    if row["workload"] == "W7":
        if row["meets_target"] is None:
            return ""
        return "met" if row["meets_target"] else \
            f"missed by {row['corenet']['median_ms'] - row['target_ms']:.0f} ms"
    if row["target"] is None:
        return "no target"
    if row["ratio"] is None:
        return "no PyTorch"
    return "met" if row["meets_target"] else f"missed: {row['ratio'] / row['target']:.1f}x the target"


def _ms(summary: dict | None) -> str:
    if summary is None:
        return "-"
    value = summary["median_ms"]
    return f"{value:.0f}" if value >= 100 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _mb(summary: dict | None) -> str:
    peak = None if summary is None else summary.get("peak_bytes")
    return "-" if peak is None else f"{peak / 2**20:.1f}"


def _held(summary: dict | None) -> str:
    held = None if summary is None else summary.get("held_bytes")
    return "" if not held else f" (held {held / 2**20:.1f})"


def _target(row: dict) -> str:
    if row["workload"] == "W7":
        return f"< {row['target_ms']:.0f} ms"
    if row.get("impl") == "reference":
        return "-" if row.get("reference_target") is None else f"<= {row['reference_target']:g}x fast"
    return "-" if row["target"] is None else f"<= {row['target']:g}"


def rows(results: dict) -> list[list[str]]:
    """The table body: workload, what, dtype, tier, corenet ms, PyTorch ms, ratio, reference/fast, target,
    verdict, ratio of fastest, peak MiB."""
    body = []
    for row in results["results"]:
        what = row.get("command") if row["workload"] == "W7" else row["title"]
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        to_fast = "-" if row.get("ratio_to_fast") is None else f"{row['ratio_to_fast']:.2f}"
        fastest = "-" if row.get("ratio_of_minimums") is None else f"{row['ratio_of_minimums']:.2f}"
        body.append([row["workload"], what, row["dtype"] or "-", row.get("impl") or "-", _ms(row["corenet"]),
                     _ms(row["torch"]), ratio, to_fast, _target(row), verdict(row), fastest,
                     f"{_mb(row['corenet'])}{_held(row['corenet'])} / {_mb(row['torch'])}"])
    return body


HEADER = ["", "workload", "dtype", "tier", "corenet ms", "PyTorch ms", "ratio", "reference / fast", "target",
          "verdict", "ratio of fastest", "step MiB corenet (held) / PyTorch"]


def notes(results: dict) -> list[str]:
    """Footnotes: skipped workloads, dtype problems, a missing PyTorch."""
    lines = [f"{row['workload']} {row['dtype'] or row.get('command', '')}"
             f"{' ' + row['impl'] if row.get('impl') else ''}: {row['note']}"
             for row in results["results"] if row["note"]]
    lines += [_kernel_note(row) for row in results["results"] if _kernel_note(row)]
    if not results["torch"]["available"]:
        lines.append(results["torch"]["reason"])
    return lines


def _kernel_note(row: dict) -> str:
    """A hint when corenet spent over 10% of a step in the kernel (page faults of fresh temporaries)."""
    kernel = (row.get("corenet") or {}).get("kernel")
    if not kernel or row["corenet"]["median_ms"] <= 0:
        return ""
    share = kernel["system_ms_per_step"] / row["corenet"]["median_ms"]
    if share <= 0.10:
        return ""
    return (f"{row['workload']} {row['dtype']}: corenet spent {kernel['system_ms_per_step']:.1f} ms per step in "
            f"the kernel ({kernel['page_faults_per_step']:.0f} page faults): large temporaries come back as "
            f"fresh pages each step; reusing buffers would save that")


def text_report(results: dict) -> str:
    """A fixed-width table for the terminal."""
    body = rows(results)
    widths = [max(len(line[i]) for line in [HEADER, *body]) for i in range(len(HEADER))]
    numeric = {4, 5, 6, 7, 10}

    def fmt(line: list[str]) -> str:
        cells = [cell.rjust(width) if i in numeric else cell.ljust(width)
                 for i, (cell, width) in enumerate(zip(line, widths))]
        return "  ".join(cells).rstrip()

    out = [describe_machine(results), describe_settings(results), "", fmt(HEADER),
           fmt(["-" * w for w in widths]), *(fmt(line) for line in body)]
    out += ["", *notes(results)] if notes(results) else []
    return "\n".join(out) + "\n"


def markdown_report(results: dict) -> str:
    """The README's performance section body: machine and date, the table, footnotes."""
    header = ["", *HEADER[1:]]
    align = ["---", "---", "---", "---", "---:", "---:", "---:", "---:", "---", "---", "---:", "---:"]
    out = [f"Measured on {describe_machine(results)}.", "", describe_settings(results), "",
           "| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in rows(results)]
    footnotes = notes(results)
    if footnotes:
        out += ["", *(f"- {line}" for line in footnotes)]
    return "\n".join(out) + "\n"


def worst_of_table(runs: list[dict]) -> str:
    """Issue 12's table from several runs: per workload and dtype the worst (highest) fast-tier ratio to
    PyTorch and reference/fast ratio over the runs, medians and fastest steps, with each run's load."""
    cells: dict[tuple[str, str], dict[str, list[float]]] = {}
    for results in runs:
        for row in results["results"]:
            if row["workload"] == "W7" or row["status"] != "ok":
                continue
            cell = cells.setdefault((row["workload"], row["dtype"]), {})
            values = {"fast": row["ratio"], "fast fastest": row["ratio_of_minimums"]} if row["impl"] in (
                "fast", "selected") else {"reference": row.get("ratio_to_fast")}
            if row["impl"] == "reference" and row.get("corenet") and row.get("ratio_to_fast") is not None:
                fast_row = next(r for r in results["results"] if r["workload"] == row["workload"]
                                and r["dtype"] == row["dtype"] and r["impl"] == "fast")
                values["reference fastest"] = row["corenet"]["min_ms"] / fast_row["corenet"]["min_ms"]
            for name, value in values.items():
                if value is not None:
                    cell.setdefault(name, []).append(value)
    targets = {(key, dtype): (workload.targets.get(dtype), dtype in workload.reference_dtypes)
               for key, workload in _workloads().items() for dtype in ("float64", "float32")}

    def worst(cell: dict, name: str) -> str:
        return f"{max(cell[name]):.2f}" if cell.get(name) else "-"

    out = [f"Worst of {len(runs)} runs (load averages at start: "
           + "; ".join(", ".join(f"{v:g}" for v in (r["machine"].get("load_average_at_start") or []))
                       for r in runs) + ").", "",
           "| workload | dtype | fast / PyTorch (target) | fastest steps | reference / fast (target) | fastest steps |",
           "|---|---|---|---|---|---|"]
    for (key, dtype), cell in sorted(cells.items()):
        target, judged = targets.get((key, dtype), (None, False))
        fast_target = f" (≤ {target:g})" if target is not None else ""
        reference_target = f" (≤ {_reference_target():g})" if judged else ""
        out.append(f"| {key} | {dtype} | {worst(cell, 'fast')}{fast_target} | {worst(cell, 'fast fastest')} | "
                   f"{worst(cell, 'reference')}{reference_target} | {worst(cell, 'reference fastest')} |")
    return "\n".join(out) + "\n"


def _workloads():
    from corenet_bench.workloads import WORKLOADS

    return WORKLOADS


def _reference_target() -> float:
    from corenet_bench.workloads import REFERENCE_TARGET

    return REFERENCE_TARGET
