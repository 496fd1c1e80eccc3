"""pytest plugin for conformance tests: the ``impl`` fixture, the three tiers, and the event stream.

Load it with ``-p corenet.checking.pytest_plugin`` (``corenet check``, ``corenet run-tests``
and the repository's own pytest configuration do).

- ``impl("LSTM")``: the class (or function) under test for a name (see
  :mod:`corenet.checking.targets`); skips "LSTM: not implemented" when there is none.
  ``impl.reference("LSTM")`` is corenet's own; ``impl.is_foreign("LSTM")`` tells whether
  the implementation under test is not corenet's.
- Markers ``contract``, ``reference``, ``corenet``: a test's tier is its closest tier
  marker (a module may set ``pytestmark = pytest.mark.contract``); unmarked tests are
  contract tests. ``corenet`` tests are skipped for foreign targets.
- ``--checking-report FILE`` writes one JSON object per line: the collected tests, what
  every target resolved to, each test's start and result (group, tier, outcome and a
  one-line message); see :mod:`corenet.checking.results`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from corenet.checking.targets import ERROR, NOT_IMPLEMENTED, TargetError, Targets

TIERS = ("contract", "reference", "corenet")
DEFAULT_TIER = "contract"
FOREIGN_SKIP = "corenet extra (not part of the exercise)"
TIER_HELP = {
    "contract": "what the exercise sheet and the course framework ask (the default tier; grading uses it)",
    "reference": "agreement over several training steps with corenet's reference implementation and PyTorch",
    "corenet": "corenet's extras (dtype rules, error wording...); skipped for implementations not from corenet",
}
MESSAGE_LIMIT = 300

_STATE = pytest.StashKey["CheckingState"]()


class Implementations:
    """The ``impl`` fixture: ``impl(name)``, ``impl.reference(name)``, ``impl.is_foreign(name)``."""

    def __init__(self, targets: Targets, tier: str) -> None:
        self._targets = targets
        self._tier = tier

    def __call__(self, name: str):
        resolution = self._targets.resolve(name)
        if resolution.status == NOT_IMPLEMENTED:
            pytest.skip(f"{name}: not implemented")
        if resolution.status == ERROR:
            pytest.fail(resolution.message, pytrace=False)
        if self._tier == "corenet" and resolution.foreign:
            pytest.skip(FOREIGN_SKIP)
        return resolution.obj

    def reference(self, name: str):
        """corenet's own (reference-labelled) implementation of ``name``; skips when not installed."""
        obj = self._targets.reference(name)
        if obj is None:
            pytest.skip(f"{name}: corenet's reference implementation is not installed")
        return obj

    def is_foreign(self, name: str) -> bool:
        return self._targets.is_foreign(name)

    def resolution(self, name: str):
        """What ``name`` resolved to (status, source, message)."""
        return self._targets.resolve(name)


class CheckingState:
    """Per-session bookkeeping: targets, test -> (group, tier), outcomes and the report stream."""

    def __init__(self, report_path: str | None) -> None:
        self.targets = Targets.from_env()
        self.rootpath = Path.cwd()  # pytest's rootdir, set in pytest_configure (collect reports are relative to it)
        self.group_of_file: dict[str, str] = {}
        self.names_of_group: dict[str, tuple[str, ...]] = {}
        self.items: dict[str, tuple[str, str | None, str]] = {}  # nodeid -> (test id, group, tier)
        self.outcomes: dict[str, tuple[str, str]] = {}
        self.started: dict[str, float] = {}
        self._stream = open(report_path, "a", encoding="utf-8", buffering=1) if report_path else None

    def load_groups(self) -> None:
        from corenet.checking.groups import names_of

        for group in self.targets.registry.test_groups.values():
            self.names_of_group[group.name] = names_of(group)
            for path in group.paths:
                self.group_of_file[str(Path(path.split("::")[0]).resolve())] = group.name

    def emit(self, event: str, **fields) -> None:
        if self._stream is not None:
            self._stream.write(json.dumps({"event": event, "time": time.time(), **fields}) + "\n")

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    # -- pytest hooks (this object is registered as a plugin) ----------------------------------
    def pytest_unconfigure(self, config) -> None:
        self.emit("finished")
        self.close()

    def pytest_collection_modifyitems(self, session, config, items) -> None:
        self.load_groups()
        for item in items:
            group = self.group_of_file.get(str(Path(str(item.path)).resolve()))
            self.items[item.nodeid] = (stable_id(item.nodeid, item.path), group, tier_of(item))

    def pytest_collection_finish(self, session) -> None:
        if self._stream is None:
            return
        self.emit("collected", tests=[{"id": tid, "group": group, "tier": tier}
                                      for tid, group, tier in self.items.values()])
        names = set(self.targets.overrides)
        for group in {group for _, group, _ in self.items.values() if group}:
            names.update(self.names_of_group.get(group, ()))
        self.emit("targets", targets={name: self.targets.resolve(name).to_json() for name in sorted(names)})

    def pytest_collectreport(self, report) -> None:
        if not report.failed:
            return
        if not self.group_of_file:
            self.load_groups()
        path = str((self.rootpath / report.nodeid.split("::")[0]).resolve()) if report.nodeid else ""
        lines = str(report.longrepr).strip().splitlines() if report.longrepr else [""]
        self.emit("collect_error", file=Path(path).name, group=self.group_of_file.get(path),
                  message=one_line(lines[-1]))

    def pytest_runtest_setup(self, item) -> None:
        _, group, tier = self.items.get(item.nodeid, (None, None, tier_of(item)))
        if tier != "corenet" or group is None:
            return
        if any(self.targets.is_foreign(name) and self.targets.resolve(name).status != NOT_IMPLEMENTED
               for name in self.names_of_group.get(group, ())):
            pytest.skip(FOREIGN_SKIP)

    def pytest_runtest_logstart(self, nodeid, location) -> None:
        tid, group, tier = self.items.get(nodeid, (nodeid, None, DEFAULT_TIER))
        self.started[nodeid] = time.time()
        self.emit("start", id=tid, group=group, tier=tier)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.passed:
            message = ""
        elif report.skipped:
            message = _skip_reason(report)
        elif call.excinfo is not None:
            message = _failure_message(call.excinfo, str(item.path))
            if call.when != "call" and not isinstance(call.excinfo.value, pytest.fail.Exception):
                message = f"error in {call.when}: {message}"
        else:
            message = one_line(str(report.longrepr))
        report.checking_message = message

    def pytest_runtest_logreport(self, report) -> None:
        message = getattr(report, "checking_message", "")
        previous = self.outcomes.get(report.nodeid)
        if report.failed:
            if previous is None or previous[0] in ("passed", "skipped"):
                self.outcomes[report.nodeid] = ("failed" if report.when == "call" else "error", message)
        elif report.skipped:
            if previous is None:
                self.outcomes[report.nodeid] = ("skipped", message)
        elif report.when == "call" and previous is None:
            self.outcomes[report.nodeid] = ("passed", "")

    def pytest_runtest_logfinish(self, nodeid, location) -> None:
        tid, group, tier = self.items.get(nodeid, (nodeid, None, DEFAULT_TIER))
        outcome, message = self.outcomes.get(nodeid, ("error", "no result was reported"))
        duration = time.time() - self.started.get(nodeid, time.time())
        self.emit("result", id=tid, group=group, tier=tier, outcome=outcome, message=message,
                  duration=round(duration, 4))


def stable_id(nodeid: str, path) -> str:
    """A node id that does not depend on where the test file is installed: ``test_x.py::TestX::test_y``."""
    rest = nodeid.split("::", 1)[1] if "::" in nodeid else ""
    return f"{Path(str(path)).name}::{rest}" if rest else Path(str(path)).name


def tier_of(item) -> str:
    """The closest tier marker of ``item`` (function, then class, then module); contract by default."""
    for marker in item.iter_markers():
        if marker.name in TIERS:
            return marker.name
    return DEFAULT_TIER


def one_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 3] + "..."
    return ""


def _failure_message(excinfo, test_file: str) -> str:
    """A learner's one-liner for an exception: the assertion's first line, or 'Type: message (where)'."""
    exc = excinfo.value
    if isinstance(exc, pytest.fail.Exception):
        return one_line(str(exc)) or "failed"
    text = one_line(str(exc))
    entries = [entry for entry in excinfo.traceback if str(entry.path) != test_file]
    where = ""
    if entries and not isinstance(exc, AssertionError):
        last = entries[-1]
        where = f" (in {Path(str(last.path)).name} line {last.lineno + 1}, {last.name})"
    if isinstance(exc, AssertionError):
        if text:
            return text
        entry = excinfo.traceback[-1]
        return f"assertion failed in {Path(str(entry.path)).name} line {entry.lineno + 1}"
    return one_line(f"{type(exc).__name__}{': ' + text if text else ''}{where}")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
    return one_line(reason.removeprefix("Skipped: "))


# -- hooks ------------------------------------------------------------------------------------
def pytest_addoption(parser) -> None:
    group = parser.getgroup("corenet", "corenet conformance checking")
    group.addoption("--checking-report", dest="checking_report", default=None, metavar="FILE",
                    help="append one JSON line per collected test, resolved target, test start and result")


def pytest_configure(config) -> None:
    for tier in TIERS:
        config.addinivalue_line("markers", f"{tier}: {TIER_HELP[tier]}")
    try:
        state = CheckingState(config.getoption("checking_report"))
    except TargetError as exc:
        raise pytest.UsageError(str(exc)) from None
    state.rootpath = config.rootpath
    config.stash[_STATE] = state
    config.pluginmanager.register(state, "corenet-checking-state")


@pytest.fixture
def impl(request) -> Implementations:
    """The implementation under test for a name: ``impl("LSTM")``, ``impl.reference("LSTM")``."""
    return Implementations(request.config.stash[_STATE].targets, tier_of(request.node))
