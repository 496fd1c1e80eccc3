"""Grade submissions: each is checked in its own processes within one time limit, several at a time."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from corenet.checking.check import run_check
from corenet.checking.course import course_targets
from corenet.checking.groups import names_of
from corenet.grading.plugin_project import ProjectError, read_project, registered_names
from corenet.grading.score import ERROR, TIMEOUT, SubmissionGrade, failed_grade, grade_report
from corenet.grading.submissions import PLUGIN, Submission
from corenet.plugins import TestGroup


def submission_targets(submission: Submission, groups: list[TestGroup],
                       timeout: float) -> tuple[dict[str, str | None], list[str]]:
    """Name -> target for every name the groups test, and the folders that go on ``sys.path``.

    A name the submission does not provide is explicitly not implemented (None): a grade never
    falls back to what is installed on the grading machine.
    """
    if submission.kind == PLUGIN:
        project = read_project(submission.path)
        provided: dict[str, str | None] = dict(registered_names(project, timeout))
        path = [str(project.root)]
    else:
        provided = course_targets(submission.path)
        path = [str(submission.path)]
    targets: dict[str, str | None] = {name: None for group in groups for name in names_of(group)}
    targets.update(provided)
    return targets, path


def grade_submission(submission: Submission, weights: dict[str, float], groups: list[TestGroup], *,
                     timeout: float, group_timeout: float | None = None) -> SubmissionGrade:
    """Check ``submission`` against ``groups`` (those of ``weights``) and score it.

    ``timeout`` limits the whole submission (reading a plugin project included), ``group_timeout``
    each group; the submission's code only ever runs in subprocesses.
    """
    started = time.monotonic()
    kind, path = submission.kind, str(submission.path)
    try:
        targets, pythonpath = submission_targets(submission, groups, timeout)
    except TimeoutError as exc:
        return failed_grade(submission.name, kind, path, weights, TIMEOUT, str(exc), time.monotonic() - started)
    except (ValueError, ProjectError) as exc:  # messages name the submission, not where the teacher keeps it
        message = str(exc).replace(path, submission.name)
        return failed_grade(submission.name, kind, path, weights, ERROR, message, time.monotonic() - started)
    remaining = round(max(timeout - (time.monotonic() - started), 1.0), 1)
    report, result = run_check(submission.name, kind, targets, groups, pythonpath=pythonpath, cwd=path,
                               timeout=group_timeout, total_timeout=remaining)
    grade = grade_report(submission.name, kind, path, report, result.events, weights)
    grade.seconds = time.monotonic() - started
    return grade


def grade_all(submissions: list[Submission], weights: dict[str, float], groups: list[TestGroup], *,
              timeout: float, group_timeout: float | None = None, jobs: int = 1,
              done: Callable[[SubmissionGrade], None] | None = None) -> list[SubmissionGrade]:
    """Grade every submission, ``jobs`` at a time; ``done`` is called as each finishes. Results in input order."""

    def one(submission: Submission) -> SubmissionGrade:
        grade = grade_submission(submission, weights, groups, timeout=timeout, group_timeout=group_timeout)
        if done is not None:
            done(grade)
        return grade

    if jobs <= 1:
        return [one(submission) for submission in submissions]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, submissions))
