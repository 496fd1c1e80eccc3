"""What a plugin project folder (a student's corenet plugin, not installed) registers.

Grading never installs a submission. A plugin project is read instead: the entry points of
the group ``corenet`` in its ``pyproject.toml`` name the hooks module, the package is found
in the folder (or its ``src/``, or ``[tool.setuptools.packages.find] where``), and the hooks
are called in a separate process (``python -m corenet.grading.plugin_project ROOT ENTRY...``,
which prints ``{"names": {NAME: "module:Class"}}`` or ``{"error": "one line"}``) so that a
project which hangs or crashes while importing cannot take the grader with it. The names it
registers are then checked like a course folder's files, with ROOT on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ENTRY_POINT_GROUP = "corenet"
#: registry kinds whose names a conformance group can test
CHECKED_KINDS = ("layers", "optimizers", "initializers", "regularizers", "losses", "models")


class ProjectError(ValueError):
    """The folder is not a usable plugin project (no entry point, package not found, hooks fail)."""


@dataclass(frozen=True)
class PluginProject:
    """A plugin project's folder, its package root (goes on sys.path) and its corenet entry points."""

    folder: Path
    root: Path
    entry_points: dict[str, str]


def _read_toml(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ProjectError("reading a plugin project's pyproject.toml needs Python 3.11 or the tomli "
                               "package") from None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProjectError(f"pyproject.toml cannot be read: {exc}") from None


def read_project(folder: Path) -> PluginProject:
    """The plugin project in ``folder``; ProjectError says what is missing."""
    folder = Path(folder)
    data = _read_toml(folder / "pyproject.toml")
    entry_points = data.get("project", {}).get("entry-points", {}).get(ENTRY_POINT_GROUP, {})
    if not isinstance(entry_points, dict) or not entry_points:
        raise ProjectError(f"pyproject.toml has no [project.entry-points.{ENTRY_POINT_GROUP}] entry "
                           f"(e.g. myplugin = \"my_package\"): not a corenet plugin")
    find = data.get("tool", {}).get("setuptools", {}).get("packages", {})
    where = find.get("find", {}).get("where", []) if isinstance(find, dict) else []
    candidates = [folder / w for w in ([where] if isinstance(where, str) else list(where))] + [folder, folder / "src"]
    tops = {str(value).split(":")[0].split(".")[0].strip() for value in entry_points.values()}
    for root in candidates:
        if all((root / top).is_dir() or (root / f"{top}.py").is_file() for top in tops):
            return PluginProject(folder, root.resolve(), {str(k): str(v) for k, v in entry_points.items()})
    raise ProjectError(f"the entry point names {', '.join(sorted(tops))}, which is not in the folder "
                       f"(looked in {', '.join(str(c.relative_to(folder)) or '.' for c in candidates)})")


def registered_names(project: PluginProject, timeout: float) -> dict[str, str]:
    """Name -> ``"module:Class"`` for everything the project registers that a group can test.

    Runs the project's hooks in a subprocess that gets ``timeout`` seconds; raises ProjectError
    (one line) when it fails, hangs or registers nothing testable, and TimeoutError on a hang.
    """
    command = [sys.executable, "-m", "corenet.grading.plugin_project", str(project.root),
               *project.entry_points.values()]
    process = subprocess.Popen(command, cwd=project.folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
        process.communicate()
        raise TimeoutError(f"importing the plugin's hooks did not finish within {timeout:g} s") from None
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        tail = (err.strip().splitlines() or [f"exit code {process.returncode}"])[-1]
        raise ProjectError(f"loading the plugin failed: {tail}")
    answer = json.loads(lines[-1])
    if answer.get("error"):
        raise ProjectError(answer["error"])
    if not answer["names"]:
        raise ProjectError("the plugin registers no layer, optimizer, initializer, regularizer, loss or model")
    return answer["names"]


def _spec_of(name: str, obj) -> str:
    qualname = getattr(obj, "__qualname__", "")
    if not qualname or "." in qualname or "<" in qualname:
        raise ProjectError(f"{name} must be defined at the top level of a module to be checked, got {obj!r}")
    return f"{obj.__module__}:{qualname}"


def _discover(root: str, values: list[str]) -> dict[str, str]:
    """In the subprocess: import each entry point from ``root`` and call its registration hooks."""
    from importlib.metadata import EntryPoint

    import pluggy

    from corenet import hookspecs
    from corenet.plugins import PluginInfo, Registry, _call_hooks, _Staging

    sys.path.insert(0, root)
    names: dict[str, str] = {}
    for value in values:
        module = EntryPoint(name="submission", value=value, group=ENTRY_POINT_GROUP).load()
        manager = pluggy.PluginManager("corenet")
        manager.add_hookspecs(hookspecs)
        manager.register(module, name=value)
        staging = _Staging(Registry(), PluginInfo(value, "submission", "0", value))
        _call_hooks(manager, module, staging)
        for kind, name, implementation in staging.items:
            if kind in CHECKED_KINDS:
                names[name] = _spec_of(name, implementation.obj)
    return names


def main(argv: list[str]) -> int:
    root, values = argv[0], argv[1:]
    try:
        answer = {"names": _discover(root, values)}
    except BaseException as exc:  # the student's code may raise anything, SystemExit included
        if isinstance(exc, KeyboardInterrupt):
            raise
        text = " ".join(str(exc).split())
        answer = {"error": f"loading the plugin failed: {type(exc).__name__}{': ' + text if text else ''}"[:300]}
    sys.stdout.write("\n" + json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
