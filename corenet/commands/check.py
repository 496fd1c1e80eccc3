"""``corenet check`` (test your own implementation) and ``corenet run-tests`` (test the installed ones)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from corenet.commands.common import fail as _fail

EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}




def _write_json(report, json_path: str | None) -> None:
    if json_path is None:
        return
    text = json.dumps(report.to_json(), indent=2)
    if json_path == "-":
        typer.echo(text)
    else:
        Path(json_path).write_text(text + "\n", encoding="utf-8")


def check(
    ctx: typer.Context,
    target: str | None = typer.Argument(
        None, help="What to check: module:Class, path/to/file.py:Class, or a folder in the course's layout "
        "(Layers/, Optimization/, NeuralNetwork.py, Models/). Default: the installed implementations."),
    as_name: str | None = typer.Option(
        None, "--as", metavar="NAME", help="The registry name a class implements, e.g. LSTM (default: the "
        "class's own name)."),
    layout: str | None = typer.Option(
        None, "--layout", metavar="LAYOUT", help="'course': TARGET is a folder in the course's layout (the "
        "default for folders)."),
    group: list[str] | None = typer.Option(
        None, "--group", "-g", help="Run only this conformance group (repeatable), e.g. TestLSTM."),
    json_path: str | None = typer.Option(
        None, "--json", metavar="FILE", help="Also write the results as JSON to FILE ('-': print JSON instead "
        "of text). Format: docs/checking.md."),
    timeout: float = typer.Option(
        120.0, "--timeout", min=1.0, metavar="SECONDS", help="Time limit per group; a group that runs longer "
        "is stopped and reported 'timeout', and the other groups still run (starting up gets at least 60 s)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show pytest's own output too."),
) -> None:
    """Check an implementation against the conformance tests: yours, a folder of them, or the installed ones.

    Every test belongs to a tier: `contract` (what the exercise asks; grading uses it),
    `reference` (training side by side with corenet's reference and PyTorch) and `corenet`
    (corenet's extras, skipped for your code). Exit code 0 when every test that ran passed.
    Arguments after `--` go to pytest, e.g. `corenet check my_relu.py:ReLU -- -k forward`.

    \b
    corenet check my_lstm.py:LSTM --as LSTM
    corenet check mypackage.layers:LSTM --as LSTM
    corenet check ./src --layout course --json results.json
    """
    from corenet.checking.check import CheckError, plan_class, plan_course, run_check, select_groups
    from corenet.checking.groups import all_groups

    if layout not in (None, "course"):
        raise _fail(f"--layout {layout}: the only layout is 'course'")
    pythonpath: list[str] = []
    cwd = None
    try:
        if target is None:
            if as_name is not None or layout is not None:
                raise CheckError("--as and --layout need a TARGET")
            description, kind, targets, groups = "installed implementations", "installed", None, all_groups()
        elif layout == "course" or (Path(target).is_dir() and ":" not in target):
            if as_name is not None:
                raise CheckError("--as names the class of a single target; a course folder maps its files onto "
                                 "names itself")
            folder = Path(target).resolve()
            targets, groups = plan_course(folder)
            description, kind = str(target), "course"
            pythonpath, cwd = [str(folder)], str(folder)
        else:
            targets, groups = plan_class(target, as_name)
            description, kind = f"{target} as {next(iter(targets))}", "class"
            pythonpath = [str(Path.cwd())]
        groups = select_groups(group, groups)
    except CheckError as exc:
        raise _fail(str(exc)) from None
    if not groups:
        raise _fail("none of the selected groups tests this target")
    report, result = run_check(description, kind, targets, groups, pythonpath=pythonpath, cwd=cwd,
                               timeout=timeout, extra_args=list(ctx.args), capture=not verbose)
    if json_path != "-":
        for line in report.lines():
            typer.echo(line)
    _write_json(report, json_path)
    if not report.tests_ran and result.output.strip() and not verbose:
        typer.echo(result.output.strip().splitlines()[-1], err=True)
    raise typer.Exit(0 if report.passed else 1)


def run_tests(
    ctx: typer.Context,
    group: list[str] | None = typer.Option(
        None, "--group", "-g", help="Conformance group to run (repeatable), e.g. TestRNN. Default: all."
    ),
    bonus: bool = typer.Option(False, "--bonus", help="Print a table of groups, pass/fail and their weights."),
    list_groups: bool = typer.Option(False, "--list", help="List the known groups and exit."),
    json_path: str | None = typer.Option(
        None, "--json", metavar="FILE", help="Also write the results as JSON to FILE (format: docs/checking.md)."),
    timeout: float | None = typer.Option(
        None, "--timeout", min=1.0, metavar="SECONDS", help="Time limit per group (default: none)."),
) -> None:
    """Run the conformance tests against the installed implementations (the registry's selection).

    A name provided by several plugins is tested in the implementation the registry selects
    (`corenet list-layers` marks it; `corenet --impl LABEL run-tests ...` picks another).
    Arguments after `--` go to pytest, e.g. `corenet run-tests -g TestConv -- -x -q`.
    """
    from corenet.checking.check import CheckError, run_check, select_groups
    from corenet.checking.groups import all_groups, names_of
    from corenet.commands.common import table as _table

    groups = all_groups()
    if list_groups:
        _table("conformance groups", ["group", "tests", "distribution", "weight"],
               [[g.name, ", ".join(names_of(g)), g.distribution, f"{g.weight:g}"] for g in groups])
        return
    try:
        groups = select_groups(group, groups)
    except CheckError as exc:
        raise _fail(str(exc)) from None
    report, result = run_check("installed implementations", "installed", None, groups, timeout=timeout,
                               extra_args=list(ctx.args), capture=False)
    typer.echo("")
    for line in report.lines()[1:]:
        typer.echo(line)
    _write_json(report, json_path)
    if bonus:
        earned = sum(g.weight for g in report.groups.values() if g.status == "passed")
        total = sum(g.weight for g in report.groups.values())
        rows = []
        for g in report.groups.values():
            counts = {o: sum(t[o] for t in g.tiers().values()) for o in ("passed", "failed", "skipped")}
            rows.append([g.name, next(x.distribution for x in groups if x.name == g.name), g.status,
                         str(counts["passed"]), str(counts["failed"]), str(counts["skipped"]), f"{g.weight:g}"])
        _table("bonus", ["group", "distribution", "status", "passed", "failed", "skipped", "weight"], rows)
        typer.echo(f"bonus points: {earned:g} / {total:g}")
    raise typer.Exit(result.exit_code if report.passed else max(result.exit_code, 1))


def register(app: typer.Typer) -> None:
    app.command("check", context_settings=EXTRA_ARGS)(check)
    app.command("run-tests", context_settings=EXTRA_ARGS)(run_tests)
