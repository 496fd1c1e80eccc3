"""Partial credit per group from the contract tier, per submission, and the tables it makes.

A group's score is ``weight * passed / counted`` over its ``contract`` tests, where ``counted``
holds every contract test that passed, failed, errored or timed out, every contract test
skipped because a name it tests is not implemented, and every contract test that never ran
because the submission's time ran out. Skipped tests never count as passed; tests skipped for
another reason (nothing the submission did) are left out. A group with no contract test that
passed, failed or errored scores 0 and says "not implemented".
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from corenet.checking.results import CheckReport, GroupReport
from corenet.checking.targets import NOT_IMPLEMENTED

GRADED_TIER = "contract"
#: a submission's status: graded normally, stopped by its time limit, or could not (fully) run
OK, TIMEOUT, ERROR = "ok", "timeout", "error"
FORMAT = 1


@dataclass
class GroupScore:
    """One group's credit in one submission."""

    group: str
    weight: float
    score: float = 0.0
    #: scored / not implemented / skipped / timeout / error
    status: str = NOT_IMPLEMENTED
    passed: int = 0
    failed: int = 0
    errors: int = 0
    not_implemented: int = 0
    not_run: int = 0
    message: str = ""

    @property
    def counted(self) -> int:
        return self.passed + self.failed + self.errors + self.not_implemented + self.not_run

    def to_json(self) -> dict:
        return {"weight": self.weight, "score": round(self.score, 4), "status": self.status, "passed": self.passed,
                "failed": self.failed, "errors": self.errors, "not_implemented": self.not_implemented,
                "not_run": self.not_run, "message": self.message}


@dataclass
class SubmissionGrade:
    """A submission's scores, status (ok / timeout / error) and the failures a teacher can forward."""

    name: str
    kind: str
    path: str
    groups: dict[str, GroupScore]
    status: str = OK
    message: str = ""
    seconds: float = 0.0
    not_implemented: list[str] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(group.score for group in self.groups.values())

    @property
    def note(self) -> str:
        """One line for the table: the problem, else the first contract failure of the heaviest group."""
        if self.message:
            return self.message
        for group in sorted(self.groups.values(), key=lambda g: -g.weight):
            if group.status == "scored" and group.message:
                return f"{group.group}: {group.message}"
        return ""

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "path": self.path, "status": self.status,
                "message": self.message, "note": self.note, "total": round(self.total, 4),
                "seconds": round(self.seconds, 2),
                "groups": {name: group.to_json() for name, group in self.groups.items()},
                "not_implemented": self.not_implemented, "failures": self.failures}


def _not_implemented_skip(message: str) -> bool:
    return message.endswith(f": {NOT_IMPLEMENTED}")


def score_group(name: str, weight: float, report: GroupReport | None, collected: set[str] = frozenset()) -> GroupScore:
    """Credit for group ``name`` from its contract tests; ``collected`` are the contract test ids the run
    collected for it (those without a result never ran and count as not passed)."""
    result = GroupScore(name, weight)
    if report is None:
        result.message = "not run"
        return result
    contract = {tid: record for tid, record in report.tests.items() if record.tier == GRADED_TIER}
    other_skips = []
    for record in contract.values():
        if record.outcome == "passed":
            result.passed += 1
        elif record.outcome == "failed":
            result.failed += 1
        elif record.outcome in ("error", "timeout"):
            result.errors += 1
        elif _not_implemented_skip(record.message):
            result.not_implemented += 1
        else:
            other_skips.append(record.message)
    result.not_run = len(set(collected) - set(report.tests))
    ran = result.passed + result.failed + result.errors
    if result.passed and result.counted:
        result.score = weight * result.passed / result.counted
    if report.problem in (TIMEOUT, ERROR):
        result.status, result.message = report.problem, report.message
    elif ran:
        result.status = "scored"
        failures = [r.message for r in contract.values() if r.outcome in ("failed", "error", "timeout")]
        result.message = failures[0] if failures else ""
    elif other_skips and not result.not_implemented:
        result.status, result.message = "skipped", other_skips[0]
    else:
        result.status = NOT_IMPLEMENTED
        result.message = report.message or f"not implemented: {', '.join(report.names)}"
    return result


def collected_contract_tests(events: list[dict]) -> dict[str, set[str]]:
    """Group -> ids of its contract tests, from the ``collected`` events of every pytest process."""
    found: dict[str, set[str]] = {}
    for event in events:
        if event.get("event") == "collected":
            for test in event.get("tests", []):
                if test.get("group") and test.get("tier") == GRADED_TIER:
                    found.setdefault(test["group"], set()).add(test["id"])
    return found


def grade_report(name: str, kind: str, path: str, report: CheckReport, events: list[dict],
                 weights: dict[str, float]) -> SubmissionGrade:
    """Score a check's report with ``weights``; the submission's status and message from its problems."""
    collected = collected_contract_tests(events)
    groups = {group: score_group(group, weight, report.groups.get(group), collected.get(group, set()))
              for group, weight in weights.items()}
    graded_names = {name for group in weights if group in report.groups for name in report.groups[group].names}
    grade = SubmissionGrade(name, kind, path, groups, seconds=report.seconds,
                            not_implemented=[n for n in report.not_implemented if n in graded_names])
    grade.failures = [{"group": group_name, "test": tid, "tier": record.tier, "outcome": record.outcome,
                       "message": record.message}
                      for group_name, group in report.groups.items() for tid, record in group.failures()]
    timeouts = [f"{g.group}: {g.message}" for g in groups.values() if g.status == TIMEOUT]
    broken = [info["message"] for _, info in sorted(report.implementations.items()) if info["status"] == ERROR]
    errors = [f"{g.group}: {g.message}" for g in groups.values() if g.status == ERROR]
    if timeouts:
        grade.status, grade.message = TIMEOUT, _first(timeouts, "group")
    elif broken:
        grade.status, grade.message = ERROR, _first(broken, "name")
    elif errors:
        grade.status, grade.message = ERROR, _first(errors, "group")
    return grade


def failed_grade(name: str, kind: str, path: str, weights: dict[str, float], status: str, message: str,
                 seconds: float = 0.0) -> SubmissionGrade:
    """A submission that could not be checked at all: every group 0, with the reason."""
    groups = {group: GroupScore(group, weight, status=status, message=message) for group, weight in weights.items()}
    return SubmissionGrade(name, kind, path, groups, status=status, message=message, seconds=seconds)


def _first(messages: list[str], what: str) -> str:
    more = len(messages) - 1
    return messages[0] + (f" (and {more} more {what}{'s' if more > 1 else ''})" if more else "")


# -- tables -------------------------------------------------------------------------------------
def ordered_groups(weights: dict[str, float]) -> list[str]:
    """The table's groups, heaviest first, then by name (the order they run in and the columns)."""
    return sorted(weights, key=lambda group: (-weights[group], group))


def to_json(grades: list[SubmissionGrade], weights: dict[str, float], *, shard: str | None = None,
            timeout: float | None = None) -> dict:
    return {"format": FORMAT, "weights": weights, "max_total": sum(weights.values()), "shard": shard,
            "timeout": timeout, "submissions": [grade.to_json() for grade in grades]}


def csv_columns(groups: list[str]) -> list[str]:
    return ["submission", "kind", "status", "total", *groups, "note"]


def to_csv(grades: list[SubmissionGrade], groups: list[str]) -> str:
    """One row per submission: status, total, each group's score (in ``groups`` order), the note."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_columns(groups))
    for grade in grades:
        writer.writerow([grade.name, grade.kind, grade.status, f"{grade.total:g}",
                         *(f"{grade.groups[group].score:g}" for group in groups), grade.note])
    return out.getvalue()


def cell(score: GroupScore) -> str:
    """A table cell: the score, and why it is 0 or partial when the group did not run normally."""
    text = f"{score.score:.4g}"
    if score.status == "scored":
        return text
    short = {NOT_IMPLEMENTED: "n/i"}.get(score.status, score.status)
    return f"{text} {short}"
