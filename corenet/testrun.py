"""Run conformance test groups with pytest and score them (``corenet run-tests``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from corenet.plugins import TestGroup


@dataclass
class GroupResult:
    """Outcome counts of one group's tests."""

    group: TestGroup
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def status(self) -> str:
        if self.failed:
            return "fail"
        if self.passed:
            return "pass"
        return "no tests"


class _GroupCollector:
    """pytest plugin: attributes every test report to the group whose file holds the test."""

    def __init__(self, groups: list[TestGroup]) -> None:
        self.results = {group.name: GroupResult(group) for group in groups}
        self._by_file = {}
        for group in groups:
            for path in group.paths:
                self._by_file[str(Path(path.split("::")[0]).resolve())] = group.name
        self._group_of: dict[str, str] = {}

    def pytest_collection_modifyitems(self, items) -> None:
        for item in items:
            name = self._by_file.get(str(Path(str(item.path)).resolve()))
            if name is not None:
                self._group_of[item.nodeid] = name

    def pytest_runtest_logreport(self, report) -> None:
        name = self._group_of.get(report.nodeid)
        if name is None:
            return
        result = self.results[name]
        if report.failed:
            result.failed += 1
        elif report.skipped and report.when in ("setup", "call"):
            result.skipped += 1
        elif report.passed and report.when == "call":
            result.passed += 1


def run_groups(groups: list[TestGroup], extra_args: list[str]) -> tuple[int, dict[str, GroupResult]]:
    """Run ``groups`` in one pytest session; return pytest's exit code and per-group results."""
    import pytest

    paths = [path for group in groups for path in group.paths]
    rootdir = os.path.commonpath([str(Path(p.split("::")[0]).resolve().parent) for p in paths])
    collector = _GroupCollector(groups)
    args = [
        "-c", os.devnull,  # ignore any project ini: the installed tests carry their own settings
        "--rootdir", rootdir,
        "--import-mode=importlib",
        "-p", "no:cacheprovider",
        "-o", "markers=slow: long-running test",
        *paths,
        *extra_args,
    ]
    code = pytest.main(args, plugins=[collector])
    return int(code), collector.results
