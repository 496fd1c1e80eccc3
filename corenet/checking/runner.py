"""Run conformance groups in a pytest subprocess, with a time limit per group.

The subprocess loads :mod:`corenet.checking.pytest_plugin` and streams events to a file.
When a group runs longer than ``timeout`` seconds, the process is killed, that group is
reported ``timeout`` (the test that was running is named) and a fresh process runs the
groups that had not started yet; the groups that finished keep their results. Before its
first test a process gets at least :data:`STARTUP_SECONDS` (importing, collecting).
``total_timeout`` limits the whole run (``corenet grade``'s time per submission): when it
runs out, the group running is reported ``timeout`` and so is every group not yet run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from corenet.checking.targets import TARGETS_ENV
from corenet.plugins import TestGroup

PLUGIN = "corenet.checking.pytest_plugin"
POLL_SECONDS = 0.1
#: the least time a process gets to start (import, collect, resolve the targets) before its first test
STARTUP_SECONDS = 60.0


@dataclass
class RunResult:
    """The events of every pytest process a run needed, and the last process's exit code."""

    events: list[dict] = field(default_factory=list)
    exit_code: int = 0
    output: str = ""
    seconds: float = 0.0


def pytest_command(paths: list[str], report: str, extra_args: list[str]) -> list[str]:
    rootdir = os.path.commonpath([str(Path(p.split("::")[0]).resolve().parent) for p in paths])
    return [
        sys.executable, "-m", "pytest",
        "-c", os.devnull,  # ignore any project ini: the installed tests carry their own settings
        "--rootdir", rootdir,
        "--import-mode=importlib",
        "-p", "no:cacheprovider",
        "-p", PLUGIN,
        "--checking-report", report,
        "--continue-on-collection-errors",
        "-o", "markers=slow: long-running test",
        *paths,
        *extra_args,
    ]


def _read_new(path: Path, offset: int) -> tuple[list[dict], int]:
    """Complete JSON lines appended to ``path`` since ``offset``."""
    try:
        with open(path, "rb") as stream:
            stream.seek(offset)
            data = stream.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    events = []
    for line in data[:end].splitlines():
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events, offset + end


def _kill(process: subprocess.Popen) -> None:
    """Stop the pytest process and anything it started (its own session)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def run_groups(groups: list[TestGroup], *, targets: dict[str, str | None] | None = None,
               pythonpath: list[str] = (), cwd: str | None = None, timeout: float | None = None,
               extra_args: list[str] = (), capture: bool = True, total_timeout: float | None = None) -> RunResult:
    """Run ``groups`` (in order) in pytest subprocesses; ``targets`` becomes CORENET_TARGETS.

    ``timeout`` limits each group, ``total_timeout`` the whole run (seconds; None: no limit)."""
    env = dict(os.environ)
    env.pop(TARGETS_ENV, None)  # None: the installed implementations, whatever the caller's environment says
    if targets is not None:
        env[TARGETS_ENV] = json.dumps(targets)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([*pythonpath, *filter(None, [env.get("PYTHONPATH")])])
    result = RunResult()
    started_at = time.monotonic()
    budget = None if total_timeout is None else (started_at + total_timeout, total_timeout)
    remaining = list(groups)
    outputs: list[str] = []
    with tempfile.TemporaryDirectory(prefix="corenet-check-") as scratch:
        attempt = 0
        while remaining:
            attempt += 1
            report = Path(scratch) / f"events-{attempt}.jsonl"
            log = Path(scratch) / f"output-{attempt}.txt"
            paths = [path for group in remaining for path in group.paths]
            command = pytest_command(paths, str(report), list(extra_args))
            with open(log, "w") as output:
                process = subprocess.Popen(command, env=env, cwd=cwd, start_new_session=True,
                                           stdout=output if capture else None,
                                           stderr=subprocess.STDOUT if capture else None)
                events, finished = _watch(process, report, remaining, timeout, budget)
            result.events += events
            if capture:
                outputs.append(log.read_text(errors="replace"))
            result.exit_code = process.returncode if finished is None else 1
            if finished is None:
                if process.returncode not in (0, 1, 5) and not any(e["event"] == "result" for e in events):
                    tail = (outputs[-1].strip().splitlines() or [""])[-1] if capture else ""
                    result.events.append({"event": "run_error", "group": None, "message":
                                          f"pytest stopped with exit code {process.returncode}: {tail}".strip()})
                break
            remaining = remaining[finished:]
    result.output = "\n".join(outputs)
    result.seconds = time.monotonic() - started_at
    return result


def _watch(process: subprocess.Popen, report: Path, groups: list[TestGroup], timeout: float | None,
           budget: tuple[float, float] | None = None) -> tuple[list[dict], int | None]:
    """Follow ``process``'s events until it exits (returns None) or a group exceeds ``timeout``
    (kills it; returns the index in ``groups`` of the first group still to run) or the run's
    ``budget`` (end time, seconds) runs out (kills it; returns ``len(groups)``: nothing more runs).

    Once every collected test of the current group has its result, that group's clock stops:
    pytest's own wind-down (session teardown, interpreter exit) is nobody's timeout. A process
    that then neither starts a test nor exits within :data:`STARTUP_SECONDS` is stopped.
    """
    names = [group.name for group in groups]
    events: list[dict] = []
    offset = 0
    current: str | None = None
    running: dict | None = None
    clock = time.monotonic()
    expected: dict[str | None, int] = {}
    results: dict[str | None, int] = {}
    clock_after_result = clock
    while True:
        exited = process.poll() is not None
        new, offset = _read_new(report, offset)
        for event in new:
            events.append(event)
            if event["event"] == "collected":
                for test in event.get("tests", []):
                    expected[test.get("group")] = expected.get(test.get("group"), 0) + 1
            elif event["event"] == "start":
                running = event
                if event.get("group") != current:
                    current, clock = event.get("group"), time.monotonic()
            elif event["event"] == "result":
                running = None
                results[event.get("group")] = results.get(event.get("group"), 0) + 1
                clock_after_result = time.monotonic()
        if exited:
            return events, None
        done = {name for name in names if results.get(name, 0) >= expected.get(name, 0) > 0}
        if budget is not None and time.monotonic() > budget[0]:
            _kill(process)
            new, offset = _read_new(report, offset)
            return events + new + _out_of_time(names, current, running, budget[1], done), len(names)
        if current is not None and running is None and current in done:  # winding down, or between groups
            if time.monotonic() - clock_after_result > STARTUP_SECONDS:
                _kill(process)
                message = f"not run: the test process stopped responding after {current}"
                return events + [{"event": "timeout", "group": name, "message": message}
                                 for name in names if name not in done and not results.get(name)], None
            time.sleep(POLL_SECONDS)
            continue
        limit = timeout if current is not None or timeout is None else max(timeout, STARTUP_SECONDS)
        if limit is not None and time.monotonic() - clock > limit:
            _kill(process)
            new, offset = _read_new(report, offset)
            events += new
            seconds = f"{limit:g} s"
            if current is None:  # nothing had started: importing or collecting hung
                message = f"did not start within {seconds} (does importing the implementation hang?)"
                events += [{"event": "timeout", "group": name, "message": message} for name in names]
                return events, len(names)
            test = running.get("id") if running else None
            message = (f"stopped after {seconds}" + (f" in {test}" if test else "")
                       + " (an endless loop, or far too slow?)")
            events.append({"event": "timeout", "group": current, "id": test,
                           "tier": running.get("tier") if running else None, "message": message})
            return events, (names.index(current) + 1) if current in names else len(names)
        time.sleep(POLL_SECONDS)


def _out_of_time(names: list[str], current: str | None, running: dict | None, seconds: float,
                 done: set[str]) -> list[dict]:
    """``timeout`` events for the group running when the run's time limit ran out and every later group
    (``done``: groups whose every test has its result)."""
    message = f"the time limit of {seconds:g} s for the whole run ran out"
    events = []
    later = names
    if current is not None:
        if current not in done:
            test = running.get("id") if running else None
            events.append({"event": "timeout", "group": current, "id": test,
                           "tier": running.get("tier") if running else None,
                           "message": message + (f" in {test}" if test else "") + " (an endless loop, or far too "
                           "slow?)"})
        later = names[names.index(current) + 1:] if current in names else []
    return events + [{"event": "timeout", "group": name, "message": f"not run: {message}"}
                     for name in later if name not in done]
