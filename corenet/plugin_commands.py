"""Plugins' CLI commands, added so that no plugin can take the ``corenet`` command line down.

Each healthy plugin's ``corenet_register_commands(app)`` hook gets a fresh typer app of its
own. Its commands and groups then move into the corenet CLI one by one, each only if

- the hook returned (anything it raises, ``SystemExit`` and ``KeyboardInterrupt`` included,
  drops that plugin's commands),
- typer can build it (a broken signature would otherwise break ``corenet --help``), and
- its name is not taken: a plugin never replaces or shadows a built-in command, nor an
  earlier plugin's.

Every refusal is printed as a warning and kept in the plugin's ``problems``, which
``corenet plugins`` shows. ``corenet install`` and ``corenet uninstall`` load no plugin at all,
so they work whatever an installed plugin does; ``CORENET_NO_PLUGIN_COMMANDS=1`` skips
plugin commands for every command.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence

import typer
import typer.main
from typer.models import CommandInfo, TyperInfo

SKIP_ENV = "CORENET_NO_PLUGIN_COMMANDS"
#: built-in commands that never need a plugin: plugins are not loaded for them
WITHOUT_PLUGINS = ("install", "uninstall")
#: options of the corenet callback that take a value (so the value is not read as the command)
_VALUED_OPTIONS = ("--impl",)


def invoked_command(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv`` (the arguments after the program name), if any."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUED_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def builtin_names(app: typer.Typer) -> set[str]:
    """The names of the commands and groups already in ``app``."""
    names: set[str] = set()
    for info in app.registered_commands:
        names.add(info.name or typer.main.get_command_name(info.callback.__name__))
    for group in app.registered_groups:
        names |= {group.name} if isinstance(group.name, str) else _names_of(group)
    return names


def _names_of(item: CommandInfo | TyperInfo) -> set[str]:
    """The names under which typer would invoke ``item``; building it raises if it is broken."""
    holder = typer.Typer()
    (holder.registered_commands if isinstance(item, CommandInfo) else holder.registered_groups).append(item)
    return set(typer.main.get_group(holder).commands)


def _brief(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().replace("\n", " ")


def _problem(info, message: str) -> None:
    info.problems.append(message)
    print(f"corenet: warning: plugin {info.name!r} ({info.distribution}): {message}", file=sys.stderr)


def add_plugin_commands(app: typer.Typer, argv: Sequence[str]) -> None:
    """Move every healthy plugin's commands into ``app`` (see the module docstring)."""
    if os.environ.get(SKIP_ENV) or invoked_command(argv) in WITHOUT_PLUGINS:
        return
    try:
        from corenet.plugins import get_plugin_manager, get_registry

        hooks = get_plugin_manager().hook.corenet_register_commands.get_hookimpls()
        registry = get_registry()
    except BaseException as exc:  # the loader isolates plugins; this guards the CLI against anything else
        print(f"corenet: warning: plugin commands not loaded: {_brief(exc)}", file=sys.stderr)
        return
    owners = {id(info.plugin): info for info in registry.plugins if info.status == "ok" and info.plugin is not None}
    taken = dict.fromkeys(builtin_names(app), "corenet")
    for hook in hooks:
        info = owners.get(id(hook.plugin))
        if info is None:  # not a loaded plugin (a failed one is already reported by the loader)
            continue
        staging = typer.Typer()
        try:
            hook.function(app=staging)
        except BaseException as exc:
            _problem(info, f"its commands were not added: corenet_register_commands raised {_brief(exc)}")
            continue
        if staging.registered_callback is not None:
            _problem(info, "refused: a plugin cannot set the corenet command line's callback")
        for item in (*staging.registered_commands, *staging.registered_groups):
            _add(app, item, info, taken)


def _add(app: typer.Typer, item: CommandInfo | TyperInfo, info, taken: dict[str, str]) -> None:
    label = item.name if isinstance(item.name, str) else getattr(item.callback, "__name__", "?")
    try:
        names = _names_of(item)
    except BaseException as exc:
        _problem(info, f"command {label!r} refused: typer cannot build it: {_brief(exc)}")
        return
    clashes = sorted(name for name in names if name in taken)
    if clashes:
        owner = taken[clashes[0]]
        whose = "a built-in command" if owner == "corenet" else f"already a command of {owner}"
        _problem(info, f"command {clashes[0]!r} refused: it is {whose}, and a plugin cannot replace it")
        return
    (app.registered_commands if isinstance(item, CommandInfo) else app.registered_groups).append(item)
    taken.update(dict.fromkeys(names, info.distribution))
    info.registered.setdefault("commands", []).extend(sorted(names))
