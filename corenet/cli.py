"""The ``corenet`` command line (typer). Heavy imports stay inside the commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer

from corenet import __version__
from corenet.commands.common import DEBUG_ENV, unexpected
from corenet.commands.common import fail as _fail
from corenet.commands.common import load_train_config as _load_train_config
from corenet.commands.common import reads_files as _reads_files
from corenet.commands.common import table as _table
from corenet.commands.common import train_overrides as _train_overrides

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
        "textbook layers), 'fast' (the fast tier, when installed), a distribution name, or NAME=LABEL for one name; "
        "comma-separated. Same as the CORENET_IMPL environment variable; overrides a training config's "
        "`implementation:` key. `corenet list-layers` shows them."),
    debug: bool = typer.Option(False, "--debug", help="Show the full Python traceback of an error instead of "
                               "its one-line message (same as CORENET_DEBUG=1)."),
) -> None:
    """corenet command line."""
    if debug:
        os.environ[DEBUG_ENV] = "1"
    if impl is not None:
        from corenet.plugins import IMPL_ENV, get_registry

        os.environ[IMPL_ENV] = impl  # subprocesses (checks, graders) see the same choice
        registry = get_registry()
        registry.prefer(impl)
        if registry.unmatched_preferences:
            typer.echo(f"corenet: warning: --impl {impl}: "
                       f"{registry.describe_unmatched(registry.unmatched_preferences)}", err=True)


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
    """List installed plugins, their versions, status, what they provide, load errors and refusals."""
    from corenet.plugins import get_registry

    registry = get_registry()
    records = [
        {"name": p.name, "distribution": p.distribution, "version": p.version, "module": p.module,
         "status": p.status, "error": p.error, "registered": p.registered, "problems": p.problems}
        for p in registry.plugins
    ]
    if as_json:
        typer.echo(json.dumps(records, indent=2))
        return
    rows = []
    for r in records:
        counts = ", ".join(f"{len(v)} {k}" for k, v in r["registered"].items())
        rows.append([r["name"], r["distribution"], r["version"], r["status"],
                     r["error"] or "; ".join(part for part in (counts, *r["problems"]) if part)])
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
        ..., help="Bundled plugins by short name (dropout, batchnorm, reg-l1l2, recurrent, lenet, fast), "
        "plugin folders, wheels, or pip requirements."
    ),
    upgrade: bool = typer.Option(False, "-U", "--upgrade", help="Upgrade if already installed."),
    editable: bool = typer.Option(False, "-e", "--editable", help="Install a local folder in editable mode."),
    pypi: bool = typer.Option(False, "--pypi", help="Pass the names to pip unchanged (packages from PyPI)."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Show pip's full output (default: pip -q)."),
) -> None:
    """Install plugins with pip into the Python environment corenet runs in.

    A bundled plugin's short name (`corenet install dropout`; `corenet install --help` lists them) installs it from this corenet checkout's plugin folder, or from PyPI when corenet is not a checkout.
    """  # noqa: E501 (one line per paragraph: typer keeps a docstring's line breaks)
    from corenet.commands.install import UnknownPlugin, pip_target

    args = ["install"] + ([] if verbose else ["-q"]) + (["--upgrade"] if upgrade else [])
    for name in names:
        try:
            target, local = pip_target(name, pypi=pypi)
        except UnknownPlugin as exc:
            raise _fail(str(exc)) from None
        args += ["-e", target] if editable and local else [target]
    _pip(args)


@app.command("uninstall")
def uninstall(
    names: list[str] = typer.Argument(..., help="Distributions to remove, as `corenet plugins` lists them"),
    yes: bool = typer.Option(True, "-y/--ask", help="Do not ask for confirmation (default)."),
) -> None:
    """Uninstall plugins with pip (works even when a plugin is broken)."""
    _pip(["uninstall", *(["-y"] if yes else []), *names])


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


def _note_overridden_implementation(settings) -> None:
    """Say on stderr when --impl/CORENET_IMPL overrides the config's ``implementation`` key."""
    from corenet.config import preference_for

    used = preference_for(settings)
    if used is not None and used != settings.implementation:
        typer.echo(f"note: --impl/CORENET_IMPL {used!r} overrides the config's implementation: "
                   f"{settings.implementation!r}", err=True)


@app.command("train")
def train(
    config: str | None = typer.Argument(
        None, help="A config name (see --list) or a YAML file. Default: digits (Conv + ReLU + Pooling + two "
        "FullyConnected on 8x8 digits; core layers only, a few seconds)."),
    data: Path | None = typer.Option(
        None, "--data", help="Folder of MNIST IDX files (gzip or raw), for configs on file data sets (default: "
        "corenet's data folder, filled by `corenet data fetch mnist`)."
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
    force: bool = typer.Option(
        False, "--force", help="Let -o/--checkpoint replace a file that is not a corenet checkpoint, or a symlink."),
    plot: Path | None = typer.Option(
        None, "--plot", help="Draw the loss and accuracy curves (training and test, per epoch) to FILE.png "
        "(needs matplotlib, the 'plot' extra)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary, progress bar or per-epoch lines."),
    list_configs: bool = typer.Option(False, "--list", help="List the named configs and exit."),
) -> None:
    """Train a network described by a YAML config; print its test accuracy and save a checkpoint.

    The config's `implementation:` key (e.g. `reference` or `fast`, the syntax of --impl) chooses
    which implementation of each layer and optimizer it uses; `corenet --impl ...` or CORENET_IMPL
    overrides it (the command line wins over the file).

    Prints the network's summary (each layer's class and implementation), then one line per
    epoch: the mean loss per training sample (data + regularization), the training accuracy
    (over the epoch's batches, in the training phase), the test accuracy and loss (testing
    phase) and the time. The history is saved beside the checkpoint as
    CHECKPOINT.history.json and .csv.
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
    _note_overridden_implementation(settings)
    from corenet.training import train as run_training

    if no_checkpoint:
        settings.checkpoint = checkpoint = None

    def show_summary(run) -> None:
        typer.echo(run.network.summary())
        typer.echo(f"training {run.iterations} iterations ({run.epochs} epoch{'s' if run.epochs != 1 else ''} "
                   f"of {run.iterations_per_epoch} batches of {settings.batch_size})")

    def show_epoch(record, run) -> None:
        typer.echo(record.line(run.epochs))

    try:
        run = run_training(settings, checkpoint=checkpoint, progress=not quiet,
                           on_epoch=None if quiet else show_epoch, network_ready=None if quiet else show_summary,
                           force=force)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except (CheckpointError, FloatingPointError) as exc:
        raise _fail(str(exc), 1) from None
    except typer.Exit:
        raise
    except Exception as exc:  # e.g. a plugin's data layer failing in its own way
        raise unexpected(exc) from None
    if plot is not None and run.losses:
        from corenet.plotting import plot_history

        per_sample = [loss / settings.batch_size for loss in run.losses]
        plot_history(run.history, plot, title=settings.name, iteration_losses=per_sample,
                     iterations_per_epoch=run.iterations_per_epoch)
        typer.echo(f"loss and accuracy curves: {plot}")
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
    return name, data_component(name, args, batch_size, "data").build()


@app.command("evaluate")
def evaluate_command(
    checkpoint: Path = typer.Argument(..., help="A network saved by `corenet train` or corenet.save."),
    data: str | None = typer.Option(
        None, "--data", help="A data set name (digits, iris, mnist, ...) or a folder of MNIST IDX files. "
        "Default: the data set the checkpoint was trained on."),
    batch_size: int = typer.Option(500, "--batch-size", "-b", min=1, help="Samples predicted per batch."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Report a checkpoint's accuracy and confusion matrix on a data set's test part.

    A checkpoint holds plain data only (no classes or functions), so loading one runs
    nothing from the file; a damaged or altered file is refused with the reason.
    """
    from corenet.config import ConfigError
    from corenet.errors import CheckpointError, ShapeError
    from corenet.evaluation import evaluate
    from corenet.network import load

    try:
        net = load(checkpoint, None)
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
    except typer.Exit:
        raise
    except Exception as exc:  # e.g. a plugin's layer failing in its own way
        raise unexpected(exc) from None
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


def _register_core_commands() -> None:
    from corenet.commands import check as check_command
    from corenet.commands import data as data_command
    from corenet.commands import grade as grade_command
    from corenet.commands import inspect as inspect_command
    from corenet.commands import new_plugin as new_plugin_command

    check_command.register(app)
    inspect_command.register(app)
    data_command.register(app)
    grade_command.register(app)
    new_plugin_command.register(app)


_register_core_commands()

from corenet.plugin_commands import add_plugin_commands  # noqa: E402 (after the built-in commands)

add_plugin_commands(app, sys.argv[1:])
