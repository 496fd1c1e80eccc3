"""``corenet inspect``: look inside the layers while a config trains, or at RNN vs LSTM on delayed recall."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from corenet.commands.common import fail as _fail
from corenet.commands.common import print_table

#: the recurrent plugin's inspection, named in errors when that plugin is missing
RECALL = "recall"


def _check_plot(plot: Path | None) -> None:
    if plot is None:
        return
    from corenet.plotting import PlotUnavailable, check_target

    try:
        check_target(plot)
    except (PlotUnavailable, ValueError) as exc:
        raise _fail(str(exc)) from None


def inspect(
    target: str | None = typer.Argument(
        None, help="A training config (name or YAML file, default: digits), or 'recall' for the RNN/LSTM "
        "gradient over time steps on the delayed-recall task (from the recurrent plugin)."),
    iterations: int | None = typer.Option(None, "--iterations", "-n", min=1, help="Train this many batches."),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="Epochs to train (default: the config's; recall: 20)."),
    batch_size: int | None = typer.Option(None, "--batch-size", "-b", min=1, help="Override the batch size."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Seed for NumPy's global generator."),
    data: Path | None = typer.Option(None, "--data", help="Folder of MNIST IDX files, for configs on mnist."),
    delay: int = typer.Option(10, "--delay", "-k", min=0, help="recall: the target is the input k steps back."),
    window: int = typer.Option(50, "--window", min=2, help="recall: time steps probed back from the last one."),
    streams: int = typer.Option(20, "--streams", min=1, help="recall: probe streams averaged per epoch."),
    plot: Path | None = typer.Option(None, "--plot", help="Also draw the numbers to FILE.png (needs matplotlib)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Look inside training: per layer and epoch, activations, dead/saturated units, gradients, updates.

    For a config: the output mean/std of every layer, the fraction of dead ReLUs (0 for every sample of the epoch) or saturated TanH/Sigmoid outputs (|y| > 0.99, or y outside (0.01, 0.99)), the gradient norm w.r.t. the layer's input and each parameter (per batch, epoch mean) and the update/weight ratio. `corenet inspect recall` trains an RNN and an LSTM on delayed recall and shows ||dy_T/dx_(T-j)||, the gradient that reaches each earlier time step: the RNN's vanishes within a few steps past the delay, the LSTM's does not.
    """  # noqa: E501 (one line per paragraph: typer keeps a docstring's line breaks)
    _check_plot(plot)
    from corenet.plugins import get_registry

    inspection = get_registry().inspections.get(target) if target is not None else None
    if inspection is None and target == RECALL:
        from corenet.catalog import install_hint

        raise _fail("inspect recall needs the delayed-recall task of the recurrent plugin; "
                    + (install_hint("recall") or "install the plugin that provides it"))
    if inspection is not None:
        if iterations is not None or batch_size is not None or data is not None:
            raise _fail(f"inspect {target} takes --epochs, --seed, --delay, --window, --streams, --plot, --json")
        inspection(epochs=epochs, seed=0 if seed is None else seed, delay=delay, window=window, streams=streams,
                   plot=plot, as_json=as_json)
        return
    _inspect_config(target, iterations, epochs, batch_size, seed, data, plot, as_json)


def _inspect_config(target, iterations, epochs, batch_size, seed, data, plot, as_json) -> None:
    from corenet.commands.common import load_train_config, train_overrides
    from corenet.config import ConfigError
    from corenet.errors import CheckpointError
    from corenet.inspection import TABLE_COLUMNS, LayerProbe, plot_layers, table_rows
    from corenet.training import train

    try:
        settings = load_train_config(target, data, train_overrides(seed, iterations, epochs, batch_size))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    settings.checkpoint = None
    probes: list[LayerProbe] = []

    def attach(run) -> None:
        probes.append(LayerProbe(run.network).attach())

    def epoch_done(record, run) -> None:
        probes[0].close_epoch(record.epoch)
        if not as_json:
            typer.echo(record.line(run.epochs))

    try:
        run = train(settings, progress=not as_json, on_epoch=epoch_done, network_ready=attach)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    except (CheckpointError, FloatingPointError) as exc:
        raise _fail(str(exc), 1) from None
    finally:
        for probe in probes:
            probe.detach()
    epochs_seen = probes[0].epochs if probes else []
    if as_json:
        typer.echo(json.dumps([row.as_dict() for layers in epochs_seen for row in layers], indent=2))
    else:
        rows = table_rows(epochs_seen)
        per_epoch = len(epochs_seen[0]) if epochs_seen else 1
        print_table(f"{settings.name}: inside the layers (training batches; norms per batch, epoch means)",
                     TABLE_COLUMNS, rows, sections=list(range(per_epoch, len(rows), per_epoch)))
    if plot is not None:
        plot_layers(epochs_seen, plot, title=f"{settings.name}: inside the layers")
        typer.echo(f"plot: {plot}", err=as_json)
    if run.interrupted:
        raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    """Add ``corenet inspect`` to the CLI."""
    app.command("inspect")(inspect)
