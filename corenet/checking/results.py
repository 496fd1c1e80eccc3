"""A check's results: per group, per tier and per test, as JSON (``--json``) and as text.

The JSON document (``CheckReport.to_json``)::

    {"format": 1, "target": "my_lstm.py:LSTM", "layout": "class" | "course" | "installed",
     "passed": true | false,                 # every contract/reference/corenet test that ran passed
     "implementations": {NAME: {"status": "ok" | "not implemented" | "error",
                                "source": "...", "message": "...", "foreign": bool}},
     "not_implemented": [NAME, ...],
     "groups": {GROUP: {"names": [NAME, ...], "status": STATUS, "message": "one line",
                        "tiers": {TIER: {"passed": n, "failed": n, "skipped": n, "error": n, "timeout": n}},
                        "tests": {TEST_ID: {"tier": TIER, "outcome": OUTCOME, "message": "one line"}}}}}

STATUS is passed / failed / skipped / not implemented / timeout / error; OUTCOME is
passed / failed / skipped / error / timeout; TIER is contract / reference / corenet;
TEST_ID is ``test_file.py::TestClass::test_name[params]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from corenet.checking.pytest_plugin import FOREIGN_SKIP, TIERS
from corenet.checking.targets import NOT_IMPLEMENTED

OUTCOMES = ("passed", "failed", "skipped", "error", "timeout")
FORMAT = 1


@dataclass
class TestRecord:
    """One test's tier, outcome and one-line message."""

    tier: str
    outcome: str
    message: str = ""

    __test__ = False


@dataclass
class GroupReport:
    """One conformance group: the names it tests, its tests and a status."""

    name: str
    names: tuple[str, ...] = ()
    weight: float = 0.0
    tests: dict[str, TestRecord] = field(default_factory=dict)
    #: set when the group did not run normally: "not implemented", "timeout" or "error"
    problem: str | None = None
    message: str = ""

    def tiers(self) -> dict[str, dict[str, int]]:
        counts = {tier: dict.fromkeys(OUTCOMES, 0) for tier in TIERS}
        for record in self.tests.values():
            counts.setdefault(record.tier, dict.fromkeys(OUTCOMES, 0))[record.outcome] += 1
        return counts

    @property
    def status(self) -> str:
        if self.problem in ("timeout", "error"):
            return self.problem
        outcomes = {record.outcome for record in self.tests.values()}
        if outcomes & {"failed", "error", "timeout"}:
            return "failed"
        if self.problem == NOT_IMPLEMENTED:
            return NOT_IMPLEMENTED
        return "passed" if "passed" in outcomes else "skipped"

    def failures(self) -> list[tuple[str, TestRecord]]:
        return [(tid, r) for tid, r in self.tests.items() if r.outcome in ("failed", "error", "timeout")]

    def to_json(self) -> dict:
        return {"names": list(self.names), "status": self.status, "message": self.message, "weight": self.weight,
                "tiers": self.tiers(),
                "tests": {tid: {"tier": r.tier, "outcome": r.outcome, "message": r.message}
                          for tid, r in self.tests.items()}}


@dataclass
class CheckReport:
    """Everything one check found."""

    target: str
    layout: str
    groups: dict[str, GroupReport] = field(default_factory=dict)
    implementations: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def not_implemented(self) -> list[str]:
        return sorted(name for name, info in self.implementations.items() if info["status"] == NOT_IMPLEMENTED)

    @property
    def tests_ran(self) -> int:
        return sum(len(group.tests) for group in self.groups.values())

    @property
    def passed(self) -> bool:
        return all(group.status in ("passed", "skipped", NOT_IMPLEMENTED) for group in self.groups.values())

    def to_json(self) -> dict:
        return {"format": FORMAT, "target": self.target, "layout": self.layout, "passed": self.passed,
                "seconds": round(self.seconds, 2), "implementations": self.implementations,
                "not_implemented": self.not_implemented,
                "groups": {name: group.to_json() for name, group in self.groups.items()}}

    # -- text -----------------------------------------------------------------------------------
    def lines(self) -> list[str]:
        """One line per group and tier, then every failure with its one-line reason."""
        out = [f"corenet check: {self.target}"]
        width = max((len(name) for name in self.groups), default=5)
        for name, group in self.groups.items():
            if group.problem == NOT_IMPLEMENTED and not group.tests:
                out.append(f"{name:<{width}}  not implemented ({', '.join(group.names)})")
                continue
            for tier, counts in group.tiers().items():
                if not any(counts.values()):
                    continue
                parts = [f"{counts[o]} {o}" for o in OUTCOMES if counts[o] or o in ("passed", "failed")]
                note = ""
                if tier == "corenet" and counts["skipped"] and not (counts["passed"] or counts["failed"]):
                    note = "  (corenet's extras: not part of the exercise)" if self._all_foreign_skips(
                        group, tier) else ""
                out.append(f"{name:<{width}}  {tier:<9}  {', '.join(parts)}{note}")
            if group.problem in ("timeout", "error"):
                out.append(f"{name:<{width}}  {group.problem}: {group.message}")
        if self.not_implemented:
            out.append(f"not implemented: {', '.join(self.not_implemented)}")
        errors = [(n, i["message"]) for n, i in sorted(self.implementations.items()) if i["status"] == "error"]
        for name, message in errors:
            out.append(f"could not load {name}: {message}")
        failures = [(name, tid, record) for name, group in self.groups.items() for tid, record in group.failures()]
        if failures:
            out.append("")
            out.append("failures:")
            for _, tid, record in failures:
                out.append(f"  {tid} [{record.tier}] {record.outcome}: {record.message}")
        verdict = "passed" if self.passed else "FAILED"
        counted = sum(len(group.tests) for group in self.groups.values())
        out.append("")
        out.append(f"{verdict}: {len(self.groups)} groups, {counted} tests in {self.seconds:.1f} s")
        return out

    @staticmethod
    def _all_foreign_skips(group: GroupReport, tier: str) -> bool:
        return all(r.message == FOREIGN_SKIP for r in group.tests.values() if r.tier == tier)


def build_report(target: str, layout: str, groups, events: list[dict], group_names) -> CheckReport:
    """Fold a run's events (see :mod:`corenet.checking.pytest_plugin`, plus the runner's ``timeout``
    and ``not_run`` events) into a report over ``groups`` (TestGroup objects, in order)."""
    report = CheckReport(target, layout)
    for group in groups:
        report.groups[group.name] = GroupReport(group.name, tuple(group_names(group)), group.weight)
    for event in events:
        kind = event.get("event")
        group = report.groups.get(event.get("group") or "")
        if kind == "targets":  # every process resolves the names again; the first answer stands
            for name, info in event["targets"].items():
                report.implementations.setdefault(name, info)
        elif kind == "result" and group is not None:
            group.tests[event["id"]] = TestRecord(event["tier"], event["outcome"], event.get("message", ""))
        elif kind == "timeout" and group is not None:
            group.problem, group.message = "timeout", event["message"]
            if event.get("id"):
                group.tests[event["id"]] = TestRecord(event.get("tier", "contract"), "timeout", event["message"])
        elif kind in ("collect_error", "run_error") and group is not None:
            group.problem, group.message = "error", event["message"]
        elif kind == "run_error":
            for each in report.groups.values():
                if not each.tests and each.problem is None:
                    each.problem, each.message = "error", event["message"]
        elif kind == "not_implemented" and group is not None:
            group.problem, group.message = NOT_IMPLEMENTED, event["message"]
    for group in report.groups.values():
        if group.problem is None and group.names and all(
                report.implementations.get(n, {}).get("status") == NOT_IMPLEMENTED for n in group.names):
            group.problem = NOT_IMPLEMENTED
            group.message = f"not implemented: {', '.join(group.names)}"
    return report

