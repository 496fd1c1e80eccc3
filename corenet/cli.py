"""The ``corenet`` command line (typer). Heavy imports stay inside the commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import List, Optional

import typer

from corenet import __version__

app = typer.Typer(
    help="corenet: a NumPy deep-learning framework whose features are plugins. "
    "Every layer's gradient is plain NumPy you can read; plugins add layers, optimizers, data sets, "
    "models and commands (`corenet plugins` shows what is installed). Start with `corenet train`.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"corenet {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """corenet command line."""


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@app.command("list-layers")
def list_layers(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List every layer that corenet and its installed plugins provide."""
    from corenet.base import TrainableLayer
    from corenet.plugins import get_registry

    registry = get_registry()
    rows = []
    for name, cls in sorted(registry.layers.items()):
        info = registry.provider("layers", name)
        trainable = issubclass(cls, TrainableLayer) or bool(getattr(cls, "trainable", False))
        rows.append({"name": name, "distribution": info.distribution, "version": info.version,
                     "trainable": trainable})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table("corenet layers", ["layer", "distribution", "version", "trainable"],
           [[r["name"], r["distribution"], r["version"], "yes" if r["trainable"] else "no"] for r in rows])


@app.command("plugins")
def plugins(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List installed plugins, their versions, status and load errors."""
    from corenet.plugins import get_registry

    registry = get_registry()
    records = [
        {"name": p.name, "distribution": p.distribution, "version": p.version, "module": p.module,
         "status": p.status, "error": p.error, "registered": p.registered}
        for p in registry.plugins
    ]
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    rows = []
    for r in records:
        counts = ", ".join(f"{len(v)} {k}" for k, v in r["registered"].items())
        rows.append([r["name"], r["distribution"], r["version"], r["status"], r["error"] or counts])
    _table("corenet plugins", ["plugin", "distribution", "version", "status", "provides / error"], rows)


def _pip(args: list[str]) -> None:
    command = [sys.executable, "-m", "pip", *args]
    typer.echo("$ " + " ".join(command), err=True)
    code = subprocess.call(command)
    if code:
        raise typer.Exit(code)


@app.command("install")
def install(
    names: List[str] = typer.Argument(..., help="Distributions or paths, e.g. corenet-dropout ./plugins/lenet"),
    upgrade: bool = typer.Option(False, "-U", "--upgrade", help="Upgrade if already installed."),
    editable: bool = typer.Option(False, "-e", "--editable", help="Install a local folder in editable mode."),
) -> None:
    """Install plugins with pip into the Python environment corenet runs in."""
    args = ["install"] + (["--upgrade"] if upgrade else [])
    for name in names:
        args += ["-e", name] if editable else [name]
    _pip(args)


@app.command("uninstall")
def uninstall(
    names: List[str] = typer.Argument(..., help="Distributions to remove, e.g. corenet-dropout"),
    yes: bool = typer.Option(True, "-y/--ask", help="Do not ask for confirmation (default)."),
) -> None:
    """Uninstall plugins with pip (works even when a plugin is broken)."""
    _pip(["uninstall", *(["-y"] if yes else []), *names])


@app.command("run-tests", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_tests(
    ctx: typer.Context,
    group: Optional[List[str]] = typer.Option(
        None, "--group", "-g", help="Conformance group to run (repeatable), e.g. TestRNN. Default: all."
    ),
    bonus: bool = typer.Option(False, "--bonus", help="Print a table of groups, pass/fail and their weights."),
    list_groups: bool = typer.Option(False, "--list", help="List the known groups and exit."),
) -> None:
    """Run the conformance tests that corenet and installed plugins ship.

    Arguments after `--` go to pytest, e.g. `corenet run-tests -g TestConv -- -x -q`.
    """
    from corenet.plugins import get_registry
    from corenet.testrun import run_groups

    known = get_registry().test_groups
    if list_groups:
        _table("conformance groups", ["group", "distribution", "weight"],
               [[g.name, g.distribution, f"{g.weight:g}"] for g in sorted(known.values(), key=lambda g: g.name)])
        return
    names = list(group or sorted(known))
    unknown = [name for name in names if name not in known]
    if unknown:
        typer.echo(f"unknown test group(s): {', '.join(unknown)}", err=True)
        typer.echo(f"known groups: {', '.join(sorted(known)) or '(none)'}", err=True)
        raise typer.Exit(2)
    code, results = run_groups([known[name] for name in names], list(ctx.args))
    if bonus:
        earned = sum(r.group.weight for r in results.values() if r.status == "pass")
        total = sum(r.group.weight for r in results.values())
        _table("bonus", ["group", "distribution", "status", "passed", "failed", "skipped", "weight"],
               [[r.group.name, r.group.distribution, r.status, str(r.passed), str(r.failed), str(r.skipped),
                 f"{r.group.weight:g}"] for r in results.values()])
        typer.echo(f"bonus points: {earned:g} / {total:g}")
    raise typer.Exit(code)


@app.command("train")
def train(
    iterations: int = typer.Option(600, "--iterations", "-n", min=1, help="Training iterations (batches)."),
    batch_size: int = typer.Option(64, "--batch-size", "-b", min=1, help="Batch size."),
    learning_rate: float = typer.Option(2e-3, "--lr", min=0.0, help="Adam learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed for NumPy's global generator (reproducible runs)."),
) -> None:
    """Train a small Conv network on the embedded digits set and print its test accuracy."""
    from corenet.quickstart import train_digits

    train_digits(iterations=iterations, batch_size=batch_size, learning_rate=learning_rate, seed=seed)


def _register_plugin_commands() -> None:
    if os.environ.get("CORENET_NO_PLUGIN_COMMANDS"):
        return
    from corenet.plugins import get_plugin_manager, get_registry

    pm = get_plugin_manager()
    failed = {p.name for p in get_registry().failures}
    for impl in pm.hook.corenet_register_commands.get_hookimpls():
        if impl.plugin_name in failed:
            continue
        try:
            impl.function(app=app)
        except Exception as exc:  # one plugin's command must not break the CLI
            typer.echo(f"corenet: warning: plugin {impl.plugin_name!r} failed to add commands: {exc}", err=True)


_register_plugin_commands()
