"""The ``corenet`` command line (typer). Heavy imports stay inside the commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    impl: str | None = typer.Option(
        None, "--impl", metavar="PREFERENCE",
        help="Which implementation of a name to use when several are installed: 'reference' (corenet's "
        "textbook layers), 'fast' (corenet-fast), a distribution name, or NAME=LABEL for one name; "
        "comma-separated. Same as the CORENET_IMPL environment variable. `corenet list-layers` shows them."),
) -> None:
    """corenet command line."""
    if impl is not None:
        from corenet.plugins import IMPL_ENV, get_registry

        os.environ[IMPL_ENV] = impl  # subprocesses (checks, graders) see the same choice
        registry = get_registry()
        registry.prefer(impl)
        if registry.unmatched_preferences:
            typer.echo(f"corenet: warning: --impl {impl}: no installed implementation is labelled "
                       f"{', '.join(registry.unmatched_preferences)}", err=True)


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
    """List every layer that corenet and its installed plugins provide, with each name's implementations.

    The selected implementation of a name (the one networks and `corenet run-tests` use) is marked
    `*`; choose another with `corenet --impl reference ...` or CORENET_IMPL.
    """
    from corenet.base import TrainableLayer
    from corenet.plugins import get_registry

    registry = get_registry()
    rows = []
    for name in sorted(registry.layers):
        for impl in registry.implementations_of("layers", name):
            cls = impl.obj
            trainable = issubclass(cls, TrainableLayer) or bool(getattr(cls, "trainable", False))
            rows.append({"name": name, "implementation": impl.label, "selected": registry.selected[
                ("layers", name)] is impl, "priority": impl.priority, "class": f"{cls.__module__}.{cls.__qualname__}",
                "distribution": impl.distribution, "version": impl.plugin.version, "trainable": trainable,
                "tie": ("layers", name) in registry.ties})
    for (_, name), tied in sorted(registry.ties.items()):
        typer.echo(f"note: {name}: {len(tied)} implementations share priority {tied[0].priority} "
                   f"({', '.join(i.distribution for i in tied)}); using {tied[0].distribution}. "
                   f"Choose with --impl {name}=LABEL", err=True)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    _table("corenet layers (* = selected)", ["layer", "implementation", "priority", "distribution", "version",
                                             "trainable"],
           [[r["name"] if r["selected"] else "", ("* " if r["selected"] else "  ") + r["implementation"]
             + (" (tie)" if r["tie"] and r["selected"] else ""), str(r["priority"]), r["distribution"],
             r["version"], "yes" if r["trainable"] else "no"] for r in rows])


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
    names: list[str] = typer.Argument(
        ..., help="Plugin folders, wheels or distribution names, e.g. ./plugins/dropout ./plugins/lenet"
    ),
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
    names: list[str] = typer.Argument(..., help="Distributions to remove, e.g. corenet-dropout"),
    yes: bool = typer.Option(True, "-y/--ask", help="Do not ask for confirmation (default)."),
) -> None:
    """Uninstall plugins with pip (works even when a plugin is broken)."""
    _pip(["uninstall", *(["-y"] if yes else []), *names])


@app.command("run-tests", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_tests(
    ctx: typer.Context,
    group: list[str] | None = typer.Option(
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


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _list_configs() -> None:
    from corenet.config import ConfigError, available_configs, parse_yaml

    rows = []
    for name, entry in sorted(available_configs().items()):
        try:
            description = str(parse_yaml(entry.read_text(encoding="utf-8"), name).get("description", ""))
        except ConfigError as exc:
            description = f"(unreadable: {exc})"
        package = getattr(getattr(getattr(entry, "parent", None), "parent", None), "name", "")
        rows.append([name, description, package])
    _table("training configs (corenet train NAME)", ["name", "description", "package"], rows)


def _train_overrides(seed, iterations, epochs, batch_size) -> dict:
    overrides: dict = {}
    if seed is not None:
        overrides["seed"] = seed
    if iterations is not None:
        overrides.update({"training.iterations": iterations, "training.epochs": None})
    if epochs is not None:
        overrides.update({"training.epochs": epochs, "training.iterations": None})
    if batch_size is not None:
        overrides["training.batch_size"] = batch_size
    return overrides


def _load_train_config(config: str | None, data: Path | None, overrides: dict):
    from corenet.config import load_config, parse_yaml, read_config_text
    from corenet.plugins import get_registry

    if data is not None:
        name, source, text = read_config_text(config)
        spec = parse_yaml(text, source).get("data")
        dataset = spec.get("name") if isinstance(spec, dict) else spec
        known = isinstance(dataset, str) and dataset in get_registry().datasets
        if known and not _reads_files(dataset):  # unknown names are reported by load_config
            raise _fail(f"--data: the config {name!r} uses the data set {dataset!r}, which does not read "
                        f"files; --data PATH works with configs on file data sets (mnist)")
        overrides = {**overrides, "data.args.path": str(data)}
    return load_config(config, overrides)


def _report_interrupted(run) -> None:
    typer.echo(f"\ninterrupted after {run.completed} of {run.iterations} iterations", err=True)
    if run.checkpoint is None:
        typer.echo("no checkpoint configured; nothing was saved", err=True)
    elif run.saved_at is not None:
        typer.echo(f"{run.checkpoint} keeps the last good network, saved after iteration {run.saved_at}",
                   err=True)
    elif run.checkpoint.exists():
        typer.echo(f"{run.checkpoint} is unchanged (this run had not saved yet)", err=True)
    else:
        typer.echo("this run had not saved a checkpoint yet", err=True)


@app.command("train")
def train(
    config: str | None = typer.Argument(
        None, help="A config name (see --list) or a YAML file. Default: digits (Conv + BatchNormalization + "
        "Dropout + L2 on 8x8 digits, under a minute)."),
    data: Path | None = typer.Option(
        None, "--data", help="Folder of MNIST IDX files (gzip or raw), for configs on file data sets."
    ),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Seed for NumPy's global generator: one seed, the same run bit for bit."
    ),
    iterations: int | None = typer.Option(None, "--iterations", "-n", min=1, help="Train this many batches."),
    epochs: float | None = typer.Option(None, "--epochs", help="Train this many epochs (> 0, e.g. 2.5)."),
    batch_size: int | None = typer.Option(None, "--batch-size", "-b", min=1, help="Override the batch size."),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", "-o",
        help="Where to save the network (default: the config's training.checkpoint)."
    ),
    no_checkpoint: bool = typer.Option(False, "--no-checkpoint", help="Do not save a checkpoint."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Write the loss curve to FILE.png (needs matplotlib, the 'plot' extra)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    list_configs: bool = typer.Option(False, "--list", help="List the named configs and exit."),
) -> None:
    """Train a network described by a YAML config; print its test accuracy and save a checkpoint.

    Ctrl-C stops cleanly: the checkpoint file keeps the last network saved between
    iterations (saved once per epoch and at the end, each save atomic).
    """
    from corenet.config import ConfigError
    from corenet.errors import CheckpointError

    if list_configs:
        _list_configs()
        return
    if epochs is not None and iterations is not None:
        raise _fail("give --iterations or --epochs, not both")
    if plot is not None:
        from corenet.plotting import PlotUnavailable, check_target

        try:
            check_target(plot)
        except (PlotUnavailable, ValueError) as exc:
            raise _fail(str(exc)) from None
    try:
        settings = _load_train_config(config, data, _train_overrides(seed, iterations, epochs, batch_size))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    from corenet.training import train as run_training

    if no_checkpoint:
        settings.checkpoint = checkpoint = None
    try:
        run = run_training(settings, checkpoint=checkpoint, progress=not quiet)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except (CheckpointError, FloatingPointError) as exc:
        raise _fail(str(exc), 1) from None
    if plot is not None and run.losses:
        from corenet.plotting import plot_loss

        plot_loss(run.losses, plot, title=f"{settings.name}: training loss")
        typer.echo(f"loss curve: {plot}")
    if run.interrupted:
        _report_interrupted(run)
        raise typer.Exit(130)
    summary = f"{settings.name}, {run.completed} iterations, {run.seconds:.1f} s"
    if run.evaluation is not None:
        typer.echo(f"test accuracy: {run.evaluation.accuracy:.2%} on {run.evaluation.count} test samples "
                   f"({summary})")
    else:
        typer.echo(f"trained ({summary})")
    if run.checkpoint is not None:
        typer.echo(f"checkpoint: {run.checkpoint}  (corenet evaluate {run.checkpoint})")


def _reads_files(dataset: str) -> bool:
    """Whether the registered data set ``dataset`` takes a ``path`` argument (e.g. mnist)."""
    import inspect

    from corenet.plugins import get_registry

    cls = get_registry().datasets.get(dataset)
    return cls is not None and "path" in inspect.signature(cls).parameters


def _evaluation_data(data: str | None, metadata: dict, batch_size: int):
    """The data layer to evaluate on: --data (a data set name or an MNIST folder), else the checkpoint's."""
    from corenet.config import data_component

    saved = metadata.get("data") if isinstance(metadata, dict) else None
    if data is None:
        if not saved:
            raise _fail("the checkpoint does not say which data set it was trained on; pass --data NAME or "
                        "--data FOLDER")
        name, args = saved["name"], dict(saved.get("args", {}))
    elif Path(data).is_dir():
        # a folder replaces the path of a file data set the checkpoint used (keeping e.g. its split)
        name, args = "mnist", {"path": data}
        if saved and _reads_files(saved["name"]):
            name, args = saved["name"], {**saved.get("args", {}), "path": data}
    else:
        from corenet.plugins import get_registry

        datasets = get_registry().datasets
        if data not in datasets:
            raise _fail(f"--data {data}: neither a data set ({', '.join(sorted(datasets))}) nor a folder "
                        f"of MNIST IDX files")
        name = data
        args = dict(saved.get("args", {})) if saved and saved.get("name") == data else {}
        if name == "mnist" and "path" not in args:
            raise _fail("--data mnist: give the folder of MNIST IDX files instead: --data FOLDER")
    return name, data_component(name, args, batch_size, "data").build()


@app.command("evaluate")
def evaluate_command(
    checkpoint: Path = typer.Argument(..., help="A network saved by `corenet train` or corenet.save."),
    data: str | None = typer.Option(
        None, "--data", help="A data set name (digits, iris, mnist, ...) or a folder of MNIST IDX files. "
        "Default: the data set the checkpoint was trained on."),
    trust: bool = typer.Option(
        False, "--trust", help="UNSAFE: load with plain pickle, which runs any code the file holds. Only for "
        "files you made yourself."),
    batch_size: int = typer.Option(500, "--batch-size", "-b", min=1, help="Samples predicted per batch."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Report a checkpoint's accuracy and confusion matrix on a data set's test part.

    Checkpoints load with a restricted unpickler that admits only corenet's classes
    and NumPy arrays; a file asking for anything else is refused unread.
    """
    from corenet.config import ConfigError
    from corenet.errors import CheckpointError, ShapeError
    from corenet.evaluation import evaluate
    from corenet.network import load

    try:
        net = load(checkpoint, None, trusted=trust)
    except CheckpointError as exc:
        raise _fail(str(exc), 1) from None
    try:
        name, data_layer = _evaluation_data(data, getattr(net, "metadata", {}), batch_size)
        inputs, labels = data_layer.get_test_set()
        result = evaluate(net, inputs, labels, batch_size)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except (ShapeError, ValueError) as exc:
        raise _fail(f"{checkpoint} does not fit the data set {data or 'saved with it'}: {exc}", 1) from None
    if as_json:
        typer.echo(json.dumps({"checkpoint": str(checkpoint), "data": name, "accuracy": result.accuracy,
                               "count": result.count, "confusion": result.confusion.tolist()}, indent=2))
        return
    classes = result.confusion.shape[0]
    recall = result.per_class()
    rows = [[str(i), *(str(v) for v in result.confusion[i]), f"{recall[i]:.1%}"] for i in range(classes)]
    typer.echo(f"{checkpoint} on the {name} test set")
    _table("confusion matrix (rows: true class, columns: predicted)",
           ["true", *(str(j) for j in range(classes)), "recall"], rows)
    correct = int(result.confusion.trace())
    typer.echo(f"accuracy: {result.accuracy:.2%} ({correct} of {result.count} test samples)")


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
