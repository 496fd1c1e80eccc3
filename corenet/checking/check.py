"""One check: choose the groups for the targets, run them, fold the events into a report."""

from __future__ import annotations

from pathlib import Path

from corenet.checking.course import course_targets
from corenet.checking.groups import all_groups, groups_testing, names_of
from corenet.checking.results import CheckReport, build_report
from corenet.checking.runner import RunResult, run_groups
from corenet.checking.targets import is_file_spec, split_spec
from corenet.plugins import TestGroup


class CheckError(ValueError):
    """The check cannot start: an unknown group or name, a folder not in the course's layout..."""


def select_groups(wanted: list[str] | None, groups: list[TestGroup]) -> list[TestGroup]:
    """``groups`` restricted to the names in ``wanted`` (all when None); unknown names are an error."""
    if not wanted:
        return groups
    known = {group.name: group for group in all_groups()}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise CheckError(f"unknown test group(s): {', '.join(unknown)}; known groups: {', '.join(sorted(known))}")
    return [group for group in groups if group.name in wanted]


def testable_names() -> list[str]:
    return sorted({name for group in all_groups() for name in names_of(group)})


def absolute_spec(spec: str) -> str:
    """A file target with an absolute path (the check runs in another working directory)."""
    where, attribute = split_spec(spec)
    if is_file_spec(where):
        path = Path(where).expanduser()
        if not path.is_file():
            raise CheckError(f"{where}: no such file")
        return f"{path.resolve()}:{attribute}"
    return spec


def plan_class(spec: str, name: str | None) -> tuple[dict[str, str | None], list[TestGroup]]:
    """Targets and groups for ``module:Class`` / ``file.py:Class`` checked as ``name``."""
    try:
        _, attribute = split_spec(spec)
    except ValueError as exc:
        raise CheckError(str(exc)) from None
    name = name or attribute
    groups = groups_testing([name], all_groups())
    if not groups:
        raise CheckError(f"no conformance group tests {name!r}; pass --as NAME with one of: "
                         f"{', '.join(testable_names())}")
    return {name: absolute_spec(spec)}, groups


def plan_course(folder: Path) -> tuple[dict[str, str | None], list[TestGroup]]:
    """Targets and groups for a course-layout folder: every group that tests a course name."""
    try:
        targets = course_targets(folder)
    except ValueError as exc:
        raise CheckError(str(exc)) from None
    return targets, groups_testing(targets, all_groups())


def run_check(target: str, layout: str, targets: dict[str, str | None] | None, groups: list[TestGroup], *,
              pythonpath: list[str] = (), cwd: str | None = None, timeout: float | None = None,
              extra_args: list[str] = (), capture: bool = True,
              total_timeout: float | None = None) -> tuple[CheckReport, RunResult]:
    """Run ``groups`` against ``targets`` (None: the installed implementations) and report.

    ``timeout`` limits each group, ``total_timeout`` the whole run (see :func:`run_groups`).

    Groups whose every name is explicitly not implemented (a course folder without the file)
    are not run and reported "not implemented".
    """
    targets = targets or None
    absent = {name for name, spec in (targets or {}).items() if spec is None}
    runnable = [group for group in groups if not set(names_of(group)) <= absent]
    skipped = [group for group in groups if group not in runnable]
    result = run_groups(runnable, targets=targets, pythonpath=list(pythonpath), cwd=cwd, timeout=timeout,
                        extra_args=list(extra_args), capture=capture,
                        total_timeout=total_timeout) if runnable else RunResult()
    events = list(result.events)
    for group in skipped:
        events.append({"event": "not_implemented", "group": group.name,
                       "message": f"not implemented: {', '.join(names_of(group))}"})
    events.append({"event": "targets", "targets": {
        name: {"status": "not implemented", "source": "", "message": f"{name}: not implemented", "foreign": True}
        for name in sorted(absent)}})
    report = build_report(target, layout, groups, events, names_of)
    report.seconds = result.seconds
    return report, result
