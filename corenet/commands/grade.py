"""``corenet grade``: score a class's submissions with the conformance groups' contract tier."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import typer

from corenet.commands.common import fail, print_table

NOTE_WIDTH = 70


def _output_path(option: str, value: Path | None) -> Path | None:
    """``value`` when its folder exists (checked before grading starts, not after hours of it)."""
    if value is not None and not value.resolve().parent.is_dir():
        raise fail(f"{option} {value}: the folder {value.resolve().parent} does not exist")
    return value


def grade(
    submissions_dir: Path = typer.Argument(
        ..., metavar="SUBMISSIONS_DIR", help="A folder with one sub-folder per submission: the course's layout "
        "(Layers/, Optimization/, NeuralNetwork.py, Models/) or a plugin project (pyproject.toml)."),
    weights_path: Path | None = typer.Option(
        None, "--weights", metavar="FILE", help="YAML or JSON mapping of group to weight (default: the course's "
        "table, see docs/grading.md). Only these groups run and count."),
    timeout: float = typer.Option(
        300.0, "--timeout", min=1.0, metavar="SECONDS", help="Time limit for a whole submission; what has not "
        "run by then is marked 'timeout' and scores 0."),
    group_timeout: float = typer.Option(
        120.0, "--group-timeout", min=1.0, metavar="SECONDS", help="Time limit per group within a submission "
        "(a group that hangs is stopped and the next group still runs)."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, metavar="N", help="Grade N submissions at a time."),
    shard_text: str | None = typer.Option(
        None, "--shard", metavar="I/N", help="Grade only shard I of N: every N-th submission in name order, "
        "starting at the I-th (split a class over N machines)."),
    json_path: Path | None = typer.Option(None, "--json", metavar="FILE", help="Also write the results as JSON."),
    csv_path: Path | None = typer.Option(None, "--csv", metavar="FILE", help="Also write one CSV row per "
                                         "submission."),
) -> None:
    """Grade every submission in SUBMISSIONS_DIR: partial credit per group from the contract tier.

    Each submission runs in its own processes (never in this one) and is never installed. A
    group scores weight * passed / counted over its contract tests; skipped tests never count
    as passed. Exit code 0 when grading completed, whatever the students scored; 2 for a usage
    error (found before anything runs).

    \b
    corenet grade submissions/ --jobs 2 --csv grades.csv
    corenet grade submissions/ --weights weights.yaml --shard 1/4 --json part1.json
    """
    from corenet.checking.groups import all_groups
    from corenet.grading.grade import grade_all
    from corenet.grading.score import cell, ordered_groups, to_csv, to_json
    from corenet.grading.submissions import find_submissions, parse_shard, shard
    from corenet.grading.weights import COURSE_WEIGHTS, WeightsError, check_groups, read_weights

    installed = {group.name: group for group in all_groups()}
    try:
        if weights_path is not None:
            weights, source = read_weights(weights_path), f"--weights {weights_path}"
        else:
            weights, source = dict(COURSE_WEIGHTS), "the course's weights table (pass --weights FILE to change it)"
        check_groups(weights, installed, source)
        index, count = parse_shard(shard_text) if shard_text is not None else (1, 1)
        submissions = shard(find_submissions(submissions_dir), index, count)
    except (WeightsError, ValueError) as exc:
        raise fail(str(exc)) from None
    _output_path("--json", json_path)
    _output_path("--csv", csv_path)
    columns = ordered_groups(weights)
    groups = [installed[name] for name in columns]
    shard_label = f"{index}/{count}" if shard_text is not None else None

    lock = threading.Lock()
    finished = [0]

    def progress(result) -> None:
        with lock:
            finished[0] += 1
            note = "" if result.status == "ok" else f" [{result.status}]"
            typer.echo(f"[{finished[0]}/{len(submissions)}] {result.name}: {result.total:g} / "
                       f"{sum(weights.values()):g}{note} ({result.seconds:.0f} s)", err=True)

    grades = grade_all(submissions, weights, groups, timeout=timeout, group_timeout=min(group_timeout, timeout),
                       jobs=jobs, done=progress)

    shown = [name for name in columns if weights[name] > 0] or columns
    rows = []
    for result in grades:
        note = result.note if len(result.note) <= NOTE_WIDTH else result.note[: NOTE_WIDTH - 3] + "..."
        rows.append([result.name, result.status, *(cell(result.groups[name]) for name in shown),
                     f"{result.total:g}", note])
    title = (f"corenet grade: {len(grades)} submission(s)" + (f", shard {shard_label}" if shard_label else "")
             + f", out of {sum(weights.values()):g}")
    print_table(title, ["submission", "status", *(f"{name} ({weights[name]:g})" for name in shown), "total",
                        "note"], rows)
    if json_path is not None:
        document = to_json(grades, weights, shard=shard_label, timeout=timeout)
        json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if csv_path is not None:
        csv_path.write_text(to_csv(grades, columns), encoding="utf-8")


def register(app: typer.Typer) -> None:
    app.command("grade")(grade)
